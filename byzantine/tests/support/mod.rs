//! Shared by the behaviour tests: a seeded workload over the simulator, a tap that records
//! what a faulty replica put on the wire, and the checks that honest replicas stayed correct.
#![allow(dead_code)]

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::core::{Effect, Input};
use replica::events::ReplicaEvent;
use replica::kv::{KvStore, Operation};
use replica::message::RequestId;
use replica::node::{InterceptContext, Interceptor};
use replica::sim::{SimConfig, SimNetwork, WorkloadStop};
use replica::verify::RejectReason;
use replica::{ClientId, Principal, ReplicaId, Seq};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A four-replica cluster with short checkpoint intervals, so watermarks move in short runs.
pub fn cluster(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        checkpoint_interval: 4,
        watermark_window: 16,
        max_batch: 4,
        ..SimConfig::default()
    }
}

pub fn network(config: SimConfig) -> SimNetwork {
    SimNetwork::new(config).expect("the simulated cluster configuration is valid")
}

/// Installs `name` (built through the public catalogue) on `replica`.
pub fn install(
    net: &mut SimNetwork,
    replica: ReplicaId,
    name: &str,
    params: &[(&str, &str)],
    seed: u64,
) {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let behaviour = byzantine::build(&parsed(name, &params), seed);
    net.set_interceptor(replica, behaviour)
        .expect("known replica");
}

fn parsed(name: &str, params: &BTreeMap<String, String>) -> byzantine::Behaviour {
    byzantine::Behaviour::parse(name, params).expect("a catalogued behaviour with valid parameters")
}

/// What a wrapped behaviour put out, after it had its way.
pub type Tape = Arc<Mutex<Vec<Effect>>>;

/// Wraps a behaviour and records every effect it lets out (outbound and tick).
pub struct Tap {
    inner: Box<dyn Interceptor>,
    tape: Tape,
}

impl Tap {
    pub fn install(
        net: &mut SimNetwork,
        replica: ReplicaId,
        name: &str,
        params: &[(&str, &str)],
        seed: u64,
    ) -> Tape {
        let params: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let inner = byzantine::build(&parsed(name, &params), seed);
        let tape = Tape::default();
        let tap = Tap {
            inner,
            tape: tape.clone(),
        };
        net.set_interceptor(replica, Box::new(tap))
            .expect("known replica");
        tape
    }

    fn record(&self, effects: &[(Duration, Effect)]) {
        if let Ok(mut tape) = self.tape.lock() {
            tape.extend(effects.iter().map(|(_, e)| e.clone()));
        }
    }
}

impl Interceptor for Tap {
    fn inbound(&mut self, input: Input, ctx: &InterceptContext<'_>) -> Vec<Input> {
        self.inner.inbound(input, ctx)
    }

    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let out = self.inner.outbound(effect, ctx);
        self.record(&out);
        out
    }

    fn tick(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let out = self.inner.tick(ctx);
        self.record(&out);
        out
    }
}

/// Generates operations over a few keys, so clients contend, from a seeded stream.
pub struct Driver {
    rng: ChaCha8Rng,
    counter: u64,
    /// Share of reads (the rest are puts and appends), in percent.
    pub reads_percent: u32,
}

impl Driver {
    pub fn new(seed: u64) -> Driver {
        Driver {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xb42a_0717),
            counter: 0,
            reads_percent: 40,
        }
    }

    pub fn next_op(&mut self, client: ClientId) -> Operation {
        self.counter += 1;
        let key = format!("k{}", self.rng.random_range(0..3u32));
        let value = format!("c{}n{}", client.0, self.counter);
        let roll = self.rng.random_range(0..100u32);
        if roll < self.reads_percent {
            Operation::Get { key }
        } else if roll % 2 == 0 {
            Operation::Put { key, value }
        } else {
            Operation::Append { key, value }
        }
    }

    /// Each client completes `per_client` more operations, one at a time; false if that did
    /// not happen within `max_ms` of virtual time.
    pub fn run_ops(&mut self, net: &mut SimNetwork, per_client: u64, max_ms: u64) -> bool {
        self.run_ops_observed(net, per_client, max_ms, |_| {})
    }

    /// As `run_ops`, calling `observe` after every simulator step.
    pub fn run_ops_observed(
        &mut self,
        net: &mut SimNetwork,
        per_client: u64,
        max_ms: u64,
        observe: impl FnMut(&SimNetwork),
    ) -> bool {
        match net.run_workload(per_client, max_ms, u64::MAX, |c| self.next_op(c), observe) {
            Ok(()) => true,
            Err(WorkloadStop::Flood { frames }) => {
                eprintln!(
                    "message flood: {frames} frames by {} ms: {:?}",
                    net.now_ms(),
                    net.stats().sent_by_kind
                );
                false
            }
            Err(WorkloadStop::Deadline) => false,
        }
    }
}

