//! `byzantine-replica`: the honest node (`replica::node`) with a Byzantine behaviour as its
//! interceptor. Flags are those of `replica run`, plus `--behaviour`, `--param` and `--seed`.

use anyhow::Context;
use clap::Parser;
use replica::config::{ClusterConfig, ConfigError, load_secret_key, replica_key_path};
use replica::ids::ReplicaId;
use replica::node::{NodeError, NodeOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "byzantine-replica",
    version,
    about = "A PBFT replica of the Gauntlet KV service that misbehaves on purpose"
)]
struct Cli {
    /// Print the catalogue of behaviours and exit.
    #[arg(long)]
    list: bool,
    #[arg(long, required_unless_present = "list")]
    config: Option<PathBuf>,
    #[arg(long, required_unless_present = "list")]
    id: Option<u32>,
    /// Default: <config dir>/replica-N.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Default: <config dir>/replica-N.key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Exit cleanly when standard input closes (so a dead parent leaves no orphan replica).
    #[arg(long)]
    exit_with_stdin: bool,
    /// One of `--list`.
    #[arg(long, required_unless_present = "list")]
    behaviour: Option<String>,
    /// A behaviour parameter, `key=value`; repeatable.
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Drives every random choice of the behaviour.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("`{text}` is not key=value")),
    }
}

/// Exit code for bad configuration, key files or behaviour, as `replica` uses it.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for info in byzantine::catalogue() {
            let params = if info.params.is_empty() {
                String::new()
            } else {
                format!(" [{}]", info.params)
            };
            println!("{:<16} {}{params}", info.name, info.summary);
        }
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let behaviour_name = cli.behaviour.clone().unwrap_or_default();
    let params: BTreeMap<String, String> = cli.params.iter().cloned().collect();
    let behaviour = match byzantine::build(&behaviour_name, &params, cli.seed) {
        Ok(behaviour) => behaviour,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = match load_options(&cli) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::warn!(
        replica = %options.id,
        behaviour = %behaviour_name,
        ?params,
        seed = cli.seed,
        "running a BYZANTINE replica"
    );
    let exit_with_stdin = cli.exit_with_stdin;
    let result = runtime.block_on(async move {
        let shutdown = shutdown_signal(exit_with_stdin)?;
        replica::node::run(options, behaviour, shutdown)
            .await
            .map_err(anyhow::Error::from)
    });
    // The stdin watcher is a plain thread blocked in read(): do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let config_error = e
                .downcast_ref::<NodeError>()
                .is_some_and(|e| matches!(e, NodeError::Config(_)));
            ExitCode::from(if config_error { EXIT_CONFIG } else { 1 })
        }
    }
}

fn load_options(cli: &Cli) -> Result<NodeOptions, ConfigError> {
    let (Some(config_path), Some(raw_id)) = (cli.config.clone(), cli.id) else {
        return Err(ConfigError::Parse {
            file: PathBuf::from("<command line>"),
            message: "--config and --id are required".into(),
        });
    };
    let config = ClusterConfig::load(&config_path)?;
    let config_dir = config_path.parent().unwrap_or(Path::new("."));
    let id = ReplicaId(raw_id);
    if raw_id as usize >= config.replicas.len() {
        return Err(ConfigError::Field {
            file: config_path.clone(),
            field: "replicas".into(),
            message: format!(
                "--id {raw_id} is not a replica of this cluster (ids 0..{})",
                config.replicas.len()
            ),
        });
    }
    let key_path = cli
        .key
        .clone()
        .unwrap_or_else(|| replica_key_path(config_dir, id));
    let key = load_secret_key(&key_path)?;
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| config_dir.join(format!("replica-{id}")));
    Ok(NodeOptions {
        config,
        config_path,
        id,
        key,
        data_dir,
    })
}

/// Completes on SIGTERM, SIGINT or (with `--exit-with-stdin`) end of standard input.
fn shutdown_signal(exit_with_stdin: bool) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let (stdin_closed_tx, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    if exit_with_stdin {
        // A plain thread: tokio's stdin would make runtime shutdown wait for a blocked read.
        std::thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                use std::io::Read;
                let mut stdin = std::io::stdin().lock();
                let mut buffer = [0u8; 1024];
                loop {
                    match stdin.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = stdin_closed_tx.send(());
            })?;
    }
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM"),
            _ = interrupt.recv() => tracing::info!("SIGINT"),
            Ok(()) = stdin_closed => tracing::info!("standard input closed"),
        }
    })
}
