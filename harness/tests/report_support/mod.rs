//! A fake run folder written with the real types (history events, replica event lines, node
//! statistics, nemesis records, the verdict with real checker results), for report tests.
#![allow(dead_code)]

use harness::check::{self, LinearizabilityOptions};
use harness::layout::RunDir;
use harness::nemesis::NemesisRecord;
use harness::scenario::Expectation;
use harness::verdict::{Counts, Outcome, Timeline, Verdict};
use replica::events::{EventLine, ReplicaEvent};
use replica::kv::{OpResult, Operation};
use replica::message::{MessageKind, RequestId};
use replica::node::stats::NodeStats;
use replica::verify::RejectReason;
use replica::{ClientId, ReplicaId, Seq, Timestamp, View};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use workloads::history::{EventType, HistoryEvent};

/// A scenario name full of markup and quotes: it must come out escaped everywhere.
pub const HOSTILE_NAME: &str = "evil<script>alert('x')</script>\"&";
pub const TIME_ZERO_NS: u64 = 1_790_000_000_000_000_000;
const CLIENTS: u32 = 4;

pub struct FakeRun {
    /// Operations per client.
    pub ops_per_client: u64,
    /// Adds a non-linearizable key and a replica that commits a different batch.
    pub broken: bool,
    pub scenario_name: String,
}

impl Default for FakeRun {
    fn default() -> Self {
        FakeRun {
            ops_per_client: 40,
            broken: true,
            scenario_name: HOSTILE_NAME.into(),
        }
    }
}

/// A batch digest as replicas write it (64 hex digits), different for every `n`.
pub fn fake_digest(n: u64) -> String {
    // splitmix64: four well-mixed words from one number.
    let mut state = n;
    (0..4)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            format!("{:016x}", z ^ (z >> 31))
        })
        .collect()
}

fn write_lines<T: serde::Serialize>(path: &Path, items: &[T]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for item in items {
        writeln!(file, "{}", serde_json::to_string(item).expect("encode")).expect("write");
    }
}

impl FakeRun {
    /// Writes the run folder into `dir`.
    pub fn write(&self, dir: &Path) {
        let run = RunDir::new(dir.to_path_buf());
        let history = self.history();
        let events = self.events(&history);
        write_lines(&run.history(), &history);
        for (id, lines) in &events {
            write_lines(&run.replica_events(*id), lines);
            let stats = NodeStats::new(*id);
            for _ in 0..(10 + id.0) {
                stats.message_in(MessageKind::Prepare);
                stats.messages_out(MessageKind::Commit, 3);
            }
            stats.rejected(RejectReason::MalformedFrame);
            std::fs::write(
                run.replica_stats(*id),
                serde_json::to_string(&stats.snapshot()).expect("encode"),
            )
            .expect("write stats");
        }
        let end_ns = history.last().map_or(0, |e| e.time_ns);
        let faults = vec![
            NemesisRecord {
                id: "g00-partition".into(),
                action: "partition".into(),
                start_ns: end_ns / 5,
                end_ns: Some(end_ns * 2 / 5),
                targets: vec![],
                rules: vec![],
            },
            NemesisRecord {
                id: "g01-kill".into(),
                action: "kill".into(),
                start_ns: end_ns * 3 / 5,
                end_ns: None,
                targets: vec![ReplicaId(1)],
                rules: vec![],
            },
        ];
        write_lines(&run.nemesis(), &faults);
        let timeline = Timeline {
            workload_start_ns: 0,
            workload_end_ns: end_ns * 9 / 10,
            heal_ns: end_ns * 9 / 10,
            probe_start_ns: end_ns * 9 / 10,
            probe_end_ns: end_ns,
            ..Timeline::default()
        };
        std::fs::write(
            run.timeline(),
            serde_json::to_string(&timeline).expect("encode"),
        )
        .expect("write timeline");
        std::fs::write(
            run.scenario(),
            format!(
                "name: '{}'\nworkload:\n  kind: kv\n  duration_s: 5\n",
                self.scenario_name
            ),
        )
        .expect("write scenario");
        self.write_verdict(&run, &history, &events);
    }

    fn write_verdict(
        &self,
        run: &RunDir,
        history: &[HistoryEvent],
        events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    ) {
        let honest: Vec<ReplicaId> = (0..4).map(ReplicaId).collect();
        let checks = vec![
            check::linearizability(history, &LinearizabilityOptions::default()),
            check::agreement(events, &honest),
        ];
        let violated = checks
            .iter()
            .any(|c| c.outcome == check::CheckOutcome::Violation);
        let verdict = Verdict {
            scenario: self.scenario_name.clone(),
            seed: 42,
            backend: Default::default(),
            outcome: if violated {
                Outcome::Violation
            } else {
                Outcome::Pass
            },
            expected: Expectation::Pass,
            as_expected: !violated,
            checks,
            counts: Counts::default(),
            error: None,
            reproduce: format!("gauntlet run '{}' --seed 42", self.scenario_name),
            run_dir: run.root.display().to_string(),
            build_id: None,
            started_at_ns: None,
        };
        verdict.write(run).expect("write verdict");
    }

