//! The supervisor: owns the one call state, feeds it events from the edges (hub
//! WebSocket, media thread, buttons, control socket, schedule; see [`edges`]) and from
//! REST results and timers, and carries out its effects. It watches every edge: a
//! media thread that dies or stops answering is rebuilt and the call gets
//! `MediaFailed`; any other edge that ends makes [`run`] return an error, so the
//! process exits non-zero and systemd restarts it.

mod edges;
mod effects;
mod outputs;
mod timers;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use crate::call::{self, Event, Phase, Settings, State};
use crate::config::{Config, DndSchedule};
use crate::control::{self, Request, Status, StatusSource};
use crate::media::{self, Health, MediaCommand, MediaEngine, MediaPlan, SourceKind};
use crate::screen::{Presenter, Scene};
use crate::service::Notifier;
use crate::signaling::{HubClient, HubTrackCodecs};

pub use edges::{EVENT_CAPACITY, EdgeError, Edges};
pub use timers::Timers;

use outputs::{apply_outputs, led_map, publish_status, show_scene, status_patterns};

/// How often the supervisor asks the media thread's [`Health`].
const MEDIA_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Resolves when the process gets SIGINT or SIGTERM: [`run`]'s shutdown for `main`.
///
/// Errors: the SIGTERM handler cannot be installed.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm.recv() => {}
        }
    })
}

/// Runs the daemon until `shutdown` resolves (the caller owns shutdown: `main` passes
/// [`shutdown_signal`], a test a channel). Under systemd (`Type=notify`) it reports
/// `READY=1` once media, GPIO and the control socket are up, a `STATUS=` line on every
/// change, and pings the watchdog from this loop (see [`crate::service`]).
///
/// Errors: set-up failed (media, GPIO, the hub's URL), or an edge ended or panicked
/// while running ([`EdgeError`]); the call in progress is hung up first.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
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

    let (events_tx, mut events) = mpsc::channel::<Event>(EVENT_CAPACITY);
    let (media_tx, media_rx) = mpsc::channel(media::EVENT_CAPACITY);
    let hub = HubClient::new(&config.hub, config.credential())?;
    let track_codecs = Arc::new(HubTrackCodecs::new(
        hub.clone(),
        tokio::runtime::Handle::current(),
    ));
    let mut engine = MediaEngine::spawn(plan, config.ringtone.clone(), media_tx, track_codecs);
    let watchdog_limit = Duration::from_millis(config.media.watchdog_ms);
    let mut media_restarts = 0u64;

    let mut edges = Edges::new();
    edges.spawn(
        "hub",
        edges::hub(
            hub.clone(),
            Duration::from_millis(config.hub.reconnect_min_ms),
            Duration::from_millis(config.hub.reconnect_max_ms),
            events_tx.clone(),
        ),
    );
    edges.spawn("media", edges::media(media_rx, events_tx.clone()));

    let status = Arc::new(Mutex::new(Status {
        state: "idle".into(),
        ..Default::default()
    }));
    let gpio_plan = config.gpio.resolve().context("GPIO set-up failed")?;
    let (panel, buttons) =
        crate::gpio::Panel::start_plan(gpio_plan).context("GPIO set-up failed")?;
    let panel = Arc::new(panel);
    tracing::info!(gpio = panel.describe(), "buttons and LEDs ready");
    edges.spawn("buttons", edges::buttons(buttons, events_tx.clone()));
    let patterns = status_patterns(&config);

    let (requests_tx, mut requests) = mpsc::channel::<Request>(control::REQUEST_CAPACITY);
    let leds_panel = panel.clone();
    let source = StatusSource {
        status: status.clone(),
        counters: engine.counters().clone(),
        ringtone: engine.ringtone().clone(),
        leds: Arc::new(move || led_map(&leds_panel)),
        requests: requests_tx,
        screenshot: {
            let media = engine.sender();
            Arc::new(move || {
                let (tx, rx) = tokio::sync::oneshot::channel();
                media.send(MediaCommand::Snapshot(tx)).then_some(rx)
            })
        },
    };
    // Bound before READY=1, so `callbox status` works as soon as systemd says started.
    match control::bind(&config.control.socket) {
        Ok(listener) => edges.spawn("control", edges::control(listener, source)),
        Err(e) => {
            tracing::error!(error = %e, "control socket unavailable; `callbox status` will not work")
        }
    }
    if let Some(schedule) = config
        .call
        .dnd_schedule
        .as_deref()
        .and_then(DndSchedule::parse)
    {
        edges.spawn("schedule", edges::schedule(schedule, events_tx.clone()));
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
    let mut last_outputs: Option<call::Outputs> = None;
    apply_outputs(&panel, &engine, &patterns, call::outputs(&state), None);
    let mut presenter = Presenter::new(&config.screen, hub.base(), Instant::now());
    let mut last_scene: Option<(Scene, Option<String>)> = None;
    show_scene(&engine, &mut presenter, &state, &mut last_scene);
    // Re-evaluates the screen (ended-call summary expiring, blanking) without events.
    let mut screen_tick = tokio::time::interval(Duration::from_secs(1));
    screen_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut media_check = tokio::time::interval(MEDIA_CHECK_INTERVAL);
    media_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(hub = hub.base(), edges = ?edges.names(), "callbox running");
    notifier.ready(&call::status_line(&state));
    let mut watchdog = notifier.watchdog_tick();
    if let Some(period) = notifier.watchdog_period() {
        tracing::info!(period_ms = period.as_millis() as u64, "systemd watchdog on");
    }
    tokio::pin!(shutdown);

    let outcome: anyhow::Result<()> = loop {
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
            _ = media_check.tick() => {
                let health = engine.health(watchdog_limit);
                if health == Health::Running {
                    continue;
                }
                let call = state.phase.call();
                tracing::error!(
                    %health,
                    call_id = call.map(|c| c.call_id.as_str()),
                    room = call.map(|c| c.room_name.as_str()),
                    "media thread fault: rebuilding media"
                );
                engine.respawn();
                media_restarts += 1;
                // The new thread knows nothing: show it the screen, volume and ringtone.
                last_scene = None;
                show_scene(&engine, &mut presenter, &state, &mut last_scene);
                {
                    let mut published = status.lock().unwrap_or_else(|e| e.into_inner());
                    let out = call::outputs(&state);
                    apply_outputs(&panel, &engine, &patterns, out, None);
                    last_outputs = Some(out);
                    published.media_restarts = media_restarts;
                }
                match state.phase.call() {
                    Some(c) => Event::MediaFailed {
                        call_id: c.call_id.clone(),
                        error: health.to_string(),
                    },
                    None => continue,
                }
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
            ended = edges.ended() => {
                tracing::error!(error = %ended, "an edge of the daemon stopped; exiting so that systemd restarts it");
                break Err(anyhow::Error::new(ended));
            }
            _ = &mut shutdown => break Ok(()),
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
            effects::execute(effect, &hub, &engine, &mut timers, &events_tx);
        }
    };

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
    edges.abort_all();
    let _ = std::fs::remove_file(&config.control.socket);
    tokio::task::spawn_blocking(move || drop(engine))
        .await
        .context("stopping media")?;
    outcome
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
