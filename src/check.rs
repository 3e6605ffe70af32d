//! `callbox check`: the installer's diagnostic. One screen of plain text about what
//! this box has (cameras and their formats, sound cards, encoders and decoders, the
//! display, GPIO chips) and whether it can take a call (config, GStreamer elements,
//! hub reachable, credential accepted). Every problem names its fix. Devices are
//! enumerated with GStreamer's device monitor (the same providers the pipelines use),
//! DRM connectors from sysfs, GPIO chips with gpiocdev.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use gst::prelude::*;

use crate::config::{self, Config};
use crate::media::{self, MediaPlan, SourceKind};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine, or just information.
    Ok,
    /// Calls work, but something is missing or odd.
    Warn,
    /// The box cannot take a call until this is fixed.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was checked (`camera`, `hub`, …).
    pub topic: &'static str,
    /// What was found, and for a problem, what to do.
    pub text: String,
}

/// Everything `callbox check` found.
#[derive(Debug, Default)]
pub struct Report {
    /// In the order checked.
    pub findings: Vec<Finding>,
}

impl Report {
    fn push(&mut self, level: Level, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding {
            level,
            topic,
            text: text.into(),
        });
    }

    /// True when nothing stops the box from taking a call.
    pub fn can_take_calls(&self) -> bool {
        self.findings.iter().all(|f| f.level != Level::Fail)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for x in &self.findings {
            let tag = match x.level {
                Level::Ok => "ok  ",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            writeln!(f, "{tag} {:<9} {}", x.topic, x.text)?;
        }
        let fails = self
            .findings
            .iter()
            .filter(|x| x.level == Level::Fail)
            .count();
        if fails == 0 {
            write!(f, "result: this box can take calls")
        } else {
            write!(
                f,
                "result: this box cannot take calls until the {fails} FAIL line(s) above are fixed"
            )
        }
    }
}

/// Runs every check for `config` (loaded from `path`). Blocking; `hub_timeout` bounds
/// each request to the hub, `None` skips the hub (offline).
pub fn run(config: &Config, path: &Path, hub_timeout: Option<Duration>) -> Report {
    let mut r = Report::default();
    r.push(Level::Ok, "config", format!("{} is valid", path.display()));
    let mut plan = MediaPlan::resolve(&config.media);
    plan.screen = config.screen.clone();
    plan.board = config.gpio.board;
    gstreamer(&mut r, &plan);
    cameras(&mut r, config, &plan);
    sound(&mut r, config, &plan);
    codecs(&mut r, &plan);
    display(&mut r, &plan);
    gpio(&mut r, config);
    match hub_timeout {
        Some(t) => hub(&mut r, config, t),
        None => r.push(Level::Warn, "hub", "not contacted (--offline)"),
    }
    r
}

fn gstreamer(r: &mut Report, plan: &MediaPlan) {
    match media::init(plan) {
        Ok(()) => r.push(
            Level::Ok,
            "gstreamer",
            format!("{} with every element the box uses", gst::version_string()),
        ),
        Err(e) => r.push(Level::Fail, "gstreamer", e.to_string()),
    }
}

/// The devices of `class` (`Video/Source`): GStreamer's device monitor, which asks
/// each `/dev/video*` node with the same V4L2 ioctls as `v4l2-ctl --list-formats-ext`.
fn devices(class: &str) -> Vec<gst::Device> {
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some(class), None);
    if monitor.start().is_err() {
        return Vec::new();
    }
    let list = monitor.devices().into_iter().collect();
    monitor.stop();
    list
}

fn prop(d: &gst::Device, key: &str) -> Option<String> {
    let props = d.properties()?;
    props
        .get::<String>(key)
        .ok()
        .or_else(|| props.get::<i32>(key).ok().map(|n| n.to_string()))
        .filter(|v| !v.is_empty())
}

/// `YUY2 ≤1280x720, MJPG ≤1920x1080` from a camera's caps.
pub fn formats(caps: &gst::Caps) -> String {
    let mut best: Vec<(String, i32, i32)> = Vec::new();
    for s in caps.iter() {
        let format = match s.name().as_str() {
            "video/x-raw" => s.get::<&str>("format").unwrap_or("raw").to_owned(),
            "image/jpeg" => "MJPG".to_owned(),
            "video/x-h264" => "H264".to_owned(),
            other => other.to_owned(),
        };
        let dim = |k: &str| {
            s.get::<i32>(k)
                .ok()
                .or_else(|| s.get::<gst::IntRange<i32>>(k).ok().map(|r| r.max()))
                .unwrap_or(0)
        };
        let (w, h) = (dim("width"), dim("height"));
        match best.iter_mut().find(|(f, ..)| *f == format) {
            Some(b) if w * h > b.1 * b.2 => {
                b.1 = w;
                b.2 = h;
            }
            Some(_) => {}
            None => best.push((format, w, h)),
        }
    }
    // Compressed formats first (what a USB camera does best), at most five.
    best.sort_by_key(|(f, ..)| !matches!(f.as_str(), "MJPG" | "H264"));
    let mut text = best
        .iter()
        .take(5)
        .map(|(f, w, h)| format!("{f} up to {w}x{h}"))
        .collect::<Vec<_>>()
        .join(", ");
    if best.len() > 5 {
        text.push_str(&format!(" and {} more", best.len() - 5));
    }
    text
}

