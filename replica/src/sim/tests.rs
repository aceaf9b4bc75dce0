//! The simulator's own machinery, independent of what the core decides.

use super::*;
use crate::core::Effect;
use crate::core::Input;
use crate::node::InterceptContext;
use std::sync::Mutex;
use std::time::Duration;

fn net(seed: u64) -> SimNetwork {
    SimNetwork::new(SimConfig {
        seed,
        ..SimConfig::default()
    })
    .expect("default simulated cluster is valid")
}

fn put() -> Operation {
    Operation::Put {
        key: "k".into(),
        value: "v".into(),
    }
}

#[test]
fn an_invalid_cluster_shape_is_refused_with_the_field_named() {
    let error = SimNetwork::new(SimConfig {
        checkpoint_interval: 16,
        watermark_window: 40,
        ..SimConfig::default()
    })
    .err()
    .expect("window is not a multiple of the interval");
    assert!(error.to_string().contains("watermark_window"), "{error}");
    assert!(matches!(
        SimNetwork::new(SimConfig {
            drop_probability: 1.5,
            ..SimConfig::default()
        }),
        Err(SimError::DropProbability(_))
    ));
}

#[test]
fn garbage_frames_are_rejected_as_malformed_and_counted_per_replica() {
    let mut net = net(1);
    net.inject_frame(ReplicaId(2), vec![0, 0, 0, 3, 0xff, 0xff, 0xff])
        .expect("known replica");
    net.inject_frame(ReplicaId(2), vec![0, 0])
        .expect("known replica");
    net.run_for(1);
    assert_eq!(
        net.rejection_count(ReplicaId(2), RejectReason::MalformedFrame),
        2
    );
    assert_eq!(
        net.rejection_count(ReplicaId(1), RejectReason::MalformedFrame),
        0
    );
    let rejected = net
        .events(ReplicaId(2))
        .iter()
        .filter(|e| matches!(e.event, ReplicaEvent::Rejected { .. }))
        .count();
    assert_eq!(rejected, 2);
}

#[test]
fn a_blocked_link_loses_the_first_send_and_the_retry_goes_to_every_replica() {
    let mut net = net(2);
    // Replicas down, so the only frames are the client's (and none is delivered).
    for replica in net.replica_ids() {
        net.crash(replica).expect("running");
    }
    let client = ClientId(0);
    net.block_link(Endpoint::Client(client), Endpoint::Replica(ReplicaId(0)));
    net.submit(client, put()).expect("idle");
    assert!(matches!(
        net.submit(client, put()),
        Err(SimError::ClientBusy(_))
    ));
    assert_eq!(net.stats().sent, 1);
    assert_eq!(net.stats().dropped_by_fault, 1);
    // Latency is at most 3 ms, so every retransmission has arrived 10 ms after the retry.
    net.run_for(net.config().timeouts.client_retry_ms + 10);
    assert_eq!(
        net.stats().sent,
        5,
        "one retransmission to each of 4 replicas"
    );
    assert_eq!(net.stats().dropped_by_fault, 2);
    assert_eq!(net.stats().lost_to_crash, 3);
}

#[test]
fn frames_to_a_crashed_replica_are_lost_and_restart_needs_a_crash() {
    let mut net = net(3);
    assert!(matches!(
        net.restart(ReplicaId(1)),
        Err(SimError::AlreadyRunning(_))
    ));
    net.crash(ReplicaId(1)).expect("running");
    assert!(matches!(
        net.crash(ReplicaId(1)),
        Err(SimError::NotRunning(_))
    ));
    net.inject_frame(ReplicaId(1), vec![1, 2, 3])
        .expect("known replica");
    net.run_for(1);
    assert_eq!(net.stats().lost_to_crash, 1);
    assert!(net.rejections(ReplicaId(1)).is_empty());
    net.restart(ReplicaId(1)).expect("crashed");
    assert!(net.is_running(ReplicaId(1)));
    assert!(matches!(
        net.crash(ReplicaId(9)),
        Err(SimError::UnknownReplica(_))
    ));
}

