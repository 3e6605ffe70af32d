//! The gpiocdev backend against a real GPIO character device: the kernel's `gpio-sim`
//! chip (design §6). Uses an existing gpio-sim chip, or makes one through configfs when
//! `/sys/kernel/config/gpio-sim` is writable; otherwise prints why it is skipped.
//!
//! The simulated button is pressed by writing `pull-down` to the line's sysfs `pull`
//! (an active-low button closes to GND); outputs are read back from sysfs `value`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::timeout;

use super::*;
use crate::gpio::{Button, GpioConfig, Panel, Press};

const CONFIGFS: &str = "/sys/kernel/config/gpio-sim";

/// A usable gpio-sim chip.
struct SimChip {
    /// `/dev/gpiochipN`.
    dev: PathBuf,
    /// The sysfs directory holding `sim_gpio<line>/{pull,value}`.
    sysfs: PathBuf,
    num_lines: u32,
    /// The configfs chip we made, removed on drop.
    made: Option<PathBuf>,
}

impl SimChip {
    fn pull(&self, line: u32, pull: &str) -> std::io::Result<()> {
        fs::write(self.sysfs.join(format!("sim_gpio{line}/pull")), pull)
    }

    fn value(&self, line: u32) -> String {
        fs::read_to_string(self.sysfs.join(format!("sim_gpio{line}/value")))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("unreadable: {e}"))
    }
}

impl Drop for SimChip {
    fn drop(&mut self) {
        if let Some(dir) = &self.made {
            let _ = fs::write(dir.join("live"), "0");
            let _ = fs::remove_dir(dir.join("bank0"));
            let _ = fs::remove_dir(dir);
        }
    }
}

/// The sysfs directory of a chip device: `/sys/devices/platform/gpio-sim.0/gpiochipN`.
fn sysfs_of(dev: &Path) -> Option<PathBuf> {
    let name = dev.file_name()?;
    let dir = fs::canonicalize(Path::new("/sys/bus/gpio/devices").join(name)).ok()?;
    dir.join("sim_gpio0").exists().then_some(dir)
}

