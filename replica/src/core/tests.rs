//! Smoke tests of the core on a hand-driven lossless network (the seeded simulator in
//! `crate::sim` carries the thorough tests).

use super::*;
use crate::crypto::key_from_seed;
use crate::ids::{ClientId, Principal, Timestamp};
use crate::kv::{OpResult, Operation};
use crate::message::{Request, Signed, WireMessage};
use crate::verify::verify;
use std::collections::VecDeque;

const CLIENTS: u32 = 4;

struct Net {
    cores: Vec<Core>,
    keys: Arc<KeyStore>,
    queue: VecDeque<(ReplicaId, WireMessage)>,
    replies: Vec<(ReplicaId, Signed<crate::message::Reply>)>,
    down: std::collections::HashSet<ReplicaId>,
    /// Every timer a core set, in order.
    timers_set: Vec<(ReplicaId, Timer)>,
    /// Every record a core wrote to its log, in order.
    persisted: Vec<(ReplicaId, WalRecord)>,
}

fn net(f: usize) -> Net {
    let n = 3 * f + 1;
    let replica_keys: Vec<_> = (0..n)
        .map(|i| key_from_seed(7, Principal::Replica(ReplicaId(i as u32))))
        .collect();
    let keys = Arc::new(KeyStore::new(
        replica_keys.iter().map(|k| k.verifying_key()).collect(),
        (0..CLIENTS)
            .map(|c| {
                let key = key_from_seed(7, Principal::Client(ClientId(c)));
                (ClientId(c), key.verifying_key())
            })
            .collect(),
    ));
    let cores = replica_keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let params = CoreParams {
                id: ReplicaId(i as u32),
                quorums: Quorums { f },
                checkpoint_interval: 4,
                watermark_window: 8,
                max_batch: 8,
                pipeline_depth: 2,
                timeouts: Timeouts::default(),
                max_frame_bytes: crate::wire::DEFAULT_MAX_FRAME,
            };
            Core::new(params, key, keys.clone())
        })
        .collect();
    Net {
        cores,
        keys,
        queue: VecDeque::new(),
        replies: Vec::new(),
        down: Default::default(),
        timers_set: Vec::new(),
        persisted: Vec::new(),
    }
}

impl Net {
    fn apply(&mut self, from: ReplicaId, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { to, message } => self.queue.push_back((to, message)),
                Effect::Broadcast(message) => {
                    for to in 0..self.cores.len() as u32 {
                        if ReplicaId(to) != from {
                            self.queue.push_back((ReplicaId(to), message.clone()));
                        }
                    }
                }
                Effect::Reply { reply, .. } => self.replies.push((from, reply)),
                Effect::SetTimer { timer, .. } => self.timers_set.push((from, timer)),
                Effect::Persist(record) => self.persisted.push((from, record)),
                _ => {}
            }
        }
    }

    fn deliver_all(&mut self) {
        while let Some((to, message)) = self.queue.pop_front() {
            if self.down.contains(&to) || self.down.contains(&sender(&message)) {
                continue;
            }
            let verified = verify(message, &self.keys).expect("honest messages verify");
            let effects = self.cores[to.0 as usize].step(Input::Message(verified));
            self.apply(to, effects);
        }
    }

    fn submit(&mut self, to: ReplicaId, timestamp: u64, op: Operation) {
        self.queue_request(ClientId(0), to, timestamp, op);
        self.deliver_all();
    }

    fn queue_request(&mut self, client: ClientId, to: ReplicaId, timestamp: u64, op: Operation) {
        let key = key_from_seed(7, Principal::Client(client));
        let request = Signed::sign(
            Request {
                client,
                timestamp: Timestamp(timestamp),
                op,
            },
            Principal::Client(client),
            &key,
        );
        self.queue.push_back((to, WireMessage::Request(request)));
    }
}

#[test]
fn a_request_sent_to_the_primary_executes_at_every_replica() {
    let mut net = net(1);
    net.submit(
        ReplicaId(0),
        1,
        Operation::Put {
            key: "k".into(),
            value: "v".into(),
        },
    );
    assert!(net.cores.iter().all(|c| c.last_executed() == Seq(1)));
    assert_eq!(net.replies.len(), 4);
    assert!(
        net.replies
            .iter()
            .all(|(_, r)| r.body.result == OpResult::Done)
    );
}