#[derive(Default)]
struct Seen {
    starts: usize,
    ticks: Vec<Duration>,
}

/// Records what it sees; on its first tick, reports an event 120 ms later.
struct Recorder(Arc<Mutex<Seen>>);

impl Interceptor for Recorder {
    fn inbound(&mut self, input: Input, _ctx: &InterceptContext<'_>) -> Vec<Input> {
        if input == Input::Start
            && let Ok(mut seen) = self.0.lock()
        {
            seen.starts += 1;
        }
        vec![input]
    }

    fn tick(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let Ok(mut seen) = self.0.lock() else {
            return Vec::new();
        };
        seen.ticks.push(ctx.elapsed);
        if seen.ticks.len() > 1 {
            return Vec::new();
        }
        let marker = ReplicaEvent::StateTransfer {
            from_seq: Seq(0),
            to_seq: Seq(0),
            source: ctx.core.id(),
        };
        vec![(Duration::from_millis(120), Effect::Event(marker))]
    }
}

#[test]
fn an_interceptor_sees_start_ticks_every_50ms_and_its_delays_are_honoured() {
    let mut net = net(4);
    let seen = Arc::new(Mutex::new(Seen::default()));
    net.set_interceptor(ReplicaId(3), Box::new(Recorder(seen.clone())))
        .expect("known replica");
    net.run_for(500);
    let marker_at: Vec<u64> = net
        .events(ReplicaId(3))
        .iter()
        .filter(|e| matches!(e.event, ReplicaEvent::StateTransfer { .. }))
        .map(|e| e.at_ms())
        .collect();
    assert_eq!(marker_at, vec![50 + 120]);
    {
        let seen = seen.lock().expect("not poisoned");
        assert_eq!(seen.starts, 1);
        let expected: Vec<Duration> = (1..=10).map(|i| Duration::from_millis(50 * i)).collect();
        assert_eq!(seen.ticks, expected);
    }
    // A crash stops the ticks; a restart starts them again, with time counted from it.
    net.crash(ReplicaId(3)).expect("running");
    net.run_for(200);
    net.restart(ReplicaId(3)).expect("crashed");
    net.run_for(100);
    let seen = seen.lock().expect("not poisoned");
    assert_eq!(seen.starts, 2);
    assert_eq!(
        seen.ticks[10..],
        [Duration::from_millis(50), Duration::from_millis(100)]
    );
    assert!(!net.is_honest(ReplicaId(3)));
    assert!(net.is_honest(ReplicaId(0)));
}

#[test]
fn actions_at_the_same_time_run_in_the_order_they_were_scheduled() {
    let mut net = net(5);
    for byte in [1u8, 2, 3] {
        net.inject_frame(ReplicaId(0), vec![0, 0, 0, 1, byte])
            .expect("known replica");
    }
    let mut order = Vec::new();
    while net.next_action_at() == Some(0) {
        let before = net.events(ReplicaId(0)).len();
        net.step_once();
        if net.events(ReplicaId(0)).len() > before {
            order.push(net.now_ms());
        }
    }
    assert_eq!(net.now_ms(), 0);
    assert_eq!(order.len(), 3);
}

fn executed(net: &SimNetwork, replica: ReplicaId) -> u64 {
    net.core(replica).map_or(0, |c| c.last_executed().0)
}

#[test]
fn a_paused_replica_handles_nothing_until_resumed_then_reads_what_waited_for_it() {
    let mut net = net(5);
    net.pause(ReplicaId(3)).expect("running");
    net.run_workload(4, 10_000, 1_000_000, |_| put(), |_| {})
        .expect("three replicas are a quorum for f = 1");
    assert!(net.is_paused(ReplicaId(3)));
    assert_eq!(executed(&net, ReplicaId(3)), 0);
    let done = executed(&net, ReplicaId(0));
    assert!(done > 0);
    net.resume(ReplicaId(3)).expect("running");
    net.run_for(100);
    assert_eq!(executed(&net, ReplicaId(3)), done);
}