fn cameras(r: &mut Report, config: &Config, plan: &MediaPlan) {
    let found = devices("Video/Source");
    let mut paths = Vec::new();
    for d in &found {
        let path = prop(d, "device.path").or_else(|| prop(d, "api.v4l2.path"));
        let caps = d.caps().map(|c| formats(&c)).unwrap_or_default();
        r.push(
            Level::Ok,
            "camera",
            format!(
                "{} \"{}\": {caps}",
                path.as_deref().unwrap_or("?"),
                d.display_name()
            ),
        );
        paths.extend(path);
    }
    let configured = config.media.video_device.display().to_string();
    match (&plan.video_source, config.media.video_source) {
        (SourceKind::Test, config::VideoSource::Test) => r.push(
            Level::Ok,
            "camera",
            "media.video_source = \"test\": a test pattern, no camera",
        ),
        (SourceKind::Test, _) => r.push(
            Level::Warn,
            "camera",
            format!(
                "{configured} (media.video_device) does not exist: callers would see a test \
                 pattern. Plug the camera in{}",
                if paths.is_empty() {
                    String::new()
                } else {
                    format!(" or set media.video_device to one of {}", paths.join(", "))
                }
            ),
        ),
        (SourceKind::Libcamera, _) => match gst::ElementFactory::find("libcamerasrc") {
            Some(_) => r.push(
                Level::Ok,
                "camera",
                format!(
                    "will capture libcamera's first camera (libcamerasrc) at {}x{}@{}",
                    config.media.width, config.media.height, config.media.framerate
                ),
            ),
            None => r.push(
                Level::Fail,
                "camera",
                "media.video_source = \"libcamera\" but libcamerasrc is missing: install \
                 gstreamer1.0-libcamera (Raspberry Pi OS) or set media.video_source = \"v4l2\"",
            ),
        },
        (SourceKind::Device(dev), _) => {
            if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(dev) {
                r.push(Level::Fail, "camera", access_problem(dev, &e));
            } else {
                r.push(
                    Level::Ok,
                    "camera",
                    format!(
                        "will capture {dev} at {}x{}@{}",
                        config.media.width, config.media.height, config.media.framerate
                    ),
                );
            }
        }
    }
}

/// "cannot open /dev/video0: permission denied: add the service user to group video".
fn access_problem(dev: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        use std::os::unix::fs::MetadataExt;
        let group = std::fs::metadata(dev)
            .ok()
            .and_then(|m| group_name(m.gid()))
            .unwrap_or_else(|| "that owns it".into());
        format!("cannot open {dev}: permission denied: add this user to group {group}")
    } else {
        format!("cannot open {dev}: {e}")
    }
}

fn group_name(gid: u32) -> Option<String> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next();
        (f.next()?.parse::<u32>().ok()? == gid).then(|| name.to_owned())
    })
}

