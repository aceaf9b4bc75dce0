//! `gauntlet run --run-dir`: the run goes into exactly the folder named, which must be new or
//! empty, and never together with `--out`.

use harness::layout::RunDir;
use harness::verdict::{Outcome, Verdict};
use std::path::Path;
use std::process::{Command, Output};

fn gauntlet_run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("run")
        .args(args)
        .output()
        .expect("gauntlet starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_folder_with_files_in_it_is_refused_and_left_alone() {
    let out = tempfile::tempdir().expect("tempdir");
    std::fs::write(out.path().join("notes.txt"), "mine").expect("write");
    let folder = out.path().display().to_string();
    let refused = gauntlet_run(&[
        "smoke",
        "--backend",
        "sim",
        "--seed",
        "1",
        "--run-dir",
        &folder,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("{folder} is not empty")),
        "{stderr}"
    );
    assert_eq!(entries(out.path()), vec!["notes.txt"]);
}

#[test]
fn run_dir_and_out_cannot_be_given_together() {
    let out = tempfile::tempdir().expect("tempdir");
    let folder = out.path().join("run").display().to_string();
    let refused = gauntlet_run(&[
        "smoke",
        "--backend",
        "sim",
        "--out",
        &out.path().display().to_string(),
        "--run-dir",
        &folder,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("cannot be used with"),
        "{}",
        text(&refused.stderr)
    );
    assert!(entries(out.path()).is_empty(), "nothing written");
}

#[test]
fn the_run_goes_into_exactly_the_folder_named() {
    let out = tempfile::tempdir().expect("tempdir");
    let root = out.path().join("chosen").join("here");
    let folder = root.display().to_string();
    let ran = gauntlet_run(&[
        "smoke",
        "--backend",
        "sim",
        "--seed",
        "2",
        "--duration",
        "1",
        "--run-dir",
        &folder,
    ]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    assert!(text(&ran.stdout).contains(&format!("run folder: {folder}\n")));
    let verdict = Verdict::read(&RunDir::new(root.clone())).expect("verdict in the folder");
    assert_eq!((verdict.outcome, verdict.seed), (Outcome::Pass, 2));
    assert_eq!(verdict.run_dir, folder);
    assert_eq!(
        entries(&out.path().join("chosen")),
        vec!["here"],
        "nothing beside it"
    );
}
