//! The proxy on real TCP links with real signed frames: forwarding, drop, delay, duplicate,
//! reorder, rewrite, runtime rule changes, and per-seed determinism.

mod proxy_support;

use harness::proxy::{Action, Direction, Endpoint, Matcher, RewriteMode, Rule};
use proxy_support::*;
use replica::message::{MessageKind, WireMessage};
use replica::verify::verify;
use replica::wire::{DEFAULT_MAX_FRAME, decode_payload, encode_payload};
use replica::{ClientId, ReplicaId};

fn rule(id: &str, kinds: Option<Vec<MessageKind>>, action: Action) -> Rule {
    Rule {
        id: id.into(),
        matcher: Matcher {
            kinds,
            ..Matcher::default()
        },
        action,
    }
}

fn actions_of<'a>(log: &'a [serde_json::Value], action: &str) -> Vec<&'a serde_json::Value> {
    log.iter().filter(|l| l["action"] == action).collect()
}

#[tokio::test]
async fn frames_pass_unchanged_both_ways_without_rules() {
    let mut target = Target::start(true).await;
    let running = start_proxy(vec![link(Endpoint::Client(ClientId(1)), 0, target.addr)], 1).await;
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    let sent = vec![
        prepare(1),
        pre_prepare(2),
        commit(3),
        reply(4),
        checkpoint(5),
    ];
    for message in &sent {
        conn.send(message).await;
    }
    for message in &sent {
        assert_eq!(target.next_payload().await, encode_payload(message));
        assert_eq!(
            conn.expect_payload().await,
            encode_payload(message),
            "echo comes back intact"
        );
    }
    let stats = running.proxy.stats();
    let forward = stats.sum(|r| r.direction == Direction::Forward);
    let backward = stats.sum(|r| r.direction == Direction::Backward);
    assert_eq!((forward.received, forward.forwarded), (5, 5));
    assert_eq!((backward.received, backward.forwarded), (5, 5));
    assert_eq!(stats.for_kind("pre-prepare").forwarded, 2);
    let log = running.finish().await;
    assert!(
        log.is_empty(),
        "untouched frames are counted, not logged: {log:?}"
    );
}

#[tokio::test]
async fn a_certain_drop_removes_exactly_the_matching_kind() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        1,
    )
    .await;
    running.proxy.set_rules(vec![rule(
        "no-prepares",
        Some(vec![MessageKind::Prepare]),
        Action::Drop { probability: 1.0 },
    )]);
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    for seq in 1..=10 {
        conn.send(&prepare(seq)).await;
        conn.send(&commit(seq)).await;
    }
    conn.send(&sentinel()).await;
    let delivered = target.until_sentinel().await;
    let expected: Vec<Vec<u8>> = (1..=10).map(|s| encode_payload(&commit(s))).collect();
    assert_eq!(delivered, expected);
    assert_eq!(running.proxy.stats().for_kind("prepare").dropped, 10);
    let log = running.finish().await;
    let drops = actions_of(&log, "drop");
    assert_eq!(drops.len(), 10);
    assert!(drops.iter().all(|d| d["kind"] == "prepare"
        && d["rule"] == "no-prepares"
        && d["from"] == "r0"
        && d["to"] == "r1"));
}

#[tokio::test]
async fn a_delayed_frame_is_overtaken_by_later_undelayed_ones() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        1,
    )
    .await;
    running.proxy.add_rule(rule(
        "slow-commits",
        Some(vec![MessageKind::Commit]),
        Action::Delay {
            fixed_ms: 300,
            jitter_ms: 0,
        },
    ));
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    conn.send(&commit(1)).await;
    conn.send(&prepare(2)).await;
    assert_eq!(target.next_payload().await, encode_payload(&prepare(2)));
    assert_eq!(target.next_payload().await, encode_payload(&commit(1)));
    let log = running.finish().await;
    let delays = actions_of(&log, "delay");
    assert_eq!(delays.len(), 1);
    assert_eq!(delays[0]["detail"], "300 ms");
    assert_eq!(delays[0]["seq"], 1);
}

