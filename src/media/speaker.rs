//! The speaker's volume: `[audio]` in the config, the percent → dB curve, and the two
//! ways of applying it: an ALSA mixer control (the `alsa` crate; what an installer
//! sees in `alsamixer`) or, with no control configured, GStreamer `volume` elements in
//! the speaker path and the ringtone.
//!
//! The call state machine decides which volume is in effect (the ringtone's while
//! ringing, the call's otherwise); the media thread applies it here.

use serde::Deserialize;

/// `[audio]`: the speaker's volumes and where they are applied.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// The ALSA simple mixer control that sets the speaker's level, as `amixer
    /// scontrols` names it (`PCM`, `Master`, `Speaker`, `Headphone`, …). Empty (the
    /// default): the volume is applied in the GStreamer pipelines (software).
    #[serde(default)]
    pub mixer_control: String,
    /// The ALSA card whose mixer holds `mixer_control`, as `amixer -D` takes it
    /// (`default`, `hw:0`, `hw:CARD=Headphones`). Default `default`.
    #[serde(default = "default_card")]
    pub mixer_card: String,
    /// The speaker's volume in calls, % (0–100). Default 80.
    #[serde(default = "default_volume")]
    pub volume: u8,
    /// The speaker's volume while ringing, % (0 = a silent ring: the LEDs and the
    /// screen still say who calls). Default 80.
    #[serde(default = "default_volume")]
    pub ringtone_volume: u8,
    /// What one press of a volume button changes, % (1–50). Default 10 (5 dB).
    #[serde(default = "default_step")]
    pub volume_step: u8,
}

impl Default for AudioConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [audio] key has a default")
    }
}

fn default_card() -> String {
    "default".to_owned()
}
fn default_volume() -> u8 {
    80
}
fn default_step() -> u8 {
    10
}

impl AudioConfig {
    /// Checks the values: `Err((dotted key, what is allowed))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [
            ("audio.volume", self.volume),
            ("audio.ringtone_volume", self.ringtone_volume),
        ] {
            if v > 100 {
                return Err((key, format!("{v}: allowed 0 to 100 (%)")));
            }
        }
        if !(1..=50).contains(&self.volume_step) {
            return Err((
                "audio.volume_step",
                format!("{}: allowed 1 to 50 (%)", self.volume_step),
            ));
        }
        if self.mixer_card.trim().is_empty() {
            return Err((
                "audio.mixer_card",
                "empty: an ALSA card such as \"default\" or \"hw:0\"".into(),
            ));
        }
        Ok(())
    }
}

/// The dB range 1–100 % spans: each 1 % is 0.5 dB, so a 10 % step is 5 dB, 50 % is
/// -25 dB and 1 % is -49.5 dB (a volume knob's usual span; alsamixer's mapped volume
/// is similar in the middle).
pub const RANGE_DB: f64 = 50.0;

/// The level for `percent`, dB relative to full scale (100 % = 0 dB); `None` for 0 %
/// (silent).
pub fn percent_to_db(percent: u8) -> Option<f64> {
    match percent.min(100) {
        0 => None,
        p => Some((f64::from(p) - 100.0) * RANGE_DB / 100.0),
    }
}

/// The amplitude factor for `percent` (0.0–1.0), for a GStreamer `volume` element.
pub fn percent_to_gain(percent: u8) -> f64 {
    percent_to_db(percent).map_or(0.0, |db| 10f64.powf(db / 20.0))
}

