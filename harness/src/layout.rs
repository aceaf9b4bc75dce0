//! The run folder: where every file of a run lives, and the per-principal cluster files that
//! route every link through the proxy.

use crate::plan::Plan;
use crate::proxy::Endpoint;
use anyhow::Context;
use replica::config::{ClientEntry, ClusterConfig, ReplicaEntry, write_secret_key};
use replica::crypto::{key_from_seed, public_key_hex};
use replica::{ClientId, Principal, ReplicaId};
use std::path::{Path, PathBuf};

/// Paths inside one run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: PathBuf) -> RunDir {
        RunDir { root }
    }

    pub fn scenario(&self) -> PathBuf {
        self.root.join("scenario.yaml")
    }
    pub fn plan(&self) -> PathBuf {
        self.root.join("plan.json")
    }
    pub fn history(&self) -> PathBuf {
        self.root.join("history.jsonl")
    }
    pub fn nemesis(&self) -> PathBuf {
        self.root.join("nemesis.jsonl")
    }
    pub fn proxy_log(&self) -> PathBuf {
        self.root.join("proxy.jsonl")
    }
    pub fn proxy_stats(&self) -> PathBuf {
        self.root.join("proxy-stats.json")
    }
    pub fn verdict(&self) -> PathBuf {
        self.root.join("verdict.json")
    }
    /// Facts of the run the checkers need later (`gauntlet check`): the heal time, mostly.
    pub fn timeline(&self) -> PathBuf {
        self.root.join("timeline.json")
    }
    pub fn cluster_dir(&self) -> PathBuf {
        self.root.join("cluster")
    }
    pub fn replica_config(&self, id: ReplicaId) -> PathBuf {
        self.cluster_dir().join(format!("replica-{id}.yaml"))
    }
    pub fn client_config(&self, id: ClientId) -> PathBuf {
        self.cluster_dir().join(format!("client-{id}.yaml"))
    }
    pub fn replica_key(&self, id: ReplicaId) -> PathBuf {
        self.cluster_dir().join(format!("replica-{id}.key"))
    }
    pub fn client_key(&self, id: ClientId) -> PathBuf {
        self.cluster_dir().join(format!("client-{id}.key"))
    }
    /// The replica's data dir (write-ahead log, snapshot, its own events and stats).
    pub fn data_dir(&self, id: ReplicaId) -> PathBuf {
        self.root.join("data").join(format!("replica-{id}"))
    }
    pub fn replica_stderr(&self, id: ReplicaId) -> PathBuf {
        self.root.join(format!("replica-{id}.stderr"))
    }
    /// The replica's events, collected from its data dir after the run.
    pub fn replica_events(&self, id: ReplicaId) -> PathBuf {
        self.root.join(format!("replica-{id}.events.jsonl"))
    }
    pub fn replica_stats(&self, id: ReplicaId) -> PathBuf {
        self.root.join(format!("replica-{id}.stats.json"))
    }

    // A twinned replica's second process (twin B) has files of its own, named `replica-N-twin`
    // so that nothing reading `replica-N.*` mistakes them for the replica's.
    pub fn twin_config(&self, id: ReplicaId) -> PathBuf {
        self.cluster_dir().join(format!("replica-{id}-twin.yaml"))
    }
    pub fn twin_data_dir(&self, id: ReplicaId) -> PathBuf {
        self.root.join("data").join(format!("replica-{id}-twin"))
    }
    pub fn twin_stderr(&self, id: ReplicaId) -> PathBuf {
        self.root.join(format!("replica-{id}-twin.stderr"))
    }
    pub fn twin_events(&self, id: ReplicaId) -> PathBuf {
        self.root.join(format!("replica-{id}-twin.events.jsonl"))
    }
    pub fn twin_stats(&self, id: ReplicaId) -> PathBuf {
        self.root.join(format!("replica-{id}-twin.stats.json"))
    }
}

