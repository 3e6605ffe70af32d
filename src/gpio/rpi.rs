//! [`RpiBackend`]: Raspberry Pi GPIO through `rppal` (feature `rpi`). Lines are BCM pin
//! numbers. rppal calls its interrupt callbacks on its own thread; they forward edges
//! into the tokio channel. Most boxes do not need this: `cdev` works on every Pi with a
//! current kernel.

use std::sync::Mutex;

use rppal::gpio::{Gpio, InputPin, Level, OutputPin, Trigger};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::GpioError;
use super::backend::{
    Backend, Bias, Edge, EdgeClock, InputLine, InputSpec, OutputLine, OutputSpec,
};

/// Raspberry Pi GPIO by BCM pin number.
pub struct RpiBackend {
    gpio: Gpio,
}

impl std::fmt::Debug for RpiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpiBackend").finish_non_exhaustive()
    }
}

fn map_err(e: rppal::gpio::Error, line: Option<u32>, role: &str, what: &'static str) -> GpioError {
    use rppal::gpio::Error as E;
    match e {
        E::PermissionDenied(path) => GpioError::Permission { chip: path },
        E::PinUsed(pin) => GpioError::Busy {
            chip: "rpi".into(),
            line: u32::from(pin),
            consumer: "another part of callbox".into(),
            role: role.to_string(),
        },
        E::PinNotAvailable(pin) => GpioError::config(
            format!("gpio.{role}.line"),
            format!(
                "BCM pin {pin} is not available on this Raspberry Pi; allowed 0..=27 on the \
                 40-pin header"
            ),
        ),
        E::UnknownModel => GpioError::Io {
            chip: "rpi".into(),
            line,
            what,
            message: "not a Raspberry Pi rppal knows; use `gpio.backend = \"cdev\"`".into(),
        },
        other => GpioError::Io {
            chip: "rpi".into(),
            line,
            what,
            message: other.to_string(),
        },
    }
}

fn pin_number(line: u32, role: &str) -> Result<u8, GpioError> {
    u8::try_from(line).map_err(|_| {
        GpioError::config(
            format!("gpio.{role}.line"),
            format!("{line} is not a BCM pin number (0..=27 on the 40-pin header)"),
        )
    })
}

impl RpiBackend {
    /// Open the SoC's GPIO (`/dev/gpiomem` or the Pi 5's RP1).
    pub fn open() -> Result<Self, GpioError> {
        let gpio = Gpio::new().map_err(|e| map_err(e, None, "gpio", "opening GPIO"))?;
        tracing::info!("Raspberry Pi GPIO opened (rppal)");
        Ok(Self { gpio })
    }
}

impl Backend for RpiBackend {
    fn describe(&self) -> String {
        "rpi".to_string()
    }

    fn claim_input(
        &self,
        spec: &InputSpec,
        events: mpsc::UnboundedSender<Edge>,
    ) -> Result<Box<dyn InputLine>, GpioError> {
        let pin_no = pin_number(spec.line, &spec.role)?;
        let pin = self
            .gpio
            .get(pin_no)
            .map_err(|e| map_err(e, Some(spec.line), &spec.role, "claiming input"))?;
        let mut pin = match spec.bias {
            Bias::PullUp => pin.into_input_pullup(),
            Bias::PullDown => pin.into_input_pulldown(),
            Bias::None => pin.into_input(),
        };
        let active_low = spec.active_low;
        let mut clock = EdgeClock::default();
        pin.set_async_interrupt(Trigger::Both, None, move |ev| {
            let high = match ev.trigger {
                Trigger::RisingEdge => true,
                Trigger::FallingEdge => false,
                _ => return,
            };
            let kernel_ns = u64::try_from(ev.timestamp.as_nanos()).unwrap_or(u64::MAX);
            let at = clock.stamp(kernel_ns, Instant::now());
            let _ = events.send(Edge {
                active: high != active_low,
                at,
            });
        })
        .map_err(|e| map_err(e, Some(spec.line), &spec.role, "enabling interrupts"))?;
        tracing::debug!(pin = spec.line, role = %spec.role, "rpi input claimed");
        Ok(Box::new(RpiInput {
            pin: Mutex::new(pin),
            line: spec.line,
            active_low,
        }))
    }

    fn claim_output(&self, spec: &OutputSpec) -> Result<Box<dyn OutputLine>, GpioError> {
        let pin_no = pin_number(spec.line, &spec.role)?;
        let pin = self
            .gpio
            .get(pin_no)
            .map_err(|e| map_err(e, Some(spec.line), &spec.role, "claiming output"))?;
        // Dark from the start: an active-low LED is dark when the pin is high.
        let pin = if spec.active_low {
            pin.into_output_high()
        } else {
            pin.into_output_low()
        };
        tracing::debug!(pin = spec.line, role = %spec.role, "rpi output claimed");
        Ok(Box::new(RpiOutput {
            pin,
            line: spec.line,
            active_low: spec.active_low,
        }))
    }
}

struct RpiInput {
    pin: Mutex<InputPin>,
    line: u32,
    active_low: bool,
}

impl InputLine for RpiInput {
    fn line(&self) -> u32 {
        self.line
    }

    fn is_active(&self) -> Result<bool, GpioError> {
        let pin = self.pin.lock().unwrap_or_else(|e| e.into_inner());
        Ok((pin.read() == Level::High) != self.active_low)
    }
}

struct RpiOutput {
    pin: OutputPin,
    line: u32,
    active_low: bool,
}

impl OutputLine for RpiOutput {
    fn line(&self) -> u32 {
        self.line
    }

    fn set(&mut self, lit: bool) -> Result<(), GpioError> {
        if lit != self.active_low {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }
}
