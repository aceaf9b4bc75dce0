//! The simulated network: every frame on every directed link goes through the proxy's own
//! rule engine (`proxy::decide`, the code the real proxy runs), with the same per-link random
//! streams, counters and `proxy.jsonl` entries; then a loopback latency model.

use crate::plan::{Plan, substream};
use crate::proxy::{
    Direction, Endpoint, FrameInfo, LinkSpec, LogEntry, ProxyLog, ProxyStats, Rule, StatsTable,
    decide, link_rng,
};
use crate::twins::{Side, TwinsPlan};
use rand::RngExt;
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use replica::ReplicaId;
use replica::sim::{Delivery, LinkPolicy};
use replica::wire::decode_payload;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// One hop over loopback TCP through the proxy: a base and a uniform jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HopLatency {
    pub base: Duration,
    pub jitter: Duration,
}

struct Network {
    links: Vec<LinkSpec>,
    /// (dialer, listener) -> index into `links`.
    index: BTreeMap<(Endpoint, ReplicaId), usize>,
    rules: Arc<Vec<Rule>>,
    /// Per link, the forward and backward streams, seeded as the real proxy seeds them.
    rngs: Vec<[ChaCha8Rng; 2]>,
    latency: HopLatency,
    latency_rng: ChaCha20Rng,
    twins: Option<TwinsPlan>,
    max_frame: usize,
    stats: StatsTable,
    log: ProxyLog,
}

/// The handle the run keeps to change the rules and read the counters; `links()` is the
/// policy the simulator drives.
#[derive(Clone)]
pub struct SimProxy {
    shared: Arc<Mutex<Network>>,
}

