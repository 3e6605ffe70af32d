//! LED driver tests: patterns run on the simulated backend under tokio's paused clock,
//! and the outputs are read back at given instants.

use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};

use super::*;
use crate::gpio::sim::SimBackend;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn wiring() -> Vec<(Led, OutputSpec)> {
    vec![
        (
            Led::Status,
            OutputSpec {
                line: 27,
                active_low: false,
                role: "leds.status".into(),
            },
        ),
        (
            Led::Mute,
            OutputSpec {
                line: 5,
                active_low: true,
                role: "leds.mute".into(),
            },
        ),
    ]
}

/// Read whether line 27 is lit at each `(ms after t0, expected)`.
async fn expect_at(sim: &SimBackend, t0: Instant, line: u32, points: &[(u64, bool)]) {
    for &(at, lit) in points {
        sleep_until(t0 + ms(at)).await;
        assert_eq!(sim.is_lit(line), lit, "line {line} at {at} ms");
    }
}

#[tokio::test(start_paused = true)]
async fn gpio_leds_blink_follows_its_times() {
    let sim = SimBackend::new();
    let leds = Leds::start(&sim, &wiring()).unwrap();
    let t0 = Instant::now();
    leds.set(
        Led::Status,
        LedPattern::Blink {
            on_ms: 500,
            off_ms: 500,
        },
    );
    expect_at(
        &sim,
        t0,
        27,
        &[
            (1, true),
            (499, true),
            (501, false),
            (999, false),
            (1001, true),
        ],
    )
    .await;
    assert_eq!(sim.output(27).unwrap().changed_at, t0 + ms(1000));
}

#[tokio::test(start_paused = true)]
async fn gpio_leds_ringing_cadence_double_flash_per_second() {
    let sim = SimBackend::new();
    let leds = Leds::start(&sim, &wiring()).unwrap();
    let t0 = Instant::now();
    leds.set(Led::Status, "cadence:100/100/100/700".parse().unwrap());
    expect_at(
        &sim,
        t0,
        27,
        &[
            (50, true),
            (150, false),
            (250, true),
            (350, false),
            (950, false),
            (1050, true),
            (1150, false),
            (1250, true),
        ],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn gpio_leds_set_switches_at_once_from_the_first_step() {
    let sim = SimBackend::new();
    let leds = Leds::start(&sim, &wiring()).unwrap();
    let t0 = Instant::now();
    leds.set(
        Led::Status,
        LedPattern::Blink {
            on_ms: 500,
            off_ms: 500,
        },
    );
    sleep_until(t0 + ms(700)).await; // dark phase
    assert!(!sim.is_lit(27));
    leds.set(
        Led::Status,
        LedPattern::Blink {
            on_ms: 200,
            off_ms: 800,
        },
    );
    sleep(ms(1)).await;
    assert!(sim.is_lit(27), "restarted lit, not at the old phase");
    assert_eq!(sim.output(27).unwrap().changed_at, t0 + ms(700));
    let started = leds.started(Led::Status).unwrap();
    assert_eq!(started.tokio_instant, t0 + ms(700));
    assert_eq!(
        started.pattern,
        LedPattern::Blink {
            on_ms: 200,
            off_ms: 800
        }
    );
    assert!(started.unix_ms > 1_600_000_000_000);
    expect_at(
        &sim,
        t0,
        27,
        &[(899, true), (901, false), (1699, false), (1701, true)],
    )
    .await;
    leds.set(Led::Status, LedPattern::Off);
    sleep(ms(1)).await;
    assert!(!sim.is_lit(27));
    assert_eq!(leds.pattern(Led::Status), LedPattern::Off);
}

#[tokio::test(start_paused = true)]
async fn gpio_leds_same_pattern_again_keeps_its_phase() {
    let sim = SimBackend::new();
    let leds = Leds::start(&sim, &wiring()).unwrap();
    let t0 = Instant::now();
    let blink = LedPattern::Blink {
        on_ms: 500,
        off_ms: 500,
    };
    leds.set(Led::Status, blink.clone());
    sleep_until(t0 + ms(300)).await;
    leds.set(Led::Status, blink);
    expect_at(&sim, t0, 27, &[(550, false), (1050, true)]).await;
    assert_eq!(leds.started(Led::Status).unwrap().tokio_instant, t0);
}

#[tokio::test(start_paused = true)]
async fn gpio_leds_steady_patterns_do_not_toggle_and_do_not_drift() {
    let sim = SimBackend::new();
    let leds = Leds::start(&sim, &wiring()).unwrap();
    let t0 = Instant::now();
    leds.set(Led::Status, LedPattern::On);
    sleep(ms(10_000)).await;
    let o = sim.output(27).unwrap();
    assert!(o.lit && o.high);
    assert_eq!((o.changes, o.changed_at), (1, t0));

    // A fast blink for 100 periods still changes exactly on the period boundary.
    let t1 = Instant::now();
    leds.set(
        Led::Status,
        LedPattern::Blink {
            on_ms: 100,
            off_ms: 100,
        },
    );
    sleep_until(t1 + ms(20_050)).await;
    let o = sim.output(27).unwrap();
    assert!(o.lit);
    assert_eq!(o.changed_at, t1 + ms(20_000));
}

#[tokio::test(start_paused = true)]
async fn gpio_leds_active_low_state_unwired_and_drop() {
    let sim = SimBackend::new();
    let leds = Leds::start(&sim, &wiring()).unwrap();
    leds.set(Led::Mute, LedPattern::On);
    leds.set(Led::Privacy, LedPattern::On); // not wired
    sleep(ms(1)).await;
    let mute = sim.output(5).unwrap();
    assert!(
        mute.lit && !mute.high,
        "active-low LED lit by driving the line low"
    );
    let state = leds.state();
    assert_eq!(state.len(), 3);
    assert_eq!(
        state[1],
        LedState {
            led: Led::Mute,
            pattern: LedPattern::On,
            lit: true,
            wired: true,
            line: Some(5),
        }
    );
    assert_eq!(
        (state[2].wired, state[2].lit, &state[2].pattern),
        (false, false, &LedPattern::On)
    );
    assert!(leds.started(Led::Privacy).is_none());
    let json = serde_json::to_value(&state[0]).unwrap();
    assert_eq!(json["pattern"], "off");
    assert_eq!(json["led"], "status");

    drop(leds);
    sleep(ms(1)).await;
    assert!(sim.claims().is_empty(), "lines released");
}
