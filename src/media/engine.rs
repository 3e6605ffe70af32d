//! The media thread and its handle: the one thread that owns every pipeline, the
//! bounded command queue to it, and the watchdog's view of it.
//!
//! The thread beats a heartbeat on every turn of its loop (at least every
//! [`POLL_INTERVAL`]). The supervisor asks [`MediaEngine::health`] once a second; a
//! thread that died (a panic) or stopped beating for longer than `media.watchdog_ms`
//! is replaced by [`MediaEngine::respawn`] on a fresh thread, and the current call gets
//! `MediaFailed` (the call machine then rejoins with fresh tokens). A wedged thread
//! cannot be joined: it is marked abandoned and left to end on its own; from then on
//! it publishes nothing and sends no event.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::config::RingtoneConfig;
use crate::screen::Scene;

use super::{
    Counters, MediaCommand, MediaEvent, MediaPlan, RingtoneStatus, TrackCodecSource, pipeline,
    quality, ringtone, screen,
};

/// Commands queued to the media thread at most; more are dropped with a warning (the
/// thread is then behind by seconds, and the watchdog replaces it if it stays so).
pub const COMMAND_CAPACITY: usize = 256;

/// Capacity of the channel the media thread reports [`MediaEvent`]s on. A call makes a
/// handful; the supervisor drains it continuously.
pub const EVENT_CAPACITY: usize = 64;

/// What the watchdog sees of the media thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Beating.
    Running,
    /// The thread ended (it panicked; it only ends by itself when dropped).
    Died,
    /// No beat for this long (at least the limit given to [`MediaEngine::health`]).
    Stalled(Duration),
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Health::Running => write!(f, "running"),
            Health::Died => write!(f, "the media thread died"),
            Health::Stalled(d) => {
                write!(
                    f,
                    "the media thread stopped answering for {} ms",
                    d.as_millis()
                )
            }
        }
    }
}

/// A cloneable way to queue commands to whichever media thread is current (it follows
/// [`MediaEngine::respawn`]). For other tasks, such as the control socket's screenshots.
#[derive(Clone)]
pub struct MediaSender(Arc<Mutex<Option<mpsc::SyncSender<MediaCommand>>>>);

impl MediaSender {
    /// Queues `cmd`; `false` when the queue is full or no thread runs.
    pub fn send(&self, cmd: MediaCommand) -> bool {
        let tx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else {
            return false;
        };
        match tx.try_send(cmd) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(cmd)) => {
                tracing::warn!(
                    command = cmd.name(),
                    capacity = COMMAND_CAPACITY,
                    "the media thread is behind; command dropped"
                );
                false
            }
            Err(mpsc::TrySendError::Disconnected(_)) => false,
        }
    }
}

/// What a media thread shares with its handle.
struct Liveness {
    /// ms since `epoch` at the thread's last beat.
    beat_ms: AtomicU64,
    epoch: Instant,
    /// Set when the handle gave up on the thread: it must not act any more.
    abandoned: AtomicBool,
}

impl Liveness {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            beat_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            abandoned: AtomicBool::new(false),
        })
    }
    fn beat(&self) {
        self.beat_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn silent_for(&self) -> Duration {
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(self.beat_ms.load(Ordering::Relaxed)))
    }
    fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }
}

/// What it takes to start a media thread again.
#[derive(Clone)]
struct SpawnArgs {
    plan: MediaPlan,
    ringtone: RingtoneConfig,
    events: tokio::sync::mpsc::Sender<MediaEvent>,
    track_codecs: Arc<dyn TrackCodecSource>,
}

/// Handle to the media thread. Dropping it stops media and joins the thread.
pub struct MediaEngine {
    tx: MediaSender,
    thread: Option<std::thread::JoinHandle<()>>,
    liveness: Arc<Liveness>,
    counters: Arc<Counters>,
    ringtone: Arc<RingtoneStatus>,
    args: SpawnArgs,
    /// Threads started so far (1 after [`MediaEngine::spawn`]).
    generation: u32,
}

