//! Finding a workspace executable (`replica`, `byzantine-replica`) for a test, a benchmark or
//! `gauntlet` itself.
//!
//! It is not a binary of the running crate, so cargo does not build it for us (`cargo run -p
//! harness` builds only `gauntlet`). We look next to the running executable (test binaries live
//! one level down, in `target/<profile>/deps`) and, if it is missing or older than the sources
//! it is built from, build it once with the same profile: a stale replica never runs silently.

use super::TestnetError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

/// Overrides the search (e.g. to point at a `byzantine-replica` or an installed binary).
pub const REPLICA_BIN_ENV: &str = "GAUNTLET_REPLICA_BIN";

static LOCATED: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());

/// The path of an up-to-date `replica` binary, building it at most once per process.
pub fn replica_binary() -> Result<PathBuf, TestnetError> {
    if let Some(path) = std::env::var_os(REPLICA_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    workspace_binary("replica", "replica")
}

/// The path of an up-to-date binary `name` of workspace package `package`, building it at most
/// once per process when it is missing or older than its sources (and the replica's, which
/// every binary of the workspace is built on).
pub fn workspace_binary(name: &str, package: &str) -> Result<PathBuf, TestnetError> {
    let mut located = LOCATED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, path)) = located.iter().find(|(n, _)| n == name) {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().map_err(|source| TestnetError::Io {
        context: "locating the current executable".into(),
        source,
    })?;
    let exe_dir = exe.parent().unwrap_or(Path::new("."));
    let profile_dir = if exe_dir.file_name().is_some_and(|name| name == "deps") {
        exe_dir.parent().unwrap_or(exe_dir)
    } else {
        exe_dir
    };
    let path = profile_dir.join(name);
    if !is_up_to_date(&path, package) {
        build(profile_dir, name, package)?;
    }
    if !path.is_file() {
        return Err(TestnetError::Build(format!(
            "cargo build finished but {} does not exist",
            path.display()
        )));
    }
    located.push((name.to_string(), path.clone()));
    Ok(path)
}

fn workspace_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("replica").is_dir().then(|| root.to_path_buf())
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_source(&path)
        } else {
            modified(&path)
        };
        newest = newest.max(time);
    }
    newest
}

/// Present and newer than every source it is built from (when those sources are at hand).
fn is_up_to_date(binary: &Path, package: &str) -> bool {
    let Some(built) = modified(binary) else {
        return false;
    };
    let Some(root) = workspace_root() else {
        return true;
    };
    let sources = [
        newest_source(&root.join("replica").join("src")),
        modified(&root.join("replica").join("Cargo.toml")),
        newest_source(&root.join(package).join("src")),
        modified(&root.join(package).join("Cargo.toml")),
        modified(&root.join("Cargo.lock")),
    ];
    sources.into_iter().flatten().all(|source| source <= built)
}

fn build(profile_dir: &Path, name: &str, package: &str) -> Result<(), TestnetError> {
    let root = workspace_root().ok_or_else(|| {
        TestnetError::Build(format!(
            "no {name} binary in {} and no workspace to build it from",
            profile_dir.display()
        ))
    })?;
    let target_dir = profile_dir.parent().unwrap_or(profile_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "-p", package, "--bin", name, "--target-dir"])
        .arg(target_dir);
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    tracing::info!(?command, "building {name}");
    eprintln!("building {name} (missing or older than its sources) ...");
    let status = command.status().map_err(|source| TestnetError::Io {
        context: format!("running cargo build for {name}"),
        source,
    })?;
    if !status.success() {
        return Err(TestnetError::Build(format!(
            "`cargo build -p {package} --bin {name}` failed with {status}"
        )));
    }
    Ok(())
}