/// Mean requests per committed batch at replica 0 after `ops` operations per client.
fn mean_batch(costs: CostModel) -> (f64, u64) {
    let mut net = SimNetwork::new(SimConfig {
        seed: 9,
        clients: 8,
        costs,
        ..SimConfig::default()
    })
    .expect("valid");
    net.run_workload(8, 60_000, 10_000_000, |_| put(), |_| {})
        .expect("completes");
    let batches = net
        .events(ReplicaId(0))
        .iter()
        .filter(|e| matches!(e.event, ReplicaEvent::Commit { .. }))
        .count();
    (64.0 / batches as f64, net.now_ns())
}

#[test]
fn work_that_costs_time_forms_batches_and_takes_virtual_time() {
    let (free_batch, free_ns) = mean_batch(CostModel::FREE);
    let costly = CostModel {
        turn: Duration::from_micros(50),
        verify: Duration::from_micros(60),
        sign: Duration::from_micros(30),
    };
    let (costly_batch, costly_ns) = mean_batch(costly);
    assert!(costly_batch > free_batch, "{costly_batch} vs {free_batch}");
    assert!(costly_ns > free_ns, "{costly_ns} vs {free_ns}");
}

/// Everything on the `b_side` reaches replica 0's twin; the rest reaches replica 0 itself.
struct TwinRouting {
    inner: BuiltinLinks,
    b_side: Vec<Endpoint>,
}

impl LinkPolicy for TwinRouting {
    fn route(
        &mut self,
        now: Duration,
        from: Endpoint,
        to: Endpoint,
        frame: Vec<u8>,
    ) -> Vec<Delivery> {
        self.inner.route(now, from, to, frame)
    }

    fn destination(&self, from: Endpoint, to: ReplicaId) -> Endpoint {
        if to == ReplicaId(0) && self.b_side.contains(&from) {
            Endpoint::Twin(to)
        } else {
            Endpoint::Replica(to)
        }
    }
}

#[test]
fn a_twin_is_a_second_process_with_the_same_identity_that_its_side_reaches() {
    let config = net(3).config().clone();
    let replica_keys = (0..4)
        .map(|i| crypto::key_from_seed(3, Principal::Replica(ReplicaId(i))))
        .collect();
    let client_keys = (0..4)
        .map(|i| crypto::key_from_seed(3, Principal::Client(ClientId(i))))
        .collect();
    let world = SimWorld {
        config,
        replica_keys,
        client_keys,
        costs: CostModel::FREE,
    };
    let links = TwinRouting {
        inner: BuiltinLinks {
            latency: Latency::default(),
            drop_probability: 0.0,
            reorder: false,
            rng: ChaCha8Rng::seed_from_u64(3),
        },
        b_side: vec![
            Endpoint::Replica(ReplicaId(2)),
            Endpoint::Replica(ReplicaId(3)),
            Endpoint::Client(ClientId(1)),
        ],
    };
    let mut net = SimNetwork::with_links(world, Box::new(links)).expect("valid");
    net.add_twin(ReplicaId(0)).expect("replica 0 exists");
    assert!(!net.is_honest(ReplicaId(0)));
    net.run_workload(3, 10_000, 1_000_000, |_| put(), |_| {})
        .expect("a quorum of honest replicas serves every client");
    let twin_heard = net
        .twin_events(ReplicaId(0))
        .iter()
        .any(|e| matches!(e.event, ReplicaEvent::Commit { .. }));
    assert!(
        twin_heard,
        "the twin took part: {:?}",
        net.twin_events(ReplicaId(0))
    );
    assert!(net.agreement_violations().is_empty());
}