fn sound(r: &mut Report, config: &Config, plan: &MediaPlan) {
    for (direction, what) in [
        (alsa::Direction::Capture, "capture"),
        (alsa::Direction::Playback, "playback"),
    ] {
        let names = alsa_devices(direction);
        if names.is_empty() {
            r.push(Level::Ok, "sound", format!("no ALSA {what} device"));
        } else {
            r.push(
                Level::Ok,
                "sound",
                format!("ALSA {what}: {}", names.join("; ")),
            );
        }
    }
    match &plan.audio_source {
        SourceKind::Device(d) => r.push(Level::Ok, "sound", format!("microphone: alsasrc {d}")),
        SourceKind::Libcamera => {} // never an audio source
        SourceKind::Test if config.media.audio_source == config::AudioSource::Test => r.push(
            Level::Ok,
            "sound",
            "microphone: a test tone (media.audio_source = \"test\")",
        ),
        SourceKind::Test => r.push(
            Level::Warn,
            "sound",
            "microphone: a test tone, no ALSA capture device found: plug in the microphone \
             or set media.audio_device",
        ),
    }
    r.push(
        Level::Ok,
        "sound",
        format!(
            "speaker: {} {}; echo cancellation {}{}, noise suppression {}",
            plan.audio_sink,
            config.media.audio_output_device,
            on_off(config.media.echo_cancellation),
            if config.media.echo_cancellation && config.media.echo_delay_agnostic {
                " (delay-agnostic)"
            } else {
                ""
            },
            on_off(config.media.noise_suppression)
        ),
    );
    let a = &config.audio;
    let speaker = crate::media::speaker::Speaker::from_config(a);
    let volumes = format!("{} % in calls, {} % ringing", a.volume, a.ringtone_volume);
    match &speaker {
        crate::media::speaker::Speaker::Software => r.push(
            Level::Ok,
            "sound",
            format!(
                "volume: {volumes}, in software (set audio.mixer_control to use the card's mixer)"
            ),
        ),
        // Reads the control without changing it: setting it here would change the
        // running box's volume.
        crate::media::speaker::Speaker::Mixer { card, control } => {
            match crate::media::speaker::find_control(card, control) {
                Ok(()) => r.push(
                    Level::Ok,
                    "sound",
                    format!("volume: {volumes}, {}", speaker.describe()),
                ),
                Err(e) => r.push(
                    Level::Warn,
                    "sound",
                    format!("volume: {e}; until fixed the volume is applied in software"),
                ),
            }
        }
    }
}