/// The cluster file as `principal` must see it: every replica other than itself at the proxy
/// port of the directed link `principal -> that replica`; itself at its real address (for
/// `Endpoint::Twin`, twin B's).
pub fn cluster_config_for(plan: &Plan, principal: Endpoint) -> anyhow::Result<ClusterConfig> {
    let c = &plan.scenario.cluster;
    let replicas = plan
        .replicas
        .iter()
        .map(|r| {
            let address = if principal == Endpoint::Replica(r.id) {
                r.address
            } else if principal == Endpoint::Twin(r.id) {
                r.twin_address
                    .with_context(|| format!("replica {} has no twin", r.id))?
            } else {
                plan.link_address(principal, r.id).with_context(|| {
                    format!(
                        "the plan has no link from {principal:?} to replica {}",
                        r.id
                    )
                })?
            };
            let key = key_from_seed(plan.key_seed, Principal::Replica(r.id));
            Ok(ReplicaEntry {
                id: r.id,
                address,
                public_key: public_key_hex(&key.verifying_key()),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let clients = plan
        .clients
        .iter()
        .map(|client| ClientEntry {
            id: client.id,
            public_key: public_key_hex(
                &key_from_seed(plan.key_seed, Principal::Client(client.id)).verifying_key(),
            ),
        })
        .collect();
    Ok(ClusterConfig {
        f: c.f,
        checkpoint_interval: c.checkpoint_interval,
        watermark_window: c.watermark_window,
        max_batch: c.max_batch,
        pipeline_depth: c.pipeline_depth,
        max_frame_bytes: replica::wire::DEFAULT_MAX_FRAME,
        fsync: c.fsync,
        timeouts: c.timeouts.clone(),
        replicas,
        clients,
    })
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes every cluster file and secret key of the plan.
pub fn write_cluster_files(dir: &RunDir, plan: &Plan) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.cluster_dir())
        .with_context(|| format!("cannot create {}", dir.cluster_dir().display()))?;
    for r in &plan.replicas {
        let config = cluster_config_for(plan, Endpoint::Replica(r.id))?;
        write(&dir.replica_config(r.id), &config.to_yaml())?;
        let key = key_from_seed(plan.key_seed, Principal::Replica(r.id));
        write_secret_key(&dir.replica_key(r.id), &key)
            .with_context(|| format!("cannot write {}", dir.replica_key(r.id).display()))?;
        std::fs::create_dir_all(dir.data_dir(r.id))
            .with_context(|| format!("cannot create {}", dir.data_dir(r.id).display()))?;
        if r.twin_address.is_some() {
            let config = cluster_config_for(plan, Endpoint::Twin(r.id))?;
            write(&dir.twin_config(r.id), &config.to_yaml())?;
            std::fs::create_dir_all(dir.twin_data_dir(r.id))
                .with_context(|| format!("cannot create {}", dir.twin_data_dir(r.id).display()))?;
        }
    }
    for client in &plan.clients {
        let config = cluster_config_for(plan, Endpoint::Client(client.id))?;
        write(&dir.client_config(client.id), &config.to_yaml())?;
        let key = key_from_seed(plan.key_seed, Principal::Client(client.id));
        write_secret_key(&dir.client_key(client.id), &key)
            .with_context(|| format!("cannot write {}", dir.client_key(client.id).display()))?;
    }
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ` for the run folder's name (UTC, from the wall clock).
pub fn timestamp_label() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan, scenario};

    #[test]
    fn each_replica_sees_peers_through_its_own_links_and_itself_directly() {
        let loaded = scenario::load("smoke").expect("built-in");
        let plan = plan::resolve(&loaded, 3).expect("plan");
        let config = cluster_config_for(&plan, Endpoint::Replica(ReplicaId(1))).expect("config");
        for entry in &config.replicas {
            if entry.id == ReplicaId(1) {
                assert_eq!(entry.address, plan.replicas[1].address);
            } else {
                let link = plan
                    .links
                    .iter()
                    .find(|l| l.from == Endpoint::Replica(ReplicaId(1)) && l.to == entry.id)
                    .expect("link");
                assert_eq!(entry.address, link.listen);
                assert_eq!(link.target, plan.replicas[entry.id.0 as usize].address);
            }
        }
        let client = cluster_config_for(&plan, Endpoint::Client(ClientId(2))).expect("config");
        for entry in &client.replicas {
            assert_eq!(
                Some(entry.address),
                plan.link_address(Endpoint::Client(ClientId(2)), entry.id)
            );
        }
        // Same keys for everyone.
        assert_eq!(
            config
                .replicas
                .iter()
                .map(|r| &r.public_key)
                .collect::<Vec<_>>(),
            client
                .replicas
                .iter()
                .map(|r| &r.public_key)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn written_cluster_files_load_with_the_replica_loader() {
        let loaded = scenario::load("smoke").expect("built-in");
        let plan = plan::resolve(&loaded, 4).expect("plan");
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::new(tmp.path().to_path_buf());
        write_cluster_files(&dir, &plan).expect("write");
        for r in &plan.replicas {
            ClusterConfig::load(&dir.replica_config(r.id)).expect("loads");
            replica::config::load_secret_key(&dir.replica_key(r.id)).expect("key loads");
        }
        ClusterConfig::load(&dir.client_config(ClientId(0))).expect("loads");
    }

    #[test]
    fn twin_b_sees_itself_at_its_own_address_and_its_peers_through_links_of_its_own() {
        let loaded = scenario::load("byz-twin").expect("built-in");
        let plan = plan::resolve(&loaded, 3).expect("plan");
        let twin = &plan.replicas[0];
        let config = cluster_config_for(&plan, Endpoint::Twin(twin.id)).expect("config");
        let own = config
            .replicas
            .iter()
            .find(|e| e.id == twin.id)
            .expect("self");
        assert_eq!(Some(own.address), twin.twin_address);
        let twin_a = cluster_config_for(&plan, Endpoint::Replica(twin.id)).expect("config");
        for (b, a) in config.replicas.iter().zip(&twin_a.replicas) {
            assert_eq!(b.public_key, a.public_key, "one identity, one key");
            if b.id != twin.id {
                assert_ne!(
                    b.address, a.address,
                    "each twin dials through its own links"
                );
                assert_eq!(
                    Some(b.address),
                    plan.link_address(Endpoint::Twin(twin.id), b.id)
                );
            }
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::new(tmp.path().to_path_buf());
        write_cluster_files(&dir, &plan).expect("write");
        ClusterConfig::load(&dir.twin_config(twin.id)).expect("twin B's file loads");
        assert!(dir.twin_data_dir(twin.id).is_dir());
    }

    #[test]
    fn timestamp_label_has_the_expected_shape() {
        let label = timestamp_label();
        assert_eq!(label.len(), 16, "{label}");
        assert!(label.starts_with("20"), "{label}");
    }
}
