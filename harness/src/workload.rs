//! Client tasks: each client is one sequential process that invokes operations through the
//! proxy and records invoke, then ok / fail / info, in `history.jsonl`.
//!
//! A request whose outcome is not known yet is re-submitted unchanged (same timestamp) until
//! the phase's deadline, so few operations end up `info`: a replica answers a request it
//! already executed from its reply cache.

use crate::plan::ClientPlan;
use anyhow::Context;
use replica::config::ClusterConfig;
use replica::kv::Operation;
use replica::{ClientId, Principal};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use workloads::client::{Client, ClientError, ClientOptions, PreparedRequest};
use workloads::generator::{Generator, Mix, WorkloadKind};
use workloads::history::{EventType, HistoryEvent};

/// Appends history lines from many tasks; times are ns since the run started.
#[derive(Clone)]
pub struct HistoryWriter {
    out: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
    run_start: Instant,
}

impl HistoryWriter {
    pub fn create(path: &Path, run_start: Instant) -> anyhow::Result<HistoryWriter> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(HistoryWriter {
            out: Arc::new(Mutex::new(std::io::BufWriter::new(file))),
            run_start,
        })
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.run_start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&self, event: &HistoryEvent) {
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

/// One client of the run, connected through its own proxy links.
pub struct WorkloadClient {
    pub id: ClientId,
    client: Client,
    generator: Generator,
    /// One attempt of a request waits this long before it is re-submitted.
    attempt: Duration,
}

impl WorkloadClient {
    pub fn connect(
        config: &ClusterConfig,
        plan: &ClientPlan,
        key_seed: u64,
        kind: WorkloadKind,
        keys: usize,
        mix: Mix,
        attempt: Duration,
    ) -> anyhow::Result<WorkloadClient> {
        let key = replica::crypto::key_from_seed(key_seed, Principal::Client(plan.id));
        let options = ClientOptions {
            deadline: attempt,
            ..ClientOptions::from_config(config)
        };
        let client = Client::with_options(config, plan.id, key, options)
            .with_context(|| format!("cannot create client {}", plan.id))?;
        let generator =
            Generator::new(kind, plan.op_seed, plan.id, keys, mix).with_context(|| {
                format!("cannot build the operation generator of client {}", plan.id)
            })?;
        Ok(WorkloadClient {
            id: plan.id,
            client,
            generator,
            attempt,
        })
    }

    /// Invokes one operation, re-submitting it until its outcome is known or `deadline`.
    /// Returns whether it completed `ok`.
    async fn run_one(&self, op: Operation, history: &HistoryWriter, deadline: Instant) -> bool {
        let prepared: PreparedRequest = self.client.prepare(op);
        let invoke = HistoryEvent::invoke(
            self.id,
            prepared.timestamp(),
            prepared.op(),
            history.now_ns(),
        );
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
                    history.record(&invoke.ok(&done.result, history.now_ns()));
                    return true;
                }
                Ok(Err(error)) if !error.outcome_unknown() => {
                    history.record(&invoke.incomplete(
                        EventType::Fail,
                        error.to_string(),
                        history.now_ns(),
                    ));
                    return false;
                }
                Ok(Err(ClientError::Closed)) => {
                    history.record(&invoke.incomplete(
                        EventType::Info,
                        "client connections closed",
                        history.now_ns(),
                    ));
                    return false;
                }
                result => {
                    if Instant::now() + Duration::from_millis(10) >= deadline {
                        let why = match result {
                            Ok(Err(error)) => error.to_string(),
                            _ => "no answer before the phase ended".to_string(),
                        };
                        history.record(&invoke.incomplete(EventType::Info, why, history.now_ns()));
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