/// Make a chip of 8 lines through configfs (needs root and the gpio-sim module).
fn make_chip() -> Result<SimChip, String> {
    let dir = Path::new(CONFIGFS).join(format!("callbox-test-{}", std::process::id()));
    let step = |what: &str, r: std::io::Result<()>| r.map_err(|e| format!("{what}: {e}"));
    step("mkdir chip", fs::create_dir(&dir))?;
    let mut chip = SimChip {
        dev: PathBuf::new(),
        sysfs: PathBuf::new(),
        num_lines: 8,
        made: Some(dir.clone()),
    };
    step("mkdir bank0", fs::create_dir(dir.join("bank0")))?;
    step("num_lines", fs::write(dir.join("bank0/num_lines"), "8"))?;
    step("live", fs::write(dir.join("live"), "1"))?;
    let read = |p: PathBuf| {
        fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let dev_name = read(dir.join("dev_name"))?;
    let chip_name = read(dir.join("bank0/chip_name"))?;
    chip.dev = Path::new("/dev").join(&chip_name);
    chip.sysfs = Path::new("/sys/devices/platform")
        .join(dev_name)
        .join(chip_name);
    Ok(chip)
}

/// A gpio-sim chip to test on, or why there is none.
fn find_chip() -> Result<SimChip, String> {
    if Path::new(CONFIGFS).is_dir() {
        match make_chip() {
            Ok(c) => return Ok(c),
            Err(e) => eprintln!(
                "cannot make a gpio-sim chip through configfs ({e}); looking for an existing one"
            ),
        }
    }
    for (dev, label) in crate::gpio::error::list_chips() {
        if !label.starts_with("gpio-sim") {
            continue;
        }
        let Some(sysfs) = sysfs_of(&dev) else {
            continue;
        };
        let num_lines = gpiocdev::Chip::from_path(&dev)
            .and_then(|c| c.info())
            .map(|i| i.num_lines)
            .unwrap_or(0);
        return Ok(SimChip {
            dev,
            sysfs,
            num_lines,
            made: None,
        });
    }
    Err("no gpio-sim chip (modprobe gpio-sim)".to_string())
}

async fn next_edge(rx: &mut mpsc::UnboundedReceiver<Edge>) -> Edge {
    timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("an edge within 2 s")
        .expect("channel open")
}

/// Wait (up to 2 s) until `line` of `dev` has no consumer.
async fn wait_until_free(dev: &Path, line: u32) {
    let chip = gpiocdev::Chip::from_path(dev).expect("open the chip");
    for _ in 0..200 {
        if !chip.line_info(line).expect("line info").used {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "line {line} of {} still in use 2 s after its handle was dropped",
        dev.display()
    );
}

#[tokio::test]
async fn gpio_cdev_against_gpio_sim_chip() {
    let chip = match find_chip() {
        Ok(c) => c,
        Err(why) => {
            callbox_testkit::report!("skipped: {why}");
            return;
        }
    };
    if chip.num_lines < 8 {
        println!(
            "skipped: gpio-sim chip {} has {} lines, need 8",
            chip.dev.display(),
            chip.num_lines
        );
        return;
    }
    if let Err(e) = chip.pull(0, "pull-up") {
        println!(
            "skipped: cannot drive {} through sysfs ({e}); run as root",
            chip.sysfs.display()
        );
        return;
    }
    let backend = match CdevBackend::open(&chip.dev.display().to_string()) {
        Ok(b) => b,
        Err(e) => {
            callbox_testkit::report!("skipped: cannot open {} ({e})", chip.dev.display());
            return;
        }
    };
    println!(
        "testing on {} ({})",
        chip.dev.display(),
        chip.sysfs.display()
    );

    // Input: an active-low button with the internal pull-up.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = InputSpec {
        line: 0,
        active_low: true,
        bias: Bias::PullUp,
        role: "buttons.call".into(),
    };
    let input = backend.claim_input(&spec, tx).unwrap();
    assert!(!input.is_active().unwrap(), "pulled up = released");
    chip.pull(0, "pull-down").unwrap();
    let e = next_edge(&mut rx).await;
    assert!(e.active, "pressed");
    assert!(input.is_active().unwrap());
    chip.pull(0, "pull-up").unwrap();
    assert!(!next_edge(&mut rx).await.active, "released");

    // The line is ours: a second claim is refused, naming the holder.
    let (tx2, _rx2) = mpsc::unbounded_channel();
    let busy = backend.claim_input(&spec, tx2).err().unwrap().to_string();
    assert!(
        busy.contains("busy") && busy.contains("callbox:buttons.call"),
        "{busy}"
    );
    let missing = backend
        .claim_output(&OutputSpec {
            line: 99,
            active_low: false,
            role: "leds.status".into(),
        })
        .err()
        .unwrap()
        .to_string();
    assert!(missing.contains("has no line 99"), "{missing}");

    // Outputs, active-high and active-low, read back from the simulator.
    let mut high = backend
        .claim_output(&OutputSpec {
            line: 5,
            active_low: false,
            role: "leds.status".into(),
        })
        .unwrap();
    let mut low = backend
        .claim_output(&OutputSpec {
            line: 6,
            active_low: true,
            role: "leds.mute".into(),
        })
        .unwrap();
    assert_eq!(
        (chip.value(5), chip.value(6)),
        ("0".into(), "1".into()),
        "both dark"
    );
    high.set(true).unwrap();
    low.set(true).unwrap();
    assert_eq!(
        (chip.value(5), chip.value(6)),
        ("1".into(), "0".into()),
        "both lit"
    );
    high.set(false).unwrap();
    assert_eq!(chip.value(5), "0");
    drop((input, high, low));
    // Dropping the input aborts its edge reader; the line is released when the runtime
    // drops that task, not inside drop(): wait for the kernel to say the line is free.
    wait_until_free(&chip.dev, 0).await;

    // The whole panel on the generic layout: a short and a long press on the call button.
    let config: GpioConfig = toml::from_str(&format!(
        "board = \"generic\"\nchip = \"{}\"\ndebounce_ms = 20\nlong_press_ms = 400",
        chip.dev.display()
    ))
    .unwrap();
    let (panel, mut events) = Panel::start(&config).unwrap();
    chip.pull(0, "pull-down").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    chip.pull(0, "pull-up").unwrap();
    let ev = timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ev.button, ev.press), (Button::Call, Press::Short));
    chip.pull(0, "pull-down").unwrap();
    let ev = timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ev.button, ev.press), (Button::Call, Press::Long));
    chip.pull(0, "pull-up").unwrap();
    panel.set_led(crate::gpio::Led::Status, crate::gpio::LedPattern::On);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(chip.value(5), "1", "status LED lit through the panel");
    drop(panel);
    // The panel's lines are released before the chip is taken down.
    for line in 0..8 {
        wait_until_free(&chip.dev, line).await;
    }
}
