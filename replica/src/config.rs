//! The cluster file (`cluster.yaml`) and secret key files.
//!
//! Every error names the file and, where serde knows it, the field and line.

use crate::auth::AuthMode;
use crate::crypto::{self, KeyError, KeyStore};
use crate::ids::{ClientId, Principal, Quorums, ReplicaId};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: field `{field}`: {message}")]
    Field {
        file: PathBuf,
        field: String,
        message: String,
    },
}

/// Protocol timing and sizing. Defaults suit a loopback testnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// How long a backup waits for a pending request to execute before starting a view change.
    pub view_change_ms: u64,
    /// How long a client waits for f+1 matching replies before broadcasting to all replicas.
    pub client_retry_ms: u64,
    /// Upper bound of the doubling view-change timer.
    pub max_view_change_ms: u64,
    /// How often a replica re-asks for state while it is behind.
    pub state_transfer_retry_ms: u64,
    /// How long the primary may hold a partial batch while requests from recently active
    /// clients are still on their way (0: propose whatever is queued at once). The protocol's
    /// own signatures cost the same for a batch of one request as for a batch of sixty.
    pub batch_wait_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            view_change_ms: 1000,
            client_retry_ms: 500,
            max_view_change_ms: 16_000,
            state_transfer_retry_ms: 500,
            batch_wait_ms: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaEntry {
    pub id: ReplicaId,
    pub address: SocketAddr,
    pub public_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub id: ClientId,
    pub public_key: String,
}

fn default_checkpoint_interval() -> u64 {
    64
}
fn default_window() -> u64 {
    256
}
fn default_max_batch() -> usize {
    64
}
fn default_max_frame() -> usize {
    crate::wire::DEFAULT_MAX_FRAME
}
fn default_true() -> bool {
    true
}
fn default_pipeline() -> u64 {
    1
}

/// `cluster.yaml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub f: usize,
    /// A checkpoint is taken every this many sequence numbers.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: u64,
    /// High watermark = low watermark + window; a multiple of the checkpoint interval.
    #[serde(default = "default_window")]
    pub watermark_window: u64,
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// How many batches the primary keeps in flight before it queues requests into a batch.
    #[serde(default = "default_pipeline")]
    pub pipeline_depth: u64,
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// fsync the write-ahead log before dependent messages leave. Turn off only for fast tests.
    #[serde(default = "default_true")]
    pub fsync: bool,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Signatures on every message, or MACs where no third party must be convinced.
    #[serde(default)]
    pub auth: AuthMode,
    pub replicas: Vec<ReplicaEntry>,
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
}

impl ClusterConfig {
    /// A cluster with every setting at its default (the values a cluster file may leave out).
    pub fn with_defaults(f: usize, replicas: Vec<ReplicaEntry>, clients: Vec<ClientEntry>) -> Self {
        ClusterConfig {
            f,
            checkpoint_interval: default_checkpoint_interval(),
            watermark_window: default_window(),
            max_batch: default_max_batch(),
            pipeline_depth: default_pipeline(),
            max_frame_bytes: default_max_frame(),
            fsync: true,
            timeouts: Timeouts::default(),
            auth: AuthMode::default(),
            replicas,
            clients,
        }
    }

    pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse(&text, path)?;
        config.keys(path)?;
        Ok(config)
    }

    pub fn parse(text: &str, path: &Path) -> Result<ClusterConfig, ConfigError> {
        let config: ClusterConfig = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            file: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn field_error(path: &Path, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            file: path.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let n = self.quorums().n();
        if self.f == 0 {
            return Err(Self::field_error(path, "f", "must be at least 1"));
        }
        if self.replicas.len() != n {
            return Err(Self::field_error(
                path,
                "replicas",
                format!(
                    "f = {} needs exactly {n} replicas, found {}",
                    self.f,
                    self.replicas.len()
                ),
            ));
        }
        for (index, entry) in self.replicas.iter().enumerate() {
            if entry.id != ReplicaId(index as u32) {
                return Err(Self::field_error(
                    path,
                    &format!("replicas[{index}].id"),
                    format!(
                        "expected {index}, found {} (ids run 0..n in order)",
                        entry.id
                    ),
                ));
            }
            // Exactly 127.0.0.1: not ::1, not the rest of 127.0.0.0/8.
            if entry.address.ip() != std::net::Ipv4Addr::LOCALHOST {
                return Err(Self::field_error(
                    path,
                    &format!("replicas[{index}].address"),
                    "only 127.0.0.1 addresses are allowed",
                ));
            }
        }
        let mut seen = HashSet::new();
        for (index, entry) in self.clients.iter().enumerate() {
            if !seen.insert(entry.id) {
                return Err(Self::field_error(
                    path,
                    &format!("clients[{index}].id"),
                    format!("client {} appears twice", entry.id),
                ));
            }
        }
        if self.checkpoint_interval == 0 {
            return Err(Self::field_error(
                path,
                "checkpoint_interval",
                "must be at least 1",
            ));
        }
        if self.watermark_window < 2 * self.checkpoint_interval
            || !self
                .watermark_window
                .is_multiple_of(self.checkpoint_interval)
        {
            return Err(Self::field_error(
                path,
                "watermark_window",
                "must be a multiple of checkpoint_interval and at least twice it",
            ));
        }
        if self.max_batch == 0 {
            return Err(Self::field_error(path, "max_batch", "must be at least 1"));
        }
        if self.pipeline_depth == 0 {
            return Err(Self::field_error(
                path,
                "pipeline_depth",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    pub fn quorums(&self) -> Quorums {
        Quorums { f: self.f }
    }

    pub fn replica_ids(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.replicas.iter().map(|r| r.id)
    }

    pub fn address_of(&self, id: ReplicaId) -> Option<SocketAddr> {
        self.replicas.get(id.0 as usize).map(|r| r.address)
    }

    /// Parses and checks every public key (weak keys refused).
    pub fn keys(&self, path: &Path) -> Result<KeyStore, ConfigError> {
        let key = |field: String, hex: &str| -> Result<VerifyingKey, ConfigError> {
            crypto::parse_public_key(hex)
                .map_err(|e: KeyError| Self::field_error(path, &field, e.to_string()))
        };
        let replicas = self
            .replicas
            .iter()
            .enumerate()
            .map(|(i, r)| key(format!("replicas[{i}].public_key"), &r.public_key))
            .collect::<Result<Vec<_>, _>>()?;
        let mut clients = HashMap::new();
        for (i, c) in self.clients.iter().enumerate() {
            clients.insert(
                c.id,
                key(format!("clients[{i}].public_key"), &c.public_key)?,
            );
        }
        Ok(KeyStore::new(replicas, clients))
    }

    /// `me`'s key store: every public key and, under `auth: macs`, `me`'s session keys.
    pub fn key_store_for(
        &self,
        path: &Path,
        me: Principal,
        secret: &SigningKey,
    ) -> Result<KeyStore, ConfigError> {
        let keys = self.keys(path)?;
        Ok(match self.auth {
            AuthMode::Signatures => keys,
            AuthMode::Macs => keys.with_sessions(me, secret),
        })
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a cluster config always serializes")
    }
}

/// Where `replica testnet` puts a principal's secret key: next to the cluster file.
pub fn replica_key_path(config_dir: &Path, id: ReplicaId) -> PathBuf {
    config_dir.join(format!("replica-{id}.key"))
}

pub fn client_key_path(config_dir: &Path, id: ClientId) -> PathBuf {
    config_dir.join(format!("client-{id}.key"))
}

/// Reads a secret key file (hex of 32 bytes, surrounding whitespace ignored).
pub fn load_secret_key(path: &Path) -> Result<SigningKey, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    crypto::parse_secret_key(&text).map_err(|e| ConfigError::Field {
        file: path.to_path_buf(),
        field: "secret key".into(),
        message: e.to_string(),
    })
}

/// Writes a secret key file readable only by its owner.
pub fn write_secret_key(path: &Path, key: &SigningKey) -> std::io::Result<()> {
    std::fs::write(path, crypto::secret_key_hex(key) + "\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