impl MediaEngine {
    /// Spawns the media thread, which plays `ringtone` on `plan`'s audio sink when
    /// told to, reports on `events` (a channel of at least [`EVENT_CAPACITY`]; a report
    /// that does not fit is dropped with an error line), and learns the codecs of the
    /// callers' tracks from `track_codecs` (the hub; [`super::NoTrackCodecs`] without
    /// one). Call [`super::init`] first.
    pub fn spawn(
        plan: MediaPlan,
        ringtone: RingtoneConfig,
        events: tokio::sync::mpsc::Sender<MediaEvent>,
        track_codecs: Arc<dyn TrackCodecSource>,
    ) -> Self {
        let mut engine = Self {
            tx: MediaSender(Arc::new(Mutex::new(None))),
            thread: None,
            liveness: Liveness::new(),
            counters: Arc::new(Counters::default()),
            ringtone: Arc::new(RingtoneStatus::default()),
            args: SpawnArgs {
                plan,
                ringtone,
                events,
                track_codecs,
            },
            generation: 0,
        };
        engine.start_thread();
        engine
    }

    fn start_thread(&mut self) {
        let (tx, rx) = mpsc::sync_channel(COMMAND_CAPACITY);
        self.generation += 1;
        self.liveness = Liveness::new();
        let thread = Thread {
            rx,
            events: self.args.events.clone(),
            counters: self.counters.clone(),
            liveness: self.liveness.clone(),
        };
        let (args, ring_status) = (self.args.clone(), self.ringtone.clone());
        match std::thread::Builder::new()
            .name(format!("media-{}", self.generation))
            .spawn(move || media_thread(args, ring_status, thread))
        {
            Ok(t) => {
                self.thread = Some(t);
                *self.tx.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
            }
            Err(e) => {
                // Out of threads or memory: calls fail with "media did not start" until
                // the watchdog's next try.
                tracing::error!(error = %e, "cannot start the media thread");
                self.thread = None;
            }
        }
    }

    /// Queues a command; commands run in order. A full queue drops it (logged).
    pub fn send(&self, cmd: MediaCommand) {
        self.tx.send(cmd);
    }

    /// A sender of commands that follows respawns, for other tasks.
    pub fn sender(&self) -> MediaSender {
        self.tx.clone()
    }

    /// The current call's frame counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The ringtone's state: playing, start instant (for the LED cadence), buffer counts.
    pub fn ringtone(&self) -> &Arc<RingtoneStatus> {
        &self.ringtone
    }

    /// Threads started so far: 1, plus one per [`MediaEngine::respawn`].
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether the thread is beating; `Stalled` once it has been silent for `limit`.
    pub fn health(&self, limit: Duration) -> Health {
        match &self.thread {
            None => Health::Died,
            Some(t) if t.is_finished() => Health::Died,
            Some(_) => match self.liveness.silent_for() {
                d if d >= limit => Health::Stalled(d),
                _ => Health::Running,
            },
        }
    }

