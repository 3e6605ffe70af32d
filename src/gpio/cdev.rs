//! [`CdevBackend`]: any Linux GPIO chip through the GPIO character device
//! (`/dev/gpiochipN`, uAPI v2) with `gpiocdev`. This is also what runs against the
//! kernel's `gpio-sim` chip in the hardware lab (design §6).
//!
//! Lines are requested with bias, active-low and edge detection on both edges; the
//! kernel's own debounce is not used (one debounce, in [`crate::gpio::buttons`], for
//! every backend). Edge events arrive through gpiocdev's tokio wrapper.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gpiocdev::Request;
use gpiocdev::line::{EdgeDetection, EdgeKind, Value};
use gpiocdev::tokio::AsyncRequest;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::GpioError;
use super::backend::{
    Backend, Bias, Edge, EdgeClock, InputLine, InputSpec, OutputLine, OutputSpec,
};
use super::error::{available_chips, list_chips};

/// Linux errno values we give advice for.
const EBUSY: i32 = 16;
const EINVAL: i32 = 22;
const EOPNOTSUPP: i32 = 95;
/// Kernel-internal "not supported" that leaks out of some pinctrl drivers.
const ENOTSUPP: i32 = 524;

/// GPIO lines on one chip through the character device.
#[derive(Debug, Clone)]
pub struct CdevBackend {
    chip: PathBuf,
}

impl CdevBackend {
    /// Open the chip named by `chip`: an absolute path (`/dev/gpiochip0`), a device name
    /// (`gpiochip4`) or a chip label (`pinctrl-rp1`, looked up among `/dev/gpiochip*`,
    /// which is how a Raspberry Pi 5 finds its header whatever the kernel numbered it).
    pub fn open(chip: &str) -> Result<Self, GpioError> {
        let path = resolve_chip(chip)?;
        let opened = gpiocdev::Chip::from_path(&path).map_err(|e| map_chip_err(&path, &e))?;
        match opened.info() {
            Ok(info) => tracing::info!(
                chip = %path.display(),
                label = %info.label,
                lines = info.num_lines,
                "GPIO chip opened"
            ),
            Err(e) => return Err(map_chip_err(&path, &e)),
        }
        Ok(Self { chip: path })
    }

    /// The resolved chip path.
    pub fn chip_path(&self) -> &Path {
        &self.chip
    }

    fn chip_name(&self) -> String {
        self.chip.display().to_string()
    }

    /// Check the line exists before asking for it, for a clearer error than `EINVAL`.
    fn check_line(&self, line: u32, role: &str) -> Result<(), GpioError> {
        let chip =
            gpiocdev::Chip::from_path(&self.chip).map_err(|e| map_chip_err(&self.chip, &e))?;
        let info = chip.info().map_err(|e| map_chip_err(&self.chip, &e))?;
        if line >= info.num_lines {
            return Err(GpioError::NoSuchLine {
                chip: self.chip_name(),
                line,
                num_lines: info.num_lines,
                role: role.to_string(),
            });
        }
        Ok(())
    }

    fn map_line_err(
        &self,
        e: &gpiocdev::Error,
        line: u32,
        role: &str,
        what: &'static str,
    ) -> GpioError {
        match errno_of(e) {
            Some(EBUSY) => {
                let consumer = gpiocdev::Chip::from_path(&self.chip)
                    .and_then(|c| c.line_info(line))
                    .ok()
                    .filter(|i| !i.consumer.is_empty())
                    .map(|i| format!("`{}`", i.consumer))
                    .unwrap_or_else(|| "another process".to_string());
                GpioError::Busy {
                    chip: self.chip_name(),
                    line,
                    consumer,
                    role: role.to_string(),
                }
            }
            _ => match map_chip_err(&self.chip, e) {
                GpioError::Io { chip, message, .. } => GpioError::Io {
                    chip,
                    line: Some(line),
                    what,
                    message,
                },
                other => other,
            },
        }
    }
}

/// The kernel's consumer label for a role (at most 31 bytes).
fn consumer(role: &str) -> String {
    let mut c = format!("callbox:{role}");
    c.truncate(31);
    c
}

/// Resolve a configured chip to a device path.
fn resolve_chip(chip: &str) -> Result<PathBuf, GpioError> {
    let chip = chip.trim();
    if chip.starts_with('/') {
        return Ok(PathBuf::from(chip));
    }
    if chip.starts_with("gpiochip") {
        return Ok(Path::new("/dev").join(chip));
    }
    list_chips()
        .into_iter()
        .find(|(_, label)| label == chip)
        .map(|(p, _)| p)
        .ok_or_else(|| GpioError::ChipMissing {
            chip: format!("with label `{chip}`"),
            available: available_chips(),
        })
}

/// The errno inside a gpiocdev error. The uAPI error type is not re-exported, so the
/// number is read back from its message ("… (os error 16)").
fn errno_of(e: &gpiocdev::Error) -> Option<i32> {
    if let gpiocdev::Error::Os(errno) = e {
        return Some(errno.0);
    }
    let msg = e.to_string();
    let start = msg.rfind("(os error ")? + "(os error ".len();
    msg[start..].trim_end_matches(')').parse().ok()
}

