//! What the HDMI screen shows: the scene for each call state ([`Scene`]), its words
//! ([`Scene::texts`]) and where the videos go ([`layout`]). Pure; the media thread's
//! screen pipeline (`media::screen`) draws it.

pub mod config;
pub mod scene;

use std::time::Duration;

pub use config::{Corner, ScreenConfig};
pub use scene::{Presenter, ending, scene_for};

/// A rectangle on the screen, px.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

/// How an ended call is summed up on the screen for a few seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A call that was connected ended, after `duration`.
    Ended {
        /// With whom.
        peer: String,
        /// How long it lasted.
        duration: Duration,
    },
    /// An incoming call stopped ringing before anybody answered.
    Missed {
        /// Who called.
        peer: String,
    },
    /// The box declined the incoming call (button or do-not-disturb).
    Declined {
        /// Who called.
        peer: String,
    },
    /// An outgoing call was not answered, declined, or the callee was busy.
    NotAnswered {
        /// Whom the box called.
        peer: String,
        /// The hub's reason (`rejected`, `busy`, `timeout`, …), when known.
        reason: Option<String>,
    },
}

/// What the screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scene {
    /// No call: the box's name, the clock and whether calls can reach it.
    Idle {
        /// `screen.name`.
        name: String,
        /// The hub's WebSocket is up.
        hub_online: bool,
        /// The hub's URL, for the offline sentence.
        hub_url: String,
        /// Do-not-disturb is on.
        dnd: bool,
    },
    /// An incoming call rings.
    Ringing {
        /// Who calls.
        peer: String,
        /// A video call (else audio only).
        video: bool,
    },
    /// The box is calling someone.
    Calling {
        /// Whom.
        peer: String,
    },
    /// In a call (joining, connected or rejoining).
    InCall {
        /// The other party.
        peer: String,
        /// Time since the call was answered.
        elapsed: Duration,
        /// The microphone is muted.
        muted: bool,
        /// A video call (else audio only: no camera, no self-view).
        video: bool,
        /// Media is (re)connecting.
        connecting: bool,
    },
    /// A call just ended.
    Ended(Ending),
    /// Idle long enough to blank the screen.
    Blank,
}

/// `1:05` or `1:02:03`.
pub fn clock_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Scene {
    /// The headline (top, large) and the line below it (bottom, smaller) for this
    /// scene; `clock` is the local time (`14:05`), shown when idle.
    pub fn texts(&self, clock: &str) -> (String, String) {
        match self {
            Scene::Idle {
                name,
                hub_online,
                hub_url,
                dnd,
            } => {
                let head = format!("{name}\n{clock}");
                let foot = if !hub_online {
                    format!(
                        "Offline: cannot reach the call server at {hub_url}. \
                         Check the network cable or Wi-Fi, and hub.url in /etc/callbox/callbox.toml"
                    )
                } else if *dnd {
                    "Do not disturb: calls are declined".to_owned()
                } else {
                    "Ready for calls".to_owned()
                };
                (head, foot)
            }
            Scene::Ringing { peer, video } => (
                format!(
                    "Incoming {} from\n{peer}",
                    if *video { "video call" } else { "audio call" }
                ),
                "Press CALL to answer · press END to decline".to_owned(),
            ),
            Scene::Calling { peer } => (
                format!("Calling\n{peer}…"),
                "Press END to cancel".to_owned(),
            ),
            Scene::InCall {
                peer,
                elapsed,
                muted,
                video,
                connecting,
            } => {
                let mut head = format!("{peer} · {}", clock_duration(*elapsed));
                if !video {
                    head = format!("{peer}\nAudio call · {}", clock_duration(*elapsed));
                }
                let mut foot = Vec::new();
                if *connecting {
                    foot.push("Connecting…");
                }
                if *muted {
                    foot.push("Microphone muted");
                }
                foot.push("Press END to hang up");
                (head, foot.join(" · "))
            }
            Scene::Ended(e) => match e {
                Ending::Ended { peer, duration } => (
                    "Call ended".to_owned(),
                    format!("{peer} · {}", clock_duration(*duration)),
                ),
                Ending::Missed { peer } => ("Missed call".to_owned(), format!("from {peer}")),
                Ending::Declined { peer } => ("Call declined".to_owned(), format!("from {peer}")),
                Ending::NotAnswered { peer, reason } => {
                    let head = match reason.as_deref() {
                        Some("busy") => "Busy",
                        Some("rejected" | "declined") => "Declined",
                        _ => "No answer",
                    };
                    (head.to_owned(), peer.clone())
                }
            },
            Scene::Blank => (String::new(), String::new()),
        }
    }

    /// Whether the remote videos are shown (in a call; an audio-only caller has none).
    pub fn shows_video(&self) -> bool {
        matches!(self, Scene::InCall { .. })
    }

    /// Whether the self-view (the box's own camera) may be shown: in a video call only.
    pub fn shows_self_view(&self) -> bool {
        matches!(self, Scene::InCall { video: true, .. })
    }
}

