//! Byzantine clients end to end: a client of the workload runs a behaviour instead of the
//! honest workload; its frames reach the replicas, nothing of it enters the history, the
//! honest clients' service is judged, and `byzantine-clients.json` says what it sent. In
//! simulation (replays, sizes over the cap, the same bytes from one seed) and on real
//! processes (a client that never reads its connections).

mod run_support;
mod sim_support;

use harness::scenario::{self, LoadedScenario};
use harness::workload::ByzantineClientsReport;
use run_support::{check_outcome, gauntlet_run, replicas_still_running};
use sim_support::run_loaded as run_sim;
use std::path::Path;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn report(dir: &Path) -> ByzantineClientsReport {
    serde_json::from_str(&read(dir, "byzantine-clients.json")).expect("byzantine-clients.json")
}

fn scenario_text(body: &str) -> LoadedScenario {
    LoadedScenario::from_text(body, Path::new("byzc-test.yaml")).expect("scenario parses")
}

#[test]
fn a_replaying_client_is_answered_from_the_cache_and_leaves_no_trace_in_the_history() {
    let out = tempfile::tempdir().expect("tempdir");
    let loaded = scenario::load("byzc-replay-timestamps")
        .expect("built-in")
        .with_duration(2.0)
        .expect("shorter");
    let (verdict, dir) = run_sim(&loaded, 3, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let report = report(&dir);
    let client = &report.clients[0];
    assert_eq!(client.client.0, 3);
    assert_eq!(client.behaviour, "replay-timestamps");
    for class in [
        "fresh",
        "replay-executed",
        "replay-old",
        "duplicate-timestamp",
        "older-timestamp",
        "out-of-order",
    ] {
        let sent = serde_json::to_value(&client.sent.requests).expect("counts")[class].as_u64();
        assert!(sent > Some(0), "{class}: {:?}", client.sent.requests);
    }
    assert_eq!(report.honest.clients.len(), 3);
    assert!(report.honest.ok > 100, "{:?}", report.honest);
    // Nothing of client 3 in the history; its requests did reach the replicas and executed
    // at most once each (the integrity oracle passed), and some were answered as duplicates.
    let history = read(&dir, "history.jsonl");
    assert!(
        !history.contains("\"process\":3,"),
        "client 3 is not in the history"
    );
    let events = read(&dir, "replica-1.events.jsonl");
    let executed_of_3 = events
        .lines()
        .filter(|l| l.contains("\"event\":\"execute\"") && l.contains("\"client\":3,"))
        .count();
    assert!(executed_of_3 > 50, "{executed_of_3}");
    assert_eq!(check_outcome_of(&verdict, "integrity"), "pass");
    assert_eq!(check_outcome_of(&verdict, "validity"), "pass");

    // The same seed, the same bytes: the client's frames, the history and the replicas'.
    let (_, again) = run_sim(&loaded, 3, out.path());
    for name in [
        "byzantine-clients.json",
        "history.jsonl",
        "replica-0.events.jsonl",
    ] {
        assert!(read(&dir, name) == read(&again, name), "{name} differs");
    }
}

fn check_outcome_of(verdict: &harness::verdict::Verdict, name: &str) -> String {
    verdict
        .checks
        .iter()
        .find(|c| c.name == name)
        .map(|c| format!("{:?}", c.outcome).to_lowercase())
        .unwrap_or_default()
}

#[test]
fn frames_over_the_cap_are_refused_and_counted_by_every_replica() {
    let out = tempfile::tempdir().expect("tempdir");
    let loaded = scenario_text(
        "name: byzc-over-cap\n\
         description: frames a little over the cap\n\
         clients:\n  \
           2: { behaviour: max-size-requests, params: { interval_ms: \"400\", sizes: \"over\" } }\n\
         workload: { kind: kv, clients: 3, keys: 4, duration_s: 2 }\n\
         checks: { liveness_bound_ms: 5000, settle_ms: 200 }\n",
    );
    let (verdict, dir) = run_sim(&loaded, 1, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let sent = &report(&dir).clients[0].sent;
    let rounds = serde_json::to_value(&sent.requests).expect("counts")["over-cap"]
        .as_u64()
        .expect("over-cap frames sent");
    assert_eq!(rounds, 5, "one per 400 ms for 2 s");
    for replica in 0..4 {
        let refused = read(&dir, &format!("replica-{replica}.events.jsonl"))
            .lines()
            .filter(|l| l.contains("\"reason\":\"oversized-frame\""))
            .count() as u64;
        assert_eq!(refused, rounds, "replica {replica} refused each one");
    }
}

/// A real run: a client asks every replica for 48 KiB replies and never reads them (a value
/// under the largest request a batch may carry at the default window, about 64 KiB). Each
/// replica's reply queue for it fills and the replica drops what it cannot send (it counts
/// them), and it goes on serving the honest clients.
#[test]
fn replicas_drop_what_a_client_that_never_reads_cannot_take_and_serve_the_others() {
    let out = tempfile::tempdir().expect("tempdir");
    let path = out.path().join("never-read.yaml");
    std::fs::write(
        &path,
        "name: byzc-never-read-short\n\
         description: 48 KiB replies to a client that never reads\n\
         clients:\n  \
           2: { behaviour: never-read, params: { rate: \"300\", value_bytes: \"49152\" } }\n\
         workload: { kind: kv, clients: 3, keys: 4, duration_s: 3 }\n\
         checks: { liveness_bound_ms: 6000, settle_ms: 200 }\n",
    )
    .expect("scenario written");
    let path = path.display().to_string();
    let run = gauntlet_run(out.path(), &[&path, "--seed", "5"]);
    assert!(
        replicas_still_running(&run.run_dir).is_empty(),
        "replica processes outlived the run"
    );
    assert_eq!(run.code(), Some(0), "{}", run.stdout());
    assert_eq!(check_outcome(&run.verdict, "liveness"), "pass");
    let report = report(&run.run_dir);
    let sent = &report.clients[0].sent;
    assert_eq!(sent.replies, 0, "it never read");
    assert!(sent.total_frames() > 1000, "{sent:?}");
    assert!(report.honest.ok > 100, "{:?}", report.honest);
    for replica in 0..4 {
        let stats: serde_json::Value = serde_json::from_str(&read(
            &run.run_dir,
            &format!("replica-{replica}.stats.json"),
        ))
        .expect("stats");
        assert!(
            stats["outbound_dropped"].as_u64() > Some(0),
            "replica {replica} dropped replies it could not send: {stats}"
        );
    }
}

/// Requests of client 3 each honest replica executed (first executions, not duplicates).
fn executed_of_client_3(dir: &Path, replica: u32) -> u64 {
    read(dir, &format!("replica-{replica}.events.jsonl"))
        .lines()
        .filter(|l| {
            l.contains("\"event\":\"execute\"")
                && l.contains("\"request\":{\"client\":3,")
                && l.contains("\"duplicate\":false")
        })
        .count() as u64
}

fn sent_of_class(dir: &Path, class: &str) -> u64 {
    serde_json::to_value(&report(dir).clients[0].sent.requests).expect("counts")[class]
        .as_u64()
        .unwrap_or(0)
}

/// Aardvark's MAC attack under `auth: macs`: client 3 sends the primary validly signed requests
/// whose authenticator is spoiled for every backup. Without the defence each backup would
/// refuse every PRE-PREPARE that carries one (`bad-mac`), and primary after primary would be
/// voted out. With it (the primary checks the signature, a backup whose entry fails falls back
/// on the signature), every honest replica executes the attacker's requests in view 0 and
/// refuses nothing. With `signature: invalid`, the primary refuses each request
/// (`bad-signature`) and nothing of it is executed anywhere.
#[test]
fn a_mac_attack_changes_no_view_and_its_requests_execute_everywhere_or_nowhere() {
    let out = tempfile::tempdir().expect("tempdir");
    let loaded = scenario::load("byzc-mac-attack")
        .expect("built-in")
        .with_duration(2.0)
        .expect("shorter");
    assert_eq!(loaded.scenario.cluster.auth, replica::auth::AuthMode::Macs);
    let (verdict, dir) = run_sim(&loaded, 2, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let sent = sent_of_class(&dir, "spoiled-macs");
    assert!(sent >= 350, "200 per second for 2 s: {sent}");
    let executed: Vec<u64> = (0..4).map(|r| executed_of_client_3(&dir, r)).collect();
    assert!(
        executed
            .iter()
            .all(|e| *e == executed[0] && *e * 10 >= sent * 9),
        "every replica executed (nearly) every request sent: {executed:?} of {sent}"
    );
    assert_eq!(verdict.counts.defence.len(), 4, "four honest replicas");
    for (replica, defence) in &verdict.counts.defence {
        assert_eq!(
            defence.rejected_total(),
            0,
            "r{replica} refused nothing: {}",
            defence.describe()
        );
        assert_eq!(
            defence.view_changes_started, 0,
            "r{replica}: no view change"
        );
        assert_eq!(defence.final_view, Some(0), "r{replica}");
        // The attack made visible: each backup counts every attacking request proposed to it
        // (each executed one at least) as a spoiled entry its signature stood in for; the
        // primary, which checks each request's signature anyway, counts none.
        let executed = executed_of_client_3(&dir, replica.0);
        if replica.0 == 0 {
            assert_eq!(
                defence.mac_fallbacks,
                0,
                "the primary: {}",
                defence.describe()
            );
        } else {
            assert!(
                defence.mac_fallbacks >= executed && executed > 0,
                "r{replica}: {} fallbacks for {executed} executed",
                defence.mac_fallbacks
            );
        }
    }
    harness::report::write_report(&dir).expect("report.html");
    let page = read(&dir, "report.html");
    assert!(
        page.contains("id=\"attack\"") && page.contains("<th>MAC fallbacks</th>"),
        "the report shows them, though no replica was faulty"
    );

    let loaded = scenario_text(
        "name: byzc-mac-attack-bad-signature\n\
         description: spoiled MACs and a bad signature\n\
         cluster: { auth: macs }\n\
         clients:\n  \
           3: { behaviour: mac-attack, params: { spoil: \"2\", signature: invalid } }\n\
         workload: { kind: kv, clients: 4, keys: 4, duration_s: 2 }\n\
         checks: { liveness_bound_ms: 5000, settle_ms: 200 }\n",
    );
    let (verdict, dir) = run_sim(&loaded, 2, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let sent = sent_of_class(&dir, "bad-signature");
    assert!(sent >= 350, "{sent}");
    for replica in 0..4 {
        assert_eq!(executed_of_client_3(&dir, replica), 0, "r{replica}");
    }
    let defence = &verdict.counts.defence;
    let primary = &defence[&replica::ReplicaId(0)];
    assert_eq!(
        primary.rejected.get("bad-signature"),
        Some(&sent),
        "the primary refused every one: {}",
        primary.describe()
    );
    for backup in 1..4 {
        let backup = &defence[&replica::ReplicaId(backup)];
        assert_eq!(backup.rejected_total(), 0, "{}", backup.describe());
        assert_eq!(backup.view_changes_started, 0);
        assert_eq!(backup.mac_fallbacks, 0, "an honest primary proposed none");
    }
}

/// With no attack, nothing falls back: an honest run under `auth: macs`, whose clients'
/// authenticators are all valid, counts no MAC fallback anywhere.
#[test]
fn an_honest_run_under_macs_counts_no_mac_fallback() {
    let out = tempfile::tempdir().expect("tempdir");
    let loaded = scenario::load("smoke")
        .expect("built-in")
        .with_auth(replica::auth::AuthMode::Macs)
        .with_duration(2.0)
        .expect("shorter");
    let (verdict, _dir) = run_sim(&loaded, 1, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    assert_eq!(verdict.counts.defence.len(), 4);
    for (replica, defence) in &verdict.counts.defence {
        assert_eq!(
            defence.mac_fallbacks,
            0,
            "r{replica}: {}",
            defence.describe()
        );
    }
}
