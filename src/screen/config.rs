//! `[screen]` in the daemon's config: what the call screen is called, its size, the
//! self-view and when it blanks.

use serde::Deserialize;

/// A corner of the screen, for the self-view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corner {
    /// Top left.
    TopLeft,
    /// Top right.
    TopRight,
    /// Bottom left.
    BottomLeft,
    /// Bottom right (default).
    #[default]
    BottomRight,
}

/// `[screen]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenConfig {
    /// The box's name on the idle screen. Default `callbox`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Composed width, px. 0 (default): the connected HDMI connector's preferred mode
    /// with `kmssink`, else 1280.
    #[serde(default)]
    pub width: u32,
    /// Composed height, px. 0 (default): as `width`, else 720.
    #[serde(default)]
    pub height: u32,
    /// Frames per second of the composed screen (and so of the remote video shown).
    /// Default 30.
    #[serde(default = "default_framerate")]
    pub framerate: u32,
    /// Show the box's own camera as a picture-in-picture in video calls. Default true.
    #[serde(default = "default_true")]
    pub self_view: bool,
    /// Where the self-view goes: `top-left`, `top-right`, `bottom-left`,
    /// `bottom-right` (default).
    #[serde(default)]
    pub self_view_corner: Corner,
    /// Blank the screen after this long idle, s; a call or a button press wakes it.
    /// 0: never. Default 600.
    #[serde(default = "default_blank_after_secs")]
    pub blank_after_secs: u64,
    /// How long "Call ended" / "Missed call" stays before the idle screen, s. Default 4.
    #[serde(default = "default_ended_secs")]
    pub ended_secs: u64,
}

impl Default for ScreenConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn default_name() -> String {
    "callbox".into()
}
fn default_framerate() -> u32 {
    30
}
fn default_true() -> bool {
    true
}
fn default_blank_after_secs() -> u64 {
    600
}
fn default_ended_secs() -> u64 {
    4
}
