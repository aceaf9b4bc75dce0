//! Triggered faults on real processes: tail every replica's `events.jsonl` and start a fault as
//! soon as its event is read. A replica writes its event lines after the turn's log sync and
//! flushes them at most every 200 ms (`replica::node::driver`), so a fault fires late by that
//! flush, the polling here and the signal: each record says how late (`TriggerRecord`).

use super::run::Nemesis;
use super::{Fired, TriggerRecord, TriggerWatch};
use crate::primary::TailedFile;
use replica::ReplicaId;
use replica::events::EventLine;
use std::time::{Duration, Instant};

/// How often the event files are read.
const POLL: Duration = Duration::from_millis(2);

pub(super) fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
}

/// Only these lines can fire a trigger (or tell a checkpoint's view); the rest (executions,
/// commits of others, rejections) are not parsed.
fn may_matter(line: &str) -> bool {
    [
        "\"sent\"",
        "view-change",
        "checkpoint-taken",
        "\"recovered\"",
    ]
    .iter()
    .any(|tag| line.contains(tag))
}

impl Nemesis {
    /// Fires the triggered faults as their events appear, and ends each `after_ms` later.
    /// Runs until every trigger fired and every such fault ended, or it is cancelled.
    pub(super) async fn watch_triggers(&self, mut watch: TriggerWatch, origin: Instant) {
        let origin_unix_ns = self.run_start_unix_ns.saturating_add(
            u64::try_from(origin.saturating_duration_since(self.run_start).as_nanos()).unwrap_or(0),
        );
        let mut tails: Vec<(ReplicaId, TailedFile)> = self
            .event_files
            .iter()
            .map(|(id, path)| (*id, TailedFile::new(path.clone())))
            .collect();
        let mut ends: Vec<(Instant, String)> = Vec::new();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.end_due(&mut ends).await;
            if watch.is_done() && ends.is_empty() {
                return;
            }
            for (replica, tail) in &mut tails {
                for line in tail.new_lines() {
                    if !may_matter(&line) {
                        continue;
                    }
                    let Ok(event) = serde_json::from_str::<EventLine>(&line) else {
                        continue;
                    };
                    let seen_ns = unix_now_ns();
                    // Before the workload: it only tells the replica's view.
                    let elapsed_ms = match event.time_ns.checked_sub(origin_unix_ns) {
                        Some(ns) => ns / 1_000_000,
                        None => {
                            watch.note(*replica, &event.event);
                            continue;
                        }
                    };
                    let fired = watch.observe(*replica, &event.event, elapsed_ms, |id| {
                        self.book().has_ended(id)
                    });
                    for fired in fired {
                        let end = self.fire(fired, event.time_ns, seen_ns).await;
                        ends.extend(end);
                    }
                }
            }
        }
    }

    /// Starts a fault its trigger fired; returns when and what to end, if it ends.
    async fn fire(
        &self,
        fired: Fired,
        event_unix_ns: u64,
        seen_unix_ns: u64,
    ) -> Option<(Instant, String)> {
        let fault = &fired.fault;
        let start = self.book().plan_start(fault, || self.primary());
        tracing::info!(fault = %fault.id, targets = ?start.targets, event = %fired.event, "nemesis: triggered");
        for step in &start.steps {
            self.carry_out(step).await;
        }
        let now = self.now_ns();
        let mut book = self.book();
        book.record_start(fault, start, now);
        // On the record's clock, so that `start_ns - event_ns` is the lag.
        let event_ns = event_unix_ns.saturating_sub(self.run_start_unix_ns);
        let record = TriggerRecord {
            event: fired.event,
            replica: fired.sender,
            event_ns,
            lag_ns: now.saturating_sub(event_ns),
            seen_lag_ns: Some(seen_unix_ns.saturating_sub(event_unix_ns)),
        };
        book.record_trigger(&fault.id, record);
        let after = fired.end_after_ms?;
        Some((
            Instant::now() + Duration::from_millis(after),
            fault.id.clone(),
        ))
    }

    /// Ends the triggered faults whose time came.
    async fn end_due(&self, ends: &mut Vec<(Instant, String)>) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = ends.drain(..).partition(|(at, _)| *at <= now);
        *ends = later;
        for (_, id) in due {
            tracing::info!(fault = %id, "nemesis: end");
            let now_ns = self.now_ns();
            let steps = self.book().end(&id, now_ns);
            for step in &steps {
                self.carry_out(step).await;
            }
        }
    }
}
