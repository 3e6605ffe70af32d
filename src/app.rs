//! The supervisor: owns the one call state, feeds it events from the edges (hub
//! WebSocket, REST results, media thread, timers) and carries out its effects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

use crate::call::{self, Direction, Effect, Event, Phase, Settings, State, Timer};
use crate::call::{Outputs, StatusLight};
use crate::config::{Config, DndSchedule};
use crate::control::{self, Request, Status, StatusSource};
use crate::gpio::{Led, LedPattern, LedPatterns, Panel};
use crate::media::{self, MediaCommand, MediaEngine, MediaEvent, MediaPlan, SourceKind};
use crate::screen::{Presenter, Scene};
use crate::service::Notifier;
use crate::signaling::{HubClient, HubTrackCodecs, ws};

/// Timers requested by the state machine, as tokio tasks. Setting a running timer
/// restarts it.
///
/// Each start gets a generation number, and an expiry is delivered by [`Timers::next`]
/// only while it is still the timer's current generation: an expiry already on its way
/// when the machine cancelled or restarted the timer (for the previous call, say) is
/// dropped, so a late timer can never act on the next call.
pub struct Timers {
    tx: UnboundedSender<(Timer, u64)>,
    rx: mpsc::UnboundedReceiver<(Timer, u64)>,
    running: HashMap<Timer, (u64, JoinHandle<()>)>,
    generation: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Self::new()
    }
}

impl Timers {
    /// No timer running.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx,
            running: HashMap::new(),
            generation: 0,
        }
    }

    /// Starts `timer`, replacing a running one.
    pub fn set(&mut self, timer: Timer, after: Duration) {
        self.cancel(timer);
        self.generation += 1;
        let generation = self.generation;
        let tx = self.tx.clone();
        let handle = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send((timer, generation));
        });
        self.running.insert(timer, (generation, handle));
    }

    /// Stops `timer`; a no-op when it is not running. An expiry already sent is
    /// dropped by [`Timers::next`].
    pub fn cancel(&mut self, timer: Timer) {
        if let Some((_, h)) = self.running.remove(&timer) {
            h.abort();
        }
    }

    /// The next timer to expire that is still set (cancel-safe, for `select!`).
    pub async fn next(&mut self) -> Timer {
        loop {
            let Some((timer, generation)) = self.rx.recv().await else {
                // We hold a sender, so the channel never closes.
                std::future::pending::<()>().await;
                continue;
            };
            if self.running.get(&timer).map(|(g, _)| *g) == Some(generation) {
                self.running.remove(&timer);
                return timer;
            }
            tracing::debug!(
                ?timer,
                "dropping the expiry of a timer cancelled or restarted since"
            );
        }
    }
}

