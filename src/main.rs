//! `callbox`: the device daemon's command line. `run` starts the daemon, `status` asks a
//! running one what it is doing, `check` validates a config file and the media stack.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use callbox::config::{Config, ConfigError};
use callbox::media::MediaError;
use callbox::{app, control};

/// The default config path on a box.
const DEFAULT_CONFIG: &str = "/etc/callbox/callbox.toml";

/// Exit status for a problem only the installer can fix (a bad config file, a missing
/// GStreamer package): `EX_CONFIG` from sysexits.h. `callbox.service` has
/// `RestartPreventExitStatus=78`, so systemd does not restart into the same error.
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(name = "callbox", version, about = "Video-call appliance daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Config file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print the running daemon's state and frame counters (JSON).
    Status {
        /// Config file (to find the control socket).
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Control socket path; overrides the config.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Drive or inspect the running daemon over its control socket:
    /// status | answer | decline | hangup | mute | unmute | dnd on|off |
    /// dial <identity> | press <button> [--long]
    Ctl {
        /// Config file (to find the control socket).
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Control socket path; overrides the config.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Save what the call screen shows right now as a PNG file.
    Screenshot {
        /// Config file (to find the control socket).
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Control socket path; overrides the config.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Where to write the PNG.
        file: PathBuf,
    },
    /// The installer's diagnostic: cameras, sound, encoders, display, GPIO, hub and
    /// credential, each problem with its fix. Exits 1 if the box cannot take a call.
    Check {
        /// Config file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Do not contact the hub (building or testing an image without its network).
        #[arg(long)]
        offline: bool,
    },
}

/// The control socket (`--socket`, else the config's) and a runtime to talk to it.
fn control_client(
    config: &std::path::Path,
    socket: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, tokio::runtime::Runtime)> {
    let socket = match socket {
        Some(s) => s,
        None => load(config)?.control.socket,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok((socket, rt))
}

/// Logs to stderr: plain text without ANSI colour unless stderr is a terminal (journald
/// and pipes get no escape codes; `NO_COLOR` turns colour off anywhere), and without
/// our own timestamp under journald (`JOURNAL_STREAM`), which stamps each line itself.
fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        fmt.without_time().init();
    } else {
        fmt.init();
    }
}

/// [`EXIT_CONFIG`] for errors a restart cannot fix, 1 for the rest.
fn exit_status(e: &anyhow::Error) -> u8 {
    let installer_must_fix = e.chain().any(|c| {
        c.downcast_ref::<ConfigError>().is_some()
            || matches!(
                c.downcast_ref::<MediaError>(),
                Some(MediaError::MissingElement { .. })
            )
    });
    if installer_must_fix { EXIT_CONFIG } else { 1 }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Test builds only: `FAILPOINTS=name=action;…` (the `fail` crate) injects faults.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let result = match cli.command {
        Command::Run { config } => load(&config).and_then(|c| {
            // Before the runtime and GStreamer start threads.
            callbox::memory::tune_allocator();
            init_logging(&c.log.level);
            tokio::runtime::Runtime::new()
                .context("starting the async runtime")?
                .block_on(async {
                    let shutdown = app::shutdown_signal()?;
                    app::run(c, shutdown).await
                })
        }),
        Command::Status { config, socket } => (|| {
            let (socket, rt) = control_client(&config, socket)?;
            let status = rt.block_on(control::query_status(&socket))?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        })(),
        Command::Ctl {
            config,
            socket,
            args,
        } => (|| {
            let line = control::ctl_request(&args).map_err(anyhow::Error::msg)?;
            let (socket, rt) = control_client(&config, socket)?;
            let answer = rt.block_on(control::request(&socket, &line))?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            if let Some(e) = answer.get("error").and_then(|e| e.as_str()) {
                anyhow::bail!("{e}");
            }
            Ok(())
        })(),
        Command::Screenshot {
            config,
            socket,
            file,
        } => (|| {
            let (socket, rt) = control_client(&config, socket)?;
            let png = rt.block_on(control::screenshot_png(&socket))?;
            std::fs::write(&file, &png).with_context(|| format!("writing {}", file.display()))?;
            println!("{}: {} bytes", file.display(), png.len());
            Ok(())
        })(),
        Command::Check { config, offline } => load(&config).and_then(|c| {
            let hub_timeout = (!offline).then_some(std::time::Duration::from_secs(5));
            let report = callbox::check::run(&c, &config, hub_timeout);
            println!("{report}");
            if report.can_take_calls() {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callbox: {e:#}");
            ExitCode::from(exit_status(&e))
        }
    }
}
