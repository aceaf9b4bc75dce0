//! `reproduce`: a stored run re-run from its folder gives a new folder and the same outcome.

mod run_support;

use harness::campaign::reproduce::reproduce;
use std::path::PathBuf;

#[test]
fn reproducing_a_stored_run_reruns_it_into_a_new_folder_with_the_same_outcome() {
    let out = tempfile::tempdir().expect("tempdir");
    let original =
        run_support::gauntlet_run(out.path(), &["smoke", "--seed", "9", "--duration", "2"]);
    assert_eq!(original.code(), Some(0), "{}", original.stdout());
    let gauntlet = PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"));
    let reproduction = reproduce(&original.run_dir, Some(&gauntlet)).expect("reproduced");
    assert_ne!(reproduction.rerun_dir, original.run_dir, "a new run folder");
    assert_eq!(
        reproduction.rerun_dir.parent().and_then(|p| p.parent()),
        original.run_dir.parent().and_then(|p| p.parent()),
        "next to the original, under the same results root"
    );
    assert_eq!(reproduction.rerun.seed, 9);
    assert!(
        reproduction.rerun.reproduce.contains("--duration 2"),
        "the duration override is carried over: {}",
        reproduction.rerun.reproduce
    );
    assert!(reproduction.matched, "{}", reproduction.summary());
    assert_eq!(reproduction.exit_code(), 0);
    let plan = |dir: &PathBuf| {
        let mut plan: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).expect("plan"))
                .expect("json");
        // The source names where the scenario was read from: the built-in, then the file.
        plan.as_object_mut().expect("object").remove("source");
        plan
    };
    assert_eq!(
        plan(&original.run_dir),
        plan(&reproduction.rerun_dir),
        "same plan"
    );
}
