//! No orphan replicas: not when the orchestrator is SIGKILLed (the replicas see their stdin
//! pipe close), not when it is interrupted with Ctrl-C (SIGINT).

mod run_support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use run_support::{ensure_replica_binary, replicas_still_running};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the orchestrator if the test fails before it does.
struct Orchestrator(Child);

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a long run and returns once its replicas are up.
fn start_long_run(out: &std::path::Path, seed: &str) -> (Orchestrator, PathBuf) {
    ensure_replica_binary();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(["run", "smoke", "--seed", seed, "--duration", "30", "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gauntlet starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let orchestrator = Orchestrator(child);
    let mut run_dir = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout readable");
        if let Some(dir) = line.strip_prefix("run folder: ") {
            run_dir = Some(PathBuf::from(dir));
            break;
        }
    }
    let run_dir = run_dir.expect("run folder printed");
    let started = Instant::now();
    while replicas_still_running(&run_dir).len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "replicas never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (orchestrator, run_dir)
}

fn wait_for_no_replicas(run_dir: &std::path::Path) -> Vec<u32> {
    let started = Instant::now();
    loop {
        let left = replicas_still_running(run_dir);
        if left.is_empty() || started.elapsed() > Duration::from_secs(10) {
            for pid in &left {
                let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replicas_exit_when_the_orchestrator_is_sigkilled() {
    let out = tempfile::tempdir().expect("tempdir");
    let (mut orchestrator, run_dir) = start_long_run(out.path(), "3");
    orchestrator.0.kill().expect("SIGKILL the orchestrator");
    let _ = orchestrator.0.wait();
    let left = wait_for_no_replicas(&run_dir);
    assert!(left.is_empty(), "orphaned replicas: {left:?}");
}

#[test]
fn ctrl_c_stops_every_replica_and_exits_2() {
    let out = tempfile::tempdir().expect("tempdir");
    let (mut orchestrator, run_dir) = start_long_run(out.path(), "4");
    kill(Pid::from_raw(orchestrator.0.id() as i32), Signal::SIGINT).expect("SIGINT");
    let status = orchestrator.0.wait().expect("orchestrator exits");
    assert_eq!(status.code(), Some(2));
    let left = wait_for_no_replicas(&run_dir);
    assert!(left.is_empty(), "orphaned replicas: {left:?}");
}
