//! The workload in the simulated world: each client is one sequential process, as in a real
//! run, drawing operations from the same seeded `Generator` and recording the same history
//! events; the protocol is the simulator's `ClientCore`. Times are virtual ns since the run
//! started.
//!
//! A Byzantine client (`clients:` in the scenario) runs the same `workloads::byzc::Attack` as
//! in a real run, on virtual time. Its frames go through the proxy's rule engine and latency
//! on its own links (the `LinkPolicy` the replicas' frames take), in each link's order, and
//! reach the replica through `SimNetwork::inject_frame`, decoded and verified like any frame.
//! What the simulator cannot show: a connection's flow control (`flood` at `rate: max` is
//! paced at `UNPACED_GAP` instead of by the replicas' reading) and a client that stops
//! reading (the replicas' replies to a `never-read` client are delivered and dropped: the
//! simulator has no socket buffers to fill, see `never-read` in README.md).

use crate::layout::RunDir;
use crate::plan::Plan;
use crate::workload::{
    ByzantineClientRecord, ByzantineClientsReport, HistoryWriter, HonestThroughput,
    byzantine_attack, generator_of,
};
use replica::sim::{Endpoint, LinkPolicy, SimNetwork};
use replica::{ClientId, ReplicaId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use workloads::byzc::{Attack, SendClass, Tally};
use workloads::generator::Generator;
use workloads::history::{EventType, HistoryEvent};

/// `flood` at `rate: max` in the simulator, which has no flow control to pace it: one request
/// per this much virtual time, about the 12,000 requests a second a real run's flood reached
/// on the 2-core reference machine (`byzantine-clients.json` of `byzc-flood`).
pub const UNPACED_GAP: Duration = Duration::from_micros(80);

/// What the clients are doing: the timed workload, or the liveness probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Operations until `until_ns`, each started no sooner than the pacing allows.
    Workload {
        until_ns: u64,
    },
    /// Up to `ops` more operations per client, each allowed until `deadline_ns`.
    Probe {
        deadline_ns: u64,
    },
}

struct SimClient {
    id: ClientId,
    generator: Generator,
    /// The invocation waiting for its completion.
    open: Option<HistoryEvent>,
    next_start_ns: u64,
    probes_left: u32,
    invoked: u64,
    ok: u64,
}

/// A Byzantine client in the simulated world.
struct SimByzantine {
    id: ClientId,
    attack: Attack,
    /// Virtual time the attack started (its clock zero), and until when it runs.
    started_ns: Option<u64>,
    until_ns: u64,
    ended_ns: u64,
    tally: Tally,
    /// Frames on their way to a replica: (arrival ns, order) -> (replica, frame).
    in_flight: BTreeMap<(u64, u64), (ReplicaId, Vec<u8>)>,
    next_order: u64,
    /// Latest arrival scheduled per link, to keep each link in order (TCP's).
    link_clock: BTreeMap<ReplicaId, u64>,
}

pub struct SimClients {
    clients: Vec<SimClient>,
    byzantine: Vec<SimByzantine>,
    /// The network the Byzantine clients' frames take (the proxy's rules and latency).
    links: Box<dyn LinkPolicy>,
    /// Honest replicas, whose views a Byzantine client learns (as its replies would show).
    honest: Vec<ReplicaId>,
    /// Operations the honest clients invoked and completed in the workload phase.
    workload_invoked: u64,
    workload_ok: u64,
    workload_window_ns: u64,
    workload_start_ns: u64,
    /// Pacing: ns between one client's operation starts (`None`: back to back).
    interval_ns: Option<u64>,
    phase: Phase,
    /// How many of the network's completed operations were already recorded.
    seen: usize,
    history: HistoryWriter,
}

