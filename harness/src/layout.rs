//! The run folder: the one module that knows where every file of a run lives and what it is
//! called, how run folders are created, and the per-principal cluster files that route every
//! link through the proxy.

use crate::plan::Plan;
use crate::proxy::Endpoint;
use anyhow::Context;
use replica::config::{ClientEntry, ClusterConfig, ReplicaEntry, write_secret_key};
use replica::crypto::{key_from_seed, public_key_hex};
use replica::node::{EVENTS_FILE, STATS_FILE};
use replica::{ClientId, Principal, ReplicaId};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const EVENTS_SUFFIX: &str = ".events.jsonl";
const STATS_SUFFIX: &str = ".stats.json";
const STDERR_SUFFIX: &str = ".stderr";

/// One replica process: the replica itself, or its twin B. A process's files are named after
/// it, `replica-N` or `replica-N-twin`, so that nothing reading `replica-N.*` mistakes twin B's
/// files for the replica's. Ordered by replica, each replica before its twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReplicaProcess {
    pub id: ReplicaId,
    pub twin: bool,
}

impl ReplicaProcess {
    pub fn replica(id: ReplicaId) -> ReplicaProcess {
        ReplicaProcess { id, twin: false }
    }

    pub fn twin(id: ReplicaId) -> ReplicaProcess {
        ReplicaProcess { id, twin: true }
    }

    fn stem(self) -> String {
        if self.twin {
            format!("replica-{}-twin", self.id)
        } else {
            format!("replica-{}", self.id)
        }
    }

    /// The process a file stem names; `None` for anything `stem()` would not have produced.
    fn from_stem(stem: &str) -> Option<ReplicaProcess> {
        let rest = stem.strip_prefix("replica-")?;
        let (number, twin) = match rest.strip_suffix("-twin") {
            Some(number) => (number, true),
            None => (rest, false),
        };
        let process = ReplicaProcess {
            id: ReplicaId(number.parse().ok()?),
            twin,
        };
        // `parse` also takes `+1` or `01`: only the exact name counts.
        (process.stem() == stem).then_some(process)
    }
}

/// Where a run's folder goes: the one `gauntlet run --out` names, or the one `--run-dir` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFolder {
    /// A new folder `<out>/<scenario>/<seed>-<time>/`.
    Under(PathBuf),
    /// Exactly this folder, new or empty.
    Exactly(PathBuf),
}

impl RunFolder {
    pub fn create(&self, scenario: &str, seed: u64) -> anyhow::Result<RunDir> {
        match self {
            RunFolder::Under(out) => RunDir::create_under(out, scenario, seed),
            RunFolder::Exactly(root) => RunDir::create_exactly(root),
        }
    }
}