    /// Replaces the media thread with a fresh one (same plan, counters and ringtone
    /// status). A thread that ended is joined; a wedged one is abandoned: it may
    /// still hold the camera or the sound card until it returns, and then ends
    /// without acting on anything.
    pub fn respawn(&mut self) {
        self.liveness.abandoned.store(true, Ordering::Relaxed);
        *self.tx.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(t) = self.thread.take() {
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!(
                    thread = t.thread().name().unwrap_or("media"),
                    "abandoning the wedged media thread"
                );
            }
        }
        self.counters.media_active.store(false, Ordering::Relaxed);
        self.counters.reset();
        self.start_thread();
        tracing::info!(generation = self.generation, "media thread restarted");
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        *self.tx.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The media thread's ends of the channels.
struct Thread {
    rx: mpsc::Receiver<MediaCommand>,
    events: tokio::sync::mpsc::Sender<MediaEvent>,
    counters: Arc<Counters>,
    liveness: Arc<Liveness>,
}

impl Thread {
    /// Reports `ev` unless the thread was abandoned.
    fn report(&self, ev: MediaEvent) {
        if self.liveness.abandoned() {
            return;
        }
        if let Err(e) = self.events.try_send(ev) {
            tracing::error!(error = %e, "media event dropped: the supervisor is not reading");
        }
    }
}

/// After a call's teardown, memory is returned to the system at once and again this
/// much later: what the elements' helper threads (the WebRTC elements' runtime, the
/// ICE agent) free after the pipeline reached NULL would otherwise stay in the heap.
pub const LATE_TRIM: Duration = Duration::from_secs(2);

/// How often the media thread polls the buses when nothing else is due.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Applies `percent` through `plan.speaker`, passes the resulting pipeline gain to the
/// ringtone and the call, and returns it. `log`: an info line (a change, not a re-apply).
fn set_volume(
    plan: &MediaPlan,
    percent: u8,
    ringer: &mut ringtone::Ringer,
    session: Option<&pipeline::Session>,
    log: bool,
) -> f64 {
    let (gain, result) = plan.speaker.apply(percent);
    if let Err(e) = result {
        tracing::warn!(error = %e, percent, "speaker volume applied in software instead");
    } else if log {
        tracing::info!(percent, by = %plan.speaker.describe(), "speaker volume");
    }
    ringer.set_gain(gain);
    if let Some(s) = session {
        s.set_speaker_gain(gain);
    }
    gain
}

fn media_thread(args: SpawnArgs, ring_status: Arc<RingtoneStatus>, t: Thread) {
    let SpawnArgs {
        plan,
        ringtone,
        track_codecs,
        ..
    } = args;
    let counters = t.counters.clone();
    t.liveness.beat();
    let mut current: Option<pipeline::Session> = None;
    let mut ringer = ringtone::Ringer::new(&plan, ringtone, ring_status);
    let idle = Scene::Idle {
        name: plan.screen.name.clone(),
        hub_online: false,
        hub_url: String::new(),
        dnd: false,
    };
    let mut screen = match screen::Screen::start(&plan, &plan.screen, idle) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, sink = plan.video_sink, "the call screen cannot start; calls work without it");
            None
        }
    };
    let mut last_tick = Instant::now();
    // The speaker volume in effect (%) and the gain the pipelines apply for it.
    let mut volume: Option<u8> = None;
    let mut gain = 1.0;
    let mut last_stats = Instant::now();
    // When to return memory to the system once more after a call's teardown.
    let mut late_trim: Option<Instant> = None;
    loop {
        t.liveness.beat();
        // Wake on the ringtone's next cadence boundary when that comes first.
        let timeout = ringer.next_wake().map_or(POLL_INTERVAL, |at| {
            at.saturating_duration_since(Instant::now())
                .min(POLL_INTERVAL)
        });
        let command = t.rx.recv_timeout(timeout);
        if t.liveness.abandoned() {
            tracing::warn!("an abandoned media thread woke up; ending it");
            break;
        }
        match command {
            Ok(MediaCommand::Start {
                call_id,
                join,
                mic_muted,
                video,
            }) => {
                // Tests wedge or kill the thread here (`FAILPOINTS=media-start=1*sleep(…)`
                // or `…=1*panic`) to prove that the watchdog rebuilds media.
                fail::fail_point!("media-start");
                if t.liveness.abandoned() {
                    tracing::warn!(call_id, "an abandoned media thread woke up; ending it");
                    break;
                }
                // Normally already off; the speaker must be free for the call.
                ringer.stop("call media starting");
                if let Some(s) = current.take() {
                    s.stop();
                }
                counters.media_active.store(false, Ordering::Relaxed);
                counters.reset();
                match pipeline::Session::start(
                    &plan,
                    &call_id,
                    &join,
                    pipeline::CallOptions {
                        mic_muted,
                        video,
                        speaker_gain: gain,
                    },
                    counters.clone(),
                    track_codecs.clone(),
                ) {
                    Ok(s) => {
                        current = Some(s);
                        counters.media_active.store(true, Ordering::Relaxed);
                        // The call's sink is open: see the ringtone's case.
                        if let Some(p) = volume {
                            gain = set_volume(&plan, p, &mut ringer, current.as_ref(), false);
                        }
                    }
                    Err(e) => {
                        tracing::error!(call_id, error = %e, "media did not start");
                        t.report(MediaEvent::Failed {
                            call_id,
                            error: e.to_string(),
                        });
                    }
                }
            }
            Ok(MediaCommand::SetMicMuted(muted)) => {
                if let Some(s) = current.as_ref() {
                    s.set_mic_muted(muted);
                }
            }
            Ok(MediaCommand::Stop { call_id }) => {
                if let Some(s) = current.take() {
                    tracing::info!(call_id, "stopping media");
                    s.stop();
                }
                // What the pipelines freed goes back to the system before the status
                // says they are gone; what their helper threads free later, at
                // LATE_TRIM.
                crate::memory::release_free_memory();
                counters.memory_trims.fetch_add(1, Ordering::Relaxed);
                late_trim = Some(Instant::now() + LATE_TRIM);
                counters.media_active.store(false, Ordering::Relaxed);
                counters.set_network(None);
                if let Some(sc) = screen.as_mut() {
                    sc.set_network(None);
                }
            }
            Ok(MediaCommand::Ringtone(on)) => {
                if on && current.is_some() {
                    // Not expected (the supervisor rings only when idle); a stale
                    // session must not keep the box from ringing. If the speaker is
                    // busy, the ringtone fails on its own and the call is untouched.
                    tracing::warn!("ringing while a call's media is still up");
                }
                let was_on = ringer.is_on();
                ringer.set(on);
                // The ringtone's sink is open now: a mixer control that only exists
                // while its PCM is open (ALSA softvol) can be set.
                if on
                    && !was_on
                    && let Some(p) = volume
                {
                    gain = set_volume(&plan, p, &mut ringer, current.as_ref(), false);
                }
            }
            Ok(MediaCommand::SpeakerVolume(p)) => {
                if volume != Some(p) {
                    volume = Some(p);
                    gain = set_volume(&plan, p, &mut ringer, current.as_ref(), true);
                }
            }
            Ok(MediaCommand::Screen {
                scene,
                since,
                banner,
            }) => {
                if let Some(s) = screen.as_mut() {
                    s.show(scene, since, banner);
                }
            }
            Ok(MediaCommand::Snapshot(reply)) => {
                let png = match screen.as_ref() {
                    Some(s) => s.snapshot_png(),
                    None => Err("the call screen is not running (see the log)".into()),
                };
                let _ = reply.send(png);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(s) = screen.as_mut() {
            let channels = current
                .as_ref()
                .map(|c| c.remote_channels())
                .unwrap_or_default();
            s.set_remotes(&channels);
            if last_tick.elapsed() >= screen::TICK {
                last_tick = Instant::now();
                s.tick();
                if let Some(e) = s.poll() {
                    tracing::error!(error = %e, "call screen error");
                }
            }
        }
        ringer.poll();
        if late_trim.is_some_and(|at| Instant::now() >= at) {
            late_trim = None;
            if current.is_none() {
                crate::memory::release_free_memory();
            }
            counters.memory_trims.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(s) = current.as_mut() {
            for ev in s.poll() {
                t.report(ev);
            }
            if last_stats.elapsed() >= quality::INTERVAL {
                last_stats = Instant::now();
                if let Some(link) = s.sample_network() {
                    counters.set_network(Some(link));
                    if let Some(sc) = screen.as_mut() {
                        sc.set_network(Some(link.quality));
                    }
                }
            }
        }
    }
    ringer.stop("media thread exiting");
    if let Some(s) = current.take() {
        s.stop();
    }
    if let Some(s) = screen.take() {
        s.stop();
    }
}
