//! A local testnet: `cluster.yaml` plus one secret key file per replica and per client.

use crate::config::{
    ClientEntry, ClusterConfig, ReplicaEntry, client_key_path, replica_key_path, write_secret_key,
};
use crate::crypto::{self, key_from_seed};
use crate::ids::{ClientId, Principal, ReplicaId};
use ed25519_dalek::SigningKey;
use rand_core::TryRng;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const CLUSTER_FILE: &str = "cluster.yaml";

#[derive(Clone, Debug)]
pub struct TestnetSpec {
    pub f: usize,
    pub clients: u32,
    /// Replica `i` listens on `127.0.0.1:base_port + i`.
    pub base_port: u16,
    /// Derive every key from this seed (reproducible runs); `None` draws keys from the OS.
    pub seed: Option<u64>,
    pub fsync: bool,
}

#[derive(Debug, Error)]
pub enum TestnetError {
    #[error("f must be at least 1")]
    ZeroF,
    #[error("ports {first}..{first}+{n} do not fit below 65536")]
    PortsOutOfRange { first: u16, n: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw a key from the operating system: {0}")]
    Entropy(String),
}

/// Writes `dir/cluster.yaml` and the key files; returns the cluster written.
pub fn write_testnet(dir: &Path, spec: &TestnetSpec) -> Result<ClusterConfig, TestnetError> {
    if spec.f == 0 {
        return Err(TestnetError::ZeroF);
    }
    let n = 3 * spec.f + 1;
    let last_port = spec.base_port as usize + n - 1;
    if last_port > u16::MAX as usize || spec.base_port == 0 {
        return Err(TestnetError::PortsOutOfRange {
            first: spec.base_port,
            n,
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TestnetError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let make_key = |principal: Principal| match spec.seed {
        Some(seed) => Ok(key_from_seed(seed, principal)),
        None => os_key(),
    };

    let mut replicas = Vec::with_capacity(n);
    for i in 0..n {
        let id = ReplicaId(i as u32);
        let key = make_key(Principal::Replica(id))?;
        let path = replica_key_path(dir, id);
        write_secret_key(&path, &key).map_err(io(&path))?;
        replicas.push(ReplicaEntry {
            id,
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, spec.base_port + i as u16)),
            public_key: crypto::public_key_hex(&key.verifying_key()),
        });
    }
    let mut clients = Vec::with_capacity(spec.clients as usize);
    for c in 0..spec.clients {
        let id = ClientId(c);
        let key = make_key(Principal::Client(id))?;
        let path = client_key_path(dir, id);
        write_secret_key(&path, &key).map_err(io(&path))?;
        clients.push(ClientEntry {
            id,
            public_key: crypto::public_key_hex(&key.verifying_key()),
        });
    }
    let config = ClusterConfig {
        fsync: spec.fsync,
        ..ClusterConfig::with_defaults(spec.f, replicas, clients)
    };
    let path = dir.join(CLUSTER_FILE);
    std::fs::write(&path, config.to_yaml()).map_err(io(&path))?;
    Ok(config)
}

fn os_key() -> Result<SigningKey, TestnetError> {
    let mut secret = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut secret)
        .map_err(|e| TestnetError::Entropy(e.to_string()))?;
    Ok(SigningKey::from_bytes(&secret))
}
