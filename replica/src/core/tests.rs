//! Smoke tests of the core on a hand-driven lossless network (the seeded simulator in
//! `crate::sim` carries the thorough tests).

use super::*;
use crate::crypto::key_from_seed;
use crate::ids::{ClientId, Principal, Timestamp};
use crate::kv::{OpResult, Operation};
use crate::message::{Request, Signed, WireMessage};
use crate::verify::verify;
use std::collections::VecDeque;

struct Net {
    cores: Vec<Core>,
    keys: Arc<KeyStore>,
    queue: VecDeque<(ReplicaId, WireMessage)>,
    replies: Vec<(ReplicaId, Signed<crate::message::Reply>)>,
    down: std::collections::HashSet<ReplicaId>,
}

fn net(f: usize) -> Net {
    let n = 3 * f + 1;
    let replica_keys: Vec<_> = (0..n)
        .map(|i| key_from_seed(7, Principal::Replica(ReplicaId(i as u32))))
        .collect();
    let client_key = key_from_seed(7, Principal::Client(ClientId(0)));
    let keys = Arc::new(KeyStore::new(
        replica_keys.iter().map(|k| k.verifying_key()).collect(),
        [(ClientId(0), client_key.verifying_key())]
            .into_iter()
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
        let key = key_from_seed(7, Principal::Client(ClientId(0)));
        let request = Signed::sign(
            Request {
                client: ClientId(0),
                timestamp: Timestamp(timestamp),
                op,
            },
            Principal::Client(ClientId(0)),
            &key,
        );
        self.queue.push_back((to, WireMessage::Request(request)));
        self.deliver_all();
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

fn sender(message: &WireMessage) -> ReplicaId {
    match message.signer() {
        Principal::Replica(r) => r,
        Principal::Client(_) => ReplicaId(u32::MAX),
    }
}
