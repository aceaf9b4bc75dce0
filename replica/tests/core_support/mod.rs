//! Shared by the `core_*` tests: a workload driver over the simulator and the checks that
//! compare what replicas executed with a sequential replay.
#![allow(dead_code)]

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::events::ReplicaEvent;
use replica::kv::{KvStore, Operation};
use replica::message::RequestId;
use replica::sim::{SimConfig, SimNetwork, WorkloadStop};
use replica::{ClientId, ReplicaId, Seq};
use std::collections::BTreeMap;

/// Frames one `run_ops` call may cause before it gives up: far above what any test's
/// workload needs, so reaching it means messages multiply (and the test fails, not hangs).
pub const FLOOD_FRAMES: u64 = 400_000;

pub fn network(config: SimConfig) -> SimNetwork {
    SimNetwork::new(config).expect("the simulated cluster configuration is valid")
}

/// Generates operations over a few keys, so clients contend, from a seeded stream.
pub struct Driver {
    rng: ChaCha8Rng,
    counter: u64,
    keys: u32,
}

impl Driver {
    pub fn new(seed: u64) -> Driver {
        Driver {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f00d),
            counter: 0,
            keys: 4,
        }
    }

    pub fn next_op(&mut self, client: ClientId) -> Operation {
        self.counter += 1;
        let key = format!("k{}", self.rng.random_range(0..self.keys));
        let value = format!("c{}n{}", client.0, self.counter);
        match self.rng.random_range(0..10u32) {
            0..=2 => Operation::Put { key, value },
            3..=5 => Operation::Get { key },
            6..=8 => Operation::Append { key, value },
            _ => Operation::Cas {
                key,
                expected: None,
                new: value,
            },
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
        match net.run_workload(
            per_client,
            max_ms,
            FLOOD_FRAMES,
            |c| self.next_op(c),
            observe,
        ) {
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

/// Every running replica has executed the same prefix and holds the same state.
pub fn running_replicas_converged(net: &SimNetwork) -> bool {
    let cores: Vec<_> = net.replica_ids().filter_map(|r| net.core(r)).collect();
    cores.windows(2).all(|pair| {
        pair[0].last_executed() == pair[1].last_executed()
            && pair[0].state_digest() == pair[1].state_digest()
    })
}

/// Every replica is running and `running_replicas_converged`.
pub fn all_replicas_converged(net: &SimNetwork) -> bool {
    net.replica_ids().all(|r| net.is_running(r)) && running_replicas_converged(net)
}

/// Requests `replica` executed for the first time, in execution order.
pub fn first_executions(net: &SimNetwork, replica: ReplicaId) -> Vec<(Seq, RequestId, String)> {
    net.events(replica)
        .iter()
        .filter_map(|e| match &e.event {
            ReplicaEvent::Execute {
                seq,
                request,
                result,
                duplicate: false,
                ..
            } => Some((*seq, *request, result.clone())),
            _ => None,
        })
        .collect()
}

pub fn count_events(
    net: &SimNetwork,
    replica: ReplicaId,
    matches: impl Fn(&ReplicaEvent) -> bool,
) -> usize {
    net.events(replica)
        .iter()
        .filter(|e| matches(&e.event))
        .count()
}

/// Replays `replica`'s executions, in its commit order, on a fresh KV store: every result it
/// reported and every result a client accepted must be the sequential one, and the final
/// store must be the replica's.
pub fn assert_matches_sequential_replay(net: &SimNetwork, replica: ReplicaId) {
    let ops: BTreeMap<RequestId, &Operation> =
        net.completed().iter().map(|c| (c.id(), c.op())).collect();
    let accepted: BTreeMap<RequestId, String> = net
        .completed()
        .iter()
        .map(|c| (c.id(), c.result.to_string()))
        .collect();
    let mut model = KvStore::default();
    let mut last_seq = Seq(0);
    for (seq, request, reported) in first_executions(net, replica) {
        assert!(
            seq >= last_seq,
            "replica {replica} executed seq {seq} after {last_seq}"
        );
        last_seq = seq;
        let op = ops
            .get(&request)
            .unwrap_or_else(|| panic!("replica {replica} executed {request:?}, never completed"));
        let expected = model.execute(op).to_string();
        assert_eq!(
            reported, expected,
            "replica {replica}, {request:?} at seq {seq}"
        );
        if let Some(client_saw) = accepted.get(&request) {
            assert_eq!(client_saw, &expected, "client result for {request:?}");
        }
    }
    let core = net.core(replica).expect("replica is running");
    assert_eq!(&core.service().kv, &model, "replica {replica}: final store");
}

pub fn assert_no_agreement_violations(net: &SimNetwork) {
    let violations = net.agreement_violations();
    assert!(violations.is_empty(), "agreement violated: {violations:?}");
}
