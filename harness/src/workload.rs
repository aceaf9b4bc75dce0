//! Client tasks: each client is one sequential process that invokes operations through the
//! proxy and records invoke, then ok / fail / info, in `history.jsonl`.
//!
//! A request whose outcome is not known yet is re-submitted unchanged (same timestamp) until
//! the phase's deadline, so few operations end up `info`: a replica answers a request it
//! already executed from its reply cache.

use crate::plan::{ClientPlan, Plan};
use anyhow::Context;
use replica::config::ClusterConfig;
use replica::kv::Operation;
use replica::{ClientId, Principal};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
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

/// One client of the run, connected through its own proxy links.
pub struct WorkloadClient {
    pub id: ClientId,
    client: Client,
    generator: Generator,
    /// One attempt of a request waits this long before it is re-submitted.
    attempt: Duration,
    /// The run's clock zero: history times count from it.
    run_start: Instant,
}

impl WorkloadClient {
    /// Client `client` of `plan`, dialing the addresses in `config` (its proxy ports).
    pub fn connect(
        config: &ClusterConfig,
        plan: &Plan,
        client: &ClientPlan,
        run_start: Instant,
    ) -> anyhow::Result<WorkloadClient> {
        let attempt = Duration::from_millis(plan.scenario.workload.op_timeout_ms);
        let key = replica::crypto::key_from_seed(plan.key_seed, Principal::Client(client.id));
        let options = ClientOptions {
            deadline: attempt,
            ..ClientOptions::from_config(config)
        };
        let protocol = Client::with_options(config, client.id, key, options)
            .with_context(|| format!("cannot create client {}", client.id))?;
        Ok(WorkloadClient {
            id: client.id,
            client: protocol,
            generator: generator_of(plan, client)?,
            attempt,
            run_start,
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.run_start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Invokes one operation, re-submitting it until its outcome is known or `deadline`.
    /// Returns whether it completed `ok`.
    async fn run_one(&self, op: Operation, history: &HistoryWriter, deadline: Instant) -> bool {
        let prepared: PreparedRequest = self.client.prepare(op);
        let invoke =
            HistoryEvent::invoke(self.id, prepared.timestamp(), prepared.op(), self.now_ns());
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
                    history.record(&invoke.ok(&done.result, self.now_ns()));
                    return true;
                }
                Ok(Err(error)) if !error.outcome_unknown() => {
                    history.record(&invoke.incomplete(
                        EventType::Fail,
                        error.to_string(),
                        self.now_ns(),
                    ));
                    return false;
                }
                Ok(Err(ClientError::Closed)) => {
                    history.record(&invoke.incomplete(
                        EventType::Info,
                        "client connections closed",
                        self.now_ns(),
                    ));
                    return false;
                }
                result => {
                    if Instant::now() + Duration::from_millis(10) >= deadline {
                        let why = match result {
                            Ok(Err(error)) => error.to_string(),
                            _ => "no answer before the phase ended".to_string(),
                        };
                        history.record(&invoke.incomplete(EventType::Info, why, self.now_ns()));
                        return false;
                    }
                }
            }
        }
    }

    /// Runs operations back to back (or paced to `interval`) until `until`.
    pub async fn run_until(
        &mut self,
        until: Instant,
        interval: Option<Duration>,
        history: &HistoryWriter,
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
            if self.run_one(op, history, until).await {
                counts.ok += 1;
            }
        }
        counts
    }

    /// The liveness probe: `ops` operations, each allowed until `deadline`.
    pub async fn probe(&mut self, ops: u32, deadline: Instant, history: &HistoryWriter) -> u32 {
        let mut ok = 0;
        for _ in 0..ops {
            if Instant::now() >= deadline {
                break;
            }
            let op = self.generator.next_op();
            if self.run_one(op, history, deadline).await {
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
