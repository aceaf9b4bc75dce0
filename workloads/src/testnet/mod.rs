//! A local cluster of real `replica` processes on free 127.0.0.1 ports, for tests and
//! benchmarks: `replica testnet` writes the cluster file and keys, then one
//! `replica run --exit-with-stdin` per replica. Every process is killed when the cluster is
//! dropped (also when a test panics), and each dies on its own if this process is killed,
//! because its stdin pipe closes.

pub mod binary;

pub use binary::{REPLICA_BIN_ENV, replica_binary};

use crate::client::{Client, ClientError};
use ed25519_dalek::SigningKey;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use replica::auth::AuthMode;
use replica::config::{self, ClusterConfig, ConfigError, Timeouts};
use replica::events::EventLine;
use replica::ids::{ClientId, ReplicaId};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use thiserror::Error;

/// Set to `1` to keep the cluster directory (logs, events, stats) after the cluster is dropped.
pub const KEEP_DIR_ENV: &str = "GAUNTLET_KEEP_TESTNET";

const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
const TERMINATE_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Error)]
pub enum TestnetError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("building the replica binary: {0}")]
    Build(String),
    #[error("`replica testnet` failed ({status}): {stderr}")]
    Testnet { status: ExitStatus, stderr: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("replica {id} exited ({status}) before listening; stderr ends with:\n{stderr}")]
    ReplicaExited {
        id: ReplicaId,
        status: ExitStatus,
        stderr: String,
    },
    #[error("replica {id} did not listen on {address} within {waited:?}")]
    NotListening {
        id: ReplicaId,
        address: SocketAddr,
        waited: Duration,
    },
    #[error("no replica {0} in this cluster")]
    NoSuchReplica(ReplicaId),
    #[error("signalling replica {id}: {message}")]
    Signal { id: ReplicaId, message: String },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestnetError {
    let context = context.into();
    move |source| TestnetError::Io { context, source }
}

#[derive(Clone, Debug)]
pub struct LocalClusterOptions {
    pub f: usize,
    /// Client identities (and key files) to create: ids `0..clients`.
    pub clients: u32,
    /// fsync the write-ahead log. Off by default: tests and benchmarks want speed.
    pub fsync: bool,
    pub checkpoint_interval: Option<u64>,
    pub watermark_window: Option<u64>,
    pub timeouts: Option<Timeouts>,
    pub pipeline_depth: Option<u64>,
    pub max_batch: Option<usize>,
    /// Signatures everywhere, or MACs where no third party must be convinced.
    pub auth: AuthMode,
    /// `RUST_LOG` for the replicas (their stderr goes to `replica-N.stderr` in the cluster dir).
    pub log_filter: Option<String>,
}

impl Default for LocalClusterOptions {
    fn default() -> Self {
        LocalClusterOptions {
            f: 1,
            clients: 4,
            fsync: false,
            checkpoint_interval: None,
            watermark_window: None,
            timeouts: None,
            pipeline_depth: None,
            max_batch: None,
            auth: AuthMode::default(),
            log_filter: None,
        }
    }
}

pub struct LocalCluster {
    dir: TempDir,
    config_path: PathBuf,
    config: ClusterConfig,
    binary: PathBuf,
    log_filter: Option<String>,
    processes: Vec<Option<Child>>,
    /// Set once `route_peers` gave each replica its own cluster file.
    routed: bool,
}