#[tokio::test]
async fn a_delay_on_one_link_does_not_hold_up_another_link() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![
            link(Endpoint::Replica(ReplicaId(0)), 1, target.addr),
            link(Endpoint::Replica(ReplicaId(2)), 1, target.addr),
        ],
        1,
    )
    .await;
    let mut slow = rule(
        "slow-link",
        None,
        Action::Delay {
            fixed_ms: 500,
            jitter_ms: 0,
        },
    );
    slow.matcher.from = Some(vec![Endpoint::Replica(ReplicaId(0))]);
    running.proxy.add_rule(slow);
    let mut from_0 = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    let mut from_2 = FramedConn::dial(running.proxy.listen_addrs()[1]).await;
    from_0.send(&commit(1)).await;
    from_2.send(&commit(2)).await;
    assert_eq!(target.next_payload().await, encode_payload(&commit(2)));
    assert_eq!(target.next_payload().await, encode_payload(&commit(1)));
    running.finish().await;
}

#[tokio::test]
async fn duplicate_delivers_a_matching_frame_twice_in_place() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        1,
    )
    .await;
    running.proxy.add_rule(rule(
        "twice",
        Some(vec![MessageKind::Prepare]),
        Action::Duplicate { probability: 1.0 },
    ));
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    conn.send(&prepare(1)).await;
    conn.send(&commit(1)).await;
    conn.send(&sentinel()).await;
    let delivered = target.until_sentinel().await;
    let p = encode_payload(&prepare(1));
    assert_eq!(delivered, vec![p.clone(), p, encode_payload(&commit(1))]);
    assert_eq!(running.proxy.stats().for_kind("prepare").forwarded, 2);
    let log = running.finish().await;
    assert_eq!(actions_of(&log, "duplicate").len(), 1);
}

#[tokio::test]
async fn reorder_releases_a_full_window_in_a_shuffled_order() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        3,
    )
    .await;
    running.proxy.add_rule(rule(
        "shuffle",
        Some(vec![MessageKind::Prepare]),
        Action::Reorder {
            window: 8,
            max_hold_ms: 10_000,
        },
    ));
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    for seq in 1..=8 {
        conn.send(&prepare(seq)).await;
    }
    let mut seqs = Vec::new();
    for _ in 0..8 {
        seqs.push(decode(&target.next_payload().await).seq().map(|s| s.0));
    }
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (1..=8).map(Some).collect::<Vec<_>>(),
        "every frame arrives once"
    );
    assert_ne!(seqs, sorted, "the window was shuffled");
    running.finish().await;
}

fn verifies(payload: &[u8]) -> bool {
    decode_payload(payload, DEFAULT_MAX_FRAME).is_ok_and(|m| verify(m, &keys()).is_ok())
}

#[tokio::test]
async fn rewriting_a_field_leaves_a_decodable_message_whose_signature_fails() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        5,
    )
    .await;
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    let originals: Vec<WireMessage> = (1..=6)
        .flat_map(|s| {
            [
                prepare(s),
                pre_prepare(s),
                commit(s),
                checkpoint(s),
                reply(s),
                WireMessage::Request(request(1, s)),
            ]
        })
        .collect();
    assert!(
        originals.iter().all(|m| verifies(&encode_payload(m))),
        "originals verify"
    );
    running.proxy.add_rule(rule(
        "forge",
        None,
        Action::Rewrite {
            mode: RewriteMode::Field,
            probability: 1.0,
        },
    ));
    for message in &originals {
        conn.send(message).await;
    }
    for original in &originals {
        let payload = target.next_payload().await;
        let rewritten = decode(&payload);
        assert_eq!(rewritten.kind(), original.kind());
        assert_ne!(&rewritten, original, "a field changed");
        assert!(
            !verifies(&payload),
            "rewritten {:?} must not verify",
            rewritten.kind()
        );
    }
    let log = running.finish().await;
    assert_eq!(actions_of(&log, "rewrite").len(), originals.len());
}