/// Paths inside one run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: PathBuf) -> RunDir {
        RunDir { root }
    }

    /// A new, empty run folder `<out>/<scenario>/<seed>-<YYYYMMDDTHHMMSSZ>/`, with `-2`, `-3`,
    /// ... when two runs of one scenario and seed start within the same second.
    pub fn create_under(out: &Path, scenario: &str, seed: u64) -> anyhow::Result<RunDir> {
        let parent = out.join(scenario);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        create_unique_dir(&parent, &format!("{seed}-{}", timestamp_label())).map(RunDir::new)
    }

    /// `root` as the run folder: created if absent, taken if empty (whoever chose it may have
    /// created it to reserve the name), refused if anything is in it.
    pub fn create_exactly(root: &Path) -> anyhow::Result<RunDir> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let mut entries =
            std::fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))?;
        if entries.next().is_some() {
            anyhow::bail!(
                "{} is not empty: a run folder must be new or empty, so that no run mixes its files with another's",
                root.display()
            );
        }
        Ok(RunDir::new(root.to_path_buf()))
    }

    /// Removes the folder if nothing was written into it (a run that failed before it started);
    /// returns whether it did.
    pub fn remove_if_empty(&self) -> bool {
        // `remove_dir` refuses a folder with anything in it.
        std::fs::remove_dir(&self.root).is_ok()
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
    pub fn report(&self) -> PathBuf {
        self.root.join("report.html")
    }
    /// What each Byzantine client sent, and the honest clients' throughput meanwhile.
    pub fn byzantine_clients(&self) -> PathBuf {
        self.root.join("byzantine-clients.json")
    }
    pub fn cluster_dir(&self) -> PathBuf {
        self.root.join("cluster")
    }
    pub fn replica_config(&self, id: ReplicaId) -> PathBuf {
        self.config_of(ReplicaProcess::replica(id))
    }
    pub fn client_config(&self, id: ClientId) -> PathBuf {
        self.cluster_dir().join(format!("client-{id}.yaml"))
    }
    /// Twin B shares its replica's key: one identity.
    pub fn replica_key(&self, id: ReplicaId) -> PathBuf {
        self.cluster_dir()
            .join(ReplicaProcess::replica(id).stem() + ".key")
    }
    pub fn client_key(&self, id: ClientId) -> PathBuf {
        self.cluster_dir().join(format!("client-{id}.key"))
    }
    /// Every replica process's data dir is in here; deleted after the run unless kept.
    pub fn data_root(&self) -> PathBuf {
        self.root.join("data")
    }
    /// The replica's data dir (write-ahead log, snapshot, its own events and stats).
    pub fn data_dir(&self, id: ReplicaId) -> PathBuf {
        self.data_dir_of(ReplicaProcess::replica(id))
    }
    /// The events the replica writes into its data dir as it runs.
    pub fn data_events(&self, id: ReplicaId) -> PathBuf {
        self.data_dir(id).join(EVENTS_FILE)
    }
    /// The statistics the replica writes into its data dir.
    pub fn data_stats(&self, id: ReplicaId) -> PathBuf {
        self.data_dir(id).join(STATS_FILE)
    }
    pub fn replica_stderr(&self, id: ReplicaId) -> PathBuf {
        self.stderr_of(ReplicaProcess::replica(id))
    }
    /// The replica's events, collected from its data dir after the run.
    pub fn replica_events(&self, id: ReplicaId) -> PathBuf {
        self.events_of(ReplicaProcess::replica(id))
    }
    pub fn replica_stats(&self, id: ReplicaId) -> PathBuf {
        self.stats_of(ReplicaProcess::replica(id))
    }

    pub fn twin_config(&self, id: ReplicaId) -> PathBuf {
        self.config_of(ReplicaProcess::twin(id))
    }
    pub fn twin_data_dir(&self, id: ReplicaId) -> PathBuf {
        self.data_dir_of(ReplicaProcess::twin(id))
    }
    pub fn twin_stderr(&self, id: ReplicaId) -> PathBuf {
        self.stderr_of(ReplicaProcess::twin(id))
    }
    pub fn twin_events(&self, id: ReplicaId) -> PathBuf {
        self.events_of(ReplicaProcess::twin(id))
    }
    pub fn twin_stats(&self, id: ReplicaId) -> PathBuf {
        self.stats_of(ReplicaProcess::twin(id))
    }

    pub fn config_of(&self, process: ReplicaProcess) -> PathBuf {
        self.cluster_dir().join(format!("{}.yaml", process.stem()))
    }
    pub fn data_dir_of(&self, process: ReplicaProcess) -> PathBuf {
        self.data_root().join(process.stem())
    }
    pub fn stderr_of(&self, process: ReplicaProcess) -> PathBuf {
        self.root.join(process.stem() + STDERR_SUFFIX)
    }
    /// The process's events, collected from its data dir after the run.
    pub fn events_of(&self, process: ReplicaProcess) -> PathBuf {
        self.root.join(process.stem() + EVENTS_SUFFIX)
    }
    pub fn stats_of(&self, process: ReplicaProcess) -> PathBuf {
        self.root.join(process.stem() + STATS_SUFFIX)
    }

    /// The replica processes (twins too) whose events were collected into the folder.
    pub fn collected_events(&self) -> anyhow::Result<Vec<ReplicaProcess>> {
        processes_named(&self.root, EVENTS_SUFFIX)
            .with_context(|| format!("cannot list {}", self.root.display()))
    }

    /// The replicas (not twins) with anything to show: a data dir, or collected events or
    /// statistics. A folder that cannot be listed has none.
    pub fn replicas_with_files(&self) -> BTreeSet<ReplicaId> {
        let found =
            |folder: &Path, suffix: &str| processes_named(folder, suffix).unwrap_or_default();
        let mut processes = found(&self.data_root(), "");
        processes.extend(found(&self.root, EVENTS_SUFFIX));
        processes.extend(found(&self.root, STATS_SUFFIX));
        processes
            .into_iter()
            .filter(|p| !p.twin)
            .map(|p| p.id)
            .collect()
    }
}

