//! The mutated tree: a git worktree of the workspace's HEAD with its own target directory, so
//! planting a bug never touches the working tree and each build is incremental.

use anyhow::Context as _;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Release code with incremental compilation, so a one-line mutant rebuilds in seconds rather
/// than the minutes a full release build of four crates takes.
const PROFILE: &str = "mutants";

pub struct Worktree {
    path: PathBuf,
}

impl Worktree {
    /// Adds the worktree at `path` (detached at the workspace's HEAD), or moves an existing
    /// one there. A change found in an existing one is a mutant an interrupted run left
    /// planted: it is thrown away.
    pub fn prepare(root: &Path, path: &Path) -> anyhow::Result<Worktree> {
        let head = git(root, &["rev-parse", "HEAD"])?;
        let head = head.trim();
        if path.join(".git").exists() {
            git(path, &["reset", "-q", "--hard"])?;
            git(path, &["checkout", "-q", "--detach", head])?;
        } else {
            let target = path.display().to_string();
            git(root, &["worktree", "add", "-q", "--detach", &target, head])?;
        }
        Ok(Worktree {
            path: path.to_path_buf(),
        })
    }

    /// Back to the unmutated commit.
    pub fn reset(&self) -> anyhow::Result<()> {
        git(&self.path, &["reset", "-q", "--hard"]).map(drop)
    }

    /// Plants a mutant: `patch` applies the unified diff cargo-mutants printed for `file`.
    pub fn apply(&self, file: &str, diff: &str) -> anyhow::Result<()> {
        let mut child = Command::new("patch")
            .args(["--quiet", "--forward", "--no-backup-if-mismatch", file])
            .current_dir(&self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running patch")?;
        child
            .stdin
            .take()
            .context("patch's stdin")?
            .write_all(diff.as_bytes())?;
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "the mutant's diff does not apply: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// Builds the worktree's `gauntlet`, and with `replicas` the replica binaries a real run
    /// starts; the compiler's complaint when it does not build.
    pub fn build(&self, replicas: bool) -> Result<(), String> {
        let mut args = vec![
            "build",
            "--profile",
            PROFILE,
            "-p",
            "harness",
            "--bin",
            "gauntlet",
        ];
        if replicas {
            args.extend(["-p", "replica", "--bin", "replica"]);
            args.extend(["-p", "byzantine", "--bin", "byzantine-replica"]);
        }
        let output = Command::new("cargo")
            .args(args)
            .current_dir(&self.path)
            .env("CARGO_TARGET_DIR", self.path.join("target"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(stderr
            .lines()
            .filter(|line| line.starts_with("error"))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Runs the worktree's `gauntlet` with `args`; false when it was still running after
    /// `limit` and was killed, with everything it started.
    pub fn run_gauntlet(&self, args: &[String], limit: Duration) -> anyhow::Result<bool> {
        let binaries = self.path.join("target").join(PROFILE);
        let executable = binaries.join("gauntlet");
        let mut child = Command::new(&executable)
            .args(args)
            // A real run starts the mutated replicas, not the working tree's.
            .env("GAUNTLET_BIN_DIR", &binaries)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", executable.display()))?;
        let started = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                return Ok(true);
            }
            if started.elapsed() > limit {
                let group = Pid::from_raw(child.id() as i32);
                let _ = killpg(group, Signal::SIGKILL);
                let _ = child.wait();
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    anyhow::ensure!(
        output.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Path, content: &str) {
        std::fs::write(repo.join("code.rs"), content).expect("write");
        git(repo, &["add", "code.rs"]).expect("git add");
        git(
            repo,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                content,
            ],
        )
        .expect("git commit");
    }

    #[test]
    fn a_mutant_left_planted_by_an_interrupted_run_does_not_stop_the_next() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).expect("mkdir");
        git(&repo, &["init", "-q"]).expect("git init");
        commit(&repo, "one");
        let path = dir.path().join("worktree");
        let worktree = Worktree::prepare(&repo, &path).expect("first prepare");
        // The run is killed with a mutant planted, and the workspace moves on.
        std::fs::write(worktree.path.join("code.rs"), "mutated").expect("plant");
        commit(&repo, "two");
        Worktree::prepare(&repo, &path).expect("second prepare");
        let code = std::fs::read_to_string(path.join("code.rs")).expect("read");
        assert_eq!(code, "two");
    }
}
