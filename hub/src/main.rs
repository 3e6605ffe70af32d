//! `callbox-hub` command line: `serve`, `add-device`, `add-user`, `allow`, `revoke`,
//! `set-name`, `invite-link`. Under systemd
//! (`callbox-hub.service`, `Type=notify`) `serve` reports `READY=1` once it listens and
//! feeds the watchdog from its runtime.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

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
    /// Allow a caller to call a box (or a user): without it, the caller's invitations
    /// are refused (403) and never ring.
    Allow {
        #[command(flatten)]
        pair: ContactPair,
        /// The callee may answer by itself: a box with `answer = "auto"` answers
        /// trusted callers without a press and rings for the others.
        #[arg(long)]
        trusted: bool,
    },
    /// Take a caller off a callee's list.
    Revoke {
        #[command(flatten)]
        pair: ContactPair,
    },
    /// Set the name a device or user is shown by (contacts, the caller app).
    SetName {
        /// Hub config file (TOML); only `database` is used.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The device or user.
        #[arg(long)]
        identity: String,
        /// 1-64 printable characters; omit to clear.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a one-time link that signs a user in to the caller app (so nobody types
    /// a credential); it works once, until it expires.
    InviteLink {
        /// Hub config file (TOML); `database`, and `public_url` (else `listen`) for the
        /// link's address.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The user.
        #[arg(long, value_name = "IDENTITY")]
        user: String,
        /// How long the link works, in hours (1-720).
        #[arg(long, default_value_t = callbox_hub::sessions::DEFAULT_LINK_VALID_HOURS)]
        valid_hours: u32,
    },
}

/// A callee and a caller, for `allow` and `revoke`.
#[derive(Debug, clap::Args)]
struct ContactPair {
    /// Hub config file (TOML); only `database` is used.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Who is called: a device or a user.
    #[arg(long, visible_alias = "box", value_name = "IDENTITY")]
    callee: String,
    /// Who calls it.
    #[arg(long, value_name = "IDENTITY")]
    caller: String,
}

/// Exit status for errors a restart cannot fix (bad config): `EX_CONFIG`;
/// `callbox-hub.service` has `RestartPreventExitStatus=78`.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    use std::io::IsTerminal;
    let cli = Cli::parse();
    // Plain text into pipes and journald: colour only on a terminal (and not with
    // NO_COLOR); journald stamps lines itself, so no timestamp under it.
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        fmt.without_time().init();
    } else {
        fmt.init();
    }
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::AddDevice { config, identity } => add(config, &identity, PrincipalKind::Device),
        Command::AddUser { config, identity } => add(config, &identity, PrincipalKind::User),
        Command::Allow {
            pair:
                ContactPair {
                    config,
                    callee,
                    caller,
                },
            trusted,
        } => HubConfig::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                callbox_hub::allow_caller(&c.database, &callee, &caller, trusted)
                    .with_context(|| format!("allowing {caller} to call {callee}"))?;
                give_to_directory_owner(&c.database)?;
                println!(
                    "{caller} may call {callee}{}",
                    if trusted {
                        " (trusted: answered by itself)"
                    } else {
                        ""
                    }
                );
                Ok(())
            }),
        Command::Revoke {
            pair:
                ContactPair {
                    config,
                    callee,
                    caller,
                },
        } => HubConfig::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                let removed = callbox_hub::revoke_caller(&c.database, &callee, &caller)
                    .with_context(|| format!("revoking {caller} from {callee}"))?;
                println!(
                    "{caller} {} call {callee}",
                    if removed {
                        "may no longer"
                    } else {
                        "was not allowed to"
                    }
                );
                Ok(())
            }),
        Command::SetName {
            config,
            identity,
            name,
        } => HubConfig::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                callbox_hub::set_display_name(&c.database, &identity, name.as_deref())
                    .with_context(|| format!("naming {identity}"))?;
                Ok(())
            }),
        Command::InviteLink {
            config,
            user,
            valid_hours,
        } => HubConfig::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                let code = callbox_hub::signin_link_code(&c.database, &user, valid_hours)
                    .with_context(|| format!("making a sign-in link for {user}"))?;
                give_to_directory_owner(&c.database)?;
                println!("{}/#signin={code}", c.app_url());
                Ok(())
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("callbox-hub: error: {e:#}");
            let config = e.chain().any(|c| {
                c.downcast_ref::<callbox_hub::ConfigError>().is_some()
                    || matches!(
                        c.downcast_ref::<callbox_hub::HubError>(),
                        Some(callbox_hub::HubError::Config(_))
                    )
            });
            ExitCode::from(if config { EXIT_CONFIG } else { 1 })
        }
    }
}

fn add(config: PathBuf, identity: &str, kind: PrincipalKind) -> anyhow::Result<()> {
    let config = HubConfig::load(&config)?;
    let credential = callbox_hub::add_principal(&config.database, identity, kind)
        .with_context(|| format!("adding {} `{identity}`", kind.as_str()))?;
    give_to_directory_owner(&config.database)?;
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
    config.require_livekit_keys()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let hub = callbox_hub::start(config).await?;
        let _ = sd_notify::notify(
            false,
            &[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&format!("listening on {}", hub.addr)),
            ],
        );
        let mut usec = 0;
        if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
            // Fed from the runtime: a wedged runtime stops the pings.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_micros(usec / 2));
                loop {
                    tick.tick().await;
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                }
            });
        }
        wait_for_signal().await?;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        hub.shutdown().await;
        Ok(())
    })
}

/// `add-device`/`add-user` run by root beside a service with `DynamicUser=yes`: the
/// database it created or touched must stay writable by the service, so the database
/// file takes the owner of its directory (`StateDirectory=`, owned by the dynamic user
/// once the service has run). Does nothing when not root or when owners already match.
fn give_to_directory_owner(db: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let dir_meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let path = PathBuf::from(path);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.uid() == 0 && (meta.uid(), meta.gid()) != (dir_meta.uid(), dir_meta.gid()) {
            std::os::unix::fs::chown(&path, Some(dir_meta.uid()), Some(dir_meta.gid()))
                .with_context(|| format!("handing {} to the hub's user", path.display()))?;
        }
    }
    Ok(())
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
