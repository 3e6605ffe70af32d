//! [`LedPattern`] as text (config values, `callbox status`) and [`LedPatterns`], the
//! per-state patterns of `[gpio.patterns]` with their defaults.
//!
//! Forms (times in ms, 1..=60000 each):
//! `off`, `on`, `heartbeat` (a 100 ms blip every 2 s), `blink:<on>/<off>`,
//! `cadence:<on>/<off>/<on>/<off>…` (an even number of steps, at most 32, starting lit).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::LedPattern;

/// The longest step accepted in a pattern, ms.
pub const MAX_STEP_MS: u32 = 60_000;
/// The most steps a cadence may have.
pub const MAX_CADENCE_STEPS: usize = 32;
/// `heartbeat`: lit 100 ms, dark 1900 ms.
pub const HEARTBEAT_MS: [u32; 2] = [100, 1900];

const FORMS: &str = "`off`, `on`, `heartbeat`, `blink:<on_ms>/<off_ms>` or \
                     `cadence:<on_ms>/<off_ms>/…` (even number of steps)";

/// Why a pattern string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LED pattern `{input}`: {reason}; allowed: {FORMS}, times 1..={MAX_STEP_MS} ms")]
pub struct LedPatternError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl LedPattern {
    /// The `heartbeat` pattern: a short blip, then a long pause.
    pub fn heartbeat() -> Self {
        Self::Cadence(HEARTBEAT_MS.to_vec())
    }
}

fn parse_steps(input: &str, body: &str) -> Result<Vec<u32>, LedPatternError> {
    let err = |reason: String| LedPatternError {
        input: input.to_string(),
        reason,
    };
    body.split('/')
        .map(|s| {
            let s = s.trim();
            let ms: u32 = s
                .parse()
                .map_err(|_| err(format!("`{s}` is not a whole number of milliseconds")))?;
            if ms == 0 || ms > MAX_STEP_MS {
                return Err(err(format!("{ms} ms is out of range")));
            }
            Ok(ms)
        })
        .collect()
}

impl FromStr for LedPattern {
    type Err = LedPatternError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim().to_ascii_lowercase();
        let err = |reason: &str| LedPatternError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        match s.as_str() {
            "off" => return Ok(Self::Off),
            "on" => return Ok(Self::On),
            "heartbeat" => return Ok(Self::heartbeat()),
            _ => {}
        }
        let Some((kind, body)) = s.split_once(':') else {
            return Err(err("unknown pattern"));
        };
        match kind.trim() {
            "blink" => match parse_steps(input, body)?.as_slice() {
                [on_ms, off_ms] => Ok(Self::Blink {
                    on_ms: *on_ms,
                    off_ms: *off_ms,
                }),
                _ => Err(err("`blink` takes exactly two times, lit/dark")),
            },
            "cadence" => {
                let steps = parse_steps(input, body)?;
                if !steps.len().is_multiple_of(2) {
                    Err(err(
                        "a cadence needs lit/dark pairs (an even number of steps)",
                    ))
                } else if steps.len() > MAX_CADENCE_STEPS {
                    Err(err("a cadence has at most 32 steps"))
                } else {
                    Ok(Self::Cadence(steps))
                }
            }
            _ => Err(err("unknown pattern")),
        }
    }
}

