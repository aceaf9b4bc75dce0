//! The bounded-resources oracle end to end in simulation: a built-in flood runs in virtual
//! time, every honest replica's `resources` samples are judged (online and from the files),
//! and the same files edited to hold a log over its bound, or stripped of their samples as a
//! folder from before them would be, are judged a violation and inconclusive.

mod sim_support;

use harness::check::{CheckOutcome, CheckResult};
use harness::verdict::{self, Verdict};
use sim_support::run_named as run_sim;
use std::path::Path;

fn resources_check(verdict: &Verdict) -> &CheckResult {
    verdict
        .checks
        .iter()
        .find(|c| c.name == "bounded-resources")
        .expect("bounded-resources judged")
}

/// Rewrites every `resources` line of `replica`'s events file with `edit`, the rest as is.
fn edit_samples(dir: &Path, replica: u32, edit: impl Fn(&mut serde_json::Value) -> bool) {
    let path = dir.join(format!("replica-{replica}.events.jsonl"));
    let text = std::fs::read_to_string(&path).expect("events file");
    let mut out = String::new();
    for line in text.lines() {
        let mut value: serde_json::Value = serde_json::from_str(line).expect("an events line");
        let keep = value["event"] != "resources" || edit(&mut value);
        if keep {
            out.push_str(&serde_json::to_string(&value).expect("encode"));
            out.push('\n');
        }
    }
    std::fs::write(&path, out).expect("rewrite events");
}

#[test]
fn a_simulated_flood_stays_within_its_bounds_and_a_log_edited_past_them_is_caught() {
    let out = tempfile::tempdir().expect("tempdir");
    let (verdict, dir) = run_sim("byz-flood", 1, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let check = resources_check(&verdict);
    assert_eq!(check.outcome, CheckOutcome::Pass, "{}", check.summary);
    eprintln!("byz-flood (sim, seed 1): {}", check.summary);
    let details = &check.details;
    let bounds = &details["bounds"];
    let honest = [0u32, 1, 2];
    // Real samples: every honest replica wrote several, with log bytes and slots in them.
    assert!(details["samples"].as_u64() > Some(3 * 5), "{details}");
    for replica in honest {
        let peaks = &details["replicas"][replica.to_string()];
        assert!(peaks["samples"].as_u64() > Some(5), "r{replica}: {peaks}");
        assert!(peaks["slots"].as_u64() > Some(0), "r{replica}: {peaks}");
        assert!(peaks["slots"].as_u64() <= bounds["slots"].as_u64());
        assert!(peaks["wal_bytes"].as_u64() > Some(0), "r{replica}: {peaks}");
        assert!(peaks["wal_bytes"].as_u64() <= peaks["wal_bound"].as_u64());
        assert!(
            peaks["snapshot_bytes"].as_u64() > Some(0),
            "r{replica}: {peaks}"
        );
        assert!(
            peaks.get("rss_bytes").is_none(),
            "a simulation measures no memory"
        );
    }

    // The same run with one honest replica's log grown past what its settings allow.
    let bound = bounds["checkpoint_bytes"].as_u64().unwrap_or(0)
        + bounds["window_bytes"].as_u64().unwrap_or(0);
    edit_samples(&dir, 2, |sample| {
        if sample["time_ns"].as_u64() > Some(3_000_000_000) {
            sample["wal_bytes"] = (10 * bound).into();
        }
        true
    });
    let rejudged = verdict::recheck(&dir).expect("recheck");
    let check = resources_check(&rejudged);
    assert_eq!(check.outcome, CheckOutcome::Violation, "{}", check.summary);
    let breach = &check.details["breaches"][0];
    assert_eq!(breach["replica"], 2);
    assert_eq!(breach["resource"], "wal-bytes");
    assert_eq!(breach["measured"].as_u64(), Some(10 * bound));
    assert!(breach["sample"]["time_ns"].as_u64() > Some(3_000_000_000));
    assert!(
        check.summary.contains("replica 2 held"),
        "{}",
        check.summary
    );
    let page = harness::report::render_report(&dir);
    assert!(
        page.contains("id=\"bounded-resources\""),
        "no report section"
    );

    // A folder from before the samples: nothing judged is not a pass.
    for replica in 0..4 {
        edit_samples(&dir, replica, |_| false);
    }
    let rejudged = verdict::recheck(&dir).expect("recheck");
    let check = resources_check(&rejudged);
    assert_eq!(
        check.outcome,
        CheckOutcome::Inconclusive,
        "{}",
        check.summary
    );
}

/// A replica brought back by state transfer used to execute the committed certificates of an
/// answer past its high watermark and hold a slot for each: twice the window under
/// `byz-checkpoint-lie` (seed 1), which this oracle stopped online. It now leaves them for
/// the checkpoint that moves its window.
#[test]
fn a_replica_caught_up_by_state_transfer_holds_no_slot_beyond_its_window() {
    let out = tempfile::tempdir().expect("tempdir");
    let (verdict, _) = run_sim("byz-checkpoint-lie", 1, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let check = resources_check(&verdict);
    assert_eq!(check.outcome, CheckOutcome::Pass, "{}", check.summary);
    let restarted = &check.details["replicas"]["3"];
    assert!(restarted["samples"].as_u64() > Some(5), "{restarted}");
    assert!(restarted["slots"].as_u64() <= check.details["bounds"]["slots"].as_u64());
}