#[test]
fn checkpoints_become_stable_and_truncate_the_log() {
    let mut net = net(1);
    for t in 1..=20 {
        net.submit(
            ReplicaId(0),
            t,
            Operation::Append {
                key: "k".into(),
                value: "x".into(),
            },
        );
    }
    for core in &net.cores {
        assert_eq!(core.last_executed(), Seq(20));
        assert_eq!(core.stable_checkpoint(), Seq(20));
        assert_eq!(core.log_len(), 0);
    }
    let digests: Vec<_> = net.cores.iter().map(|c| c.state_digest()).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_request_sent_to_a_backup_is_relayed_to_the_primary() {
    let mut net = net(1);
    net.submit(ReplicaId(2), 1, Operation::Get { key: "k".into() });
    assert!(net.cores.iter().all(|c| c.last_executed() == Seq(1)));
}

#[test]
fn a_view_change_elects_the_next_primary_and_keeps_committed_state() {
    let mut net = net(1);
    net.submit(
        ReplicaId(0),
        1,
        Operation::Put {
            key: "k".into(),
            value: "1".into(),
        },
    );
    // The primary (0) goes silent. The client broadcasts its next request to the backups.
    net.down.insert(ReplicaId(0));
    for i in 1..4 {
        net.submit(ReplicaId(i), 2, Operation::Get { key: "k".into() });
    }
    for i in 1..4u32 {
        let effects = net.cores[i as usize].step(Input::TimerFired(Timer::ViewChange));
        net.apply(ReplicaId(i), effects);
    }
    net.deliver_all();
    for core in &net.cores[1..] {
        assert_eq!(core.view(), View(1));
        assert!(!core.in_view_change());
        assert_eq!(core.last_executed(), Seq(2));
        assert_eq!(core.service().kv.get("k"), Some("1"));
    }
    let answers = net
        .replies
        .iter()
        .filter(|(_, r)| r.body.timestamp == Timestamp(2))
        .count();
    assert_eq!(answers, 3);
}

#[test]
fn the_replies_of_one_batch_share_one_signature_and_each_verifies_alone() {
    let mut net = net(1);
    // Pipeline depth 2: the first two requests go out in batches of one, the last two wait
    // and then share the third batch, whose replies are produced in one step.
    for client in 0..CLIENTS {
        let op = Operation::Put {
            key: format!("k{client}"),
            value: format!("v{client}"),
        };
        net.queue_request(ClientId(client), ReplicaId(0), 1, op);
    }
    net.deliver_all();
    assert!(net.cores.iter().all(|c| c.last_executed() == Seq(3)));
    assert_eq!(net.replies.len(), 4 * CLIENTS as usize);
    let from_replica_1: Vec<_> = net
        .replies
        .iter()
        .filter(|(from, _)| *from == ReplicaId(1))
        .map(|(_, reply)| reply)
        .collect();
    let batched = &from_replica_1[2..];
    assert_eq!(batched[0].seal, batched[1].seal);
    assert!(!batched[0].body.path.is_empty());
    for (_, reply) in &net.replies {
        verify(WireMessage::Reply(reply.clone()), &net.keys).expect("every reply verifies");
    }
    // A path belongs to its own reply: another client's result under it does not verify.
    let mut lie = batched[0].clone();
    lie.body.result = batched[1].body.result.clone();
    lie.body.client = batched[1].body.client;
    assert!(verify(WireMessage::Reply(lie), &net.keys).is_err());
}

#[test]
fn under_load_the_primary_holds_a_partial_batch_until_it_fills_or_its_timer_fires() {
    let mut net = net(1);
    let put = |client: u32| Operation::Put {
        key: format!("k{client}"),
        value: "v".into(),
    };
    for client in 0..CLIENTS {
        net.queue_request(ClientId(client), ReplicaId(0), 1, put(client));
    }
    net.deliver_all();
    assert!(net.cores.iter().all(|c| c.last_executed() == Seq(3)));

    // Four clients are active, so one request alone waits for a second one...
    net.queue_request(ClientId(0), ReplicaId(0), 2, put(0));
    net.deliver_all();
    assert_eq!(net.cores[0].last_executed(), Seq(3));
    net.queue_request(ClientId(1), ReplicaId(0), 2, put(1));
    net.deliver_all();
    assert!(net.cores.iter().all(|c| c.last_executed() == Seq(4)));

    // ...or for the batch timer.
    net.queue_request(ClientId(2), ReplicaId(0), 2, put(2));
    net.deliver_all();
    assert_eq!(net.cores[0].last_executed(), Seq(4));
    let effects = net.cores[0].step(Input::TimerFired(Timer::Batch));
    net.apply(ReplicaId(0), effects);
    net.deliver_all();
    assert!(net.cores.iter().all(|c| c.last_executed() == Seq(5)));
}

#[test]
fn a_lone_client_is_never_held_back() {
    let mut net = net(1);
    for timestamp in 1..=5 {
        net.submit(ReplicaId(0), timestamp, Operation::Get { key: "k".into() });
        assert!(
            net.cores
                .iter()
                .all(|c| c.last_executed() == Seq(timestamp))
        );
    }
}

fn sender(message: &WireMessage) -> ReplicaId {
    match message.signer() {
        Principal::Replica(r) => r,
        Principal::Client(_) => ReplicaId(u32::MAX),
    }
}

fn put(value: &str) -> Operation {
    Operation::Put {
        key: "k".into(),
        value: value.into(),
    }
}

#[test]
fn a_backup_that_alone_suspects_the_primary_stays_in_the_view_and_votes_on() {
    let mut net = net(1);
    net.submit(ReplicaId(0), 1, put("1"));
    // Backup 3 is cut off while the others order request 2; it hears of the request from the
    // client only, and its timer expires.
    net.down.insert(ReplicaId(3));
    net.submit(ReplicaId(0), 2, put("2"));
    net.down.clear();
    net.submit(ReplicaId(3), 2, put("2"));
    let effects = net.cores[3].step(Input::TimerFired(Timer::ViewChange));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast(WireMessage::Suspect(_))))
    );
    net.apply(ReplicaId(3), effects);
    net.deliver_all();
    for core in &net.cores {
        assert_eq!(core.view(), View(0), "replica {:?}", core.params.id);
        assert!(!core.in_view_change(), "replica {:?}", core.params.id);
    }
    // Still in the others' view, it prepares and commits what the primary proposes next.
    net.submit(ReplicaId(0), 3, put("3"));
    let slot = net.cores[0]
        .log
        .get(Seq(3))
        .expect("seq 3 is in the primary's log");
    assert!(
        slot.prepares.contains_key(&ReplicaId(3)),
        "replica 3 prepared seq 3"
    );
    assert!(
        slot.commits.contains_key(&ReplicaId(3)),
        "replica 3 committed seq 3"
    );
}