#[tokio::test]
async fn flipped_bits_never_verify_and_truncated_frames_do_not_decode() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        9,
    )
    .await;
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    running.proxy.set_rules(vec![rule(
        "flip",
        None,
        Action::Rewrite {
            mode: RewriteMode::FlipBytes,
            probability: 1.0,
        },
    )]);
    for seq in 1..=10 {
        conn.send(&pre_prepare(seq)).await;
        let payload = target.next_payload().await;
        assert_ne!(payload, encode_payload(&pre_prepare(seq)));
        assert!(!verifies(&payload));
    }
    running.proxy.set_rules(vec![rule(
        "cut",
        Some(vec![MessageKind::Commit]),
        Action::Rewrite {
            mode: RewriteMode::Truncate,
            probability: 1.0,
        },
    )]);
    for seq in 1..=10 {
        conn.send(&commit(seq)).await;
        let payload = target.next_payload().await;
        assert!(payload.len() < encode_payload(&commit(seq)).len());
        assert!(
            decode_payload(&payload, DEFAULT_MAX_FRAME).is_err(),
            "a truncated frame is rejected"
        );
    }
    // The stream stays framed: a frame after the truncated ones arrives whole.
    conn.send(&prepare(11)).await;
    assert_eq!(target.next_payload().await, encode_payload(&prepare(11)));
    running.finish().await;
}

#[tokio::test]
async fn undecodable_frames_are_forwarded_and_match_only_unconditional_rules() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        1,
    )
    .await;
    running.proxy.add_rule(rule(
        "kinds-only",
        Some(MessageKind::ALL.to_vec()),
        Action::Drop { probability: 1.0 },
    ));
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    let garbage = vec![0xff; 40];
    conn.send_payload(&garbage).await;
    assert_eq!(target.next_payload().await, garbage);
    running
        .proxy
        .add_rule(rule("everything", None, Action::Drop { probability: 1.0 }));
    conn.send_payload(&garbage).await;
    wait_until_received(&running.proxy, 2).await;
    running.proxy.clear_rules();
    conn.send(&sentinel()).await;
    assert!(
        target.until_sentinel().await.is_empty(),
        "the unconditional rule dropped it"
    );
    assert_eq!(running.proxy.stats().for_kind("undecodable").dropped, 1);
    running.finish().await;
}

#[tokio::test]
async fn a_rule_change_applies_from_the_next_frame() {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        1,
    )
    .await;
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    conn.send(&commit(1)).await;
    assert_eq!(target.next_payload().await, encode_payload(&commit(1)));
    running
        .proxy
        .add_rule(rule("cut", None, Action::Drop { probability: 1.0 }));
    conn.send(&commit(2)).await;
    wait_until_received(&running.proxy, 2).await;
    running.proxy.remove_rule("cut");
    conn.send(&commit(3)).await;
    assert_eq!(target.next_payload().await, encode_payload(&commit(3)));
    running.finish().await;
}

/// Sends 200 prepares through a 50% drop rule and returns which got through.
async fn surviving_seqs(seed: u64) -> Vec<u64> {
    let mut target = Target::start(false).await;
    let running = start_proxy(
        vec![link(Endpoint::Replica(ReplicaId(0)), 1, target.addr)],
        seed,
    )
    .await;
    running.proxy.add_rule(rule(
        "coin",
        Some(vec![MessageKind::Prepare]),
        Action::Drop { probability: 0.5 },
    ));
    let mut conn = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    for seq in 1..=200 {
        conn.send(&prepare(seq)).await;
    }
    conn.send(&sentinel()).await;
    let seqs = target
        .until_sentinel()
        .await
        .iter()
        .filter_map(|p| decode(p).seq().map(|s| s.0))
        .collect();
    running.finish().await;
    seqs
}

#[tokio::test]
async fn drop_decisions_repeat_for_the_same_seed_and_differ_for_another() {
    let first = surviving_seqs(42).await;
    let again = surviving_seqs(42).await;
    let other = surviving_seqs(43).await;
    assert!(
        !first.is_empty() && first.len() < 200,
        "about half survive: {}",
        first.len()
    );
    assert_eq!(first, again);
    assert_ne!(first, other);
}