impl SimClients {
    /// The plan's clients; a Byzantine one sends its frames over `links`.
    pub fn new(
        plan: &Plan,
        history: HistoryWriter,
        links: Box<dyn LinkPolicy>,
    ) -> anyhow::Result<SimClients> {
        let w = &plan.scenario.workload;
        let max_frame = replica::wire::DEFAULT_MAX_FRAME;
        let mut byzantine = Vec::new();
        for c in &plan.clients {
            if let Some(attack) = byzantine_attack(plan, c.id, max_frame, UNPACED_GAP)? {
                byzantine.push(SimByzantine {
                    id: c.id,
                    attack,
                    started_ns: None,
                    until_ns: 0,
                    ended_ns: 0,
                    tally: Tally::default(),
                    in_flight: BTreeMap::new(),
                    next_order: 0,
                    link_clock: BTreeMap::new(),
                });
            }
        }
        let clients = plan
            .clients
            .iter()
            .filter(|c| !plan.scenario.is_byzantine_client(c.id))
            .map(|c| {
                Ok(SimClient {
                    id: c.id,
                    generator: generator_of(plan, c)?,
                    open: None,
                    next_start_ns: 0,
                    probes_left: 0,
                    invoked: 0,
                    ok: 0,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let interval_ns = w
            .rate
            .map(|rate| (f64::from(w.clients) / rate * 1e9) as u64);
        Ok(SimClients {
            clients,
            byzantine,
            links,
            honest: plan.honest(),
            workload_invoked: 0,
            workload_ok: 0,
            workload_window_ns: 0,
            workload_start_ns: 0,
            interval_ns,
            phase: Phase::Idle,
            seen: 0,
            history,
        })
    }

    pub fn start_workload(&mut self, now_ns: u64, until_ns: u64) {
        self.phase = Phase::Workload { until_ns };
        self.workload_start_ns = now_ns;
        for client in &mut self.clients {
            client.next_start_ns = now_ns;
        }
        for b in &mut self.byzantine {
            b.started_ns = Some(now_ns);
            b.until_ns = until_ns;
        }
    }

    pub fn start_probe(&mut self, ops: u32, deadline_ns: u64) {
        self.phase = Phase::Probe { deadline_ns };
        for client in &mut self.clients {
            client.probes_left = ops;
        }
    }

    /// Records what completed since the last call, then starts every operation that is due.
    pub fn step(&mut self, net: &mut SimNetwork) {
        self.record_completions(net);
        self.start_due(net);
        self.step_byzantine(net);
    }

    fn record_completions(&mut self, net: &SimNetwork) {
        let completed = net.completed();
        for done in &completed[self.seen.min(completed.len())..] {
            let Some(client) = self.clients.iter_mut().find(|c| c.id == done.client) else {
                continue;
            };
            let Some(invoke) = client.open.take() else {
                continue;
            };
            client.ok += 1;
            self.history
                .record(&invoke.ok(&done.result, done.completed_at_ns));
        }
        self.seen = completed.len();
    }

    fn start_due(&mut self, net: &mut SimNetwork) {
        let now = net.now_ns();
        for client in &mut self.clients {
            if client.open.is_some() || now < client.next_start_ns {
                continue;
            }
            let allowed = match self.phase {
                Phase::Idle => false,
                Phase::Workload { until_ns } => now < until_ns,
                Phase::Probe { deadline_ns } => now < deadline_ns && client.probes_left > 0,
            };
            if !allowed {
                continue;
            }
            let op = client.generator.next_op();
            let Ok(request) = net.submit(client.id, op.clone()) else {
                continue;
            };
            client.invoked += 1;
            if let Phase::Probe { .. } = self.phase {
                client.probes_left -= 1;
            }
            if let (Phase::Workload { .. }, Some(interval)) = (self.phase, self.interval_ns) {
                client.next_start_ns += interval;
            }
            let invoke = HistoryEvent::invoke(client.id, request.timestamp, &op, now);
            self.history.record(&invoke);
            client.open = Some(invoke);
        }
    }

    /// The next time a client must act though nothing else happens: an honest client's
    /// pacing, a Byzantine client's next frame or a frame of its arriving.
    pub fn next_start_ns(&self) -> Option<u64> {
        let byzantine = self.byzantine.iter().flat_map(|b| {
            let next_frame = b
                .started_ns
                .map(|start| start.saturating_add(nanos(b.attack.next_due())))
                .filter(|at| *at < b.until_ns);
            let arrival = b.in_flight.keys().next().map(|(at, _)| *at);
            next_frame.into_iter().chain(arrival)
        });
        let pacing = (matches!(self.phase, Phase::Workload { .. }) && self.interval_ns.is_some())
            .then(|| {
                self.clients
                    .iter()
                    .filter(|c| c.open.is_none())
                    .map(|c| c.next_start_ns)
                    .min()
            })
            .flatten();
        pacing.into_iter().chain(byzantine).min()
    }

    /// Sends what the Byzantine clients have due, and hands the replicas what reached them.
    fn step_byzantine(&mut self, net: &mut SimNetwork) {
        let now = net.now_ns();
        let view = self
            .honest
            .iter()
            .filter_map(|r| net.core(*r).map(|core| core.view().0))
            .max()
            .unwrap_or(0);
        let replicas = net.config().replicas.len();
        for b in &mut self.byzantine {
            if let Some(start) = b.started_ns
                && now < b.until_ns
            {
                b.attack.observe_view(view);
                let elapsed = Duration::from_nanos(now - start);
                while let Some(out) = b.attack.poll(elapsed) {
                    b.tally.produced(out.class);
                    for replica in out.recipients(replicas) {
                        b.send(&mut *self.links, now, replica, out.class, &out.frame);
                    }
                }
                b.ended_ns = now;
            }
            while let Some(entry) = b.in_flight.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let (replica, frame) = entry.remove();
                // A crashed replica loses it, as a closed connection would.
                let _ = net.inject_frame(replica, frame);
            }
        }
    }

    /// What the Byzantine clients did and how the honest ones fared meanwhile.
    pub fn byzantine_report(&self, plan: &Plan) -> ByzantineClientsReport {
        let records = self
            .byzantine
            .iter()
            .map(|b| ByzantineClientRecord {
                client: b.id,
                behaviour: b.attack.spec().behaviour().name().to_string(),
                params: BTreeMap::new(),
                seed: 0,
                active_from_ns: b.started_ns.unwrap_or(0),
                active_until_ns: b.ended_ns,
                sent: b.tally.clone(),
            })
            .collect();
        let honest = HonestThroughput::new(
            self.clients.iter().map(|c| c.id).collect(),
            self.workload_invoked,
            self.workload_ok,
            Duration::from_nanos(self.workload_window_ns),
        );
        ByzantineClientsReport::new(plan, records, honest)
    }

    /// Writes `byzantine-clients.json` when the scenario has Byzantine clients.
    pub fn write_byzantine_report(&self, plan: &Plan, dir: &RunDir) -> anyhow::Result<()> {
        self.byzantine_report(plan).write(dir)
    }

    /// Ends the phase at `now_ns`: what is still open is recorded `info` (its outcome is
    /// unknown) and the client gives up on it.
    pub fn end_phase(&mut self, net: &mut SimNetwork, now_ns: u64) {
        self.record_completions(net);
        if let Phase::Workload { .. } = self.phase {
            self.workload_invoked = self.clients.iter().map(|c| c.invoked).sum();
            self.workload_ok = self.clients.iter().map(|c| c.ok).sum();
            self.workload_window_ns = now_ns.saturating_sub(self.workload_start_ns);
        }
        for client in &mut self.clients {
            if let Some(invoke) = client.open.take() {
                let why = "no answer before the phase ended";
                self.history
                    .record(&invoke.incomplete(EventType::Info, why, now_ns));
                net.abandon(client.id);
            }
        }
        self.phase = Phase::Idle;
    }

    /// Writes out what is still buffered of `history.jsonl`.
    pub fn flush_history(&self) -> std::io::Result<()> {
        self.history.flush()
    }

    /// (invoked, ok) per client, for the log.
    pub fn counts(&self) -> Vec<(ClientId, u64, u64)> {
        self.clients
            .iter()
            .map(|c| (c.id, c.invoked, c.ok))
            .collect()
    }
}

impl SimClients {
    /// Whether the probe is over: every client ran its probe operations to completion.
    pub fn probe_done(&self) -> bool {
        self.clients
            .iter()
            .all(|c| c.probes_left == 0 && c.open.is_none())
    }
}

fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

impl SimByzantine {
    /// One frame from this client to `replica`, over its link: the proxy's rules decide its
    /// fate and latency; it arrives in the link's order.
    fn send(
        &mut self,
        links: &mut dyn LinkPolicy,
        now: u64,
        replica: ReplicaId,
        class: SendClass,
        frame: &Arc<[u8]>,
    ) {
        self.tally.wrote(class, frame.len());
        let from = Endpoint::Client(self.id);
        let to = links.destination(from, replica);
        let deliveries = links.route(Duration::from_nanos(now), from, to, frame.to_vec());
        for delivery in deliveries {
            let mut at = now.saturating_add(nanos(delivery.delay));
            if delivery.in_order {
                let clock = self.link_clock.entry(replica).or_default();
                at = at.max(*clock);
                *clock = at;
            }
            self.in_flight
                .insert((at, self.next_order), (replica, delivery.frame));
            self.next_order += 1;
        }
    }
}