#[test]
fn f_plus_one_suspicions_move_every_replica_to_the_next_view() {
    let mut net = net(1);
    net.submit(ReplicaId(0), 1, put("1"));
    net.down.insert(ReplicaId(0));
    // Only backups 1 and 2 heard the client's next request; backup 3 suspects nothing itself.
    for i in 1..3 {
        net.submit(ReplicaId(i), 2, put("2"));
    }
    for i in 1..3u32 {
        let effects = net.cores[i as usize].step(Input::TimerFired(Timer::ViewChange));
        net.apply(ReplicaId(i), effects);
    }
    net.deliver_all();
    for core in &net.cores[1..] {
        assert_eq!(core.view(), View(1), "replica {:?}", core.params.id);
        assert!(!core.in_view_change(), "replica {:?}", core.params.id);
        assert_eq!(core.service().kv.get("k"), Some("2"));
    }
}

#[test]
fn the_view_change_timer_waits_for_its_request_however_busy_the_primary_is_with_others() {
    let mut net = net(1);
    // Client 0's request reaches backup 1 only; its hand-over to the primary is lost (as if
    // the primary censored client 0).
    let key = key_from_seed(7, Principal::Client(ClientId(0)));
    let starved = Signed::sign(
        Request {
            client: ClientId(0),
            timestamp: Timestamp(1),
            op: put("starved"),
        },
        Principal::Client(ClientId(0)),
        &key,
    );
    let verified = verify(WireMessage::Request(starved), &net.keys).expect("verifies");
    let effects = net.cores[1].step(Input::Message(verified));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: Timer::ViewChange,
            ..
        }
    )));
    // Client 1 is served meanwhile: backup 1 executes its request.
    net.queue_request(ClientId(1), ReplicaId(0), 1, put("served"));
    net.deliver_all();
    assert_eq!(net.cores[1].service().kv.get("k"), Some("served"));
    let restarted = net
        .timers_set
        .iter()
        .any(|(r, t)| *r == ReplicaId(1) && *t == Timer::ViewChange);
    assert!(
        !restarted,
        "another client's progress must not restart the timer guarding client 0's request"
    );
}