fn map_chip_err(chip: &Path, e: &gpiocdev::Error) -> GpioError {
    if let Some(n) = errno_of(e) {
        let io = std::io::Error::from_raw_os_error(n);
        if matches!(
            io.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
        ) {
            return GpioError::open(chip, &io);
        }
    }
    if let gpiocdev::Error::GpioChip(p, kind) = e {
        return GpioError::ChipMissing {
            chip: format!("{} ({kind})", p.display()),
            available: available_chips(),
        };
    }
    GpioError::Io {
        chip: chip.display().to_string(),
        line: None,
        what: "opening the chip",
        message: e.to_string(),
    }
}

fn bias_of(b: Bias) -> gpiocdev::line::Bias {
    match b {
        Bias::PullUp => gpiocdev::line::Bias::PullUp,
        Bias::PullDown => gpiocdev::line::Bias::PullDown,
        Bias::None => gpiocdev::line::Bias::Disabled,
    }
}

impl Backend for CdevBackend {
    fn describe(&self) -> String {
        format!("cdev {}", self.chip.display())
    }

    fn claim_input(
        &self,
        spec: &InputSpec,
        events: mpsc::UnboundedSender<Edge>,
    ) -> Result<Box<dyn InputLine>, GpioError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GpioError::NoRuntime);
        }
        self.check_line(spec.line, &spec.role)?;
        let build = |with_bias: bool| {
            let mut b = Request::builder();
            b.on_chip(&self.chip)
                .with_consumer(consumer(&spec.role))
                .with_line(spec.line)
                .as_input()
                .with_edge_detection(EdgeDetection::BothEdges);
            if with_bias {
                b.with_bias(bias_of(spec.bias));
            }
            if spec.active_low {
                b.as_active_low();
            }
            b.request()
        };
        let req = match build(true) {
            Ok(r) => r,
            Err(e) if matches!(errno_of(&e), Some(EINVAL | EOPNOTSUPP | ENOTSUPP)) => {
                // Some chips cannot set bias from userspace: fall back, and say what to fit.
                let r = build(false).map_err(|_| {
                    self.map_line_err(&e, spec.line, &spec.role, "requesting input")
                })?;
                tracing::warn!(
                    chip = %self.chip.display(),
                    line = spec.line,
                    role = %spec.role,
                    bias = ?spec.bias,
                    "the chip cannot set the line's bias; fit an external pull resistor"
                );
                r
            }
            Err(e) => return Err(self.map_line_err(&e, spec.line, &spec.role, "requesting input")),
        };
        let req = Arc::new(AsyncRequest::new(req));
        let reader = Arc::clone(&req);
        let (line, role) = (spec.line, spec.role.clone());
        let chip = self.chip_name();
        let task = tokio::spawn(async move {
            let mut clock = EdgeClock::default();
            let mut failing = false;
            loop {
                match reader.read_edge_event().await {
                    Ok(ev) => {
                        failing = false;
                        let at = clock.stamp(ev.timestamp_ns, Instant::now());
                        let active = ev.kind == EdgeKind::Rising;
                        tracing::trace!(line, active, "cdev edge");
                        if events.send(Edge { active, at }).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(%chip, line, %role, error = %e, "reading GPIO edge events failed; retrying");
                        }
                        failing = true;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        tracing::debug!(chip = %self.chip.display(), line = spec.line, role = %spec.role, "input line requested");
        Ok(Box::new(CdevInput {
            req,
            line: spec.line,
            chip: self.chip_name(),
            task,
        }))
    }

    fn claim_output(&self, spec: &OutputSpec) -> Result<Box<dyn OutputLine>, GpioError> {
        self.check_line(spec.line, &spec.role)?;
        let mut b = Request::builder();
        b.on_chip(&self.chip)
            .with_consumer(consumer(&spec.role))
            .with_line(spec.line)
            .as_output(Value::Inactive);
        if spec.active_low {
            b.as_active_low();
        }
        let req = b
            .request()
            .map_err(|e| self.map_line_err(&e, spec.line, &spec.role, "requesting output"))?;
        tracing::debug!(chip = %self.chip.display(), line = spec.line, role = %spec.role, "output line requested");
        Ok(Box::new(CdevOutput {
            req,
            line: spec.line,
            chip: self.chip_name(),
        }))
    }
}

struct CdevInput {
    req: Arc<AsyncRequest>,
    line: u32,
    chip: String,
    task: tokio::task::JoinHandle<()>,
}

impl InputLine for CdevInput {
    fn line(&self) -> u32 {
        self.line
    }

    fn is_active(&self) -> Result<bool, GpioError> {
        let req: &Request = (*self.req).as_ref();
        req.value(self.line)
            .map(|v| v == Value::Active)
            .map_err(|e| GpioError::Io {
                chip: self.chip.clone(),
                line: Some(self.line),
                what: "reading the input",
                message: e.to_string(),
            })
    }
}

impl Drop for CdevInput {
    fn drop(&mut self) {
        // The reader task holds the other reference; once it is gone the line is released.
        self.task.abort();
    }
}

struct CdevOutput {
    req: Request,
    line: u32,
    chip: String,
}

impl OutputLine for CdevOutput {
    fn line(&self) -> u32 {
        self.line
    }

    fn set(&mut self, lit: bool) -> Result<(), GpioError> {
        let v = if lit { Value::Active } else { Value::Inactive };
        self.req.set_lone_value(v).map_err(|e| GpioError::Io {
            chip: self.chip.clone(),
            line: Some(self.line),
            what: "setting the output",
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
#[path = "cdev_tests.rs"]
mod tests;