/// The processes named by the entries of `folder` that end in `suffix`.
fn processes_named(folder: &Path, suffix: &str) -> std::io::Result<Vec<ReplicaProcess>> {
    let mut processes = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(process) = name
            .strip_suffix(suffix)
            .and_then(ReplicaProcess::from_stem)
        {
            processes.push(process);
        }
    }
    Ok(processes)
}

/// `parent/name`, or `parent/name-2`, `-3`, ... when that is taken: created exclusively, so a
/// run never writes into another run's folder.
fn create_unique_dir(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    for attempt in 1..1000 {
        let candidate = if attempt == 1 {
            parent.join(name)
        } else {
            parent.join(format!("{name}-{attempt}"))
        };
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", candidate.display()));
            }
        }
    }
    anyhow::bail!("no free run folder name under {}", parent.display())
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
        auth: c.auth,
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
    fn process_names_read_back_exactly_and_nothing_else_does() {
        for process in [
            ReplicaProcess::replica(ReplicaId(0)),
            ReplicaProcess::replica(ReplicaId(12)),
            ReplicaProcess::twin(ReplicaId(3)),
        ] {
            assert_eq!(ReplicaProcess::from_stem(&process.stem()), Some(process));
        }
        for other in [
            "replica-",
            "replica-x",
            "replica-+1",
            "replica-01",
            "events-1",
            "client-0",
        ] {
            assert_eq!(ReplicaProcess::from_stem(other), None, "{other}");
        }
    }

    #[test]
    fn the_files_found_in_a_folder_are_the_ones_its_paths_name() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::new(tmp.path().to_path_buf());
        std::fs::create_dir_all(dir.data_dir(ReplicaId(0))).expect("mkdir");
        std::fs::create_dir_all(dir.twin_data_dir(ReplicaId(4))).expect("mkdir");
        for path in [
            dir.replica_events(ReplicaId(1)),
            dir.twin_events(ReplicaId(1)),
            dir.replica_stats(ReplicaId(2)),
            dir.replica_stderr(ReplicaId(3)),
            tmp.path().join("events-5.jsonl"),
        ] {
            std::fs::write(path, "").expect("write");
        }
        assert_eq!(
            dir.replicas_with_files(),
            BTreeSet::from([ReplicaId(0), ReplicaId(1), ReplicaId(2)])
        );
        let mut events = dir.collected_events().expect("listed");
        events.sort();
        assert_eq!(
            events,
            vec![
                ReplicaProcess::replica(ReplicaId(1)),
                ReplicaProcess::twin(ReplicaId(1))
            ]
        );
    }

    #[test]
    fn a_run_folder_under_out_is_new_every_time() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = RunDir::create_under(tmp.path(), "smoke", 7).expect("created");
        let second = RunDir::create_under(tmp.path(), "smoke", 7).expect("created");
        assert_ne!(first.root, second.root);
        for dir in [&first, &second] {
            assert_eq!(dir.root.parent(), Some(tmp.path().join("smoke").as_path()));
            let name = dir.root.file_name().expect("name").to_string_lossy();
            assert!(name.starts_with("7-20"), "{name}");
        }
        let parent = tmp.path().join("clash");
        std::fs::create_dir(&parent).expect("mkdir");
        assert_eq!(create_unique_dir(&parent, "x").ok(), Some(parent.join("x")));
        assert_eq!(
            create_unique_dir(&parent, "x").ok(),
            Some(parent.join("x-2"))
        );
    }

    #[test]
    fn an_exact_run_folder_may_be_new_or_empty_but_never_hold_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fresh = tmp.path().join("a").join("b");
        assert_eq!(RunDir::create_exactly(&fresh).expect("created").root, fresh);
        assert_eq!(
            RunDir::create_exactly(&fresh).expect("empty: taken").root,
            fresh
        );
        std::fs::write(fresh.join("verdict.json"), "{}").expect("write");
        let refused = RunDir::create_exactly(&fresh).expect_err("not empty");
        assert!(refused.to_string().contains("is not empty"), "{refused:#}");
        assert!(!RunDir::new(fresh.clone()).remove_if_empty());
        assert!(fresh.join("verdict.json").is_file(), "left as it was");
    }

    #[test]
    fn timestamp_label_has_the_expected_shape() {
        let label = timestamp_label();
        assert_eq!(label.len(), 16, "{label}");
        assert!(label.starts_with("20"), "{label}");
    }
}
