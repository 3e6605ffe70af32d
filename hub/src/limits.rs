//! Bounds on what one caller can ask of the hub: invitations per caller per minute (so
//! an invite storm cannot make a box ring non-stop) and the free text of `reason`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The window [`InviteLimiter`] counts in: one minute.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Longest `reason` of `POST /api/calls/end`, in bytes.
pub const MAX_REASON_BYTES: usize = 64;

/// Whether `reason` (of `POST /api/calls/end`) is acceptable: 1-64 characters of
/// `a-z 0-9 _` (`hangup`, `media_failed`, …). It is stored and shown in history, so it
/// is a code, not prose.
pub fn valid_reason(reason: &str) -> bool {
    !reason.is_empty()
        && reason.len() <= MAX_REASON_BYTES
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A sliding one-minute window of invitations per caller.
///
/// Uses tokio's clock, so tests drive it with a paused clock.
#[derive(Debug)]
pub struct InviteLimiter {
    per_minute: u32,
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl InviteLimiter {
    /// At most `per_minute` invitations per caller in any 60 s.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an invitation by `caller` at `now`, or refuses it with how long until
    /// one is allowed again.
    pub fn check(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        // Forget callers whose window is empty, so the map stays as small as the
        // number of callers of the last minute.
        sent.retain(|_, times| {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = sent.entry(caller.to_owned()).or_default();
        if times.len() >= self.per_minute as usize {
            let oldest = *times.front().expect("a full window is not empty");
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_caller_gets_per_minute_invitations_then_waits_for_the_oldest_to_age() {
        let limiter = InviteLimiter::new(3);
        for _ in 0..3 {
            limiter.check("alice", Instant::now()).unwrap();
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        // 30 s after the first: the 4th waits until the first is a minute old.
        assert_eq!(
            limiter.check("alice", Instant::now()),
            Err(Duration::from_secs(30))
        );
        // Others are not affected.
        limiter.check("bob", Instant::now()).unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        limiter.check("alice", Instant::now()).unwrap();
        assert!(limiter.check("alice", Instant::now()).is_err());
    }

    #[test]
    fn reasons_are_short_codes() {
        for ok in ["hangup", "media_failed", "x", &"a".repeat(64)] {
            assert!(valid_reason(ok), "{ok}");
        }
        for bad in ["", "Hang up", "a\nb", "é", &"a".repeat(65), "<script>"] {
            assert!(!valid_reason(bad), "{bad:?}");
        }
    }
}
