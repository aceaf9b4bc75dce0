//! Shared by the `node_*` integration tests: a testnet on free ports and replica processes
//! that are always killed when the test ends, panics included.
#![allow(dead_code)]

use replica::config::{ClusterConfig, client_key_path, load_secret_key};
use replica::ids::{ClientId, Principal, ReplicaId, Timestamp};
use replica::kv::Operation;
use replica::message::{Request, Signed, WireMessage};
use replica::node::StatsSnapshot;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_replica");
/// Generous: tests poll for a condition and stop as soon as it holds.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn replica_command(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the replica binary runs")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Testnet {
    pub dir: tempfile::TempDir,
    pub config: ClusterConfig,
}

impl Testnet {
    /// `replica testnet` with f = 1, seeded keys, no fsync; then every replica moved to a free
    /// port so tests can run in parallel.
    pub fn new(seed: u64) -> Testnet {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir_arg = dir.path().to_str().expect("utf-8 temp path");
        let seed = seed.to_string();
        let out = replica_command(&[
            "testnet",
            "--f",
            "1",
            "--dir",
            dir_arg,
            "--seed",
            &seed,
            "--no-fsync",
        ]);
        assert!(out.status.success(), "testnet failed: {out:?}");
        let path = dir.path().join("cluster.yaml");
        let mut config = ClusterConfig::load(&path).expect("testnet writes a loadable cluster");
        for replica in &mut config.replicas {
            replica.address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        }
        std::fs::write(&path, config.to_yaml()).expect("rewrite cluster.yaml");
        Testnet { dir, config }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("cluster.yaml")
    }

    pub fn data_dir(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("replica-{id}"))
    }

    pub fn address(&self, id: u32) -> SocketAddr {
        self.config.replicas[id as usize].address
    }

    pub fn start(&self, id: u32) -> ReplicaProcess {
        self.start_with(id, &[], false)
    }

    pub fn start_with(&self, id: u32, extra: &[&str], pipe_stdin: bool) -> ReplicaProcess {
        let log = std::fs::File::create(self.dir.path().join(format!("replica-{id}.stderr")))
            .expect("stderr log");
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .arg("--id")
            .arg(id.to_string())
            .args(extra)
            .stdin(if pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn replica");
        let process = ReplicaProcess { child };
        wait_for_listener(self.address(id));
        process
    }

    pub fn stats(&self, id: u32) -> Option<StatsSnapshot> {
        let text = std::fs::read_to_string(self.data_dir(id).join("stats.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Polls stats.json until `condition` holds; panics with the last stats otherwise.
    pub fn wait_for_stats(
        &self,
        id: u32,
        what: &str,
        condition: impl Fn(&StatsSnapshot) -> bool,
    ) -> StatsSnapshot {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.stats(id);
            if let Some(stats) = &stats
                && condition(stats)
            {
                return stats.clone();
            }
            assert!(
                Instant::now() < deadline,
                "replica {id} never reported {what}; last stats: {stats:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn client_key(&self, client: u32) -> ed25519_dalek::SigningKey {
        load_secret_key(&client_key_path(self.dir.path(), ClientId(client))).expect("client key")
    }

    pub fn stderr(&self, id: u32) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("replica-{id}.stderr")))
            .unwrap_or_default()
    }
}

/// A running `replica run`; killed (SIGKILL) and reaped on drop if still running.
pub struct ReplicaProcess {
    pub child: Child,
}

impl ReplicaProcess {
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).expect("signal the replica");
    }

    /// Waits for the process to exit by itself; panics if it does not within the patience.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "replica did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

pub fn wait_for_listener(address: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(address).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signed_request(
    key: &ed25519_dalek::SigningKey,
    client: u32,
    timestamp: u64,
    op: Operation,
) -> Signed<Request> {
    let body = Request {
        client: ClientId(client),
        timestamp: Timestamp(timestamp),
        op,
    };
    Signed::sign(body, Principal::Client(ClientId(client)), key)
}

pub fn put(key: &str, value: &str) -> Operation {
    Operation::Put {
        key: key.into(),
        value: value.into(),
    }
}

pub fn frame(message: &WireMessage) -> Vec<u8> {
    replica::wire::encode_frame(message)
}

pub fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream
}

/// True if the server closed the connection (EOF or reset) before `PATIENCE` ran out.
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 64];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Reads one frame from a stream and decodes it.
pub fn read_message(stream: &mut TcpStream) -> std::io::Result<WireMessage> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix)?;
    let mut payload = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut payload)?;
    replica::wire::decode_payload(&payload, replica::wire::DEFAULT_MAX_FRAME)
        .map_err(std::io::Error::other)
}

pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("send");
}

pub fn replica_id(id: u32) -> ReplicaId {
    ReplicaId(id)
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