/// Runs the daemon until SIGINT/SIGTERM. Under systemd (`Type=notify`) it reports
/// `READY=1` once media, GPIO and the control socket are up, a `STATUS=` line on every
/// change, and pings the watchdog from this loop (see [`crate::service`]).
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut notifier = Notifier::from_env();
    let mut plan = MediaPlan::resolve(&config.media);
    plan.screen = config.screen.clone();
    plan.board = config.gpio.board;
    plan.speaker = media::speaker::Speaker::from_config(&config.audio);
    tracing::info!(
        video_source = %describe(&plan.video_source, "videotestsrc", "v4l2src"),
        audio_source = %describe(&plan.audio_source, "audiotestsrc", "alsasrc"),
        video_sink = plan.video_sink,
        audio_sink = plan.audio_sink,
        speaker_volume = %plan.speaker.describe(),
        "media plan"
    );
    // Also installs rustls' process-wide crypto provider (ring), which the hub
    // WebSocket's wss:// connections need: keep this before any network I/O.
    media::init(&plan).context("media set-up failed")?;

    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let (media_tx, mut media_rx) = mpsc::unbounded_channel::<MediaEvent>();
    let hub = HubClient::new(&config.hub, config.credential())?;
    let track_codecs = Arc::new(HubTrackCodecs::new(
        hub.clone(),
        tokio::runtime::Handle::current(),
    ));
    let engine = MediaEngine::spawn(plan, config.ringtone.clone(), media_tx, track_codecs);

    // Edge: hub WebSocket → events.
    let (ws_tx, mut ws_rx) = mpsc::unbounded_channel();
    let ws_task = tokio::spawn(ws::run(
        hub.clone(),
        Duration::from_millis(config.hub.reconnect_min_ms),
        Duration::from_millis(config.hub.reconnect_max_ms),
        ws_tx,
    ));
    let tx = events_tx.clone();
    tokio::spawn(async move {
        while let Some(ev) = ws_rx.recv().await {
            let ev = match ev {
                ws::WsEvent::Connected => Event::HubConnected,
                ws::WsEvent::Disconnected => Event::HubDisconnected,
                ws::WsEvent::Event(e) => Event::Hub(e),
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    // Edge: media thread → events.
    let tx = events_tx.clone();
    tokio::spawn(async move {
        while let Some(ev) = media_rx.recv().await {
            let ev = match ev {
                MediaEvent::Started { call_id } => Event::MediaStarted { call_id },
                MediaEvent::Failed { call_id, error } => Event::MediaFailed { call_id, error },
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    // Edge: control socket.
    let status = Arc::new(Mutex::new(Status {
        state: "idle".into(),
        ..Default::default()
    }));
    // Edge: buttons and LEDs.
    let plan = config.gpio.resolve().context("GPIO set-up failed")?;
    let (panel, mut buttons) = Panel::start_plan(plan).context("GPIO set-up failed")?;
    let panel = Arc::new(panel);
    tracing::info!(gpio = panel.describe(), "buttons and LEDs ready");
    let tx = events_tx.clone();
    tokio::spawn(async move {
        while let Some(b) = buttons.recv().await {
            tracing::info!(button = %b.button, press = ?b.press, "button");
            if tx.send(Event::Button(b)).is_err() {
                return;
            }
        }
    });
    let patterns = status_patterns(&config);

    let (requests_tx, mut requests) = mpsc::unbounded_channel::<Request>();
    let leds_panel = panel.clone();
    let source = StatusSource {
        status: status.clone(),
        counters: engine.counters().clone(),
        ringtone: engine.ringtone().clone(),
        leds: Arc::new(move || led_map(&leds_panel)),
        requests: requests_tx,
        screenshot: {
            let media = std::sync::Mutex::new(engine.sender());
            Arc::new(move || {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let media = media.lock().ok()?;
                media.as_ref()?.send(MediaCommand::Snapshot(tx)).ok()?;
                Some(rx)
            })
        },
    };
    // Bound before READY=1, so `callbox status` works as soon as systemd says started.
    let control_task = match control::bind(&config.control.socket) {
        Ok(listener) => tokio::spawn(async move {
            if let Err(e) = control::serve_on(listener, source).await {
                tracing::error!(error = %e, "control socket failed; `callbox status` will not work");
            }
        }),
        Err(e) => {
            tracing::error!(error = %e, "control socket unavailable; `callbox status` will not work");
            tokio::spawn(async {})
        }
    };

    // Edge: the daily do-not-disturb window, checked against local time.
    if let Some(schedule) = config
        .call
        .dnd_schedule
        .as_deref()
        .and_then(DndSchedule::parse)
    {
        let tx = events_tx.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut tick = tokio::time::interval(Duration::from_secs(20));
            loop {
                tick.tick().await;
                let now = minute_of_day_local();
                let on = schedule.contains(now);
                if last != Some(on) {
                    tracing::info!(on, "do-not-disturb schedule");
                    last = Some(on);
                    if tx.send(Event::DndSchedule(on)).is_err() {
                        return;
                    }
                }
            }
        });
    }

    let settings = settings_from(&config);
    let mut state = State::new();
    let configured_volume = call::Volume {
        call: config.audio.volume,
        ringtone: config.audio.ringtone_volume,
    };
    // The volumes the buttons last set, kept across restarts under systemd.
    let volume_file = crate::state_file::VolumeFile::from_env(configured_volume);
    state.volume = volume_file.as_ref().map_or(configured_volume, |f| f.load());
    let mut timers = Timers::new();
    let mut calls_answered = 0u64;
    let mut last_outputs: Option<Outputs> = None;
    apply_outputs(&panel, &engine, &patterns, call::outputs(&state), None);
    let mut presenter = Presenter::new(&config.screen, hub.base(), Instant::now());
    let mut last_scene: Option<(Scene, Option<String>)> = None;
    show_scene(&engine, &mut presenter, &state, &mut last_scene);
    // Re-evaluates the screen (ended-call summary expiring, blanking) without events.
    let mut screen_tick = tokio::time::interval(Duration::from_secs(1));
    screen_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tracing::info!(hub = hub.base(), "callbox running");
    notifier.ready(&call::status_line(&state));
    let mut watchdog = notifier.watchdog_tick();
    if let Some(period) = notifier.watchdog_period() {
        tracing::info!(period_ms = period.as_millis() as u64, "systemd watchdog on");
    }

    loop {
        let event = tokio::select! {
            // The watchdog is fed here and only here: if this loop hangs, the pings stop.
            _ = watchdog.tick() => {
                notifier.ping();
                continue;
            }
            _ = screen_tick.tick() => {
                show_scene(&engine, &mut presenter, &state, &mut last_scene);
                continue;
            }
            Some(ev) = events.recv() => ev,
            timer = timers.next() => Event::TimerFired(timer),
            Some(req) = requests.recv() => match req {
                Request::Command(c) => Event::Command(c),
                Request::Press { button, long } => {
                    // Through the panel, so the simulated line runs debounce and
                    // long-press for real; the press comes back as a button event.
                    let panel = panel.clone();
                    tokio::spawn(async move {
                        if let Err(e) = panel.press(button, long).await {
                            tracing::warn!(button = %button, error = %e, "cannot press");
                        }
                    });
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        };
        // Tests wedge the loop here (`FAILPOINTS=supervisor-event=sleep(…)`) to prove
        // that a hung supervisor stops the watchdog pings.
        if matches!(event, Event::Command(_)) {
            fail::fail_point!("supervisor-event");
        }
        let before = state.phase.name();
        let before_phase = state.phase.clone();
        let before_volume = state.volume;
        let now = Instant::now();
        let (next, effects) = call::step(state, event.clone(), now, &settings);
        state = next;
        presenter.observe(&before_phase, &event, &state, now);
        if state.phase.name() != before {
            let call = state.phase.call();
            tracing::info!(
                from = before,
                to = state.phase.name(),
                call_id = call.map(|c| c.call_id.as_str()),
                room = call.map(|c| c.room_name.as_str()),
                "call state"
            );
            if matches!(state.phase, Phase::Joining { attempt: 0, .. }) {
                calls_answered += 1;
            }
        }
        if state.volume != before_volume
            && let Some(f) = &volume_file
        {
            // A ~60-byte file on local storage, once per button press.
            f.save(state.volume);
        }
        // Outputs before effects: the ringtone stops before media starts on the same
        // speaker. The screen first, then the LEDs and the status in one step under
        // the status lock, which `callbox status` holds while it reads the LEDs: what
        // it shows is always what the LEDs show.
        show_scene(&engine, &mut presenter, &state, &mut last_scene);
        {
            let mut published = status.lock().unwrap_or_else(|e| e.into_inner());
            let out = call::outputs(&state);
            if last_outputs != Some(out) {
                apply_outputs(&panel, &engine, &patterns, out, last_outputs);
                last_outputs = Some(out);
            }
            publish_status(&mut published, &state, calls_answered);
        }
        notifier.status(&call::status_line(&state));
        for effect in effects {
            execute(effect, &hub, &engine, &mut timers, &events_tx);
        }
    }

    tracing::info!("shutting down");
    notifier.stopping(&match state.phase.call() {
        Some(c) => format!("stopping: hanging up the call with {}", c.peer),
        None => "stopping".to_owned(),
    });
    if let Some(call) = state.phase.call() {
        // Leave cleanly so the caller sees the call end rather than a frozen picture.
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            hub.end(&call.call_id, "device_shutdown"),
        )
        .await;
    }
    ws_task.abort();
    control_task.abort();
    let _ = std::fs::remove_file(&config.control.socket);
    tokio::task::spawn_blocking(move || drop(engine))
        .await
        .context("stopping media")?;
    Ok(())
}

/// Sends the screen its scene for `state` when it changed.
fn show_scene(
    engine: &MediaEngine,
    presenter: &mut Presenter,
    state: &State,
    last: &mut Option<(Scene, Option<String>)>,
) {
    let now = Instant::now();
    let shown = (presenter.scene(state, now), presenter.banner(now));
    if last.as_ref() != Some(&shown) {
        engine.send(MediaCommand::Screen {
            scene: shown.0.clone(),
            since: state.phase.answered_at(),
            banner: shown.1.clone(),
        });
        *last = Some(shown);
    }
}

/// The state machine's settings from the config file.
pub fn settings_from(config: &Config) -> Settings {
    let c = &config.call;
    Settings {
        policy: c.answer,
        answer_after: Duration::from_secs(c.answer_after_secs),
        auto_answer_from: c.auto_answer_from.clone(),
        ring_timeout: Duration::from_secs(c.ring_timeout_secs),
        speed_dial: c.speed_dial.clone(),
        dial_timeout: Duration::from_secs(c.dial_timeout_secs),
        media_start_timeout: Duration::from_millis(config.media.start_timeout_ms),
        volume_step: config.audio.volume_step,
    }
}

fn describe(kind: &SourceKind, test: &str, device: &str) -> String {
    match kind {
        SourceKind::Test => test.to_owned(),
        SourceKind::Device(d) => format!("{device} {d}"),
        SourceKind::Libcamera => "libcamerasrc".to_owned(),
    }
}

fn publish_status(s: &mut Status, state: &State, calls_answered: u64) {
    let out = call::outputs(state);
    s.state = state.phase.name().to_owned();
    s.hub_online = state.hub_online;
    s.calls_answered = calls_answered;
    let call = state.phase.call();
    s.call_id = call.map(|c| c.call_id.clone());
    s.room = call.map(|c| c.room_name.clone());
    s.caller = call.map(|c| c.peer.clone());
    s.caller_name = call.and_then(|c| c.peer_name.clone());
    s.participants = call.map(|c| c.others.clone()).unwrap_or_default();
    s.direction = call.map(|c| match c.direction {
        Direction::Incoming => "incoming".to_owned(),
        Direction::Outgoing => "outgoing".to_owned(),
    });
    s.call_duration_ms = state
        .phase
        .answered_at()
        .map(|t| t.elapsed().as_millis() as u64);
    s.dnd = state.dnd();
    s.mic_muted = state.mic_muted;
    s.livekit = match state.phase {
        Phase::InCall { .. } => "connected",
        Phase::Joining { .. } | Phase::Rejoining { .. } => "connecting",
        _ => "down",
    }
    .to_owned();
    s.status_light = serde_json::to_value(out.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    s.ringtone = out.ringtone;
    s.speaker_volume = out.speaker_volume;
    s.volume = Some(state.volume);
}

/// `[gpio.patterns]`, with the ringing LED following the ringtone's cadence unless a
/// ringing pattern was configured.
fn status_patterns(config: &Config) -> LedPatterns {
    let mut p = config.gpio.patterns.clone();
    if p.ringing == LedPatterns::default().ringing && config.ringtone.file.is_none() {
        p.ringing = LedPattern::Cadence(config.ringtone.cadence_ms.clone());
    }
    p
}

/// Shows `out` on the LEDs and speaker, changing only what changed since `before`.
fn apply_outputs(
    panel: &Panel,
    engine: &MediaEngine,
    patterns: &LedPatterns,
    out: Outputs,
    before: Option<Outputs>,
) {
    // A ring starts at its own volume; a call's volume follows the ring's end.
    let volume_changed = before.map(|b| b.speaker_volume) != Some(out.speaker_volume);
    let ring_changed = before.map(|b| b.ringtone) != Some(out.ringtone);
    if volume_changed && out.ringtone {
        engine.send(MediaCommand::SpeakerVolume(out.speaker_volume));
    }
    if ring_changed {
        engine.send(MediaCommand::Ringtone(out.ringtone));
    }
    if volume_changed && !out.ringtone {
        engine.send(MediaCommand::SpeakerVolume(out.speaker_volume));
    }
    let mute_led = panel.led_line(Led::Mute).is_some();
    let status = match out.status {
        StatusLight::Offline => &patterns.offline,
        StatusLight::Idle => &patterns.idle,
        StatusLight::Dnd => &patterns.dnd,
        StatusLight::Ringing => &patterns.ringing,
        StatusLight::Calling => &patterns.calling,
        StatusLight::InCall => &patterns.in_call,
        // With a mute LED wired the status LED stays "in call" and the mute LED says it.
        StatusLight::InCallMuted if mute_led => &patterns.in_call,
        StatusLight::InCallMuted => &patterns.in_call_muted,
        StatusLight::Error => &patterns.dial_failed,
    };
    panel.set_led(Led::Status, status.clone());
    let on_off = |on: bool, pattern: &LedPattern| {
        if on { pattern.clone() } else { LedPattern::Off }
    };
    panel.set_led(Led::Mute, on_off(out.muted, &patterns.muted));
    panel.set_led(Led::Privacy, on_off(out.camera_live, &LedPattern::On));
}

/// Each wired LED's pattern, level and when the pattern started (ms since the Unix
/// epoch), for `callbox status`.
fn led_map(panel: &Panel) -> serde_json::Map<String, serde_json::Value> {
    panel
        .led_state()
        .into_iter()
        .filter(|l| l.wired)
        .filter_map(|l| {
            let mut v = serde_json::to_value(&l).ok()?;
            if let (Some(obj), Some(start)) = (v.as_object_mut(), panel.led_started(l.led)) {
                obj.insert("started_unix_ms".into(), start.unix_ms.into());
            }
            Some((l.led.to_string(), v))
        })
        .collect()
}

/// Minutes since local midnight (0..1440).
fn minute_of_day_local() -> u16 {
    use chrono::Timelike;
    let now = chrono::Local::now();
    (now.hour() * 60 + now.minute()) as u16
}

fn execute(
    effect: Effect,
    hub: &HubClient,
    engine: &MediaEngine,
    timers: &mut Timers,
    events: &UnboundedSender<Event>,
) {
    match effect {
        Effect::Accept {
            call_id,
            invitation_id,
        } => {
            tracing::info!(call_id, invitation_id, "answering");
            let (hub, tx) = (hub.clone(), events.clone());
            tokio::spawn(async move {
                let ev = match hub.accept(&invitation_id).await {
                    Ok(join) => Event::AnswerSucceeded { call_id, join },
                    Err(e) => {
                        tracing::error!(call_id, error = %e, "answer failed");
                        Event::AnswerFailed {
                            call_id,
                            error: e.to_string(),
                        }
                    }
                };
                let _ = tx.send(ev);
            });
        }
        Effect::Reject {
            call_id,
            invitation_id,
            reason,
        } => {
            tracing::info!(call_id, invitation_id, ?reason, "rejecting invitation");
            let hub = hub.clone();
            tokio::spawn(async move {
                if let Err(e) = hub.reject(&invitation_id, reason).await {
                    tracing::warn!(call_id, error = %e, "reject failed");
                }
            });
        }
        Effect::EndCall { call_id, reason } => {
            tracing::info!(call_id, reason, "ending call");
            let hub = hub.clone();
            tokio::spawn(async move {
                if let Err(e) = hub.end(&call_id, &reason).await {
                    tracing::warn!(call_id, error = %e, "end failed");
                }
            });
        }
        Effect::RequestToken { call_id } => {
            tracing::info!(call_id, "asking the hub for fresh tokens to rejoin");
            let (hub, tx) = (hub.clone(), events.clone());
            tokio::spawn(async move {
                let ev = match hub.token(&call_id).await {
                    Ok(join) => Event::TokenReceived { call_id, join },
                    Err(e) => Event::TokenFailed {
                        call_id,
                        error: e.to_string(),
                    },
                };
                let _ = tx.send(ev);
            });
        }
        Effect::Dial { callee } => {
            tracing::info!(callee, "dialling");
            let (hub, tx) = (hub.clone(), events.clone());
            tokio::spawn(async move {
                let ev = match hub.invite(&callee).await {
                    Ok(join) => Event::DialSucceeded { callee, join },
                    Err(e) => {
                        tracing::error!(callee, error = %e, "call could not be placed");
                        Event::DialFailed {
                            callee,
                            error: e.to_string(),
                        }
                    }
                };
                let _ = tx.send(ev);
            });
        }
        Effect::StartMedia {
            call_id,
            join,
            mic_muted,
            video,
        } => engine.send(MediaCommand::Start {
            call_id,
            join,
            mic_muted,
            video,
        }),
        Effect::SetMicMuted(muted) => engine.send(MediaCommand::SetMicMuted(muted)),
        Effect::StopMedia { call_id } => engine.send(MediaCommand::Stop { call_id }),
        Effect::SetTimer { timer, after } => timers.set(timer, after),
        Effect::CancelTimer(timer) => timers.cancel(timer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timer_fires_after_its_duration_and_not_before() {
        let mut timers = Timers::new();
        timers.set(Timer::MediaStart, Duration::from_secs(20));
        let early = tokio::time::timeout(Duration::from_millis(19_999), timers.next()).await;
        assert!(early.is_err(), "not yet");
        let fired = tokio::time::timeout(Duration::from_millis(2), timers.next()).await;
        assert_eq!(fired.unwrap(), Timer::MediaStart);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_timer_never_fires_and_reset_restarts_it() {
        let mut timers = Timers::new();
        timers.set(Timer::Rejoin, Duration::from_secs(1));
        timers.cancel(Timer::Rejoin);
        timers.set(Timer::MediaStart, Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        timers.set(Timer::MediaStart, Duration::from_secs(2)); // restart
        let quiet = tokio::time::timeout(Duration::from_millis(1000), timers.next()).await;
        assert!(quiet.is_err(), "cancelled and restarted timers are quiet");
        let fired = tokio::time::timeout(Duration::from_millis(1001), timers.next()).await;
        assert_eq!(fired.unwrap(), Timer::MediaStart);
        let more = tokio::time::timeout(Duration::from_secs(10), timers.next()).await;
        assert!(more.is_err(), "fired once");
    }

    /// An expiry already on its way when the timer is cancelled (the ring timer of a
    /// call that just ended, say) never reaches the machine, and neither does one of a
    /// restarted timer's previous run.
    #[tokio::test(start_paused = true)]
    async fn an_expiry_in_flight_when_cancelled_or_restarted_is_dropped() {
        let mut timers = Timers::new();
        timers.set(Timer::Ring, Duration::from_secs(1));
        // The timer task runs and sends its expiry; the supervisor has not read it yet.
        tokio::time::sleep(Duration::from_millis(1001)).await;
        timers.cancel(Timer::Ring);
        let late = tokio::time::timeout(Duration::from_secs(10), timers.next()).await;
        assert!(
            late.is_err(),
            "a cancelled timer's expiry in flight is dropped"
        );

        timers.set(Timer::Ring, Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1001)).await;
        // The next call rings: the timer restarts for it.
        timers.set(Timer::Ring, Duration::from_secs(5));
        let early = tokio::time::timeout(Duration::from_millis(4_999), timers.next()).await;
        assert!(early.is_err(), "the previous run's expiry is dropped");
        let fired = tokio::time::timeout(Duration::from_millis(2), timers.next()).await;
        assert_eq!(fired.unwrap(), Timer::Ring);
    }
}
