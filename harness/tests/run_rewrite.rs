//! `rewrite-in-flight`: the proxy rewrites PRE-PREPAREs and PREPAREs without re-signing them;
//! honest replicas must reject every one, so the run passes.

mod run_support;

use run_support::{assert_run_files, check_outcome, gauntlet_run, replicas_still_running};

#[test]
fn rewritten_protocol_messages_are_rejected_and_the_run_passes() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = gauntlet_run(out.path(), &["rewrite-in-flight", "--seed", "21"]);
    assert_eq!(run.code(), Some(0), "stdout:\n{}", run.stdout());
    assert_eq!(run.verdict["outcome"], "pass");
    for check in [
        "linearizability",
        "agreement",
        "validity",
        "integrity",
        "liveness",
    ] {
        assert_eq!(check_outcome(&run.verdict, check), "pass", "{check}");
    }
    assert_run_files(&run.run_dir, 4);
    // The attack really happened, and the replicas really refused it.
    let proxy_log = std::fs::read_to_string(run.run_dir.join("proxy.jsonl")).expect("proxy log");
    assert!(
        proxy_log.contains("\"rewrite\""),
        "the proxy logged no rewrite"
    );
    let rewritten = run.verdict["counts"]["proxy"]["rewritten"]
        .as_u64()
        .unwrap_or(0);
    assert!(rewritten > 0, "the proxy rewrote nothing");
    let rejected: u64 = run.verdict["counts"]["replicas"]
        .as_object()
        .expect("per-replica counts")
        .values()
        .map(|c| c["rejected"].as_u64().unwrap_or(0))
        .sum();
    assert!(rejected > 0, "no replica reported a rejection");
    assert!(replicas_still_running(&run.run_dir).is_empty());
}
