//! The nemesis in simulation: the `FaultScheduler` says what is due, and after every simulator
//! action the replicas' new events go to it, so a triggered fault fires at the very virtual
//! instant of its event, before the replica takes another turn (the messages of that turn
//! have left).

use super::SimRun;
use crate::nemesis::Step;
use replica::ReplicaId;

/// Per replica, how many of its events the schedule has seen.
pub(super) struct EventCursor {
    seen: Vec<usize>,
}

impl EventCursor {
    pub(super) fn new(n: usize) -> EventCursor {
        EventCursor { seen: vec![0; n] }
    }
}

impl SimRun<'_> {
    /// The workload runs from `start` to `end`: the schedule learns the replicas' views from
    /// what they reported so far, and counts its faults from `start`.
    pub(super) fn arm_nemesis(&mut self, start: u64, end: u64) {
        self.feed_events();
        self.schedule.arm(start, end);
    }

    /// Hands the schedule the replicas' events since the last call, if a trigger is left to
    /// fire; true if something became due.
    pub(super) fn feed_events(&mut self) -> bool {
        if !self.schedule.watches_events() {
            return false;
        }
        for (index, seen) in self.events_seen.seen.iter_mut().enumerate() {
            let replica = ReplicaId(index as u32);
            let events = self.net.events(replica);
            for event in &events[(*seen).min(events.len())..] {
                self.schedule
                    .observe(replica, &event.event, event.at_ns, None);
            }
            *seen = events.len();
        }
        self.schedule
            .poll_timeout()
            .is_some_and(|at| at <= self.net.now_ns())
    }

    /// Carries out everything due now, each fault recorded as in force from now.
    pub(super) fn carry_out_due(&mut self) {
        loop {
            let now = self.net.now_ns();
            // Called after every pacing step: the primary (a scan of every honest core) is
            // worked out only when something is due.
            if self.schedule.poll_timeout().is_none_or(|at| at > now) {
                return;
            }
            let primary = self.primary();
            let Some(due) = self.schedule.poll_due(now, || primary) else {
                return;
            };
            self.carry_out(&due.steps);
            self.schedule.complete(due, now);
        }
    }

    /// The primary as the honest replicas know it: the highest view any of them entered.
    fn primary(&self) -> ReplicaId {
        let view = self
            .plan
            .honest()
            .into_iter()
            .filter_map(|r| self.net.core(r).map(|core| core.view()))
            .max()
            .unwrap_or_default();
        view.primary(self.plan.n())
    }

    pub(super) fn carry_out(&mut self, steps: &[Step]) {
        for step in steps {
            // A step that finds the replica already in that state changes nothing, as
            // killing a dead process changes nothing.
            let _ = match step {
                Step::AddRules(rules) => {
                    self.proxy.add_rules(rules);
                    Ok(())
                }
                Step::RemoveRules(prefix) => {
                    self.proxy.remove_rules_with_prefix(prefix);
                    Ok(())
                }
                Step::Kill { replica, permanent } => {
                    if *permanent {
                        self.down_for_good.insert(*replica);
                    }
                    self.net.crash(*replica)
                }
                Step::Restart(replica) => self.net.restart(*replica),
                Step::Pause(replica) => self.net.pause(*replica),
                Step::Resume(replica) => self.net.resume(*replica),
            };
        }
    }
}
