//! What the box remembers across restarts: the speaker volumes the buttons set, in
//! `volume.json` under systemd's `StateDirectory=` (`$STATE_DIRECTORY`,
//! `/var/lib/callbox`). A power cut must not undo grandma's volume.
//!
//! The file keeps the `[audio]` values it was based on: when an installer changes
//! `audio.volume` or `audio.ringtone_volume` in the config, the config wins again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::call::Volume;

/// The file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// `[audio]`'s values when the file was written.
    configured: Volume,
    /// The volumes the buttons left.
    volume: Volume,
}

/// `volume.json` in `dir`, remembering volumes that started from `configured`.
#[derive(Debug, Clone)]
pub struct VolumeFile {
    path: PathBuf,
    configured: Volume,
}

impl VolumeFile {
    /// The file under `$STATE_DIRECTORY` (the first entry when systemd gives several);
    /// `None` outside systemd (a desktop run, the tests): nothing is remembered.
    pub fn from_env(configured: Volume) -> Option<Self> {
        let dirs = std::env::var_os("STATE_DIRECTORY")?;
        let dir = std::env::split_paths(&dirs).next()?;
        Some(Self::in_dir(&dir, configured))
    }

    /// The file in `dir`.
    pub fn in_dir(dir: &Path, configured: Volume) -> Self {
        Self {
            path: dir.join("volume.json"),
            configured,
        }
    }

    /// The volumes to start with: the saved ones when they grew from the same
    /// configuration, else the configured ones. A missing or unreadable file is the
    /// configuration (an unreadable one is logged).
    pub fn load(&self) -> Volume {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.configured,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot read the saved volume");
                return self.configured;
            }
        };
        match serde_json::from_str::<Saved>(&text) {
            Ok(s) if s.configured == self.configured => {
                let v = Volume {
                    call: s.volume.call.min(100),
                    ringtone: s.volume.ringtone.min(100),
                };
                tracing::info!(
                    call = v.call,
                    ringtone = v.ringtone,
                    "speaker volume as last set"
                );
                v
            }
            Ok(_) => {
                tracing::info!(
                    "[audio] volumes changed in the config: they replace the saved ones"
                );
                self.configured
            }
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "ignoring a damaged volume file");
                self.configured
            }
        }
    }

    /// Remembers `volume` (written to a temporary file, then renamed: a power cut
    /// leaves the old or the new file, never half of one). Errors are logged.
    pub fn save(&self, volume: Volume) {
        let saved = Saved {
            configured: self.configured,
            volume,
        };
        let tmp = self.path.with_extension("json.tmp");
        let result = serde_json::to_vec(&saved)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = result {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot save the volume");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGURED: Volume = Volume {
        call: 80,
        ringtone: 80,
    };

    #[test]
    fn the_buttons_volume_survives_a_restart_until_the_config_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = VolumeFile::in_dir(dir.path(), CONFIGURED);
        assert_eq!(f.load(), CONFIGURED, "nothing saved yet");
        let pressed = Volume {
            call: 50,
            ringtone: 30,
        };
        f.save(pressed);
        assert_eq!(VolumeFile::in_dir(dir.path(), CONFIGURED).load(), pressed);
        // The installer sets another volume in the config: it wins.
        let new_config = Volume {
            call: 90,
            ringtone: 80,
        };
        assert_eq!(
            VolumeFile::in_dir(dir.path(), new_config).load(),
            new_config
        );
        // A damaged file is the configuration, not a crash.
        std::fs::write(dir.path().join("volume.json"), "{not json").unwrap();
        assert_eq!(f.load(), CONFIGURED);
    }
}
