//! The tokio node that runs one core in a real process.
//!
//! * [`inbound`]: listener and connection tasks (framing, verification, reply routes);
//! * [`outbound`]: one dialer and one bounded drop-oldest queue per peer;
//! * [`driver`]: the core task (interceptor, core, effects in order, group commit, timers);
//! * [`wal`]: the write-ahead log and snapshot; [`event_log`] and [`stats`]: what the harness reads.
//!
//! Data dir layout: `wal.log`, `snapshot.bin`, `events.jsonl`, `stats.json`.

pub mod cli;
mod driver;
pub mod event_log;
mod inbound;
mod intake;
mod intercept;
pub mod outbound;
mod reply_queue;
pub mod stats;
pub mod testnet;
#[cfg(test)]
mod tests;
mod verifier;
pub mod wal;

pub use event_log::EVENTS_FILE;
pub use intercept::{Honest, InterceptContext, Interceptor};
pub use stats::{NodeStats, STATS_FILE, StatsSnapshot};

use crate::config::{ClusterConfig, ConfigError};
use crate::core::{Core, CoreParams};
use crate::ids::{Principal, ReplicaId};
use ed25519_dalek::SigningKey;
use event_log::EventLog;
use inbound::{ClientRoutes, Inbound};
use outbound::PeerQueue;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use wal::{Wal, WalError};

/// Verified replica messages waiting for the core; when full, connection tasks stop reading.
const CORE_QUEUE: usize = 4096;
/// Verified client requests waiting for the core; when full, requests wait unverified (one
/// per sender, see `intake`).
const CORE_REQUEST_QUEUE: usize = 1024;
const PEER_QUEUE_FRAMES: usize = 8192;
const PEER_QUEUE_BYTES: usize = 64 * 1024 * 1024;
const STATS_EVERY: Duration = Duration::from_secs(1);

pub struct NodeOptions {
    pub config: ClusterConfig,
    /// Where `config` was read from (named in error messages).
    pub config_path: PathBuf,
    pub id: ReplicaId,
    pub key: SigningKey,
    pub data_dir: PathBuf,
    /// How often events reach their file (zero: after every turn).
    pub events_flush: Duration,
}

