//! What every replica binary shares: the `run` flags, loading them into `NodeOptions`, the
//! shutdown signals, and running a node to an exit code. `replica run` and
//! `byzantine-replica` differ only in the interceptor they pass.

use super::{Interceptor, NodeError, NodeOptions};
use crate::config::{ClusterConfig, ConfigError, load_secret_key, replica_key_path};
use crate::ids::ReplicaId;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for bad configuration or key files, as opposed to a failure while running.
pub const EXIT_CONFIG: u8 = 2;

#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub id: u32,
    /// Default: <config dir>/replica-N.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Default: <config dir>/replica-N.key.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Exit cleanly when standard input closes (so a dead parent leaves no orphan replica).
    #[arg(long)]
    pub exit_with_stdin: bool,
    /// How often the event log reaches `events.jsonl`, in ms; 0 = after every turn. The
    /// harness asks for 0 when a fault waits for this replica's event (a kill right after its
    /// COMMIT), so the fault lands within a turn of the event rather than a flush period.
    #[arg(long, default_value_t = 200)]
    pub events_flush_ms: u64,
}

/// Log lines on standard error, `info` and above unless `RUST_LOG` says otherwise; coloured
/// only on a terminal (see [`crate::logging`]).
pub fn init_logging() {
    crate::logging::init("info");
}

pub fn load_options(args: &RunArgs) -> Result<NodeOptions, ConfigError> {
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
        events_flush: Duration::from_millis(args.events_flush_ms),
    })
}

/// Runs a node with `interceptor` until SIGTERM, SIGINT or (with `--exit-with-stdin`) the end
/// of standard input: 0 on a clean stop, 2 on bad configuration, 1 on any other failure.
pub fn run_to_exit(
    options: NodeOptions,
    interceptor: Box<dyn Interceptor>,
    exit_with_stdin: bool,
) -> ExitCode {
    // One thread for every socket: the core has its own thread (node::driver), and on a small
    // machine more I/O workers only add cross-thread wake-ups (measured: +57% ops/s at 32
    // clients with one I/O thread instead of one per core).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = shutdown_signal(exit_with_stdin)?;
        super::run(options, interceptor, shutdown)
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

/// Completes on SIGTERM, SIGINT or (with `exit_with_stdin`) end of standard input.
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
