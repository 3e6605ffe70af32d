//! `[gpio]` parsing, profile merging and validation errors.

use super::*;
use crate::gpio::LedPattern;

fn parse(s: &str) -> Result<GpioConfig, String> {
    toml::from_str(s).map_err(|e| e.to_string())
}

fn resolve(s: &str) -> Result<GpioPlan, String> {
    parse(s)?.resolve().map_err(|e| e.to_string())
}

fn button(plan: &GpioPlan, b: Button) -> Option<&InputSpec> {
    plan.buttons.iter().find(|(x, _)| *x == b).map(|(_, s)| s)
}

fn led(plan: &GpioPlan, l: Led) -> Option<&OutputSpec> {
    plan.leds.iter().find(|(x, _)| *x == l).map(|(_, s)| s)
}

#[test]
fn gpio_config_empty_is_sim_with_every_role_wired() {
    let plan = resolve("").unwrap();
    assert_eq!(plan.backend, BackendKind::Sim);
    assert_eq!(plan.chip, "/dev/gpiochip0");
    assert_eq!(plan.timing.debounce, Duration::from_millis(30));
    assert_eq!(plan.timing.long_press, Duration::from_millis(1500));
    assert_eq!(
        plan.buttons.len(),
        7,
        "five call buttons and volume up/down"
    );
    assert_eq!(plan.leds.len(), 3);
    let call = button(&plan, Button::Call).unwrap();
    assert_eq!(
        (call.line, call.active_low, call.bias),
        (17, true, Bias::PullUp)
    );
    assert_eq!(led(&plan, Led::Status).unwrap().line, 27);
    assert!(!led(&plan, Led::Status).unwrap().active_low);
    assert_eq!(GpioConfig::default(), parse("").unwrap());
}

#[test]
fn gpio_config_cdev_without_board_wires_call_and_status_only() {
    let plan = resolve("backend = \"cdev\"").unwrap();
    assert_eq!(plan.buttons.len(), 1);
    assert_eq!(button(&plan, Button::Call).unwrap().line, 17);
    assert_eq!(plan.leds.len(), 1);
    assert_eq!(led(&plan, Led::Status).unwrap().line, 27);
    let plan = resolve(
        "backend = \"cdev\"\nchip = \"gpiochip3\"\n[buttons]\nmute = { line = 4, active_low = false, bias = \"pull_down\" }",
    )
    .unwrap();
    assert_eq!(plan.chip, "gpiochip3");
    let mute = button(&plan, Button::Mute).unwrap();
    assert_eq!(
        (mute.line, mute.active_low, mute.bias),
        (4, false, Bias::PullDown)
    );
    assert_eq!(mute.role, "buttons.mute");
}