#[derive(Debug, Error)]
pub enum NodeError {
    /// The cluster file, the key or the replica id does not fit together.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("write-ahead log: {0}")]
    Wal(#[from] WalError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Runs one replica until `shutdown` completes (or the core stops on a fatal error), then
/// makes the log durable, flushes events, writes `stats.json` and returns.
pub async fn run(
    options: NodeOptions,
    interceptor: Box<dyn Interceptor>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let NodeOptions {
        config,
        config_path,
        id,
        key,
        data_dir,
        events_flush,
    } = options;
    let field = |field: String, message: String| ConfigError::Field {
        file: config_path.clone(),
        field,
        message,
    };
    let Some(entry) = config.replicas.get(id.0 as usize) else {
        let message = format!("no replica {id} (the file lists {})", config.replicas.len());
        return Err(field("replicas".into(), message).into());
    };
    let address = entry.address;
    let keys = Arc::new(config.key_store_for(&config_path, Principal::Replica(id), &key)?);
    if keys.key_of(Principal::Replica(id)) != Some(&key.verifying_key()) {
        let message = "does not match the secret key this replica was started with".to_string();
        return Err(field(format!("replicas[{id}].public_key"), message).into());
    }
    let config = Arc::new(config);

    let config_fsync = config.fsync;
    let (wal, recovered) = Wal::open(&data_dir, config.fsync)?;
    let io = |what: String| move |source| NodeError::Io { what, source };
    let events = Arc::new(
        EventLog::open(&data_dir, id)
            .map_err(io(format!("{}/{EVENTS_FILE}", data_dir.display())))?,
    );
    let stats = Arc::new(NodeStats::new(id));
    let params = CoreParams::from_config(&config, id);
    let core = if recovered.is_empty() {
        Core::new(params, key.clone(), keys.clone())
    } else {
        tracing::info!(
            snapshot = recovered.snapshot.as_ref().map(|s| s.seq.0),
            records = recovered.records.len(),
            torn_bytes = recovered.torn_bytes,
            "recovering from the data dir"
        );
        Core::recover(
            params,
            key.clone(),
            keys.clone(),
            recovered.snapshot,
            recovered.records,
        )
    };

    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| NodeError::Listen { address, source })?;
    tracing::info!(replica = %id, %address, data_dir = %data_dir.display(), "listening");

    let mut tasks = JoinSet::new();
    let routes = Arc::new(ClientRoutes::default());
    let (to_core, inputs) = mpsc::channel(CORE_QUEUE);
    let (requests_to_core, request_inputs) = mpsc::channel(CORE_REQUEST_QUEUE);
    let (intake, unverified) = intake::Intake::new(CORE_QUEUE);
    let peers = config
        .replicas
        .iter()
        .map(|peer| {
            (peer.id != id).then(|| {
                let queue = Arc::new(PeerQueue::new(PEER_QUEUE_FRAMES, PEER_QUEUE_BYTES));
                tasks.spawn(outbound::dial_peer(
                    peer.id,
                    peer.address,
                    queue.clone(),
                    stats.clone(),
                ));
                queue
            })
        })
        .collect();
    let inbound = Arc::new(Inbound {
        keys: keys.clone(),
        max_frame: config.max_frame_bytes,
        intake,
        stats: stats.clone(),
        events: events.clone(),
        routes: routes.clone(),
    });
    let to_core = verifier::ToCore {
        replicas: to_core,
        requests: requests_to_core,
    };
    tasks.spawn(verifier::run(unverified, to_core, inbound.clone()));
    tasks.spawn(inbound::serve(listener, inbound));
    let stats_dir = data_dir.clone();
    let stats_writer = stats.clone();
    tasks.spawn(async move {
        let mut every = tokio::time::interval(STATS_EVERY);
        loop {
            every.tick().await;
            if let Err(e) = stats_writer.write(&stats_dir) {
                tracing::warn!(error = %e, "cannot write stats.json");
            }
        }
    });

    let driver = driver::Driver {
        host: crate::host::Host::new(core, Some(interceptor), key, keys, config, Duration::ZERO),
        epoch: tokio::time::Instant::now(),
        reported_dropped: 0,
        wal,
        events: events.clone(),
        events_flush,
        stats: stats.clone(),
        peers,
        routes,
    };
    let inputs = driver::Inputs::new(inputs, request_inputs);
    let (stop, stopped) = oneshot::channel();
    let (done_tx, done) = oneshot::channel();
    // With fsync on, the core gets a thread of its own so its blocking fsync never stalls the
    // network tasks. Without fsync nothing in it blocks, and running it beside the sockets
    // saves a cross-thread wake-up per message.
    if !config_fsync {
        tokio::spawn(async move {
            let result = driver.run(inputs, stopped).await.map_err(NodeError::from);
            let _ = done_tx.send(result);
        });
    } else {
        std::thread::Builder::new()
            .name(format!("replica-{id}-core"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| NodeError::Io {
                        what: "core runtime".into(),
                        source,
                    })
                    .and_then(|runtime| Ok(runtime.block_on(driver.run(inputs, stopped))?));
                let _ = done_tx.send(result);
            })
            .map_err(io("core thread".into()))?;
    }

    tokio::pin!(shutdown);
    let mut done = done;
    let result = tokio::select! {
        () = &mut shutdown => {
            tracing::info!(replica = %id, "shutting down");
            let _ = stop.send(());
            done.await
        }
        result = &mut done => result,
    };
    let result = result.unwrap_or_else(|_| {
        Err(NodeError::Io {
            what: "core thread".into(),
            source: std::io::Error::other("the core thread ended without a result"),
        })
    });
    tasks.shutdown().await;
    events.flush();
    if let Err(e) = stats.write(&data_dir) {
        tracing::warn!(error = %e, "cannot write stats.json");
    }
    result
}