/// Where the videos go on a `w`×`h` screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// One rectangle per remote participant's video, in the order they appeared. The
    /// video is fitted inside, aspect kept (the compositor letterboxes).
    pub remotes: Vec<Rect>,
    /// The self-view picture-in-picture, when shown.
    pub self_view: Option<Rect>,
}

/// The layout for `n` remote videos: one fills the screen; 2–8 share a grid (2 side by
/// side, up to 4 in 2×2, up to 6 in 3×2, up to 9 in 3×3). The self-view is a quarter
/// of the width, 16:9, in `corner`, 1/40 of the height from the side edge and clear of
/// the headline (top) or the bottom line (1/10 of the height).
pub fn layout(n: usize, w: u32, h: u32, self_view: Option<Corner>) -> Layout {
    let (w, h) = (w as i32, h as i32);
    let (cols, rows) = match n {
        0 => (0, 0),
        1 => (1, 1),
        2 => (2, 1),
        3 | 4 => (2, 2),
        5 | 6 => (3, 2),
        _ => (3, 3),
    };
    let mut remotes = Vec::with_capacity(n);
    for i in 0..n.min(9) as i32 {
        let (c, r) = (i % cols.max(1), i / cols.max(1));
        let (x0, x1) = (w * c / cols, w * (c + 1) / cols);
        let (y0, y1) = (h * r / rows, h * (r + 1) / rows);
        remotes.push(Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        });
    }
    let self_view = self_view.map(|corner| {
        let sw = w / 4;
        let sh = sw * 9 / 16;
        let m = h / 40;
        let x = match corner {
            Corner::TopLeft | Corner::BottomLeft => m,
            Corner::TopRight | Corner::BottomRight => w - sw - m,
        };
        let y = match corner {
            Corner::TopLeft | Corner::TopRight => h / 5,
            Corner::BottomLeft | Corner::BottomRight => h - sh - h / 10,
        };
        Rect { x, y, w: sw, h: sh }
    });
    Layout { remotes, self_view }
}

/// Where a `w`×`h` px video whose pixels have the aspect ratio `par` (numerator,
/// denominator; 1/1 for square pixels) goes inside `rect`: the largest rectangle with
/// the video's display aspect ratio that fits, centred (letterboxed or pillarboxed).
/// This is what the compositor's `sizing-policy=keep-aspect-ratio` computes; the
/// screen computes it itself so that a video is scaled to this size before the
/// compositor (see `media::tile`). At least 1×1 px; a video or `par` with a zero in
/// it fills `rect`.
pub fn fit(w: u32, h: u32, par: (u32, u32), rect: &Rect) -> Rect {
    let (dar_n, dar_d) = (
        i64::from(w) * i64::from(par.0),
        i64::from(h) * i64::from(par.1),
    );
    if dar_n <= 0 || dar_d <= 0 || rect.w <= 0 || rect.h <= 0 {
        return *rect;
    }
    let (rw, rh) = (i64::from(rect.w), i64::from(rect.h));
    // As wide as the rectangle is high allows; else as high as its width allows.
    let (fw, fh) = if rh * dar_n <= rw * dar_d {
        (((rh * dar_n) / dar_d).max(1), rh)
    } else {
        (rw, ((rw * dar_d) / dar_n).max(1))
    };
    Rect {
        x: rect.x + ((rw - fw) / 2) as i32,
        y: rect.y + ((rh - fh) / 2) as i32,
        w: fw as i32,
        h: fh as i32,
    }
}

#[cfg(test)]
mod tests;
