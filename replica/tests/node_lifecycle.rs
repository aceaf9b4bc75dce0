//! Starting and stopping a replica process: clean exits and what they leave behind.

mod node_support;

use node_support::*;
use replica::events::{EventLine, ReplicaEvent};
use replica::message::WireMessage;
use replica::verify::RejectReason;

#[test]
fn sigterm_exits_zero_and_leaves_events_and_stats_behind() {
    let testnet = Testnet::new(10);
    let mut replica = testnet.start(0);
    // Something worth an event line: a request with a broken signature.
    let mut request = signed_request(&testnet.client_key(0), 0, 1, put("k", "v"));
    if let Some(signature) = request.seal.signature_mut() {
        signature[0] ^= 1;
    }
    let mut stream = connect(testnet.address(0));
    send(&mut stream, &frame(&WireMessage::Request(request)));
    testnet.wait_for_stats(0, "the bad signature", |s| {
        s.rejected.get("bad-signature") == Some(&1)
    });

    replica.signal(nix::sys::signal::Signal::SIGTERM);
    let status = replica.wait_exit();
    assert!(status.success(), "{status:?}\n{}", testnet.stderr(0));

    let events =
        std::fs::read_to_string(testnet.data_dir(0).join("events.jsonl")).expect("events.jsonl");
    let lines: Vec<EventLine> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is an EventLine"))
        .collect();
    assert!(lines.iter().any(|l| matches!(
        l.event,
        ReplicaEvent::Rejected {
            reason: RejectReason::BadSignature,
            ..
        }
    )));
    let stats = testnet.stats(0).expect("stats.json after exit");
    assert_eq!(stats.replica, replica_id(0));
    assert_eq!(stats.rejected.get("bad-signature"), Some(&1));
}

#[test]
fn sigint_also_exits_zero() {
    let testnet = Testnet::new(11);
    let mut replica = testnet.start(1);
    replica.signal(nix::sys::signal::Signal::SIGINT);
    let status = replica.wait_exit();
    assert!(status.success(), "{status:?}\n{}", testnet.stderr(1));
    assert!(testnet.stats(1).is_some());
}

#[test]
fn exit_with_stdin_exits_cleanly_when_stdin_closes() {
    let testnet = Testnet::new(12);
    let mut replica = testnet.start_with(2, &["--exit-with-stdin"], true);
    assert!(replica.is_running());
    drop(replica.child.stdin.take());
    let status = replica.wait_exit();
    assert!(status.success(), "{status:?}\n{}", testnet.stderr(2));
    assert!(testnet.stats(2).is_some());
}

#[test]
fn without_exit_with_stdin_a_closed_stdin_does_not_stop_the_replica() {
    let testnet = Testnet::new(13);
    let mut replica = testnet.start_with(3, &[], true);
    drop(replica.child.stdin.take());
    // Stats are rewritten every second: two rewrites prove it kept running past the EOF.
    let first = testnet.wait_for_stats(3, "a stats file", |_| true);
    testnet.wait_for_stats(3, "a later stats file", |s| s.uptime_ms > first.uptime_ms);
    assert!(replica.is_running());
}