/// Why a volume could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// The card's mixer could not be opened.
    #[error("cannot open the ALSA mixer of `{card}` (audio.mixer_card): {detail}")]
    Open {
        /// `audio.mixer_card`.
        card: String,
        /// What ALSA said.
        detail: String,
    },
    /// The control is not on that card.
    #[error(
        "the ALSA mixer of `{card}` has no playback control `{control}` (audio.mixer_control); \
         it has: {available}. `amixer -D {card} scontrols` lists them"
    )]
    NoControl {
        /// `audio.mixer_card`.
        card: String,
        /// `audio.mixer_control`.
        control: String,
        /// The card's playback volume controls, comma-separated.
        available: String,
    },
    /// ALSA refused the new value.
    #[error("setting `{control}` on `{card}`: {detail}")]
    Set {
        /// `audio.mixer_card`.
        card: String,
        /// `audio.mixer_control`.
        control: String,
        /// What ALSA said.
        detail: String,
    },
}

/// Where the volume goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Speaker {
    /// An ALSA simple mixer control: the pipelines play at full scale.
    Mixer {
        /// `audio.mixer_card`.
        card: String,
        /// `audio.mixer_control`.
        control: String,
    },
    /// `volume` elements in the speaker path and the ringtone.
    Software,
}

impl Speaker {
    /// The backend `config` asks for.
    pub fn from_config(config: &AudioConfig) -> Self {
        match config.mixer_control.trim() {
            "" => Self::Software,
            control => Self::Mixer {
                card: config.mixer_card.trim().to_owned(),
                control: control.to_owned(),
            },
        }
    }

    /// Applies `percent`; returns the gain the pipelines' `volume` elements must use
    /// (1.0 with a mixer, which does the attenuation). With a mixer that fails, the
    /// pipelines take the volume over, so the buttons still work, and the error says
    /// what to fix.
    pub fn apply(&self, percent: u8) -> (f64, Result<(), SpeakerError>) {
        match self {
            Self::Software => (percent_to_gain(percent), Ok(())),
            Self::Mixer { card, control } => match set_mixer(card, control, percent) {
                Ok(()) => (1.0, Ok(())),
                Err(e) => (percent_to_gain(percent), Err(e)),
            },
        }
    }

    /// For logs and `callbox check`: `ALSA mixer "PCM" on default` or `software`.
    pub fn describe(&self) -> String {
        match self {
            Self::Mixer { card, control } => format!("ALSA mixer control \"{control}\" on {card}"),
            Self::Software => "software (GStreamer volume)".to_owned(),
        }
    }
}

/// Sets the playback control `control` of `card` to `percent`: through its dB scale
/// when the driver gives one (0.5 dB per %, rounded up, clamped to the control's
/// range), else linearly over its raw range; 0 % also switches it off where the
/// control has a switch. Opens the mixer anew each time: a control that appears later
/// (ALSA's softvol creates its control when its PCM is first opened) is found.
pub fn set_mixer(card: &str, control: &str, percent: u8) -> Result<(), SpeakerError> {
    use alsa::Round;
    use alsa::mixer::SelemChannelId;
    let mixer = open_mixer(card)?;
    let set_err = |e: alsa::Error| SpeakerError::Set {
        card: card.to_owned(),
        control: control.to_owned(),
        detail: e.to_string(),
    };
    let selem = playback_control(&mixer, card, control)?;
    let (min, max) = selem.get_playback_volume_range();
    if selem.has_playback_switch() {
        selem
            .set_playback_switch_all(i32::from(percent > 0))
            .map_err(set_err)?;
    }
    // (0, 0) when the driver gives no dB scale.
    let db_range = {
        let (lo, hi) = selem.get_playback_db_range();
        (lo.0, hi.0)
    };
    match percent_to_db(percent) {
        None => selem.set_playback_volume_all(min).map_err(set_err)?,
        Some(db) if db_range.1 > db_range.0 => {
            // MilliBel is 1/100 dB (ALSA's unit), relative to the control's top.
            let target = (db_range.1 + (db * 100.0).round() as i64).clamp(db_range.0, db_range.1);
            for ch in SelemChannelId::all() {
                if selem.has_playback_channel(*ch) {
                    selem
                        .set_playback_db(*ch, alsa::mixer::MilliBel(target), Round::Ceil)
                        .map_err(set_err)?;
                }
            }
        }
        Some(_) => {
            let raw = min + (max - min) * i64::from(percent.min(100)) / 100;
            selem.set_playback_volume_all(raw).map_err(set_err)?;
        }
    }
    Ok(())
}

