//! Replica processes: start, kill, restart, pause, resume, stop — and never leave one behind.
//!
//! Each replica runs in its own process group (so a signal reaches anything it spawned) with
//! its stdin on a pipe we hold: `--exit-with-stdin` makes it exit when that pipe closes, which
//! happens even when the orchestrator is SIGKILLed. Every live group is also in a process-wide
//! registry that `kill_all_registered` empties, for Ctrl-C and panics; dropping the
//! `Supervisor` kills what it started.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use replica::ReplicaId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::process::{Child, ChildStdin, Command};

/// Process groups started by this process and not yet reaped.
static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn live_groups() -> MutexGuard<'static, BTreeSet<i32>> {
    LIVE_GROUPS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SIGKILLs every process group this process started that is still registered. Safe to call
/// from a signal-handling task or a panic hook; idempotent.
pub fn kill_all_registered() {
    let groups: Vec<i32> = std::mem::take(&mut *live_groups()).into_iter().collect();
    for group in groups {
        let _ = killpg(Pid::from_raw(group), Signal::SIGCONT);
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
}

#[derive(Debug, Error)]
pub enum ProcessError {
    #[error(
        "cannot find or build the `{name}` binary ({searched}); build it with `cargo build -p {package} --bin {name}`"
    )]
    BinaryMissing {
        name: String,
        package: String,
        searched: String,
    },
    #[error("cannot start {who} ({program}): {source}")]
    Spawn {
        who: String,
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Stderr {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{who} did not listen on {address} within {waited:?} (see {stderr})")]
    NotReady {
        who: String,
        address: SocketAddr,
        waited: Duration,
        stderr: PathBuf,
    },
    #[error("{who} exited during start-up with {status} (see {stderr})")]
    ExitedEarly {
        who: String,
        status: String,
        stderr: PathBuf,
    },
}

/// Finds a workspace binary next to the running executable (or one level up, for test
/// executables in `target/<profile>/deps`), building it when it is missing or older than its
/// sources, so `cargo run -p harness -- run` never starts a stale replica. `GAUNTLET_BIN_DIR`
/// overrides the search and never builds.
pub fn find_binary(name: &str, package: &str) -> Result<PathBuf, ProcessError> {
    if let Some(dir) = std::env::var_os("GAUNTLET_BIN_DIR") {
        let candidate = PathBuf::from(&dir).join(name);
        return if candidate.is_file() {
            Ok(candidate)
        } else {
            Err(ProcessError::BinaryMissing {
                name: name.to_string(),
                package: package.to_string(),
                searched: PathBuf::from(dir).display().to_string(),
            })
        };
    }
    workloads::testnet::binary::workspace_binary(name, package).map_err(|error| {
        ProcessError::BinaryMissing {
            name: name.to_string(),
            package: package.to_string(),
            searched: error.to_string(),
        }
    })
}

/// How to (re)start one replica process.
#[derive(Clone, Debug)]
pub struct ReplicaLaunch {
    pub id: ReplicaId,
    /// Twin B of a twinned replica: a second process with the same id. Every process fault
    /// aimed at the id hits both twins.
    pub twin: bool,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Where the replica really listens (readiness is a successful connect there).
    pub address: SocketAddr,
    pub stderr_path: PathBuf,
}

impl ReplicaLaunch {
    /// `replica 1` or `replica 1 (twin B)`, for errors and logs.
    pub fn label(&self) -> String {
        if self.twin {
            format!("replica {} (twin B)", self.id)
        } else {
            format!("replica {}", self.id)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    Running,
    Paused,
    Killed { permanent: bool },
    Stopped,
}

struct Slot {
    launch: ReplicaLaunch,
    child: Option<Child>,
    /// Held only so the pipe stays open; dropping it tells the replica to exit.
    stdin: Option<ChildStdin>,
    group: Option<i32>,
    state: ReplicaState,
    starts: u32,
}

/// A replica process that ended while it should have been running: the nemesis did not kill
/// it and the harness had not stopped it (a panic, a refusal to recover, an exit on error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaExit {
    pub replica: ReplicaId,
    /// `replica 1` or `replica 1 (twin B)`.
    pub process: String,
    /// How it ended, as the OS reports it (`exit status: 1`, `signal: 6 (SIGABRT)`).
    pub status: String,
    /// Its stderr's last lines when the exit was noticed.
    pub stderr_tail: Vec<String>,
}

/// Lines of stderr an exit record keeps.
const STDERR_TAIL_LINES: usize = 3;

impl ReplicaExit {
    fn of(launch: &ReplicaLaunch, status: String) -> ReplicaExit {
        let text = std::fs::read_to_string(&launch.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
        ReplicaExit {
            replica: launch.id,
            process: launch.label(),
            status,
            stderr_tail: tail,
        }
    }
}

/// Every replica process of a run. Operations name a replica id and act on each process that
/// has it (two for a twinned replica).
pub struct Supervisor {
    slots: Mutex<Vec<Slot>>,
    /// Processes found ended on their own, in the order they were noticed.
    exits: Mutex<Vec<ReplicaExit>>,
}

impl Supervisor {
    pub fn new(launches: Vec<ReplicaLaunch>) -> Supervisor {
        let slots = launches
            .into_iter()
            .map(|launch| Slot {
                launch,
                child: None,
                stdin: None,
                group: None,
                state: ReplicaState::Stopped,
                starts: 0,
            })
            .collect();
        Supervisor {
            slots: Mutex::new(slots),
            exits: Mutex::new(Vec::new()),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Indices of the processes of replica `id`.
    fn indices(&self, id: ReplicaId) -> Vec<usize> {
        self.slots()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.launch.id == id)
            .map(|(index, _)| index)
            .collect()
    }

    /// How many processes there are (replicas plus twins).
    pub fn process_count(&self) -> usize {
        self.slots().len()
    }

    /// The state of replica `id`'s first process.
    pub fn state(&self, id: ReplicaId) -> Option<ReplicaState> {
        self.slots()
            .iter()
            .find(|s| s.launch.id == id)
            .map(|s| s.state)
    }

    /// The state of every process, in launch order.
    pub fn states(&self) -> Vec<ReplicaState> {
        self.slots().iter().map(|s| s.state).collect()
    }

    /// Starts (or restarts, with the same data dir) every process of replica `id`.
    pub fn start(&self, id: ReplicaId) -> Result<(), ProcessError> {
        for index in self.indices(id) {
            self.start_process(index)?;
        }
        Ok(())
    }

    /// Starts every process.
    pub fn start_all(&self) -> Result<(), ProcessError> {
        for index in 0..self.process_count() {
            self.start_process(index)?;
        }
        Ok(())
    }

    fn start_process(&self, index: usize) -> Result<(), ProcessError> {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(index) else {
            return Ok(());
        };
        if matches!(slot.state, ReplicaState::Running | ReplicaState::Paused) {
            return Ok(());
        }
        let launch = &slot.launch;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.stderr_path)
            .map_err(|source| ProcessError::Stderr {
                path: launch.stderr_path.clone(),
                source,
            })?;
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
            who: launch.label(),
            program: launch.program.clone(),
            source,
        })?;
        let group = child.id().and_then(|pid| i32::try_from(pid).ok());
        if let Some(group) = group {
            live_groups().insert(group);
        }
        tracing::debug!(process = %launch.label(), ?group, "replica started");
        slot.stdin = child.stdin.take();
        slot.child = Some(child);
        slot.group = group;
        slot.state = ReplicaState::Running;
        slot.starts += 1;
        Ok(())
    }

    /// Waits until every process of replica `id` accepts connections on its real address.
    pub async fn wait_ready(&self, id: ReplicaId, within: Duration) -> Result<(), ProcessError> {
        for index in self.indices(id) {
            self.wait_process_ready(index, within).await?;
        }
        Ok(())
    }

    /// Waits until every process accepts connections.
    pub async fn wait_all_ready(&self, within: Duration) -> Result<(), ProcessError> {
        for index in 0..self.process_count() {
            self.wait_process_ready(index, within).await?;
        }
        Ok(())
    }

    async fn wait_process_ready(&self, index: usize, within: Duration) -> Result<(), ProcessError> {
        let (address, stderr, who) = {
            let slots = self.slots();
            let Some(slot) = slots.get(index) else {
                return Ok(());
            };
            (
                slot.launch.address,
                slot.launch.stderr_path.clone(),
                slot.launch.label(),
            )
        };
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.exit_status(index) {
                return Err(ProcessError::ExitedEarly {
                    who,
                    status,
                    stderr,
                });
            }
            if started.elapsed() >= within {
                return Err(ProcessError::NotReady {
                    who,
                    address,
                    waited: within,
                    stderr,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn exit_status(&self, index: usize) -> Option<String> {
        let mut slots = self.slots();
        let child = slots.get_mut(index)?.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// Records every process that should be running but has ended on its own, and marks it
    /// killed, so a heal restarts it as it would one the nemesis killed.
    fn notice_exits(&self) {
        let mut noticed = Vec::new();
        for slot in self.slots().iter_mut() {
            if !matches!(slot.state, ReplicaState::Running | ReplicaState::Paused) {
                continue;
            }
            let Some(child) = slot.child.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            if let Some(group) = slot.group.take() {
                live_groups().remove(&group);
            }
            slot.child = None;
            slot.stdin = None;
            slot.state = ReplicaState::Killed { permanent: false };
            noticed.push(ReplicaExit::of(&slot.launch, status.to_string()));
        }
        for exit in &noticed {
            tracing::warn!(process = %exit.process, status = %exit.status, "replica exited on its own");
        }
        self.exits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(noticed);
    }

    /// The processes that ended on their own so far (see [`ReplicaExit`]).
    pub fn exits(&self) -> Vec<ReplicaExit> {
        self.notice_exits();
        self.exits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGKILLs every process of replica `id` (each whole group) and reaps them. A no-op for
    /// a process that is not running.
    pub async fn kill(&self, id: ReplicaId, permanent: bool) {
        self.notice_exits();
        let children: Vec<Child> = {
            let mut slots = self.slots();
            slots
                .iter_mut()
                .filter(|slot| slot.launch.id == id)
                .filter(|slot| matches!(slot.state, ReplicaState::Running | ReplicaState::Paused))
                .filter_map(|slot| {
                    if let Some(group) = slot.group.take() {
                        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
                        live_groups().remove(&group);
                    }
                    slot.state = ReplicaState::Killed { permanent };
                    slot.stdin = None;
                    slot.child.take()
                })
                .collect()
        };
        for mut child in children {
            let _ = child.wait().await;
        }
    }

    /// Sends `signal` to every process of `id` in state `from`, which then enters state `to`.
    fn transition(&self, id: ReplicaId, signal: Signal, from: ReplicaState, to: ReplicaState) {
        for slot in self.slots().iter_mut() {
            if slot.launch.id == id && slot.state == from {
                if let Some(group) = slot.group {
                    let _ = killpg(Pid::from_raw(group), signal);
                }
                slot.state = to;
            }
        }
    }

    /// SIGSTOP to the group: the replica freezes with its connections open.
    pub fn pause(&self, id: ReplicaId) {
        self.transition(
            id,
            Signal::SIGSTOP,
            ReplicaState::Running,
            ReplicaState::Paused,
        );
    }

    pub fn resume(&self, id: ReplicaId) {
        self.transition(
            id,
            Signal::SIGCONT,
            ReplicaState::Paused,
            ReplicaState::Running,
        );
    }

    /// Undoes every process fault except permanent kills: paused replicas resume, killed ones
    /// restart. Returns the replicas restarted.
    pub fn heal(&self) -> Result<Vec<ReplicaId>, ProcessError> {
        self.notice_exits();
        let processes: Vec<(ReplicaId, ReplicaState)> = self
            .slots()
            .iter()
            .map(|s| (s.launch.id, s.state))
            .collect();
        let mut restarted = Vec::new();
        for (index, (id, state)) in processes.into_iter().enumerate() {
            match state {
                ReplicaState::Paused => self.resume(id),
                ReplicaState::Killed { permanent: false } => {
                    self.start_process(index)?;
                    if !restarted.contains(&id) {
                        restarted.push(id);
                    }
                }
                _ => {}
            }
        }
        Ok(restarted)
    }

    /// Stops every replica: SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM, then
    /// SIGKILL for any group still alive after `grace`.
    pub async fn stop_all(&self, grace: Duration) {
        let children: Vec<(Option<i32>, Child)> = {
            let mut slots = self.slots();
            slots
                .iter_mut()
                .filter_map(|slot| {
                    let group = slot.group.take();
                    slot.stdin = None;
                    slot.state = ReplicaState::Stopped;
                    if let Some(group) = group {
                        let _ = killpg(Pid::from_raw(group), Signal::SIGCONT);
                        let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
                    }
                    slot.child.take().map(|child| (group, child))
                })
                .collect()
        };
        let deadline = tokio::time::Instant::now() + grace;
        for (group, mut child) in children {
            if tokio::time::timeout_at(deadline, child.wait())
                .await
                .is_err()
            {
                if let Some(group) = group {
                    let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
                }
                let _ = child.wait().await;
            }
            if let Some(group) = group {
                // Anything the replica itself spawned dies with the group.
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
                live_groups().remove(&group);
            }
        }
    }

    /// How often each process was started (restarts included), in launch order.
    pub fn start_counts(&self) -> Vec<u32> {
        self.slots().iter().map(|s| s.starts).collect()
    }

    /// The stderr file of replica `id`'s first process.
    pub fn stderr_path(&self, id: ReplicaId) -> Option<PathBuf> {
        self.slots()
            .iter()
            .find(|s| s.launch.id == id)
            .map(|s| s.launch.stderr_path.clone())
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for slot in self.slots().iter_mut() {
            if let Some(group) = slot.group.take() {
                let _ = killpg(Pid::from_raw(group), Signal::SIGCONT);
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
                live_groups().remove(&group);
            }
            slot.stdin = None;
        }
    }
}

/// Whether a process with this pid still exists (for tests that check for orphans).
pub fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(script: &str, stderr_path: PathBuf) -> ReplicaLaunch {
        ReplicaLaunch {
            id: ReplicaId(3),
            twin: false,
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            address: "127.0.0.1:9".parse().expect("an address"),
            stderr_path,
        }
    }

    #[tokio::test]
    async fn a_process_that_ends_on_its_own_is_recorded_with_its_stderr_and_a_killed_one_is_not() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let crashing = launch(
            "echo 'error: snapshot is damaged' >&2; exit 3",
            dir.path().join("crash.stderr"),
        );
        let supervisor = Supervisor::new(vec![crashing]);
        supervisor.start_all().expect("spawned");
        let exits = loop {
            let exits = supervisor.exits();
            if !exits.is_empty() {
                break exits;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(exits.len(), 1);
        assert_eq!(exits[0].replica, ReplicaId(3));
        assert!(exits[0].status.contains('3'), "{:?}", exits[0]);
        assert_eq!(exits[0].stderr_tail, vec!["error: snapshot is damaged"]);
        // Noticed once; marked killed, so a heal starts it again.
        assert_eq!(supervisor.exits().len(), 1);
        assert_eq!(
            supervisor.state(ReplicaId(3)),
            Some(ReplicaState::Killed { permanent: false })
        );

        let sleeping = launch("sleep 30", dir.path().join("sleep.stderr"));
        let supervisor = Supervisor::new(vec![sleeping]);
        supervisor.start_all().expect("spawned");
        supervisor.kill(ReplicaId(3), false).await;
        assert!(supervisor.exits().is_empty());
        supervisor.stop_all(Duration::from_secs(1)).await;
    }
}
