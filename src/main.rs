//! The command line. Everything else lives in the library.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mcp_frontdoor::auth::mint::{mint_hs256, TokenRequest};
use mcp_frontdoor::config::{self, units::parse_duration, Config};
use mcp_frontdoor::shutdown::{on_signals, Shutdown};
use mcp_frontdoor::{dev, run, Listeners};
use std::io::Write;
use std::path::{Path, PathBuf};

mod malloc_trim;

#[derive(Parser)]
#[command(
    name = "mcp-frontdoor",
    version,
    about = "One TLS front door for per-user MCP gateways"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the front door.
    Serve {
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Self-signed certificate, generated JWT secret and master key; prints a token.
        #[arg(long)]
        dev: bool,
        /// Data directory (overrides `data_dir` and FRONTDOOR_DATA_DIR). With --dev and none
        /// named: $XDG_STATE_HOME/mcp-frontdoor (~/.local/state/mcp-frontdoor).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log format (RUST_LOG sets the filter).
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate a config file and the keys it names, then exit.
    CheckConfig {
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Mint a development HS256 token with the configured secret.
    Token {
        /// The user id to put in the token (the `auth.user_claim`, `sub` by default).
        #[arg(long)]
        sub: String,
        /// A role to grant (repeatable), e.g. `--role admin`.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A team the user belongs to (repeatable); its team catalog applies.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// How long the token is valid, e.g. `30m`, `1h`, `8h`.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Mint for a `serve --dev` front door (its generated secret, issuer and audience).
        #[arg(long)]
        dev: bool,
        /// Data directory (overrides `data_dir` and FRONTDOOR_DATA_DIR). With --dev and none
        /// named: $XDG_STATE_HOME/mcp-frontdoor (~/.local/state/mcp-frontdoor).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Development certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Catalog tools.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Secret tools.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// User directory tools.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Gateway container tools.
    Gateways {
        #[command(subcommand)]
        command: GatewaysCommand,
    },
}

#[derive(Subcommand)]
enum GatewaysCommand {
    /// Stop and remove every gateway, MCP server container, network and derived gateway image
    /// of this instance (`gateways.docker.instance`). Run it while the front door is stopped:
    /// a running one starts a new gateway at a user's next request.
    StopAll {
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of every retained audit file; exits non-zero at the first break.
    Verify {
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data dir of a `serve --dev` front door (defaults, not config/frontdoor.yaml).
        #[arg(long)]
        dev: bool,
        /// Data directory (overrides `data_dir` and FRONTDOOR_DATA_DIR). With --dev and none
        /// named: $XDG_STATE_HOME/mcp-frontdoor (~/.local/state/mcp-frontdoor).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A head printed by an earlier run: fail unless a retained line still hashes to it.
        #[arg(long)]
        head: Option<String>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Confirm that a user id owns its user directory: marks an unmarked directory that the
    /// server refuses because another id could have made it under the old slug scheme (and
    /// moves the id's old-scheme directory, as its first request would).
    Claim {
        /// The raw user id (the token's user claim), not the slug.
        #[arg(long)]
        user: String,
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Print a user's merged catalog (YAML) from the data dir; writes nothing.
    Merge {
        /// The raw user id (the token's user claim), not the slug.
        #[arg(long)]
        user: String,
        /// A team the user belongs to (repeatable); its team catalog applies.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-seal every stored secret under the newest master key (first line of the key file).
    Rotate {
        /// Config file (default: config/frontdoor.yaml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data dir and master key of a `serve --dev` front door (defaults, not
        /// config/frontdoor.yaml).
        #[arg(long)]
        dev: bool,
        /// Data directory (overrides `data_dir` and FRONTDOOR_DATA_DIR). With --dev and none
        /// named: $XDG_STATE_HOME/mcp-frontdoor (~/.local/state/mcp-frontdoor).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a self-signed certificate and key (cert.pem, key.pem).
    Generate {
        /// Directory for cert.pem and key.pem.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// A name or address the certificate is valid for (repeatable).
        #[arg(long = "host", default_values = ["localhost", "127.0.0.1"])]
        hosts: Vec<String>,
    },
}

fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| {
        let p = Path::new(config::DEFAULT_PATH);
        p.is_file().then(|| p.to_path_buf())
    })
}

/// The raw config of a command: with `dev`, from defaults (or the `--config` given) and the dev
/// data dir, found the same way by every `--dev` command; else the config file.
fn raw_config(
    config: Option<PathBuf>,
    dev: bool,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<config::RawConfig> {
    let path = if dev { config } else { config_path(config) };
    let mut raw = Config::load_raw(path.as_deref(), std::env::vars())?;
    if dev {
        let named = Config::names_data_dir(path.as_deref(), std::env::vars())?;
        dev::locate_data_dir(&mut raw, data_dir, named)?;
    } else if let Some(d) = data_dir {
        raw.data_dir = d;
    }
    Ok(raw)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout carries what a command prints for the user (tokens, snippets).
    // Colour only for a person at a terminal: files and `docker logs` get plain text, and
    // NO_COLOR (https://no-color.org) turns it off everywhere.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve {
            config,
            dev,
            data_dir,
            log_format,
        } => {
            init_logs(log_format);
            // Dev mode starts from defaults: the shipped config/frontdoor.yaml names
            // production key sources and certificate paths a newcomer does not have.
            let raw = raw_config(config, dev, data_dir)?;
            let cfg = if dev {
                let setup = dev::prepare(raw)?;
                // A closed stdout (piped to `head`, a supervisor) must not stop the server.
                let _ = writeln!(std::io::stdout(), "{}", setup.banner);
                setup.config
            } else {
                Config::from_raw(raw)?
            };
            malloc_trim::spawn();
            rt.block_on(async move {
                let listeners = Listeners::bind(&cfg).await?;
                let shutdown = Shutdown::new();
                tokio::spawn(on_signals(
                    shutdown.clone(),
                    cfg.server.shutdown_grace.0,
                    cfg.server.shutdown_grace_interrupt.0,
                ));
                run(cfg, listeners, shutdown).await
            })
        }
        Command::CheckConfig { config } => {
            // Warnings (placeholder secrets, hand-made keys) show here as at a start.
            init_logs(LogFormat::Text);
            let path = config_path(config);
            let cfg = Config::load(path.as_deref(), std::env::vars())?;
            mcp_frontdoor::secrets::KeyRing::load(
                cfg.secrets.master_key_env.as_deref(),
                cfg.secrets.master_key_file.as_deref(),
            )
            .context("secrets master key")?;
            rt.block_on(async {
                let stop = tokio_util::sync::CancellationToken::new();
                mcp_frontdoor::auth::Authenticator::from_config(
                    &cfg.auth,
                    cfg.public_url(),
                    stop.clone(),
                )
                .await
                .context("auth keys")?;
                stop.cancel();
                if let Some(tls) = &cfg.server.tls {
                    mcp_frontdoor::server::tls::ReloadingCert::load(tls)?;
                }
                mcp_frontdoor::server::scrape_auth::ScrapeToken::from_config(&cfg.metrics)?;
                anyhow::Ok(())
            })?;
            println!(
                "config OK ({})",
                path.map_or("defaults".into(), |p| p.display().to_string())
            );
            Ok(())
        }
        Command::Token {
            sub,
            roles,
            teams,
            ttl,
            config,
            dev,
            data_dir,
        } => {
            let mut raw = raw_config(config, dev, data_dir)?;
            if dev {
                dev::apply_dev_auth(&mut raw, dev::Keys::Existing)?;
            }
            let secret = dev::dev_secret(&raw)?;
            let auth = raw.auth.clone();
            let ttl = parse_duration(&ttl).map_err(anyhow::Error::msg)?;
            let token = mint_hs256(
                secret.as_bytes(),
                &auth,
                &TokenRequest {
                    sub,
                    roles,
                    teams,
                    ttl,
                },
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Catalog {
            command:
                CatalogCommand::Merge {
                    user,
                    teams,
                    config,
                },
        } => {
            let raw = Config::load_raw(config_path(config).as_deref(), std::env::vars())?;
            let layout = mcp_frontdoor::catalog::DataLayout::new(&raw.data_dir);
            let slug = mcp_frontdoor::owners::locate(&layout, &user)?;
            let policy = mcp_frontdoor::catalog::CatalogPolicy::from_config(&raw);
            let yaml = mcp_frontdoor::catalog::merge_for_cli(&raw.data_dir, policy, &slug, &teams)?;
            print!("{yaml}");
            Ok(())
        }
        Command::Secrets {
            command:
                SecretsCommand::Rotate {
                    config,
                    dev,
                    data_dir,
                },
        } => {
            use mcp_frontdoor::audit::{
                Action, Actor, AuditEntry, AuditLog, Outcome, RotationPolicy, Target,
            };
            let mut raw = raw_config(config, dev, data_dir)?;
            if dev {
                dev::apply_dev_master_key(&mut raw)?;
            }
            let ring = mcp_frontdoor::secrets::KeyRing::load(
                raw.secrets.master_key_env.as_deref(),
                raw.secrets.master_key_file.as_deref(),
            )?;
            let result = mcp_frontdoor::secrets::rotate(&raw.data_dir, &ring);
            let outcome = if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failed("error")
            };
            let log = mcp_frontdoor::services::audit_log_path(&raw);
            AuditLog::open(&log, RotationPolicy::from(&raw.audit))?.append(&AuditEntry::new(
                Actor::Cli,
                Action::SecretsRotate,
                Target::all_users(),
                outcome,
            ))?;
            let r = result?;
            println!(
                "rotated: {} files, {} rewritten, {} values re-sealed, {} already current",
                r.files, r.files_rewritten, r.resealed, r.already_current
            );
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    config,
                    dev,
                    data_dir,
                    head,
                },
        } => {
            // Like `serve --dev`, dev mode starts from defaults, not config/frontdoor.yaml.
            let raw = raw_config(config, dev, data_dir)?;
            let log = mcp_frontdoor::services::audit_log_path(&raw);
            // A break is an error: printed on stderr, exit status 1.
            let report = mcp_frontdoor::audit::verify_with_head(&log, head.as_deref())?;
            print!("{report}");
            Ok(())
        }
        Command::Users {
            command: UsersCommand::Claim { user, config },
        } => {
            use mcp_frontdoor::owners::{Access, Claimed, Owners};
            let raw = Config::load_raw(config_path(config).as_deref(), std::env::vars())?;
            let ring = mcp_frontdoor::secrets::KeyRing::load(
                raw.secrets.master_key_env.as_deref(),
                raw.secrets.master_key_file.as_deref(),
            )?;
            let layout = mcp_frontdoor::catalog::DataLayout::new(&raw.data_dir);
            let secrets = mcp_frontdoor::secrets::SecretStore::new(layout.clone(), ring.into());
            let claim =
                Owners::new(layout, secrets.into()).claim_blocking(&user, Access::AdminConfirm)?;
            let what = match claim.how {
                Claimed::Existing => "already claimed by this id".to_string(),
                Claimed::Marked => "marked for this id".to_string(),
                Claimed::Migrated { from } => format!("moved from users/{from}"),
                Claimed::Created | Claimed::Absent => "created for this id".to_string(),
            };
            println!("users/{}: {what}", claim.slug);
            Ok(())
        }
        Command::Gateways {
            command: GatewaysCommand::StopAll { config },
        } => {
            use mcp_frontdoor::gateways::{
                gateway_runtime, remove_instance, GatewayMetrics, Naming,
            };
            let raw = Config::load_raw(config_path(config).as_deref(), std::env::vars())?;
            let engine = gateway_runtime(&raw.gateways, &GatewayMetrics::default());
            let naming = Naming {
                instance: raw.gateways.docker.instance.clone(),
            };
            let done = rt.block_on(async {
                engine.ping().await.context("the Docker engine")?;
                remove_instance(engine.as_ref(), &naming)
                    .await
                    .context("listing the instance's objects")
            })?;
            println!("instance `{}`: {done}", naming.instance);
            anyhow::ensure!(done.failed.is_empty(), "some objects were not removed");
            Ok(())
        }
        Command::Certs {
            command: CertsCommand::Generate { out, hosts },
        } => {
            let (cert, key) = mcp_frontdoor::server::tls::generate_self_signed(&out, &hosts)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("wrote {} and {}", cert.display(), key.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and every option says what it is for in `--help`.
    #[test]
    fn every_command_and_option_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let here = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(here.clone());
            }
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() {
                    missing.push(format!("{here} --{}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &here, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