/// Checks that `card` has the playback volume control `control`, changing nothing
/// (`callbox check`).
///
/// Errors: [`SpeakerError::Open`], [`SpeakerError::NoControl`] listing what it has.
pub fn find_control(card: &str, control: &str) -> Result<(), SpeakerError> {
    let mixer = open_mixer(card)?;
    playback_control(&mixer, card, control).map(|_| ())
}

fn open_mixer(card: &str) -> Result<alsa::mixer::Mixer, SpeakerError> {
    alsa::mixer::Mixer::new(card, false).map_err(|e| SpeakerError::Open {
        card: card.to_owned(),
        detail: e.to_string(),
    })
}

fn playback_control<'m>(
    mixer: &'m alsa::mixer::Mixer,
    card: &str,
    control: &str,
) -> Result<alsa::mixer::Selem<'m>, SpeakerError> {
    if let Some(selem) = mixer
        .find_selem(&alsa::mixer::SelemId::new(control, 0))
        .filter(|s| s.has_playback_volume())
    {
        return Ok(selem);
    }
    let available: Vec<String> = mixer
        .iter()
        .filter_map(alsa::mixer::Selem::new)
        .filter(|s| s.has_playback_volume())
        .filter_map(|s| s.get_id().get_name().ok().map(str::to_owned))
        .collect();
    Err(SpeakerError::NoControl {
        card: card.to_owned(),
        control: control.to_owned(),
        available: if available.is_empty() {
            "none".to_owned()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_five_db_and_zero_is_silent() {
        assert_eq!(percent_to_db(100), Some(0.0));
        assert_eq!(percent_to_db(90), Some(-5.0));
        assert_eq!(percent_to_db(50), Some(-25.0));
        assert_eq!(percent_to_db(0), None);
        assert_eq!(percent_to_gain(0), 0.0);
        assert!((percent_to_gain(100) - 1.0).abs() < 1e-12);
        // -25 dB is 0.056 of full scale.
        assert!((percent_to_gain(50) - 0.0562).abs() < 1e-3);
        // Louder is always louder.
        for p in 1..100u8 {
            assert!(percent_to_gain(p) < percent_to_gain(p + 1));
        }
    }

    #[test]
    fn config_defaults_and_limits() {
        let c = AudioConfig::default();
        assert_eq!((c.volume, c.ringtone_volume, c.volume_step), (80, 80, 10));
        assert_eq!(Speaker::from_config(&c), Speaker::Software);
        let bad: AudioConfig = toml::from_str("volume = 120").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "audio.volume");
        let bad: AudioConfig = toml::from_str("volume_step = 0").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "audio.volume_step");
        let m: AudioConfig = toml::from_str("mixer_control = \"PCM\"").unwrap();
        assert_eq!(
            Speaker::from_config(&m),
            Speaker::Mixer {
                card: "default".into(),
                control: "PCM".into()
            }
        );
        assert!(toml::from_str::<AudioConfig>("volume = -1").is_err());
    }

    #[test]
    fn software_volume_is_applied_in_the_pipelines() {
        let (gain, res) = Speaker::Software.apply(90);
        assert!(res.is_ok());
        assert!((gain - 10f64.powf(-0.25)).abs() < 1e-9);
    }

    #[test]
    fn a_missing_mixer_says_which_key_to_fix_and_the_pipelines_take_over() {
        let s = Speaker::Mixer {
            card: "hw:CARD=callbox-no-such-card".into(),
            control: "PCM".into(),
        };
        let (gain, res) = s.apply(50);
        let msg = res.unwrap_err().to_string();
        assert!(msg.contains("audio.mixer_card"), "{msg}");
        assert!((gain - percent_to_gain(50)).abs() < 1e-12);
    }
}
