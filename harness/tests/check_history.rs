//! `gauntlet check-history` on histories of every format: the fixtures made for these tests
//! (harness/tests/fixtures/histories), and, when `../shared/histories` is present, the
//! histories from porcupine and knossos with their known verdicts.

use harness::check::{KeyVerdict, LinearizabilityOptions};
use harness::history::{self, Format, ModelKind, Overall, Timing};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/histories")
        .join(name)
}

fn options() -> LinearizabilityOptions {
    LinearizabilityOptions {
        timeout_per_key: Duration::from_secs(30),
        ..LinearizabilityOptions::default()
    }
}

fn judge(path: &Path) -> Result<history::HistoryVerdict, String> {
    let imported = history::import(path, None, None).map_err(|e| e.to_string())?;
    history::check_history(path.to_path_buf(), &imported, &options()).map_err(|e| e.to_string())
}

fn gauntlet(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("gauntlet starts");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_fixture_format_gets_its_verdict() {
    let cases = [
        ("register-ok.edn", Format::JepsenEdn, Overall::Linearizable),
        (
            "register-bad.edn",
            Format::JepsenEdn,
            Overall::NotLinearizable,
        ),
        (
            "independent-bad.edn",
            Format::JepsenEdn,
            Overall::NotLinearizable,
        ),
        ("kv-ok.edn", Format::PorcupineKv, Overall::Linearizable),
        ("kv-bad.edn", Format::PorcupineKv, Overall::NotLinearizable),
        (
            "etcd-ok.log",
            Format::PorcupineJepsenLog,
            Overall::Linearizable,
        ),
        (
            "etcd-bad.log",
            Format::PorcupineJepsenLog,
            Overall::NotLinearizable,
        ),
        ("gauntlet-ok.jsonl", Format::Gauntlet, Overall::Linearizable),
        (
            "gauntlet-bad.jsonl",
            Format::Gauntlet,
            Overall::NotLinearizable,
        ),
    ];
    for (name, format, overall) in cases {
        let verdict = judge(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verdict.format, format, "{name}");
        assert_eq!(
            verdict.overall, overall,
            "{name}: {}",
            verdict.check.summary
        );
    }
}

#[test]
fn independent_keys_are_judged_one_by_one_with_recorded_times() {
    let verdict = judge(&fixture("independent-bad.edn")).expect("judged");
    assert_eq!(verdict.timing, Timing::Recorded);
    let keys: Vec<(&str, KeyVerdict)> = verdict
        .keys
        .iter()
        .map(|k| (k.key.as_str(), k.verdict))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("1", KeyVerdict::Linearizable),
            ("2", KeyVerdict::NotLinearizable)
        ]
    );
    assert!(
        verdict.check.summary.contains("\"2\""),
        "{}",
        verdict.check.summary
    );
}

#[test]
fn a_fail_did_not_happen_and_an_info_may_have() {
    // register-ok reads the timed-out write of 3; register-bad reads the failed write of 4.
    let ok = judge(&fixture("register-ok.edn")).expect("judged");
    assert_eq!(ok.timing, Timing::FileOrder);
    assert_eq!(ok.model, ModelKind::CasRegister);
    let bad = judge(&fixture("register-bad.edn")).expect("judged");
    assert_eq!(bad.overall, Overall::NotLinearizable);
    let failing = &bad.check.details["failing"][0];
    let origins: Vec<&str> = failing["operations"]
        .as_array()
        .expect("operations drawn")
        .iter()
        .filter_map(|op| op["origin"].as_str())
        .collect();
    assert!(
        origins.iter().any(|o| o.contains("line 5")),
        "operations name their file lines: {origins:?}"
    );
}

#[test]
fn impossible_histories_are_refused_with_file_and_line() {
    let cases = [
        ("two-open.edn", 2, "still open"),
        ("completion-first.edn", 2, "before its invocation"),
        ("orphan-completion.edn", 3, "no operation open"),
        ("not-a-history.md", 1, "matches no history format"),
    ];
    for (name, line, needle) in cases {
        let error = judge(&fixture(name)).expect_err(name);
        let expected = format!("{name}:{line}: ");
        assert!(
            error.contains(&expected) && error.contains(needle),
            "{name}: {error}"
        );
    }
}

