//! Tests of the press detector (pure, explicit instants) and of the button tasks driven
//! through the simulated backend on tokio's paused clock.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

use super::*;
use crate::gpio::backend::Bias;
use crate::gpio::sim::SimBackend;

const T: Timing = Timing {
    debounce: Duration::from_millis(30),
    long_press: Duration::from_millis(1500),
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Feed `(ms, level)` edges to a fresh detector, then advance to `until_ms`; returns
/// every press with the instant (ms from the start) it was reported at.
fn run_edges(edges: &[(u64, bool)], until_ms: u64) -> Vec<(u64, Press)> {
    let t0 = Instant::now();
    let mut det = PressDetector::new(T, false);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut record = |out: &mut Vec<Press>, at: u64| seen.extend(out.drain(..).map(|p| (at, p)));
    for &(at, level) in edges {
        // Fire deadlines due before this edge at their own instants.
        while let Some(d) = det.next_deadline() {
            if d > t0 + ms(at) {
                break;
            }
            det.advance(d, &mut out);
            record(&mut out, (d - t0).as_millis() as u64);
        }
        det.on_edge(level, t0 + ms(at), &mut out);
        record(&mut out, at);
    }
    while let Some(d) = det.next_deadline() {
        if d > t0 + ms(until_ms) {
            break;
        }
        det.advance(d, &mut out);
        record(&mut out, (d - t0).as_millis() as u64);
    }
    seen
}

#[test]
fn gpio_detector_short_press_reported_at_release() {
    assert_eq!(
        run_edges(&[(0, true), (200, false)], 5000),
        vec![(200, Press::Short)]
    );
}

#[test]
fn gpio_detector_bounce_storm_is_one_press() {
    let mut edges = vec![(0, true)];
    // Contacts chatter for 12 ms on press and on release.
    for i in 1..=6 {
        edges.push((i * 2, i % 2 == 0));
    }
    edges.push((300, false));
    for i in 1..=7 {
        edges.push((300 + i * 2, i % 2 == 0));
    }
    assert_eq!(edges.last(), Some(&(314, false)));
    assert_eq!(run_edges(&edges, 5000), vec![(300, Press::Short)]);
}

#[test]
fn gpio_detector_tap_shorter_than_debounce_counts_at_window_end() {
    assert_eq!(
        run_edges(&[(0, true), (10, false)], 5000),
        vec![(30, Press::Short)]
    );
}

#[test]
fn gpio_detector_bounce_ending_in_the_other_level_is_followed() {
    // Pressed, then the last chatter edge inside the window leaves the line released.
    assert_eq!(
        run_edges(&[(0, true), (5, false), (8, true), (12, false)], 5000),
        vec![(30, Press::Short)]
    );
}

#[test]
fn gpio_detector_long_press_reported_at_threshold_and_release_is_silent() {
    assert_eq!(
        run_edges(&[(100, true), (4000, false)], 9000),
        vec![(1600, Press::Long)]
    );
}

#[test]
fn gpio_detector_release_exactly_at_threshold_is_long() {
    assert_eq!(
        run_edges(&[(0, true), (1500, false)], 5000),
        vec![(1500, Press::Long)]
    );
    // Also when the edge is processed before the deadline fired.
    let t0 = Instant::now();
    let mut det = PressDetector::new(T, false);
    let mut out = Vec::new();
    det.on_edge(true, t0, &mut out);
    det.on_edge(false, t0 + ms(1500), &mut out);
    assert_eq!(out, vec![Press::Long]);
    assert_eq!(det.next_deadline(), None);
}

#[test]
fn gpio_detector_release_just_before_threshold_is_short() {
    assert_eq!(
        run_edges(&[(0, true), (1499, false)], 5000),
        vec![(1499, Press::Short)]
    );
}

#[test]
fn gpio_detector_button_held_at_start_is_ignored_until_pressed_again() {
    let t0 = Instant::now();
    let mut det = PressDetector::new(T, true);
    let mut out = Vec::new();
    assert_eq!(
        det.next_deadline(),
        None,
        "no long press for a button held at boot"
    );
    det.on_edge(false, t0 + ms(3000), &mut out);
    assert!(out.is_empty());
    det.on_edge(true, t0 + ms(3100), &mut out);
    det.on_edge(false, t0 + ms(3200), &mut out);
    assert_eq!(out, vec![Press::Short]);
}

#[test]
fn gpio_detector_late_timestamps_do_not_go_back_in_time() {
    let t0 = Instant::now();
    let mut det = PressDetector::new(T, false);
    let mut out = Vec::new();
    det.on_edge(true, t0, &mut out);
    det.advance(t0 + ms(2000), &mut out);
    assert_eq!(out, vec![Press::Long]);
    // A release stamped before the last processed instant changes nothing else.
    det.on_edge(false, t0 + ms(100), &mut out);
    assert_eq!(out, vec![Press::Long]);
    assert!(!det.is_pressed());
}

fn spec(line: u32, role: &str) -> InputSpec {
    InputSpec {
        line,
        active_low: true,
        bias: Bias::PullUp,
        role: role.into(),
    }
}

fn start(sim: &SimBackend) -> (Buttons, mpsc::Receiver<ButtonEvent>) {
    let (tx, rx) = mpsc::channel(16);
    let wiring = [
        (Button::Call, spec(17, "buttons.call")),
        (Button::Mute, spec(23, "buttons.mute")),
    ];
    (Buttons::start(sim, &wiring, T, tx).unwrap(), rx)
}

fn ev(button: Button, press: Press) -> ButtonEvent {
    ButtonEvent { button, press }
}

#[tokio::test(start_paused = true)]
async fn gpio_buttons_bounce_storm_through_sim_is_one_short_press() {
    let sim = SimBackend::new();
    let (_buttons, mut rx) = start(&sim);
    let t0 = Instant::now();
    for i in 0..9 {
        sim.set_level(17, i % 2 == 0); // ends pressed
        sleep(ms(1)).await;
    }
    sleep(ms(250)).await;
    assert!(rx.try_recv().is_err(), "nothing while held");
    for i in 0..9 {
        sim.set_level(17, i % 2 == 1); // ends released
        sleep(ms(1)).await;
        if i == 0 {
            let got = rx.try_recv().unwrap();
            assert_eq!(
                got,
                ev(Button::Call, Press::Short),
                "at the first release edge"
            );
            assert_eq!(Instant::now() - t0, ms(260));
        }
    }
    sleep(ms(5000)).await;
    assert!(rx.try_recv().is_err(), "nothing else");
}

#[tokio::test(start_paused = true)]
async fn gpio_buttons_long_press_fires_while_held() {
    let sim = SimBackend::new();
    let (_buttons, mut rx) = start(&sim);
    let t0 = Instant::now();
    sim.press(17).unwrap();
    let got = rx.recv().await.unwrap();
    assert_eq!(got, ev(Button::Call, Press::Long));
    assert_eq!(
        Instant::now() - t0,
        ms(1500),
        "at the threshold, still held"
    );
    sleep(ms(700)).await;
    sim.release(17).unwrap();
    sleep(ms(5000)).await;
    assert!(
        rx.try_recv().is_err(),
        "release after a long press reports nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn gpio_buttons_press_exactly_at_threshold_is_long_once() {
    let sim = SimBackend::new();
    let (_buttons, mut rx) = start(&sim);
    sim.press(17).unwrap();
    sleep(ms(1500)).await;
    sim.release(17).unwrap();
    assert_eq!(rx.recv().await.unwrap(), ev(Button::Call, Press::Long));
    sleep(ms(100)).await;
    assert!(rx.try_recv().is_err());
    // Just under the threshold is short.
    sim.press(17).unwrap();
    sleep(ms(1499)).await;
    sim.release(17).unwrap();
    assert_eq!(rx.recv().await.unwrap(), ev(Button::Call, Press::Short));
}

#[tokio::test(start_paused = true)]
async fn gpio_buttons_two_buttons_interleaved() {
    let sim = SimBackend::new();
    let (_buttons, mut rx) = start(&sim);
    let t0 = Instant::now();
    sim.press(17).unwrap(); // call down at 0
    sleep(ms(100)).await;
    sim.press(23).unwrap(); // mute down at 100
    sim.set_level(23, false); // with a bounce
    sim.set_level(23, true);
    sleep(ms(200)).await;
    sim.release(17).unwrap(); // call up at 300: short
    let first = rx.recv().await.unwrap();
    assert_eq!(first, ev(Button::Call, Press::Short));
    assert_eq!(Instant::now() - t0, ms(300));
    let second = rx.recv().await.unwrap(); // mute held: long at 100 + 1500
    assert_eq!(second, ev(Button::Mute, Press::Long));
    assert_eq!(Instant::now() - t0, ms(1600));
    sim.release(23).unwrap();
    sleep(ms(100)).await;
    assert!(rx.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn gpio_buttons_dropping_releases_the_lines() {
    let sim = SimBackend::new();
    let (buttons, _rx) = start(&sim);
    assert_eq!(buttons.line(Button::Mute), Some(23));
    assert_eq!(sim.claims().len(), 2);
    drop(buttons);
    sleep(ms(1)).await;
    assert!(sim.claims().is_empty());
}
