//! `replica testnet` writes a local cluster; `replica run` runs one replica of it.

use clap::{Args, Parser, Subcommand};
use replica::config::{ClusterConfig, ConfigError, load_secret_key, replica_key_path};
use replica::ids::ReplicaId;
use replica::node::testnet::{TestnetSpec, write_testnet};
use replica::node::{Honest, NodeError, NodeOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "replica",
    version,
    about = "A PBFT replica of the Gauntlet KV service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write DIR/cluster.yaml and secret keys for a local testnet of 3f+1 replicas.
    Testnet(TestnetArgs),
    /// Run one replica of a cluster.
    Run(RunArgs),
}

#[derive(Args)]
struct TestnetArgs {
    /// Faults tolerated; the testnet has 3f+1 replicas.
    #[arg(long)]
    f: usize,
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Replica i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Derive keys from this seed (reproducible) instead of the OS random source.
    #[arg(long)]
    seed: Option<u64>,
    /// Do not fsync the write-ahead log (fast tests only: a crash may lose promises).
    #[arg(long)]
    no_fsync: bool,
}

#[derive(Args)]
struct RunArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    id: u32,
    /// Default: <config dir>/replica-N.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Default: <config dir>/replica-N.key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Exit cleanly when standard input closes (so a dead parent leaves no orphan replica).
    #[arg(long)]
    exit_with_stdin: bool,
}

/// Exit code for bad configuration or key files, as opposed to a failure while running.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Testnet(args) => testnet(args),
        Command::Run(args) => run(args),
    }
}

fn testnet(args: TestnetArgs) -> ExitCode {
    let spec = TestnetSpec {
        f: args.f,
        clients: args.clients,
        base_port: args.base_port,
        seed: args.seed,
        fsync: !args.no_fsync,
    };
    match write_testnet(&args.dir, &spec) {
        Ok(config) => {
            println!(
                "wrote {} ({} replicas, {} clients)",
                args.dir.join("cluster.yaml").display(),
                config.replicas.len(),
                config.clients.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let options = match load_options(&args) {
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
    let exit_with_stdin = args.exit_with_stdin;
    let result = runtime.block_on(async move {
        let shutdown = shutdown_signal(exit_with_stdin)?;
        replica::node::run(options, Box::new(Honest), shutdown)
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

fn load_options(args: &RunArgs) -> Result<NodeOptions, ConfigError> {
    let config = ClusterConfig::load(&args.config)?;
    let config_dir = args.config.parent().unwrap_or(Path::new("."));
    let id = ReplicaId(args.id);
    if args.id as usize >= config.replicas.len() {
        return Err(ConfigError::Field {
            file: args.config.clone(),
            field: "replicas".into(),
            message: format!(
                "--id {} is not a replica of this cluster (ids 0..{})",
                args.id,
                config.replicas.len()
            ),
        });
    }
    let key_path = args
        .key
        .clone()
        .unwrap_or_else(|| replica_key_path(config_dir, id));
    let key = load_secret_key(&key_path)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| config_dir.join(format!("replica-{id}")));
    Ok(NodeOptions {
        config,
        config_path: args.config.clone(),
        id,
        key,
        data_dir,
    })
}

/// Completes on SIGTERM, SIGINT or (with `--exit-with-stdin`) end of standard input.
fn shutdown_signal(exit_with_stdin: bool) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
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