#[test]
fn gpio_config_every_board_profile_parses_and_is_consistent() {
    for board in [Board::Rpi4, Board::Rpi5, Board::Generic, Board::Lab] {
        let profile = board.profile().unwrap().unwrap();
        assert!(!profile.name.is_empty());
        let plan = GpioConfig {
            board,
            ..GpioConfig::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(plan.backend, BackendKind::Cdev, "{board}");
        // The generic profile leaves the volume buttons to the installer (a chip may
        // have only 8 lines); the others wire them.
        let buttons = if board == Board::Generic { 5 } else { 7 };
        assert_eq!(plan.buttons.len(), buttons, "{board}");
        assert_eq!(plan.leds.len(), 3, "{board}");
        assert!(
            plan.buttons
                .iter()
                .all(|(_, s)| s.active_low && s.bias == Bias::PullUp)
        );
    }
    let rpi5 = resolve("board = \"rpi5\"").unwrap();
    assert_eq!(rpi5.chip, "pinctrl-rp1");
    let generic = resolve("board = \"generic\"").unwrap();
    assert_eq!(led(&generic, Led::Privacy).unwrap().line, 7);
}

#[test]
fn gpio_config_explicit_keys_override_the_profile_field_by_field() {
    let plan = resolve(
        r#"
        board = "rpi4"
        backend = "sim"
        chip = "/dev/gpiochip9"
        debounce_ms = 50
        long_press_ms = 2000
        [buttons]
        call = { line = 5, bias = "none" }
        dnd = { enabled = false }
        [leds]
        status = { active_low = true }
        mute = { enabled = false }
        privacy = { line = 12 }
        "#,
    )
    .unwrap();
    assert_eq!(plan.backend, BackendKind::Sim);
    assert_eq!(plan.chip, "/dev/gpiochip9");
    assert_eq!(plan.timing.debounce, Duration::from_millis(50));
    let call = button(&plan, Button::Call).unwrap();
    assert_eq!(
        (call.line, call.active_low, call.bias),
        (5, true, Bias::None)
    );
    assert!(button(&plan, Button::Dnd).is_none());
    assert_eq!(plan.buttons.len(), 6, "seven less dnd");
    let status = led(&plan, Led::Status).unwrap();
    assert_eq!((status.line, status.active_low), (27, true));
    assert!(led(&plan, Led::Mute).is_none());
    assert_eq!(led(&plan, Led::Privacy).unwrap().line, 12);
}

#[test]
fn gpio_config_errors_name_the_key_and_what_is_allowed() {
    let cases: &[(&str, &[&str])] = &[
        (
            "backend = \"gpio\"",
            &["unknown variant `gpio`", "`sim`, `cdev`, `rpi`"],
        ),
        (
            "board = \"rpi3\"",
            &["unknown board `rpi3`", "`rpi4`, `rpi5`, `generic`"],
        ),
        (
            "debounce = 30",
            &["unknown field `debounce`", "debounce_ms"],
        ),
        (
            "[buttons]\ncall = { line = 17, pull = \"up\" }",
            &["unknown field `pull`", "bias"],
        ),
        (
            "[buttons]\ncall = { line = 17, bias = \"up\" }",
            &["unknown variant `up`", "`pull_up`, `pull_down`, `none`"],
        ),
        (
            "[buttons]\nanswer = { line = 17 }",
            &["unknown field `answer`", "speed_dial"],
        ),
        ("[leds]\nstatus = { line = -1 }", &["line"]),
        (
            "[patterns]\nringing = \"fast\"",
            &["invalid LED pattern `fast`", "blink:<on_ms>/<off_ms>"],
        ),
    ];
    for (input, needles) in cases {
        let e = parse(input).unwrap_err();
        for n in *needles {
            assert!(e.contains(n), "{input}: `{n}` not in: {e}");
        }
    }
    let cases: &[(&str, &[&str])] = &[
        ("debounce_ms = 5000", &["`gpio.debounce_ms`", "0..=1000"]),
        (
            "long_press_ms = 50",
            &["`gpio.long_press_ms`", "100..=30000"],
        ),
        (
            "debounce_ms = 500\nlong_press_ms = 400",
            &["`gpio.long_press_ms`", "more than `gpio.debounce_ms`"],
        ),
        ("chip = \"\"", &["`gpio.chip`", "pinctrl-rp1"]),
        (
            "backend = \"cdev\"\n[buttons]\nmute = { active_low = true }",
            &["`gpio.buttons.mute.line`", "missing", "enabled = false"],
        ),
        (
            "[leds]\nstatus = { line = 17 }",
            &[
                "`gpio.leds.status.line`",
                "line 17 is already used by `gpio.buttons.call`",
            ],
        ),
    ];
    for (input, needles) in cases {
        let e = resolve(input).unwrap_err();
        for n in *needles {
            assert!(e.contains(n), "{input}: `{n}` not in: {e}");
        }
    }
}

#[test]
fn gpio_config_rpi_backend_needs_the_feature_and_bcm_numbers() {
    let r = resolve("backend = \"rpi\"");
    if cfg!(feature = "rpi") {
        let e = resolve("backend = \"rpi\"\n[buttons]\ncall = { line = 300 }").unwrap_err();
        assert!(
            e.contains("`gpio.buttons.call.line`") && e.contains("BCM"),
            "{e}"
        );
        assert!(r.is_ok());
    } else {
        let e = r.unwrap_err();
        assert!(e.contains("--features rpi") && e.contains("cdev"), "{e}");
    }
}

#[test]
fn gpio_config_patterns_section_has_defaults() {
    let c = parse("[patterns]\nidle = \"off\"").unwrap();
    assert_eq!(c.patterns.idle, LedPattern::Off);
    assert_eq!(
        c.patterns.ringing,
        LedPattern::Cadence(vec![100, 100, 100, 700])
    );
    assert_eq!(GpioConfig::default().patterns.idle, LedPattern::heartbeat());
}