impl SimProxy {
    pub fn new(plan: &Plan, latency: HopLatency, log: ProxyLog) -> SimProxy {
        let links = plan.links.clone();
        let proxy_seed = plan.proxy_seed;
        let index = links
            .iter()
            .enumerate()
            .map(|(i, l)| ((l.from, l.to), i))
            .collect();
        let rngs = (0..links.len())
            .map(|i| {
                [
                    link_rng(proxy_seed, i, Direction::Forward),
                    link_rng(proxy_seed, i, Direction::Backward),
                ]
            })
            .collect();
        let network = Network {
            links,
            index,
            rules: Arc::new(Vec::new()),
            rngs,
            latency,
            latency_rng: substream(plan.seed, "sim/latency"),
            twins: plan.twins.clone(),
            max_frame: replica::wire::DEFAULT_MAX_FRAME,
            stats: StatsTable::default(),
            log,
        };
        SimProxy {
            shared: Arc::new(Mutex::new(network)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Network> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn links(&self) -> Box<dyn LinkPolicy> {
        Box::new(self.clone())
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.lock().rules = Arc::new(rules);
    }

    pub fn add_rules(&self, added: &[Rule]) {
        let mut network = self.lock();
        let mut rules = network.rules.as_ref().clone();
        rules.extend(added.iter().cloned());
        network.rules = Arc::new(rules);
    }

    pub fn remove_rules_with_prefix(&self, prefix: &str) {
        let mut network = self.lock();
        let rules = network
            .rules
            .iter()
            .filter(|r| !r.id.starts_with(prefix))
            .cloned()
            .collect();
        network.rules = Arc::new(rules);
    }

    pub fn stats(&self) -> ProxyStats {
        let network = self.lock();
        network.stats.snapshot(&network.links)
    }
}

/// The proxy's view of a simulated frame: which link it travels and which way.
/// The dialer of every link: a replica, a twin's second process, or a client.
fn proxy_endpoint(endpoint: replica::sim::Endpoint) -> Endpoint {
    use replica::sim::Endpoint as Sim;
    match endpoint {
        Sim::Replica(r) => Endpoint::Replica(r),
        Sim::Twin(r) => Endpoint::Twin(r),
        Sim::Client(c) => Endpoint::Client(c),
    }
}

/// The proxy's view of a simulated frame: which link it travels and which way. A replica
/// dials its peers, a client dials every replica and hears its replies back on that link.
fn link_of(
    from: replica::sim::Endpoint,
    to: replica::sim::Endpoint,
) -> Option<(Endpoint, ReplicaId, Direction)> {
    use replica::sim::Endpoint as Sim;
    match (from, to) {
        (Sim::Client(_), Sim::Client(_)) => None,
        (Sim::Replica(r) | Sim::Twin(r), Sim::Client(c)) => {
            Some((Endpoint::Client(c), r, Direction::Backward))
        }
        (from, Sim::Replica(r) | Sim::Twin(r)) => {
            Some((proxy_endpoint(from), r, Direction::Forward))
        }
    }
}

impl LinkPolicy for SimProxy {
    fn route(
        &mut self,
        now: Duration,
        from: replica::sim::Endpoint,
        to: replica::sim::Endpoint,
        frame: Vec<u8>,
    ) -> Vec<Delivery> {
        let mut network = self.lock();
        let Some((dialer, listener, direction)) = link_of(from, to) else {
            return Vec::new();
        };
        let Some(&link) = network.index.get(&(dialer, listener)) else {
            return Vec::new();
        };
        network.route(now, link, dialer, listener, direction, frame)
    }

    /// The twin on the sender's side, as the plan's links route it.
    fn destination(&self, from: replica::sim::Endpoint, to: ReplicaId) -> replica::sim::Endpoint {
        let network = self.lock();
        match &network.twins {
            Some(twins) if twins.is_twinned(to) && twins.route(proxy_endpoint(from)) == Side::B => {
                replica::sim::Endpoint::Twin(to)
            }
            _ => replica::sim::Endpoint::Replica(to),
        }
    }
}

impl Network {
    fn route(
        &mut self,
        now: Duration,
        link: usize,
        dialer: Endpoint,
        listener: ReplicaId,
        direction: Direction,
        frame: Vec<u8>,
    ) -> Vec<Delivery> {
        let payload = frame.get(replica::wire::LENGTH_PREFIX..).unwrap_or(&[]);
        let decoded = decode_payload(payload, self.max_frame).ok();
        let info = FrameInfo::new(dialer, listener, direction, decoded.as_ref());
        let kind = info.kind_label();
        let rules = Arc::clone(&self.rules);
        if rules.is_empty() {
            // As the relay does: no rule, no decision and no draw; the frame goes as it came.
            let counts = self.stats.frame(link, direction, kind);
            counts.received += 1;
            counts.forwarded += 1;
            let delay = self.hop();
            return vec![Delivery {
                frame,
                delay,
                in_order: true,
            }];
        }
        let stream = usize::from(direction == Direction::Backward);
        let fate = decide(
            &rules,
            &info,
            &frame,
            decoded.as_ref(),
            &mut self.rngs[link][stream],
        );
        let counts = self.stats.frame(link, direction, kind);
        counts.count_received(&fate);
        counts.forwarded += fate.copies.len() as u64;
        let time_ns = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        for entry in LogEntry::for_fate(time_ns, &info, &fate) {
            self.log.record(&entry);
        }
        let mut deliveries = Vec::with_capacity(fate.copies.len());
        for copy in fate.copies {
            // The relay shuffles a reorder window; here each held copy waits a seeded share of
            // the longest hold instead, which lets later frames overtake it just the same.
            let (hold, in_order) = match fate.reorder {
                Some((_, max_hold)) => {
                    let most = u64::try_from(max_hold.as_nanos()).unwrap_or(u64::MAX);
                    let hold = self.rngs[link][stream].random_range(0..=most);
                    (Duration::from_nanos(hold), false)
                }
                None => (Duration::ZERO, true),
            };
            deliveries.push(Delivery {
                frame: copy.frame,
                delay: copy.delay + hold + self.hop(),
                in_order,
            });
        }
        deliveries
    }

    fn hop(&mut self) -> Duration {
        let jitter = u64::try_from(self.latency.jitter.as_nanos()).unwrap_or(0);
        let extra = if jitter == 0 {
            0
        } else {
            self.latency_rng.random_range(0..=jitter)
        };
        self.latency.base + Duration::from_nanos(extra)
    }
}
