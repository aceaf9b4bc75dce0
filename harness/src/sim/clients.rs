//! The workload in the simulated world: each client is one sequential process, as in a real
//! run, drawing operations from the same seeded `Generator` and recording the same history
//! events; the protocol is the simulator's `ClientCore`. Times are virtual ns since the run
//! started.

use crate::plan::Plan;
use crate::workload::{HistoryWriter, generator_of};
use replica::ClientId;
use replica::sim::SimNetwork;
use workloads::generator::Generator;
use workloads::history::{EventType, HistoryEvent};

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

pub struct SimClients {
    clients: Vec<SimClient>,
    /// Pacing: ns between one client's operation starts (`None`: back to back).
    interval_ns: Option<u64>,
    phase: Phase,
    /// How many of the network's completed operations were already recorded.
    seen: usize,
    history: HistoryWriter,
}

impl SimClients {
    pub fn new(plan: &Plan, history: HistoryWriter) -> anyhow::Result<SimClients> {
        let w = &plan.scenario.workload;
        let clients = plan
            .clients
            .iter()
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
            interval_ns,
            phase: Phase::Idle,
            seen: 0,
            history,
        })
    }

    pub fn start_workload(&mut self, now_ns: u64, until_ns: u64) {
        self.phase = Phase::Workload { until_ns };
        for client in &mut self.clients {
            client.next_start_ns = now_ns;
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
    }

    fn record_completions(&mut self, net: &SimNetwork) {
        let completed = net.completed();
        for done in &completed[self.seen.min(completed.len())..] {
            let Some(client) = self.clients.get_mut(done.client.0 as usize) else {
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

    /// The next time a client must start an operation though nothing else happens (pacing).
    pub fn next_start_ns(&self) -> Option<u64> {
        if !matches!(self.phase, Phase::Workload { .. }) || self.interval_ns.is_none() {
            return None;
        }
        self.clients
            .iter()
            .filter(|c| c.open.is_none())
            .map(|c| c.next_start_ns)
            .min()
    }

    /// Ends the phase at `now_ns`: what is still open is recorded `info` (its outcome is
    /// unknown) and the client gives up on it.
    pub fn end_phase(&mut self, net: &mut SimNetwork, now_ns: u64) {
        self.record_completions(net);
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