impl fmt::Display for LedPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::On => f.write_str("on"),
            Self::Blink { on_ms, off_ms } => write!(f, "blink:{on_ms}/{off_ms}"),
            Self::Cadence(steps) if steps.as_slice() == HEARTBEAT_MS => f.write_str("heartbeat"),
            Self::Cadence(steps) => {
                f.write_str("cadence:")?;
                for (i, ms) in steps.iter().enumerate() {
                    if i > 0 {
                        f.write_str("/")?;
                    }
                    write!(f, "{ms}")?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for LedPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LedPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `[gpio.patterns]`: what the status LED (and the mute LED) show in each state. Every
/// key is optional; the defaults are below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedPatterns {
    /// Idle, hub connected. Default `heartbeat`.
    pub idle: LedPattern,
    /// Idle with do-not-disturb on. Default `blink:100/2900`.
    pub dnd: LedPattern,
    /// The hub is unreachable. Default `blink:1000/1000` (slow blink).
    pub offline: LedPattern,
    /// An invitation is ringing; one double flash per second, in step with the
    /// ringtone. Default `cadence:100/100/100/700`.
    pub ringing: LedPattern,
    /// Calling out (speed dial), waiting for the other side. Default `blink:500/500`.
    pub calling: LedPattern,
    /// The outgoing call was rejected or timed out (shown briefly, then idle). Default
    /// `cadence:50/50/50/50/50/50/50/650` (a burst of four quick flashes).
    pub dial_failed: LedPattern,
    /// In a call. Default `on`.
    pub in_call: LedPattern,
    /// Status LED in a call with the microphone muted, for boxes without a mute LED.
    /// Default `cadence:1800/200` (on with a short dark blip).
    pub in_call_muted: LedPattern,
    /// The mute LED while muted. Default `on`.
    pub muted: LedPattern,
    /// Something needs attention (media or config failure). Default `blink:100/100`.
    pub error: LedPattern,
}

impl Default for LedPatterns {
    fn default() -> Self {
        Self {
            idle: LedPattern::heartbeat(),
            dnd: LedPattern::Blink {
                on_ms: 100,
                off_ms: 2900,
            },
            offline: LedPattern::Blink {
                on_ms: 1000,
                off_ms: 1000,
            },
            ringing: LedPattern::Cadence(vec![100, 100, 100, 700]),
            calling: LedPattern::Blink {
                on_ms: 500,
                off_ms: 500,
            },
            dial_failed: LedPattern::Cadence(vec![50, 50, 50, 50, 50, 50, 50, 650]),
            in_call: LedPattern::On,
            in_call_muted: LedPattern::Cadence(vec![1800, 200]),
            muted: LedPattern::On,
            error: LedPattern::Blink {
                on_ms: 100,
                off_ms: 100,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpio_pattern_parses_every_form() {
        assert_eq!("off".parse(), Ok(LedPattern::Off));
        assert_eq!(" ON ".parse(), Ok(LedPattern::On));
        assert_eq!(
            "heartbeat".parse(),
            Ok(LedPattern::Cadence(vec![100, 1900]))
        );
        assert_eq!(
            "blink:500/250".parse(),
            Ok(LedPattern::Blink {
                on_ms: 500,
                off_ms: 250
            })
        );
        assert_eq!(
            "cadence:100/100/100/700".parse(),
            Ok(LedPattern::Cadence(vec![100, 100, 100, 700]))
        );
    }

    #[test]
    fn gpio_pattern_errors_say_what_is_wrong_and_allowed() {
        for (input, reason) in [
            ("flash", "unknown pattern"),
            ("blink:500", "exactly two"),
            ("blink:500/x", "`x` is not a whole number"),
            ("blink:0/100", "0 ms is out of range"),
            ("blink:100/60001", "60001 ms is out of range"),
            ("cadence:100/100/100", "even number"),
            ("cadence:", "`` is not a whole number"),
            ("strobe:1/1", "unknown pattern"),
        ] {
            let e = input.parse::<LedPattern>().unwrap_err().to_string();
            assert!(e.contains(reason), "{input}: {e}");
            assert!(e.contains(&format!("`{input}`")), "{e}");
            assert!(e.contains("`blink:<on_ms>/<off_ms>`"), "{e}");
        }
        let long = format!("cadence:{}", vec!["1"; 34].join("/"));
        assert!(
            long.parse::<LedPattern>()
                .unwrap_err()
                .to_string()
                .contains("at most 32")
        );
    }

    #[test]
    fn gpio_pattern_display_round_trips() {
        for s in [
            "off",
            "on",
            "heartbeat",
            "blink:500/500",
            "cadence:100/100/100/700",
        ] {
            let p: LedPattern = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn gpio_patterns_config_defaults_and_overrides() {
        let p: LedPatterns = toml::from_str("ringing = \"blink:200/200\"\nidle = \"off\"").unwrap();
        assert_eq!(
            p.ringing,
            LedPattern::Blink {
                on_ms: 200,
                off_ms: 200
            }
        );
        assert_eq!(p.idle, LedPattern::Off);
        assert_eq!(p.in_call, LedPattern::On);
        let e = toml::from_str::<LedPatterns>("ringing = \"fast\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid LED pattern `fast`"), "{e}");
        let e = toml::from_str::<LedPatterns>("ring = \"on\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `ring`"), "{e}");
    }
}