/// The cards' PCM devices for `direction`, through the `alsa` crate (the sound
/// cards and their devices, as `aplay -l` / `arecord -l` list them):
/// `hw:0,0 "Loopback: Loopback PCM"`. A card whose control device cannot be opened
/// is listed with the error.
fn alsa_devices(direction: alsa::Direction) -> Vec<String> {
    let mut out = Vec::new();
    for card in alsa::card::Iter::new().flatten() {
        let index = card.get_index();
        let name = card.get_name().unwrap_or_else(|_| format!("card {index}"));
        let ctl = match alsa::ctl::Ctl::from_card(&card, false) {
            Ok(c) => c,
            Err(e) => {
                out.push(format!("hw:{index} \"{name}\" (cannot open: {e})"));
                continue;
            }
        };
        for device in alsa::ctl::DeviceIter::new(&ctl) {
            if let Ok(info) = ctl.pcm_info(device as u32, 0, direction) {
                let pcm = info.get_name().unwrap_or_default();
                out.push(format!("hw:{index},{device} \"{name}: {pcm}\""));
            }
        }
    }
    out
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The elements that produce (`encoder`) or take (`decoder`) `caps`, best rank first.
fn factories(kind: gst::ElementFactoryType, caps: &str, src: bool) -> Vec<gst::ElementFactory> {
    let caps = gst::Caps::builder(caps).build();
    let mut list: Vec<gst::ElementFactory> = gst::ElementFactory::factories_with_type(
        kind | gst::ElementFactoryType::MEDIA_VIDEO,
        gst::Rank::MARGINAL,
    )
    .into_iter()
    .filter(|f| {
        if src {
            f.can_src_any_caps(&caps)
        } else {
            f.can_sink_any_caps(&caps)
        }
    })
    .collect();
    list.sort_by_key(|f| std::cmp::Reverse(f.rank()));
    list
}

fn codecs(r: &mut Report, plan: &MediaPlan) {
    let names = |l: &[gst::ElementFactory]| {
        l.iter()
            .map(|f| f.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let enc = factories(gst::ElementFactoryType::ENCODER, "video/x-h264", true);
    let chosen = plan.encoder();
    match (enc.first(), &chosen.element) {
        (None, _) => r.push(
            Level::Fail,
            "encoder",
            "no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc)",
        ),
        (Some(best), element) => r.push(
            Level::Ok,
            "encoder",
            format!(
                "H.264: {}; the box will use {} ({})",
                names(&enc),
                element.clone().unwrap_or_else(|| best.name().to_string()),
                chosen.reason
            ),
        ),
    }
    for (codec, caps, package) in [
        ("H.264", "video/x-h264", "gstreamer1.0-libav"),
        ("VP8", "video/x-vp8", "gstreamer1.0-plugins-good"),
    ] {
        let dec = factories(gst::ElementFactoryType::DECODER, caps, false);
        if dec.is_empty() {
            r.push(
                Level::Warn,
                "decoder",
                format!(
                    "no {codec} decoder: callers sending {codec} are not seen; install {package}"
                ),
            );
        } else {
            r.push(Level::Ok, "decoder", format!("{codec}: {}", names(&dec)));
        }
    }
}

fn display(r: &mut Report, plan: &MediaPlan) {
    let (w, h) = media::screen::composed_size(&plan.screen, plan.video_sink);
    match (plan.video_sink, media::screen::preferred_mode()) {
        ("kmssink", Some((mw, mh))) => r.push(
            Level::Ok,
            "display",
            format!("HDMI connected, preferred mode {mw}x{mh}; the call screen is composed at {w}x{h}"),
        ),
        ("kmssink", None) => r.push(
            Level::Warn,
            "display",
            "no connected display (/sys/class/drm/*/status): plug in the HDMI screen; calls work without it",
        ),
        (sink, _) => r.push(
            Level::Ok,
            "display",
            format!("the call screen goes to {sink} at {w}x{h}"),
        ),
    }
}

fn gpio(r: &mut Report, config: &Config) {
    let mut chips: Vec<String> = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("gpiochip"))
                .collect()
        })
        .unwrap_or_default();
    chips.sort();
    let described: Vec<String> = chips
        .iter()
        .map(|c| {
            let path = format!("/dev/{c}");
            match gpiocdev::chip::Chip::from_path(&path).and_then(|chip| chip.info()) {
                Ok(info) => format!("{path} \"{}\" ({} lines)", info.label, info.num_lines),
                Err(e) => format!("{path} ({e})"),
            }
        })
        .collect();
    r.push(
        Level::Ok,
        "gpio",
        if described.is_empty() {
            "no GPIO chips".to_owned()
        } else {
            described.join("; ")
        },
    );
    match config.gpio.resolve() {
        Ok(plan) => r.push(
            Level::Ok,
            "gpio",
            format!(
                "{}: buttons {}; LEDs {}",
                match plan.backend {
                    crate::gpio::BackendKind::Sim => {
                        "simulated, no hardware (`callbox ctl press` presses)".to_owned()
                    }
                    crate::gpio::BackendKind::Cdev => format!("cdev on {}", plan.chip),
                    crate::gpio::BackendKind::Rpi => "rppal (Raspberry Pi)".to_owned(),
                },
                plan.buttons
                    .iter()
                    .map(|(b, s)| format!("{b} line {}", s.line))
                    .collect::<Vec<_>>()
                    .join(", "),
                plan.leds
                    .iter()
                    .map(|(l, s)| format!("{l:?} line {}", s.line).to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => r.push(Level::Fail, "gpio", e.to_string()),
    }
}

fn hub(r: &mut Report, config: &Config, timeout: Duration) {
    let base = config.hub.url.clone();
    let credential = config.credential().to_owned();
    let result = std::thread::spawn(move || -> Result<(u16, u16), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let http = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| e.to_string())?;
            let health = http
                .get(format!("{base}/health"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .status()
                .as_u16();
            let auth = http
                .get(format!("{base}/api/calls/active"))
                .bearer_auth(&credential)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .status()
                .as_u16();
            Ok((health, auth))
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the check panicked".into()));
    let url = &config.hub.url;
    match result {
        Ok((200, 200)) => r.push(Level::Ok, "hub", format!("{url} reachable, device credential accepted")),
        Ok((200, 401)) => r.push(
            Level::Fail,
            "hub",
            format!("{url} rejected the device credential: set hub.credential to what `callbox-hub add-device` printed"),
        ),
        Ok((h, a)) => r.push(
            Level::Fail,
            "hub",
            format!("{url} answered HTTP {h} (health) / {a} (credential): is hub.url the callbox hub?"),
        ),
        Err(e) => r.push(
            Level::Fail,
            "hub",
            format!("cannot reach {url}: {e}: check the network and hub.url"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_formats_are_summed_up_by_largest_size() {
        gst::init().unwrap();
        let caps: gst::Caps = "video/x-raw, format=YUY2, width=640, height=480; \
             video/x-raw, format=YUY2, width=1280, height=720; \
             image/jpeg, width=1920, height=1080"
            .parse()
            .unwrap();
        assert_eq!(formats(&caps), "MJPG up to 1920x1080, YUY2 up to 1280x720");
    }

    #[test]
    fn the_report_fails_on_any_fail_line_and_says_so() {
        let mut r = Report::default();
        r.push(Level::Ok, "config", "fine");
        r.push(Level::Warn, "display", "no display");
        assert!(r.can_take_calls());
        assert!(r.to_string().ends_with("this box can take calls"));
        r.push(Level::Fail, "hub", "cannot reach http://x: check hub.url");
        assert!(!r.can_take_calls());
        let text = r.to_string();
        assert!(text.contains("FAIL hub       cannot reach"), "{text}");
        assert!(text.ends_with("1 FAIL line(s) above are fixed"), "{text}");
    }
}
