//! Panel tests: the whole stack on the simulated backend (paused clock), injection on
//! "real" backends, and start-up errors.

use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn gpio_panel_sim_press_runs_debounce_and_long_press_for_real() {
    let (panel, mut rx) = Panel::start(&GpioConfig::default()).unwrap();
    assert_eq!(panel.backend(), BackendKind::Sim);
    assert_eq!(panel.describe(), "sim");
    let t0 = Instant::now();
    panel.press(Button::Call, false).await.unwrap();
    assert_eq!(Instant::now() - t0, SIM_SHORT_HOLD);
    let e = rx.recv().await.unwrap();
    assert_eq!((e.button, e.press), (Button::Call, Press::Short));

    // A long press: the event comes at the threshold, while press() still holds.
    let t1 = Instant::now();
    let long = panel.press(Button::SpeedDial, true);
    let recv = async {
        let e = rx.recv().await.unwrap();
        (e, Instant::now() - t1)
    };
    let (done, (e, at)) = tokio::join!(long, recv);
    done.unwrap();
    assert_eq!(
        (e.button, e.press, at),
        (Button::SpeedDial, Press::Long, ms(1500))
    );
    assert_eq!(Instant::now() - t1, ms(1600));
    sleep(ms(100)).await;
    assert!(rx.try_recv().is_err(), "nothing on release");
}

#[tokio::test(start_paused = true)]
async fn gpio_panel_leds_and_status() {
    let (panel, _rx) = Panel::start(&GpioConfig::default()).unwrap();
    let sim = panel.sim().unwrap();
    let line = panel.led_line(Led::Status).unwrap();
    panel.set_led(Led::Status, LedPattern::On);
    panel.set_led(Led::Privacy, LedPattern::On);
    sleep(ms(1)).await;
    assert!(sim.is_lit(line));
    assert!(sim.is_lit(panel.led_line(Led::Privacy).unwrap()));
    let state = panel.led_state();
    assert_eq!(state.len(), 3);
    assert!(state[0].lit && state[0].wired);
    assert_eq!(state[1].pattern, LedPattern::Off);
    assert!(!state[1].lit);
    assert!(panel.led_started(Led::Status).is_some());
    assert_eq!(panel.button_line(Button::Call), Some(17));

    drop(panel);
    sleep(ms(1)).await;
    assert!(sim.claims().is_empty(), "every line released");
}

#[tokio::test(start_paused = true)]
async fn gpio_panel_press_on_unwired_sim_button_is_an_error() {
    let config: GpioConfig = toml::from_str("[buttons]\nmute = { enabled = false }").unwrap();
    let (panel, _rx) = Panel::start(&config).unwrap();
    let e = panel.press(Button::Mute, false).await.unwrap_err();
    assert!(e.to_string().contains("button `mute` is not wired"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn gpio_panel_real_backend_press_injects_the_event() {
    let plan = GpioConfig::default().resolve().unwrap();
    // A backend the panel does not know as the sim: presses are injected.
    let (panel, mut rx) = Panel::with_backend(plan, Box::new(SimBackend::new()), None).unwrap();
    assert!(panel.sim().is_none());
    let t0 = Instant::now();
    panel.press(Button::Hangup, true).await.unwrap();
    assert_eq!(Instant::now(), t0, "no hold on real hardware");
    let e = rx.recv().await.unwrap();
    assert_eq!((e.button, e.press), (Button::Hangup, Press::Long));
}

#[test]
fn gpio_panel_needs_a_runtime() {
    let e = Panel::start(&GpioConfig::default()).unwrap_err();
    assert!(matches!(e, GpioError::NoRuntime), "{e}");
}

#[tokio::test]
async fn gpio_panel_missing_chip_says_so() {
    let config: GpioConfig =
        toml::from_str("backend = \"cdev\"\nchip = \"/dev/gpiochip-callbox-none\"").unwrap();
    let e = Panel::start(&config).unwrap_err().to_string();
    assert!(
        e.contains("GPIO chip /dev/gpiochip-callbox-none not found"),
        "{e}"
    );
    assert!(e.contains("gpio.chip"), "{e}");

    let config: GpioConfig =
        toml::from_str("backend = \"cdev\"\nchip = \"no-such-label\"").unwrap();
    let e = Panel::start(&config).unwrap_err().to_string();
    assert!(e.contains("with label `no-such-label` not found"), "{e}");
    assert!(e.contains("available:"), "{e}");
}

#[test]
fn gpio_error_messages_give_advice() {
    let e = GpioError::open(
        std::path::Path::new("/dev/gpiochip0"),
        &std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    );
    assert!(
        e.to_string()
            .contains("add the service user to the gpio group"),
        "{e}"
    );
    let e = GpioError::Busy {
        chip: "/dev/gpiochip0".into(),
        line: 17,
        consumer: "`gpioset`".into(),
        role: "buttons.call".into(),
    };
    assert_eq!(
        e.to_string(),
        "line 17 on /dev/gpiochip0 is busy (used by `gpioset`); stop the other user or pick another line for `buttons.call`"
    );
}

#[test]
fn gpio_button_names_parse() {
    assert_eq!("speed-dial".parse::<Button>(), Ok(Button::SpeedDial));
    assert_eq!("Hang-Up".parse::<Button>(), Ok(Button::Hangup));
    assert!(
        "answer"
            .parse::<Button>()
            .unwrap_err()
            .contains("allowed: call, hangup")
    );
    for b in Button::ALL {
        assert_eq!(b.to_string().parse::<Button>(), Ok(b));
    }
}

#[test]
fn gpio_panel_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Panel>();
    shareable::<SimBackend>();
}
