//! Client tasks: each client is one sequential process that invokes operations through the
//! proxy and records invoke, then ok / fail / info, in `history.jsonl`. A client the scenario
//! makes Byzantine (`clients:`) runs its behaviour (`workloads::byzc`) on its own proxy links
//! instead, records nothing in the history, and reports what it sent in
//! `byzantine-clients.json`.
//!
//! A request whose outcome is not known yet is re-submitted unchanged (same timestamp) until
//! the phase's deadline, so few operations end up `info`: a replica answers a request it
//! already executed from its reply cache.

use crate::layout::{RunDir, cluster_config_for};
use crate::plan::{ClientPlan, Plan, substream};
use crate::proxy::Endpoint;
use anyhow::Context;
use rand::RngExt;
use replica::auth::{AuthMode, SessionKeys};
use replica::config::ClusterConfig;
use replica::kv::Operation;
use replica::{ClientId, Principal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use workloads::byzc::{Attack, AttackConfig, Tally};
use workloads::client::{Client, ClientError, ClientOptions, PreparedRequest};
use workloads::generator::Generator;
use workloads::history::{EventType, HistoryEvent};

/// Appends `history.jsonl` lines, from many tasks in a real run or from the simulator; each
/// event carries its own time (ns since the run started, on that run's clock).
#[derive(Clone)]
pub struct HistoryWriter {
    out: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> anyhow::Result<HistoryWriter> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(HistoryWriter {
            out: Arc::new(Mutex::new(std::io::BufWriter::new(file))),
        })
    }

    pub fn record(&self, event: &HistoryEvent) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = writeln!(out, "{}", event.to_json_line()) {
            tracing::error!(%error, "cannot write history.jsonl");
        }
    }

    pub fn flush(&self) -> std::io::Result<()> {
        self.out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

/// The seeded operation generator of `client`: the same in a real and a simulated run.
pub fn generator_of(plan: &Plan, client: &ClientPlan) -> anyhow::Result<Generator> {
    let w = &plan.scenario.workload;
    Generator::new(w.kind, client.op_seed, client.id, w.keys as usize, w.mix()).with_context(|| {
        format!(
            "cannot build the operation generator of client {}",
            client.id
        )
    })
}

/// The seed of Byzantine client `client`'s behaviour: a substream of the run's seed of its own.
pub fn byzantine_client_seed(plan: &Plan, client: ClientId) -> u64 {
    substream(plan.seed, &format!("byzantine-client/client-{client}")).random()
}

/// The attack of client `client` if the scenario makes it Byzantine. `unpaced_gap` paces an
/// unpaced behaviour (`flood` at `rate: max`): zero on real connections, a gap in simulation.
pub fn byzantine_attack(
    plan: &Plan,
    client: ClientId,
    max_frame: usize,
    unpaced_gap: Duration,
) -> anyhow::Result<Option<Attack>> {
    let Some(spec) = plan.scenario.clients.get(&client.0) else {
        return Ok(None);
    };
    let behaviour = spec
        .spec()
        .with_context(|| format!("Byzantine client {client}"))?;
    let key = replica::crypto::key_from_seed(plan.key_seed, Principal::Client(client));
    // Under `auth: macs` its requests carry an authenticator too, as an honest client's do.
    let sessions = match plan.scenario.cluster.auth {
        AuthMode::Signatures => None,
        AuthMode::Macs => {
            let config = cluster_config_for(plan, Endpoint::Client(client))?;
            let keys = config.keys(Path::new("<the plan's cluster>"))?;
            Some(Arc::new(SessionKeys::derive(
                Principal::Client(client),
                &key,
                &keys,
            )))
        }
    };
    Ok(Some(Attack::new(
        behaviour,
        AttackConfig {
            client,
            key,
            sessions,
            replicas: plan.n(),
            max_frame,
            seed: byzantine_client_seed(plan, client),
            unpaced_gap,
        },
    )))
}

/// One client of the run, connected through its own proxy links: an honest one, or one that
/// runs a Byzantine behaviour.
pub struct WorkloadClient {
    pub id: ClientId,
    role: Role,
    /// The run's clock zero: history times count from it.
    run_start: Instant,
    /// What the workload phase (`run_until`) did.
    pub counts: WorkloadCounts,
}

enum Role {
    Honest(Box<HonestClient>),
    Byzantine(Box<ByzantineClient>),
}

struct HonestClient {
    client: Client,
    generator: Generator,
    /// One attempt of a request waits this long before it is re-submitted.
    attempt: Duration,
}

struct ByzantineClient {
    /// Taken when the attack runs.
    attack: Option<Attack>,
    options: workloads::byzc::net::NetOptions,
    record: Option<ByzantineClientRecord>,
}

impl WorkloadClient {
    /// Client `client` of `plan`, dialing the addresses in `config` (its proxy ports).
    pub fn connect(
        config: &ClusterConfig,
        plan: &Plan,
        client: &ClientPlan,
        run_start: Instant,
    ) -> anyhow::Result<WorkloadClient> {
        let role = match byzantine_attack(plan, client.id, config.max_frame_bytes, Duration::ZERO)?
        {
            Some(attack) => Role::Byzantine(Box::new(ByzantineClient {
                attack: Some(attack),
                options: workloads::byzc::net::NetOptions {
                    addresses: config.replicas.iter().map(|r| r.address).collect(),
                    max_frame: config.max_frame_bytes,
                },
                record: None,
            })),
            None => Role::Honest(Box::new(HonestClient::connect(config, plan, client)?)),
        };
        Ok(WorkloadClient {
            id: client.id,
            role,
            run_start,
            counts: WorkloadCounts::default(),
        })
    }

    /// What the client did as a Byzantine client (`None` for an honest one).
    pub fn byzantine_record(&self) -> Option<&ByzantineClientRecord> {
        match &self.role {
            Role::Byzantine(byzantine) => byzantine.record.as_ref(),
            Role::Honest(_) => None,
        }
    }

    pub fn is_byzantine(&self) -> bool {
        matches!(self.role, Role::Byzantine(_))
    }

    /// Runs operations back to back (or paced to `interval`) until `until`; a Byzantine
    /// client runs its behaviour until then instead.
    pub async fn run_until(
        &mut self,
        until: Instant,
        interval: Option<Duration>,
        history: &HistoryWriter,
    ) -> WorkloadCounts {
        let run_start = self.run_start;
        let counts = match &mut self.role {
            Role::Honest(honest) => honest.run_until(until, interval, history, run_start).await,
            Role::Byzantine(byzantine) => byzantine.run_until(self.id, until, run_start).await,
        };
        self.counts = counts;
        counts
    }

    /// The liveness probe: `ops` operations, each allowed until `deadline`. A Byzantine
    /// client has no part in it.
    pub async fn probe(&mut self, ops: u32, deadline: Instant, history: &HistoryWriter) -> u32 {
        let run_start = self.run_start;
        match &mut self.role {
            Role::Honest(honest) => honest.probe(ops, deadline, history, run_start).await,
            Role::Byzantine(_) => 0,
        }
    }
}

impl ByzantineClient {
    async fn run_until(
        &mut self,
        id: ClientId,
        until: Instant,
        run_start: Instant,
    ) -> WorkloadCounts {
        let Some(attack) = self.attack.take() else {
            return WorkloadCounts::default();
        };
        let ns = |at: Instant| u64::try_from(at.duration_since(run_start).as_nanos()).unwrap_or(0);
        let from = Instant::now();
        let behaviour = attack.spec().behaviour();
        let duration = until.saturating_duration_since(from);
        let sent = workloads::byzc::net::run(attack, self.options.clone(), duration).await;
        tracing::info!(client = %id, %behaviour, requests = sent.total_requests(),
            frames = sent.total_frames(), "Byzantine client done");
        let counts = WorkloadCounts {
            invoked: sent.total_requests(),
            ok: 0,
        };
        self.record = Some(ByzantineClientRecord {
            client: id,
            behaviour: behaviour.name().to_string(),
            params: BTreeMap::new(),
            seed: 0,
            active_from_ns: ns(from),
            active_until_ns: ns(Instant::now()),
            sent,
        });
        counts
    }
}

impl HonestClient {
    fn connect(
        config: &ClusterConfig,
        plan: &Plan,
        client: &ClientPlan,
    ) -> anyhow::Result<HonestClient> {
        let attempt = Duration::from_millis(plan.scenario.workload.op_timeout_ms);
        let key = replica::crypto::key_from_seed(plan.key_seed, Principal::Client(client.id));
        let options = ClientOptions {
            deadline: attempt,
            ..ClientOptions::from_config(config)
        };
        let protocol = Client::with_options(config, client.id, key, options)
            .with_context(|| format!("cannot create client {}", client.id))?;
        Ok(HonestClient {
            client: protocol,
            generator: generator_of(plan, client)?,
            attempt,
        })
    }

    /// Invokes one operation, re-submitting it until its outcome is known or `deadline`.
    /// Returns whether it completed `ok`.
    async fn run_one(
        &self,
        op: Operation,
        history: &HistoryWriter,
        deadline: Instant,
        run_start: Instant,
    ) -> bool {
        let now_ns = || u64::try_from(run_start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let id = self.client.id();
        let prepared: PreparedRequest = self.client.prepare(op);
        let invoke = HistoryEvent::invoke(id, prepared.timestamp(), prepared.op(), now_ns());
        history.record(&invoke);
        loop {
            // The client has its own per-attempt deadline; this one stops an attempt at the
            // end of the phase (and guards against a hang).
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(50));
            let outcome = tokio::time::timeout(
                left.min(self.attempt + Duration::from_secs(1)),
                self.client.submit(&prepared),
            )
            .await;
            match outcome {
                Ok(Ok(done)) => {
                    history.record(&invoke.ok(&done.result, now_ns()));
                    return true;
                }
                Ok(Err(error)) if !error.outcome_unknown() => {
                    history.record(&invoke.incomplete(
                        EventType::Fail,
                        error.to_string(),
                        now_ns(),
                    ));
                    return false;
                }
                Ok(Err(ClientError::Closed)) => {
                    history.record(&invoke.incomplete(
                        EventType::Info,
                        "client connections closed",
                        now_ns(),
                    ));
                    return false;
                }
                result => {
                    if Instant::now() + Duration::from_millis(10) >= deadline {
                        let why = match result {
                            Ok(Err(error)) => error.to_string(),
                            _ => "no answer before the phase ended".to_string(),
                        };
                        history.record(&invoke.incomplete(EventType::Info, why, now_ns()));
                        return false;
                    }
                }
            }
        }
    }

    async fn run_until(
        &mut self,
        until: Instant,
        interval: Option<Duration>,
        history: &HistoryWriter,
        run_start: Instant,
    ) -> WorkloadCounts {
        let mut counts = WorkloadCounts::default();
        let mut next_start = Instant::now();
        while Instant::now() < until {
            if let Some(interval) = interval {
                tokio::time::sleep_until(next_start.into()).await;
                next_start += interval;
                if Instant::now() >= until {
                    break;
                }
            }
            let op = self.generator.next_op();
            counts.invoked += 1;
            if self.run_one(op, history, until, run_start).await {
                counts.ok += 1;
            }
        }
        counts
    }

    async fn probe(
        &mut self,
        ops: u32,
        deadline: Instant,
        history: &HistoryWriter,
        run_start: Instant,
    ) -> u32 {
        let mut ok = 0;
        for _ in 0..ops {
            if Instant::now() >= deadline {
                break;
            }
            let op = self.generator.next_op();
            if self.run_one(op, history, deadline, run_start).await {
                ok += 1;
            }
        }
        ok
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadCounts {
    pub invoked: u64,
    pub ok: u64,
}

/// `byzantine-clients.json`: what each Byzantine client sent, and how the honest clients fared
/// while it did (Aardvark's measure: the correct clients' throughput under attack).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ByzantineClientsReport {
    pub clients: Vec<ByzantineClientRecord>,
    pub honest: HonestThroughput,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ByzantineClientRecord {
    pub client: ClientId,
    pub behaviour: String,
    /// As the scenario gives them (defaults left out).
    pub params: BTreeMap<String, String>,
    /// The behaviour's seed (`byzantine_client_seed`).
    pub seed: u64,
    /// When it ran, on the history's clock (ns since the run started).
    pub active_from_ns: u64,
    pub active_until_ns: u64,
    pub sent: Tally,
}

/// The honest clients' operations in the workload phase, while the Byzantine ones ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HonestThroughput {
    pub clients: Vec<ClientId>,
    pub invoked: u64,
    pub ok: u64,
    pub window_ns: u64,
    pub ok_per_s: f64,
}

impl HonestThroughput {
    pub fn new(clients: Vec<ClientId>, invoked: u64, ok: u64, window: Duration) -> Self {
        let seconds = window.as_secs_f64();
        HonestThroughput {
            clients,
            invoked,
            ok,
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            ok_per_s: if seconds > 0.0 {
                ok as f64 / seconds
            } else {
                0.0
            },
        }
    }
}

impl ByzantineClientsReport {
    /// Fills in what the plan knows of each client (its parameters and seed).
    pub fn new(
        plan: &Plan,
        mut clients: Vec<ByzantineClientRecord>,
        honest: HonestThroughput,
    ) -> Self {
        for record in &mut clients {
            if let Some(spec) = plan.scenario.clients.get(&record.client.0) {
                record.params = spec.params.clone();
            }
            record.seed = byzantine_client_seed(plan, record.client);
        }
        clients.sort_by_key(|r| r.client);
        ByzantineClientsReport { clients, honest }
    }

    /// Writes it into the run folder, when the scenario has Byzantine clients.
    pub fn write(&self, dir: &RunDir) -> anyhow::Result<()> {
        if self.clients.is_empty() {
            return Ok(());
        }
        crate::verdict::write_json(&dir.byzantine_clients(), self)
    }
}

/// `byzantine-clients.json` of a real run, from its clients after the workload phase.
pub fn write_byzantine_clients(
    dir: &RunDir,
    plan: &Plan,
    clients: &[WorkloadClient],
    workload: Duration,
) -> anyhow::Result<()> {
    let records = clients
        .iter()
        .filter_map(WorkloadClient::byzantine_record)
        .cloned()
        .collect();
    let honest: Vec<&WorkloadClient> = clients.iter().filter(|c| !c.is_byzantine()).collect();
    let mut ids: Vec<ClientId> = honest.iter().map(|c| c.id).collect();
    ids.sort();
    let throughput = HonestThroughput::new(
        ids,
        honest.iter().map(|c| c.counts.invoked).sum(),
        honest.iter().map(|c| c.counts.ok).sum(),
        workload,
    );
    ByzantineClientsReport::new(plan, records, throughput).write(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    #[test]
    fn a_byzantine_client_draws_its_own_seed_from_the_runs() {
        let loaded = scenario::load("byzc-flood").expect("built-in");
        let plan = crate::plan::resolve(&loaded, 7).expect("plan");
        let again = crate::plan::resolve(&loaded, 7).expect("plan");
        let other = crate::plan::resolve(&loaded, 8).expect("plan");
        let seed = byzantine_client_seed(&plan, ClientId(3));
        assert_eq!(seed, byzantine_client_seed(&again, ClientId(3)));
        assert_ne!(seed, byzantine_client_seed(&other, ClientId(3)));
        assert_ne!(seed, byzantine_client_seed(&plan, ClientId(2)));
        assert!(
            byzantine_attack(&plan, ClientId(3), 1 << 20, Duration::ZERO)
                .expect("attack")
                .is_some()
        );
        assert!(
            byzantine_attack(&plan, ClientId(0), 1 << 20, Duration::ZERO)
                .expect("honest")
                .is_none()
        );
        // The honest clients' generators are the plan's, untouched by the Byzantine one.
        assert_eq!(plan.clients.len(), 4);
        assert_eq!(plan.scenario.honest_clients().len(), 3);
    }
}
