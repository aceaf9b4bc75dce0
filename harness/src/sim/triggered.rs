//! Triggered faults in simulation: after every simulator action the replicas' new events go
//! to the `TriggerWatch`, so a fault fires at the very virtual instant of the event that
//! triggers it, before the replica takes another turn (the messages of that turn have left).

use super::{MS, SimRun};
use crate::nemesis::{Fired, TriggerRecord, TriggerWatch};
use replica::ReplicaId;

/// The triggered faults of a run: the watch, how far each replica's events were read, and
/// the faults that end at a virtual time.
pub(super) struct SimTriggers {
    watch: TriggerWatch,
    /// Per replica, how many of its events were read.
    seen: Vec<usize>,
    /// `(virtual ns, fault id)`: when each fired fault is undone.
    ends: Vec<(u64, String)>,
    /// Triggers fire only while the workload runs, as timed faults start only then.
    live: bool,
    workload_start_ns: u64,
}

impl SimTriggers {
    pub(super) fn new(watch: TriggerWatch, n: usize) -> SimTriggers {
        SimTriggers {
            watch,
            seen: vec![0; n],
            ends: Vec::new(),
            live: false,
            workload_start_ns: 0,
        }
    }

    /// The next time a fired fault is undone.
    pub(super) fn next_end_ns(&self) -> Option<u64> {
        self.ends.iter().map(|(at, _)| *at).min()
    }
}

impl SimRun<'_> {
    /// From now on the triggers fire: what the replicas reported before only tells their views.
    pub(super) fn arm_triggers(&mut self, workload_start_ns: u64) {
        let triggers = &mut self.triggers;
        for (index, seen) in triggers.seen.iter_mut().enumerate() {
            let replica = ReplicaId(index as u32);
            let events = self.net.events(replica);
            for event in &events[(*seen).min(events.len())..] {
                triggers.watch.note(replica, &event.event);
            }
            *seen = events.len();
        }
        triggers.workload_start_ns = workload_start_ns;
        triggers.live = !triggers.watch.is_done();
    }

    pub(super) fn disarm_triggers(&mut self) {
        self.triggers.live = false;
    }

    /// Fires the faults whose events the last action produced; true if any fired.
    pub(super) fn fire_triggers(&mut self) -> bool {
        if !self.triggers.live || self.triggers.watch.is_done() {
            return false;
        }
        let triggers = &mut self.triggers;
        let book = &self.book;
        let mut fired: Vec<(Fired, u64)> = Vec::new();
        for (index, seen) in triggers.seen.iter_mut().enumerate() {
            let replica = ReplicaId(index as u32);
            let events = self.net.events(replica);
            for event in &events[(*seen).min(events.len())..] {
                let elapsed_ms = event.at_ns.saturating_sub(triggers.workload_start_ns) / MS;
                let now_fired = triggers
                    .watch
                    .observe(replica, &event.event, elapsed_ms, |id| book.has_ended(id));
                fired.extend(now_fired.into_iter().map(|f| (f, event.at_ns)));
            }
            *seen = events.len();
        }
        let any = !fired.is_empty();
        for (fired, event_ns) in fired {
            self.start_fired(fired, event_ns);
        }
        any
    }

    fn start_fired(&mut self, fired: Fired, event_ns: u64) {
        let now = self.net.now_ns();
        let fault = &fired.fault;
        // The target is the trigger's, already resolved: "the primary" is not asked.
        let start = self.book.plan_start(fault, || ReplicaId(0));
        tracing::info!(fault = %fault.id, targets = ?start.targets, event = %fired.event, "nemesis: triggered");
        self.carry_out(&start.steps);
        self.book.record_start(fault, start, now);
        let record = TriggerRecord {
            event: fired.event,
            replica: fired.sender,
            event_ns,
            lag_ns: now.saturating_sub(event_ns),
            seen_lag_ns: None,
        };
        self.book.record_trigger(&fault.id, record);
        if let Some(after_ms) = fired.end_after_ms {
            self.triggers
                .ends
                .push((now + after_ms * MS, fault.id.clone()));
            self.end_due_triggers();
        }
    }

    /// Undoes the fired faults whose time came.
    pub(super) fn end_due_triggers(&mut self) {
        let now = self.net.now_ns();
        let (due, later): (Vec<_>, Vec<_>) =
            self.triggers.ends.drain(..).partition(|(at, _)| *at <= now);
        self.triggers.ends = later;
        for (_, id) in due {
            let steps = self.book.end(&id, now);
            self.carry_out(&steps);
        }
    }
}
