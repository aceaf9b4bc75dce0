#![allow(dead_code)] // each test binary uses a different part of this shared module
//! Shared by the `run_*` integration tests: runs the built `gauntlet` binary on a scenario and
//! checks what it left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

static BUILD_REPLICA: Once = Once::new();

/// The `replica` binary is another crate's: make sure it sits next to `gauntlet`.
pub fn ensure_replica_binary() {
    BUILD_REPLICA.call_once(|| {
        let gauntlet = PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"));
        let replica = gauntlet.with_file_name("replica");
        if replica.is_file() {
            return;
        }
        let mut command = Command::new(env!("CARGO"));
        command.args(["build", "-p", "replica", "--bin", "replica"]);
        if gauntlet
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == "release")
        {
            command.arg("--release");
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the replica binary failed");
    });
}

pub struct RunResult {
    pub output: Output,
    pub run_dir: PathBuf,
    pub verdict: serde_json::Value,
}

impl RunResult {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
}

/// Runs `gauntlet run <args>` with results under `out`. `NO_COLOR` is removed from its
/// environment (and so from its replicas'): whether logs written to pipes and files are plain
/// must not depend on how the test was started.
pub fn gauntlet_run(out: &Path, args: &[&str]) -> RunResult {
    ensure_replica_binary();
    let output = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .env_remove("NO_COLOR")
        .output()
        .expect("gauntlet starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run_dir = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("run folder: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "no run folder printed\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let verdict_text = std::fs::read_to_string(run_dir.join("verdict.json"))
        .unwrap_or_else(|e| panic!("no verdict.json in {}: {e}", run_dir.display()));
    let verdict = serde_json::from_str(&verdict_text).expect("verdict.json is JSON");
    RunResult {
        output,
        run_dir,
        verdict,
    }
}

/// The files every completed run leaves.
pub fn assert_run_files(dir: &Path, replicas: u32) {
    for name in [
        "scenario.yaml",
        "plan.json",
        "history.jsonl",
        "nemesis.jsonl",
        "proxy.jsonl",
        "verdict.json",
        "timeline.json",
    ] {
        assert!(
            dir.join(name).is_file(),
            "{name} missing in {}",
            dir.display()
        );
    }
    for id in 0..replicas {
        for suffix in ["events.jsonl", "stderr"] {
            let name = format!("replica-{id}.{suffix}");
            assert!(
                dir.join(&name).is_file(),
                "{name} missing in {}",
                dir.display()
            );
        }
    }
}

/// Pids of live `replica` processes whose command line mentions `dir` (this run's replicas).
pub fn replicas_still_running(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
            !zombie && cmdline.contains(&needle)
        })
        .collect()
}

pub fn check_outcome<'a>(verdict: &'a serde_json::Value, name: &str) -> &'a str {
    verdict["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .and_then(|c| c["outcome"].as_str())
        .unwrap_or("missing")
}
