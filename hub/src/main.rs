//! `callbox-hub` command line: `serve`, `add-device`, `add-user`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use callbox_hub::{HubConfig, PrincipalKind};
use clap::{Parser, Subcommand};

/// Reference call server for callbox: invitations, LiveKit tokens, call history.
#[derive(Debug, Parser)]
#[command(name = "callbox-hub", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP + WebSocket API until SIGINT or SIGTERM.
    Serve {
        /// Hub config file (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Create a device (a box) or rotate its credential; prints the credential once.
    AddDevice {
        /// Hub config file (TOML); only `database` is used.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// 1-64 characters of A-Z a-z 0-9 _ . -
        #[arg(long)]
        identity: String,
    },
    /// Create a user or rotate its credential; prints the credential once.
    AddUser {
        /// Hub config file (TOML); only `database` is used.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// 1-64 characters of A-Z a-z 0-9 _ . -
        #[arg(long)]
        identity: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::AddDevice { config, identity } => add(config, &identity, PrincipalKind::Device),
        Command::AddUser { config, identity } => add(config, &identity, PrincipalKind::User),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("callbox-hub: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn add(config: PathBuf, identity: &str, kind: PrincipalKind) -> anyhow::Result<()> {
    let config = HubConfig::load(&config)?;
    let credential = callbox_hub::add_principal(&config.database, identity, kind)
        .with_context(|| format!("adding {} `{identity}`", kind.as_str()))?;
    tracing::info!(
        identity,
        kind = kind.as_str(),
        "credential issued (only shown now)"
    );
    println!("{credential}");
    Ok(())
}

fn serve(config: PathBuf) -> anyhow::Result<()> {
    let config = HubConfig::load(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let hub = callbox_hub::start(config).await?;
        wait_for_signal().await?;
        hub.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
