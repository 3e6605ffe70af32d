//! The display's power: DPMS on the DRM connector the call screen's `kmssink` drives,
//! so a blanked screen turns the monitor off instead of showing black.
//!
//! `kmssink` (GStreamer 1.22) has no DPMS control, but it takes a DRM file
//! descriptor (`fd`, since 1.22). The box opens the card itself, hands the same fd to
//! `kmssink` (so both act as the one DRM master: setting a connector property needs
//! it), and sets the connector's standard `DPMS` property (drm_connector.c: On = 0,
//! Off = 3) through the `drm` crate. While the display is off the screen must not
//! hand `kmssink` frames: its `drmWaitVBlank` fails on an inactive CRTC and the sink
//! posts an error ([`super::screen::Screen`] closes a `valve` first).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use drm::control::{Device as _, connector, property};

/// The `DPMS` property's values (include/uapi/drm/drm_mode.h, `DRM_MODE_DPMS_*`).
const DPMS_ON: u64 = 0;
const DPMS_OFF: u64 = 3;

/// What can go wrong with the display's power.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// No `/dev/dri/card*` could be opened (or none is driven by `media.kms_driver`).
    #[error("no DRM card{}: {detail}", if driver.is_empty() { String::new() } else { format!(" driven by {driver} (media.kms_driver)") })]
    NoCard { driver: String, detail: String },
    /// The connector has no `DPMS` property or the driver refused the change.
    #[error("DPMS on connector {connector} of {card}: {detail}")]
    Dpms {
        card: PathBuf,
        connector: u32,
        detail: String,
    },
}

/// An open DRM card: the fd `kmssink` renders through.
struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl drm::Device for Card {}
impl drm::control::Device for Card {}

/// The display the call screen is on.
pub struct Display {
    card: Card,
    path: PathBuf,
    /// The connector and its `DPMS` property, once known ([`Display::attach`]).
    dpms: Option<(connector::Handle, property::Handle)>,
    on: bool,
}

impl Display {
    /// Opens the DRM card that `kmssink` would use: the one whose driver is `driver`
    /// (`media.kms_driver`), else the first with a connected connector, else the first
    /// that opens.
    ///
    /// Errors: [`DisplayError::NoCard`] with what each card said.
    pub fn open(driver: &str) -> Result<Self, DisplayError> {
        let mut detail = Vec::new();
        let mut fallback = None;
        for path in cards(Path::new("/dev/dri")) {
            let file = match File::options().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(e) => {
                    detail.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let card = Card(file);
            let name = drm::Device::get_driver(&card)
                .map(|d| d.name().to_string_lossy().into_owned())
                .unwrap_or_default();
            if !driver.is_empty() {
                if name == driver {
                    return Ok(Self::new(card, path));
                }
                detail.push(format!("{} is {name}", path.display()));
                continue;
            }
            if first_connected(&card).is_some() {
                return Ok(Self::new(card, path));
            }
            fallback.get_or_insert((card, path));
        }
        match fallback {
            Some((card, path)) => Ok(Self::new(card, path)),
            None => Err(DisplayError::NoCard {
                driver: driver.to_owned(),
                detail: if detail.is_empty() {
                    "/dev/dri has no card".into()
                } else {
                    detail.join("; ")
                },
            }),
        }
    }

    fn new(card: Card, path: PathBuf) -> Self {
        Self {
            card,
            path,
            dpms: None,
            on: true,
        }
    }

    /// The card's fd, for `kmssink`'s `fd` property. Valid while `self` lives.
    pub fn raw_fd(&self) -> RawFd {
        self.card.0.as_raw_fd()
    }

    /// The card's device node, for the log.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finds the `DPMS` property of `connector_id` (what `kmssink` chose, its
    /// `connector-id` once running; ≤ 0: the first connected connector).
    ///
    /// Errors: [`DisplayError::Dpms`] when there is no such connector or property.
    pub fn attach(&mut self, connector_id: i32) -> Result<u32, DisplayError> {
        let connector = u32::try_from(connector_id)
            .ok()
            .and_then(drm::control::from_u32::<connector::Handle>)
            .or_else(|| first_connected(&self.card));
        let Some(connector) = connector else {
            return Err(self.dpms_error(0, "no connected connector"));
        };
        let id = u32::from(connector);
        let props = self
            .card
            .get_properties(connector)
            .map_err(|e| self.dpms_error(id, e))?;
        let (handles, _) = props.as_props_and_values();
        let dpms = handles.iter().copied().find(|&h| {
            self.card
                .get_property(h)
                .is_ok_and(|info| info.name().to_bytes() == b"DPMS")
        });
        match dpms {
            Some(p) => {
                self.dpms = Some((connector, p));
                Ok(id)
            }
            None => Err(self.dpms_error(id, "the connector has no DPMS property")),
        }
    }

    /// Turns the display on or off (DPMS). A no-op when already so.
    ///
    /// Errors: [`DisplayError::Dpms`] (not attached, or the driver refused: e.g. the
    /// fd is not the DRM master because another program holds the display).
    pub fn set_power(&mut self, on: bool) -> Result<(), DisplayError> {
        if on == self.on {
            return Ok(());
        }
        let Some((connector, prop)) = self.dpms else {
            return Err(self.dpms_error(0, "no connector attached"));
        };
        let value = if on { DPMS_ON } else { DPMS_OFF };
        self.card
            .set_property(connector, prop, value)
            .map_err(|e| self.dpms_error(u32::from(connector), e))?;
        self.on = on;
        Ok(())
    }

    /// The display is on (as far as the box set it).
    pub fn is_on(&self) -> bool {
        self.on
    }

    fn dpms_error(&self, connector: u32, detail: impl ToString) -> DisplayError {
        DisplayError::Dpms {
            card: self.path.clone(),
            connector,
            detail: detail.to_string(),
        }
    }
}

/// `dir/card0`, `dir/card1`, … in numeric order.
fn cards(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("card")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

fn first_connected(card: &Card) -> Option<connector::Handle> {
    let res = card.resource_handles().ok()?;
    res.connectors().iter().copied().find(|&c| {
        card.get_connector(c, false)
            .is_ok_and(|i| i.state() == connector::State::Connected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_listed_in_numeric_order_without_render_nodes() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["card10", "card2", "renderD128", "by-path", "card0"] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let names: Vec<_> = cards(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["card0", "card2", "card10"]);
    }

    #[test]
    fn no_card_says_which_driver_was_asked_for() {
        let e = DisplayError::NoCard {
            driver: "vc4".into(),
            detail: "/dev/dri/card0 is vkms".into(),
        };
        assert_eq!(
            e.to_string(),
            "no DRM card driven by vc4 (media.kms_driver): /dev/dri/card0 is vkms"
        );
    }
}
