//! The replica host on its own, driven by hand: turns, the order of its output, and effects an
//! interceptor holds back.

use ed25519_dalek::SigningKey;
use replica::config::{ClientEntry, ClusterConfig, ReplicaEntry};
use replica::core::{Core, CoreParams, Effect, Input};
use replica::crypto::{KeyStore, key_from_seed, public_key_hex};
use replica::host::{Host, Storage, Transmit};
use replica::kv::Operation;
use replica::message::{Request, Signed, WireMessage};
use replica::node::{InterceptContext, Interceptor};
use replica::verify::verify;
use replica::{ClientId, Principal, ReplicaId, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SEED: u64 = 11;

struct Cluster {
    config: Arc<ClusterConfig>,
    keys: Arc<KeyStore>,
}

fn cluster() -> Cluster {
    let replicas = (0..4)
        .map(|i| ReplicaEntry {
            id: ReplicaId(i),
            address: ([127, 0, 0, 1], 9000 + i as u16).into(),
            public_key: public_key_hex(&replica_key(i).verifying_key()),
        })
        .collect();
    let clients = (0..4)
        .map(|c| ClientEntry {
            id: ClientId(c),
            public_key: public_key_hex(&client_key(c).verifying_key()),
        })
        .collect();
    let config = ClusterConfig::with_defaults(1, replicas, clients);
    let keys = config.keys(Path::new("<test>")).expect("keys");
    Cluster {
        config: Arc::new(config),
        keys: Arc::new(keys),
    }
}

fn replica_key(i: u32) -> SigningKey {
    key_from_seed(SEED, Principal::Replica(ReplicaId(i)))
}

fn client_key(c: u32) -> SigningKey {
    key_from_seed(SEED, Principal::Client(ClientId(c)))
}

fn host(cluster: &Cluster, id: u32, interceptor: Option<Box<dyn Interceptor>>) -> Host {
    let params = CoreParams::from_config(&cluster.config, ReplicaId(id));
    let core = Core::new(params, replica_key(id), cluster.keys.clone());
    let mut host = Host::new(
        core,
        interceptor,
        replica_key(id),
        cluster.keys.clone(),
        cluster.config.clone(),
        Duration::ZERO,
    );
    host.start(Duration::ZERO);
    host.take_output();
    host
}

fn request(cluster: &Cluster, client: u32) -> Input {
    let body = Request {
        client: ClientId(client),
        timestamp: Timestamp(1),
        op: Operation::Put {
            key: format!("k{client}"),
            value: "v".into(),
        },
    };
    let signed = Signed::sign(
        body,
        Principal::Client(ClientId(client)),
        &client_key(client),
    );
    let verified = verify(WireMessage::Request(signed), &cluster.keys).expect("a valid request");
    Input::Message(verified)
}

fn pre_prepares(transmits: &[Transmit]) -> Vec<usize> {
    transmits
        .iter()
        .filter_map(|t| match t {
            Transmit::Broadcast(WireMessage::PrePrepare(p)) => Some(p.body.batch.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn requests_arriving_in_one_turn_share_one_pre_prepare_logged_before_it_leaves() {
    let cluster = cluster();
    let mut primary = host(&cluster, 0, None);
    let now = Duration::from_millis(1);
    primary.begin_turn();
    for client in 0..4 {
        primary.handle_input(now, request(&cluster, client));
    }
    primary.handle_timeout(now);
    let before_end = primary.take_output();
    assert!(
        pre_prepares(&before_end.transmits).is_empty(),
        "nothing is proposed before the turn ends"
    );
    primary.end_turn(now);
    let output = primary.take_output();
    assert_eq!(
        pre_prepares(&output.transmits),
        vec![4],
        "one batch of all four"
    );
    assert!(
        output
            .storage
            .iter()
            .any(|s| matches!(s, Storage::Append(_))),
        "the proposal is in the storage the caller makes durable before sending"
    );
}

/// Holds every broadcast back by a fixed delay.
struct HoldBroadcasts(Duration);

impl Interceptor for HoldBroadcasts {
    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match effect {
            Effect::Broadcast(_) => vec![(self.0, effect)],
            other => vec![(Duration::ZERO, other)],
        }
    }
}

#[test]
fn an_effect_held_back_by_the_interceptor_leaves_when_it_is_due() {
    let cluster = cluster();
    let hold = Duration::from_millis(30);
    let mut primary = host(&cluster, 0, Some(Box::new(HoldBroadcasts(hold))));
    let now = Duration::from_millis(1);
    primary.begin_turn();
    primary.handle_input(now, request(&cluster, 0));
    primary.handle_timeout(now);
    primary.end_turn(now);
    assert!(pre_prepares(&primary.take_output().transmits).is_empty());
    let due = now + hold;
    let wake = primary
        .poll_timeout()
        .expect("a wake-up for the held effect");
    assert!(
        wake <= due,
        "woken at {wake:?}, the effect is due at {due:?}"
    );

    primary.begin_turn();
    primary.handle_timeout(due - Duration::from_millis(1));
    primary.end_turn(due - Duration::from_millis(1));
    assert!(pre_prepares(&primary.take_output().transmits).is_empty());
    primary.begin_turn();
    primary.handle_timeout(due);
    primary.end_turn(due);
    assert_eq!(pre_prepares(&primary.take_output().transmits), vec![1]);
}

#[test]
fn an_installed_interceptor_adds_its_tick_to_the_wake_ups() {
    let cluster = cluster();
    let mut backup = host(&cluster, 1, None);
    let honest = backup.poll_timeout();
    backup.set_interceptor(Duration::ZERO, Box::new(HoldBroadcasts(Duration::ZERO)));
    let tick = replica::host::TICK;
    assert_eq!(
        backup.poll_timeout(),
        Some(honest.map_or(tick, |at| at.min(tick))),
        "an honest host wakes only for the core's timers"
    );
}

/// How many suspicions of the primary (the timer's accusation) were broadcast.
fn suspicions(transmits: &[Transmit]) -> usize {
    transmits
        .iter()
        .filter(|t| matches!(t, Transmit::Broadcast(WireMessage::Suspect(_))))
        .count()
}

/// One turn at `now` with no input; what it sent.
fn idle_turn(host: &mut Host, now: Duration) -> Vec<Transmit> {
    host.begin_turn();
    host.handle_timeout(now);
    host.end_turn(now);
    host.take_output().transmits
}

#[test]
fn a_view_change_timer_due_a_whole_period_late_waits_again_before_accusing_the_primary() {
    let cluster = cluster();
    let period = Duration::from_millis(cluster.config.timeouts.view_change_ms);
    let waiting_backup = |cluster: &Cluster| {
        let mut backup = host(cluster, 1, None);
        let now = Duration::from_millis(1);
        backup.begin_turn();
        backup.handle_input(now, request(cluster, 0));
        backup.handle_timeout(now);
        backup.end_turn(now);
        backup.take_output();
        (backup, now + period)
    };

    // Run on time, the timer accuses the primary.
    let (mut on_time, due) = waiting_backup(&cluster);
    assert_eq!(suspicions(&idle_turn(&mut on_time, due)), 1);

    // Frozen past a whole period (SIGSTOP, a VM pause): back, it waits once more.
    let (mut frozen, due) = waiting_backup(&cluster);
    let back = due + period;
    assert_eq!(suspicions(&idle_turn(&mut frozen, back)), 0);
    assert_eq!(frozen.timers_rearmed(), 1);
    let almost = back + period - Duration::from_millis(1);
    assert_eq!(suspicions(&idle_turn(&mut frozen, almost)), 0);
    let still_waiting = back + period;
    assert_eq!(
        suspicions(&idle_turn(&mut frozen, still_waiting)),
        1,
        "the request still waits a whole period after it came back: the primary is suspect"
    );
}