    /// Clients put and append on a few keys; every 17th operation times out (info), every
    /// 29th fails. With `broken`, a get on key `bad` reads a value nobody wrote.
    pub fn history(&self) -> Vec<HistoryEvent> {
        let mut history = Vec::new();
        let mut open: Vec<(HistoryEvent, u64, EventType)> = Vec::new();
        for round in 0..self.ops_per_client {
            for client in 0..CLIENTS {
                let n = round * CLIENTS as u64 + client as u64;
                let key = format!("k{}", n % 3);
                // Writes only: any order of them is legal, so only the `bad` key can fail.
                let op = if n.is_multiple_of(3) {
                    Operation::Put {
                        key,
                        value: format!("p{n}"),
                    }
                } else {
                    Operation::Append {
                        key,
                        value: format!("v{n}"),
                    }
                };
                let start = round * 20_000_000 + client as u64 * 1_000_000;
                let invoke =
                    HistoryEvent::invoke(ClientId(client), Timestamp(round + 1), &op, start);
                let kind = if n % 17 == 5 {
                    EventType::Info
                } else if n % 29 == 7 {
                    EventType::Fail
                } else {
                    EventType::Ok
                };
                history.push(invoke.clone());
                open.push((invoke, start + 8_000_000 + (n % 5) * 1_000_000, kind));
            }
            // Completions of this round before the next round's invocations.
            open.sort_by_key(|(_, end, _)| *end);
            for (invoke, end, kind) in open.drain(..) {
                history.push(match kind {
                    EventType::Ok => invoke.ok(&OpResult::Done, end),
                    other => invoke.incomplete(other, "timed out", end),
                });
            }
        }
        if self.broken {
            let start = self.ops_per_client * 20_000_000;
            let put = HistoryEvent::invoke(
                ClientId(0),
                Timestamp(10_000),
                &Operation::Put {
                    key: "bad".into(),
                    value: "1".into(),
                },
                start,
            );
            let get = HistoryEvent::invoke(
                ClientId(1),
                Timestamp(10_000),
                &Operation::Get { key: "bad".into() },
                start + 10_000_000,
            );
            history.push(put.clone());
            history.push(put.ok(&OpResult::Done, start + 5_000_000));
            history.push(get.clone());
            history.push(get.ok(&OpResult::Value(Some("2".into())), start + 15_000_000));
        }
        history
    }

    /// Each replica commits and executes every request that completed `ok`, in order; views
    /// change once in the middle; with `broken`, replica 2 commits a different batch at seq 3
    /// (`fake_digest(u64::MAX)` instead of `fake_digest(3)`).
    pub fn events(&self, history: &[HistoryEvent]) -> BTreeMap<ReplicaId, Vec<EventLine>> {
        let mut events = BTreeMap::new();
        let oks: Vec<&HistoryEvent> = history.iter().filter(|e| e.kind == EventType::Ok).collect();
        let middle = oks.len() / 2;
        for r in 0..4u32 {
            let replica = ReplicaId(r);
            let mut lines = Vec::new();
            let line = |at_ns: u64, event| EventLine {
                time_ns: TIME_ZERO_NS + at_ns,
                replica,
                event,
            };
            for (i, ok) in oks.iter().enumerate() {
                let seq = Seq(i as u64 + 1);
                let at = ok.time_ns - 500_000 + r as u64 * 10_000;
                let request = RequestId {
                    client: ok.process,
                    timestamp: ok.request,
                };
                let digest = if self.broken && r == 2 && seq == Seq(3) {
                    fake_digest(u64::MAX)
                } else {
                    fake_digest(seq.0)
                };
                let view = View(if i >= middle { 1 } else { 0 });
                if i == middle {
                    lines.push(line(
                        at - 100_000,
                        ReplicaEvent::ViewChangeStarted {
                            from: View(0),
                            view: View(1),
                        },
                    ));
                    lines.push(line(
                        at - 50_000,
                        ReplicaEvent::ViewChangeCompleted {
                            view: View(1),
                            primary: ReplicaId(1),
                        },
                    ));
                }
                lines.push(line(
                    at,
                    ReplicaEvent::Commit {
                        view,
                        seq,
                        digest,
                        requests: vec![request],
                    },
                ));
                lines.push(line(
                    at + 1000,
                    ReplicaEvent::Execute {
                        seq,
                        request,
                        op: "append".into(),
                        result: "done".into(),
                        duplicate: false,
                    },
                ));
                if seq.0.is_multiple_of(16) {
                    lines.push(line(
                        at + 2000,
                        ReplicaEvent::CheckpointStable {
                            seq,
                            state_digest: format!("s-{}", seq.0),
                        },
                    ));
                }
            }
            events.insert(replica, lines);
        }
        events
    }
}