/// Replica `from`'s SUSPECT of view 0, waiting for client 0's request `timestamp`.
fn suspicion(net: &Net, from: u32, timestamp: u64) -> Input {
    let signer = Principal::Replica(ReplicaId(from));
    let body = crate::message::Suspect {
        view: View(0),
        waiting_for: vec![RequestId {
            client: ClientId(0),
            timestamp: Timestamp(timestamp),
        }],
    };
    let message = WireMessage::Suspect(Signed::sign(body, signer, &key_from_seed(7, signer)));
    Input::Message(verify(message, &net.keys).expect("verifies"))
}

#[test]
fn a_suspicion_counts_only_for_a_request_that_waits_here_too() {
    let mut net = net(1);
    // Two replicas suspect over a request backup 1 has not received: it might be invented.
    let (from_2, from_3) = (suspicion(&net, 2, 1), suspicion(&net, 3, 1));
    net.cores[1].step(from_2);
    net.cores[1].step(from_3);
    assert!(!net.cores[1].in_view_change());
    // The client's retransmission brings the request: now the suspicions count.
    net.down.insert(ReplicaId(0));
    net.submit(ReplicaId(1), 1, put("1"));
    assert!(net.cores[1].in_view_change());
}

#[test]
fn a_suspicion_stops_counting_once_the_request_it_waited_for_has_executed() {
    let mut net = net(1);
    net.submit(ReplicaId(0), 1, put("1"));
    net.down.insert(ReplicaId(0));
    net.submit(ReplicaId(1), 2, put("2"));
    // Replica 2 waited for request 1, which has executed since; replica 3 waits for request 2.
    let (stale, fresh) = (suspicion(&net, 2, 1), suspicion(&net, 3, 2));
    net.cores[1].step(stale);
    net.cores[1].step(fresh);
    assert!(
        !net.cores[1].in_view_change(),
        "one live suspicion is not f+1"
    );
    // Replica 2 now waits for request 2 too: f+1 live suspicions.
    let refreshed = suspicion(&net, 2, 2);
    let effects = net.cores[1].step(refreshed);
    assert!(net.cores[1].in_view_change());
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast(WireMessage::ViewChange(_))))
    );
}

#[test]
fn a_backup_restarted_from_its_log_watches_the_request_it_had_seen_proposed() {
    let mut net = net(1);
    // Backup 1 alone hears the primary propose client 0's request; nothing commits.
    net.down.extend([ReplicaId(2), ReplicaId(3)]);
    net.submit(ReplicaId(0), 1, put("1"));
    let records: Vec<WalRecord> = net
        .persisted
        .iter()
        .filter(|(r, _)| *r == ReplicaId(1))
        .map(|(_, record)| record.clone())
        .collect();
    assert!(!records.is_empty());
    let old = &net.cores[1];
    let mut restarted = Core::recover(
        old.params.clone(),
        old.key.clone(),
        old.keys.clone(),
        None,
        records,
    );
    let effects = restarted.step(Input::Start);
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::SetTimer {
                timer: Timer::ViewChange,
                ..
            }
        )),
        "the request it saw proposed still waits: its view-change timer must run"
    );
}

#[test]
fn suspicions_count_through_any_request_both_sides_wait_for() {
    let mut net = net(1);
    net.down.insert(ReplicaId(0));
    // Each of backups 1 and 2 first gets a request no other replica has (its timer guards it),
    // then a request the client sent to both.
    net.queue_request(ClientId(1), ReplicaId(1), 1, put("only at 1"));
    net.queue_request(ClientId(2), ReplicaId(2), 1, put("only at 2"));
    net.deliver_all();
    for backup in [1, 2] {
        net.queue_request(ClientId(0), ReplicaId(backup), 1, put("at both"));
    }
    net.deliver_all();
    for backup in [1u32, 2] {
        let effects = net.cores[backup as usize].step(Input::TimerFired(Timer::ViewChange));
        net.apply(ReplicaId(backup), effects);
    }
    net.deliver_all();
    for backup in [1, 2] {
        assert_eq!(net.cores[backup].view(), View(1), "backup {backup}");
    }
}
