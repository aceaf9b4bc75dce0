//! `gauntlet reproduce RUN_DIR`: runs the stored scenario (the run folder's `scenario.yaml`)
//! with the stored seed into a new run folder beside the original, and says whether the
//! outcome matched. Warns when the binaries are not the ones that produced the original run.

use crate::report::VerdictFile;
use anyhow::{Context as _, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, Debug)]
pub struct Reproduction {
    pub original: VerdictFile,
    pub rerun: VerdictFile,
    pub rerun_dir: PathBuf,
    /// The rerun's outcome equals the original's.
    pub matched: bool,
    /// `(original, now)` when the build identifiers differ or the original has none.
    pub build_mismatch: Option<(String, String)>,
    pub rerun_exit_code: Option<i32>,
}

impl Reproduction {
    /// 0 = the outcome matched, 1 = it did not, 2 = the rerun could not be carried out.
    pub fn exit_code(&self) -> i32 {
        if self.rerun.outcome == "error" {
            2
        } else if self.matched {
            0
        } else {
            1
        }
    }

    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some((then, now)) = &self.build_mismatch {
            out.push_str(&format!(
                "warning: the binaries differ from the ones that produced the original run (build {then} then, {now} now): a different outcome may come from the code, not the seed\n"
            ));
        }
        out.push_str(&format!(
            "original: {} (expected {}); rerun: {} → {}\nrerun folder: {}\n",
            self.original.outcome,
            self.original.expected,
            self.rerun.outcome,
            if self.matched {
                "the outcome matched"
            } else {
                "the outcome DIFFERS"
            },
            self.rerun_dir.display()
        ));
        out
    }
}

/// The `--duration` the original run was started with, read back from its reproduce command
/// (the stored scenario has the duration of the file, not of the override).
pub fn duration_override(reproduce: &str) -> Option<String> {
    let mut words = reproduce.split_whitespace();
    while let Some(word) = words.next() {
        if word == "--duration" {
            return words.next().map(str::to_string);
        }
        if let Some(value) = word.strip_prefix("--duration=") {
            return Some(value.to_string());
        }
    }
    None
}

/// The results root the original run was written under (`<root>/<scenario>/<seed>-<time>/`).
fn results_root(run_dir: &Path) -> PathBuf {
    run_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("results"))
}

/// Re-runs `run_dir` with `executable` (`None` = this executable) and compares the outcomes.
pub fn reproduce(run_dir: &Path, executable: Option<&Path>) -> anyhow::Result<Reproduction> {
    let original = VerdictFile::read(&run_dir.join("verdict.json")).map_err(anyhow::Error::msg)?;
    let Some(seed) = original.seed else {
        bail!("{}: the verdict has no seed", run_dir.display());
    };
    let scenario = run_dir.join("scenario.yaml");
    if !scenario.is_file() {
        bail!("{}: no scenario.yaml to rerun", run_dir.display());
    }
    let executable = match executable {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe().context("cannot find this executable")?,
    };
    let now = crate::build_info::build_id();
    let build_mismatch = match &original.build_id {
        Some(then) if *then == now => None,
        Some(then) => Some((then.clone(), now)),
        None => Some(("not recorded".into(), now)),
    };
    let mut command = Command::new(&executable);
    command
        .arg("run")
        .arg(&scenario)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--out")
        .arg(results_root(run_dir));
    if let Some(duration) = duration_override(&original.reproduce) {
        command.arg("--duration").arg(duration);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", executable.display()))?;
    // Pass the rerun's output through, and catch where it puts its folder.
    let mut rerun_dir = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            if let Some(path) = line.strip_prefix("run folder:") {
                rerun_dir = Some(PathBuf::from(path.trim()));
            }
        }
    }
    let status = child.wait().context("cannot wait for the rerun")?;
    let Some(rerun_dir) = rerun_dir else {
        bail!("the rerun printed no run folder (exit status {status})");
    };
    let rerun = VerdictFile::read(&rerun_dir.join("verdict.json")).map_err(anyhow::Error::msg)?;
    Ok(Reproduction {
        matched: !rerun.outcome.is_empty() && rerun.outcome == original.outcome,
        original,
        rerun,
        rerun_dir,
        build_mismatch,
        rerun_exit_code: status.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_override_is_read_from_the_reproduce_command() {
        assert_eq!(
            duration_override("gauntlet run smoke --seed 3 --duration 2.5"),
            Some("2.5".into())
        );
        assert_eq!(
            duration_override("gauntlet run x --duration=4"),
            Some("4".into())
        );
        assert_eq!(duration_override("gauntlet run smoke --seed 3"), None);
    }

    #[test]
    fn reruns_land_in_the_original_results_root() {
        assert_eq!(
            results_root(Path::new("results/campaign-1/smoke/3-20260101T000000Z")),
            PathBuf::from("results/campaign-1")
        );
    }
}