pub fn honest(net: &SimNetwork) -> Vec<ReplicaId> {
    net.replica_ids().filter(|r| net.is_honest(*r)).collect()
}

/// Every honest replica has executed the same prefix and holds the same state.
pub fn honest_converged(net: &SimNetwork) -> bool {
    let cores: Vec<_> = honest(net)
        .into_iter()
        .filter_map(|r| net.core(r))
        .collect();
    cores.windows(2).all(|pair| {
        pair[0].last_executed() == pair[1].last_executed()
            && pair[0].state_digest() == pair[1].state_digest()
    })
}

/// Lets the cluster run (no new operations) until the honest replicas converge.
pub fn settle(net: &mut SimNetwork, max_ms: u64) -> bool {
    net.run_until(honest_converged, max_ms)
}

/// Safety among the honest replicas: one batch per committed sequence number, one state
/// digest per stable checkpoint, and equal states once they converged.
pub fn assert_honest_agreement(net: &SimNetwork) {
    let violations = net.agreement_violations();
    assert!(violations.is_empty(), "agreement violated: {violations:?}");
    let mut stable: BTreeMap<Seq, BTreeMap<String, Vec<ReplicaId>>> = BTreeMap::new();
    for replica in honest(net) {
        for event in net.events(replica) {
            if let ReplicaEvent::CheckpointStable { seq, state_digest } = &event.event {
                stable
                    .entry(*seq)
                    .or_default()
                    .entry(state_digest.clone())
                    .or_default()
                    .push(replica);
            }
        }
    }
    for (seq, digests) in stable {
        assert_eq!(
            digests.len(),
            1,
            "honest replicas certified different states at {seq}: {digests:?}"
        );
    }
}

/// A client accepted `accepted` for `request`, where sequential execution gives `expected`.
#[derive(Debug)]
pub struct WrongResult {
    pub request: RequestId,
    pub accepted: String,
    pub expected: String,
}

/// Replays what `replica` executed, in its order, on a fresh store, and compares every result
/// a client accepted with the one sequential execution gives. Returns the mismatches and how
/// many accepted results were checked.
pub fn sequential_oracle(net: &SimNetwork, replica: ReplicaId) -> (Vec<WrongResult>, usize) {
    let ops: BTreeMap<RequestId, &Operation> =
        net.completed().iter().map(|c| (c.id(), c.op())).collect();
    let accepted: BTreeMap<RequestId, String> = net
        .completed()
        .iter()
        .map(|c| (c.id(), c.result.to_string()))
        .collect();
    let mut model = KvStore::default();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for event in net.events(replica) {
        let ReplicaEvent::Execute {
            request,
            duplicate: false,
            ..
        } = &event.event
        else {
            continue;
        };
        let Some(op) = ops.get(request) else { continue };
        let expected = model.execute(op).to_string();
        if let Some(client_saw) = accepted.get(request) {
            checked += 1;
            if *client_saw != expected {
                wrong.push(WrongResult {
                    request: *request,
                    accepted: client_saw.clone(),
                    expected,
                });
            }
        }
    }
    (wrong, checked)
}

/// Every result a client accepted is the sequential one, as honest `replica` executed them.
pub fn assert_clients_saw_sequential_results(net: &SimNetwork, replica: ReplicaId) {
    let (wrong, checked) = sequential_oracle(net, replica);
    assert!(
        wrong.is_empty(),
        "clients accepted wrong results: {wrong:?}"
    );
    assert!(
        checked > 0,
        "replica {replica} executed none of the completed operations"
    );
}

/// Rejections honest replicas counted for messages signed by `signer`, by reason.
pub fn rejections_of(net: &SimNetwork, signer: Principal) -> BTreeMap<RejectReason, usize> {
    let mut counts = BTreeMap::new();
    for replica in honest(net) {
        for event in net.events(replica) {
            if let ReplicaEvent::Rejected {
                reason,
                from: Some(from),
                ..
            } = &event.event
                && *from == signer
            {
                *counts.entry(*reason).or_default() += 1;
            }
        }
    }
    counts
}

pub fn view_changes_completed(net: &SimNetwork, replica: ReplicaId) -> usize {
    net.events(replica)
        .iter()
        .filter(|e| matches!(e.event, ReplicaEvent::ViewChangeCompleted { .. }))
        .count()
}

pub fn replica(i: u32) -> Principal {
    Principal::Replica(ReplicaId(i))
}