#[test]
fn exit_codes_follow_jepsen_and_out_writes_the_page() {
    let ok = fixture("register-ok.edn");
    let bad = fixture("register-bad.edn");
    let malformed = fixture("two-open.edn");
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    assert_eq!(gauntlet(&["check-history", &path(&ok)]).0, 0);
    let (code, stdout, _) = gauntlet(&["check-history", &path(&ok), &path(&bad)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("NOT linearizable"), "{stdout}");
    let (code, _, stderr) = gauntlet(&["check-history", &path(&malformed)]);
    assert_eq!(code, 2);
    assert!(stderr.contains("two-open.edn:2:"), "{stderr}");
    let (code, _, stderr) = gauntlet(&["check-history", "--format", "edn", &path(&ok)]);
    assert_eq!(code, 2, "an unknown format name is a usage error");
    assert!(stderr.contains("jepsen-edn"), "{stderr}");

    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().to_string_lossy().into_owned();
    let (code, stdout, _) = gauntlet(&["check-history", "--out", &out_dir, &path(&bad)]);
    assert_eq!(code, 1, "{stdout}");
    let page = std::fs::read_to_string(out.path().join("register-bad.edn.html")).expect("page");
    assert!(
        page.contains("<iframe class=\"porcupine\""),
        "linearization view"
    );
    assert!(page.contains("<svg class=\"timeline\""), "timeline");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("register-bad.edn.json")).expect("json"),
    )
    .expect("valid json");
    assert_eq!(json["overall"], "not-linearizable");
}

#[test]
fn a_model_that_does_not_admit_an_operation_names_it() {
    let imported = history::import(
        &fixture("gauntlet-ok.jsonl"),
        None,
        Some(ModelKind::Register),
    );
    let error = imported.expect_err("a cas is not a register operation");
    assert_eq!(error.line, Some(3));
    assert!(error.reason.contains("register model"), "{}", error.reason);
}

/// `../shared/histories` beside the repository, when this machine has it (CI does).
fn shared_histories() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/histories");
    dir.is_dir().then_some(dir)
}

fn expect_verdict(path: &Path, linearizable: bool, mismatches: &mut Vec<String>) {
    match judge(path) {
        Ok(verdict) => {
            let wanted = if linearizable {
                Overall::Linearizable
            } else {
                Overall::NotLinearizable
            };
            if verdict.overall != wanted {
                mismatches.push(format!(
                    "{}: expected {wanted:?}, got {:?} ({})",
                    path.display(),
                    verdict.overall,
                    verdict.check.summary
                ));
            }
        }
        Err(error) => mismatches.push(error),
    }
}

#[test]
fn porcupine_test_data_gets_porcupine_verdicts() {
    let Some(shared) = shared_histories() else {
        eprintln!("../shared/histories is absent: skipped");
        return;
    };
    let root = shared.join("porcupine");
    let expected = std::fs::read_to_string(root.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for line in expected.lines().skip(1) {
        let Some((file, verdict)) = line.split_once('\t') else {
            continue;
        };
        let path = root.join(file);
        match verdict {
            "linearizable" | "not-linearizable" => {
                expect_verdict(&path, verdict == "linearizable", &mut mismatches);
            }
            // An empty log (the etcd cluster never started): there is nothing to judge.
            _ => {
                if judge(&path).is_ok() {
                    mismatches.push(format!("{file}: has no verdict but was judged"));
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} histories listed");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn knossos_cas_register_histories_get_knossos_verdicts() {
    let Some(shared) = shared_histories() else {
        eprintln!("../shared/histories is absent: skipped");
        return;
    };
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (folder, linearizable) in [("good", true), ("bad", false)] {
        let dir = shared.join("knossos/cas-register").join(folder);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("knossos folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for file in files {
            expect_verdict(&file, linearizable, &mut mismatches);
            checked += 1;
        }
    }
    assert!(checked >= 100, "only {checked} histories");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