impl LocalCluster {
    /// Writes the cluster files, starts every replica and waits until each one listens.
    pub fn start(options: LocalClusterOptions) -> Result<LocalCluster, TestnetError> {
        let binary = replica_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("gauntlet-testnet-")
            .tempdir()
            .map_err(io("creating the cluster directory"))?;
        let output = Command::new(&binary)
            .arg("testnet")
            .args(["--f", &options.f.to_string(), "--clients"])
            .arg(options.clients.to_string())
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(io(format!("running {} testnet", binary.display())))?;
        if !output.status.success() {
            return Err(TestnetError::Testnet {
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let config_path = dir.path().join("cluster.yaml");
        let mut config = ClusterConfig::load(&config_path)?;
        let ports = free_ports(config.replicas.len())?;
        for (entry, port) in config.replicas.iter_mut().zip(ports) {
            entry.address = SocketAddr::from(([127, 0, 0, 1], port));
        }
        config.fsync = options.fsync;
        config.auth = options.auth;
        if let Some(interval) = options.checkpoint_interval {
            config.checkpoint_interval = interval;
        }
        if let Some(window) = options.watermark_window {
            config.watermark_window = window;
        }
        if let Some(depth) = options.pipeline_depth {
            config.pipeline_depth = depth;
        }
        if let Some(max_batch) = options.max_batch {
            config.max_batch = max_batch;
        }
        if let Some(timeouts) = options.timeouts {
            config.timeouts = timeouts;
        }
        std::fs::write(&config_path, config.to_yaml())
            .map_err(io(format!("writing {}", config_path.display())))?;
        // Re-load what we wrote, so a bad option is reported as the replicas would see it.
        let config = ClusterConfig::load(&config_path)?;
        let mut cluster = LocalCluster {
            processes: (0..config.replicas.len()).map(|_| None).collect(),
            dir,
            config_path,
            config,
            binary,
            log_filter: options.log_filter,
            routed: false,
        };
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        for id in cluster.ids() {
            cluster.wait_listening(id)?;
        }
        Ok(cluster)
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn ids(&self) -> Vec<ReplicaId> {
        self.config.replica_ids().collect()
    }

    pub fn data_dir(&self, id: ReplicaId) -> PathBuf {
        self.dir().join(format!("replica-{id}"))
    }

    pub fn events_path(&self, id: ReplicaId) -> PathBuf {
        self.data_dir(id).join("events.jsonl")
    }

    pub fn stats_path(&self, id: ReplicaId) -> PathBuf {
        self.data_dir(id).join("stats.json")
    }

    pub fn stderr_path(&self, id: ReplicaId) -> PathBuf {
        self.dir().join(format!("replica-{id}.stderr"))
    }

    pub fn client_key_path(&self, client: ClientId) -> PathBuf {
        config::client_key_path(self.dir(), client)
    }

    pub fn client_key(&self, client: ClientId) -> Result<SigningKey, TestnetError> {
        Ok(config::load_secret_key(&self.client_key_path(client))?)
    }

    /// A client of this cluster (call inside a tokio runtime).
    pub fn client(&self, client: ClientId) -> Result<Client, ClientError> {
        let key = self
            .client_key(client)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Client::new(&self.config, client, key)
    }

    /// The events a replica has written so far (a torn last line is skipped).
    pub fn events(&self, id: ReplicaId) -> Vec<EventLine> {
        std::fs::read_to_string(self.events_path(id))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The replica's `stats.json`, if it has written one.
    pub fn stats(&self, id: ReplicaId) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.stats_path(id)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The process id of a running replica (for resource accounting).
    pub fn pid(&self, id: ReplicaId) -> Option<u32> {
        self.processes.get(id.0 as usize)?.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self, id: ReplicaId) -> bool {
        match self.processes.get_mut(id.0 as usize) {
            Some(Some(child)) => matches!(child.try_wait(), Ok(None)),
            _ => false,
        }
    }

    /// `kill -9`: the replica gets no chance to flush anything.
    pub fn kill(&mut self, id: ReplicaId) -> Result<(), TestnetError> {
        let Some(mut child) = self.take_child(id)? else {
            return Ok(());
        };
        signal_group(id, &child, Signal::SIGKILL)?;
        child
            .wait()
            .map_err(io(format!("waiting for replica {id}")))?;
        Ok(())
    }

    /// SIGTERM (a clean shutdown), then SIGKILL if it has not exited after a grace period.
    pub fn terminate(&mut self, id: ReplicaId) -> Result<Option<ExitStatus>, TestnetError> {
        let Some(mut child) = self.take_child(id)? else {
            return Ok(None);
        };
        signal_group(id, &child, Signal::SIGTERM)?;
        let deadline = Instant::now() + TERMINATE_GRACE;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(io(format!("waiting for replica {id}")))?
            {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                signal_group(id, &child, Signal::SIGKILL)?;
                let status = child
                    .wait()
                    .map_err(io(format!("waiting for replica {id}")))?;
                return Ok(Some(status));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Starts the replica again on the same data dir (killing it first if it still runs) and
    /// waits until it listens.
    pub fn restart(&mut self, id: ReplicaId) -> Result<(), TestnetError> {
        self.kill(id)?;
        self.spawn(id)?;
        self.wait_listening(id)
    }

    /// Makes every replica dial each peer at `route(dialer, peer)` instead of the peer's own
    /// address, so something (the harness's proxy) can sit on each directed link, and restarts
    /// the replicas to read it. Each replica still listens on its own address; the clients this
    /// cluster makes still connect directly.
    pub fn route_peers(
        &mut self,
        mut route: impl FnMut(ReplicaId, ReplicaId) -> SocketAddr,
    ) -> Result<(), TestnetError> {
        for dialer in self.ids() {
            let mut config = self.config.clone();
            for entry in &mut config.replicas {
                if entry.id != dialer {
                    entry.address = route(dialer, entry.id);
                }
            }
            let path = self.replica_config_path(dialer);
            std::fs::write(&path, config.to_yaml())
                .map_err(io(format!("writing {}", path.display())))?;
        }
        self.routed = true;
        for id in self.ids() {
            self.restart(id)?;
        }
        Ok(())
    }

    /// The cluster file a replica reads: its own once routed, the shared one before.
    fn replica_config_path(&self, id: ReplicaId) -> PathBuf {
        self.dir().join(format!("replica-{id}.yaml"))
    }

    fn take_child(&mut self, id: ReplicaId) -> Result<Option<Child>, TestnetError> {
        self.processes
            .get_mut(id.0 as usize)
            .map(Option::take)
            .ok_or(TestnetError::NoSuchReplica(id))
    }

    fn spawn(&mut self, id: ReplicaId) -> Result<(), TestnetError> {
        let stderr_path = self.stderr_path(id);
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(io(format!("opening {}", stderr_path.display())))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("run")
            .arg("--config")
            .arg(if self.routed {
                self.replica_config_path(id)
            } else {
                self.config_path.clone()
            })
            .args(["--id", &id.to_string(), "--data-dir"])
            .arg(self.data_dir(id))
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group, so a signal reaches anything it starts as well.
            .process_group(0);
        if let Some(filter) = &self.log_filter {
            command.env("RUST_LOG", filter);
        }
        let child = command
            .spawn()
            .map_err(io(format!("starting {} run", self.binary.display())))?;
        let slot = self
            .processes
            .get_mut(id.0 as usize)
            .ok_or(TestnetError::NoSuchReplica(id))?;
        *slot = Some(child);
        Ok(())
    }

    fn wait_listening(&mut self, id: ReplicaId) -> Result<(), TestnetError> {
        let address = self
            .config
            .address_of(id)
            .ok_or(TestnetError::NoSuchReplica(id))?;
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(Some(child)) = self.processes.get_mut(id.0 as usize)
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(TestnetError::ReplicaExited {
                    id,
                    status,
                    stderr: tail(&self.stderr_path(id), 2000),
                });
            }
            if started.elapsed() > LISTEN_TIMEOUT {
                return Err(TestnetError::NotListening {
                    id,
                    address,
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if std::env::var(KEEP_DIR_ENV).is_ok_and(|v| v == "1") {
            self.dir.disable_cleanup(true);
            eprintln!(
                "kept the local cluster's directory {}",
                self.dir().display()
            );
        }
        for (index, slot) in self.processes.iter_mut().enumerate() {
            if let Some(mut child) = slot.take() {
                let _ = signal_group(ReplicaId(index as u32), &child, Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn signal_group(id: ReplicaId, child: &Child, signal: Signal) -> Result<(), TestnetError> {
    let group = Pid::from_raw(child.id() as i32);
    match killpg(group, signal) {
        // Already gone: nothing left to signal.
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(TestnetError::Signal {
            id,
            message: errno.to_string(),
        }),
    }
}

/// Ports the OS considers free right now (all bound at once, so they are distinct).
fn free_ports(count: usize) -> Result<Vec<u16>, TestnetError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("finding free ports on 127.0.0.1"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("finding free ports on 127.0.0.1"))
}

fn tail(path: &Path, max_bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max_bytes);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}
