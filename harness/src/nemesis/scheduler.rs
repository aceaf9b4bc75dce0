//! When each fault starts and ends, free of clocks and I/O, in the style of a sans-IO
//! protocol: the caller owns time and the world. It asks `poll_timeout` when something is next
//! due, feeds the replicas' events to `observe`, and takes what is due from `poll_due`: it
//! carries out the steps, then hands the `Due` back to `complete` with the time it finished.
//! The real nemesis (`run.rs`, on the wall clock) and the simulator (`crate::sim`, in virtual
//! time) both drive this one schedule, so a fault starts and ends by the same rules in both.

use super::book::{FaultBook, Start, Step, timeline};
use super::{Fired, PlannedFault, TriggerRecord, TriggerWatch};
use crate::proxy::LinkSpec;
use crate::twins::TwinsPlan;
use replica::ReplicaId;
use replica::events::ReplicaEvent;
use std::collections::VecDeque;
use std::path::Path;

const MS: u64 = 1_000_000;

/// The faults of one workload, from the plan to `nemesis.jsonl`. Every time is in ns on the
/// run's clock. The nemesis acts only in the workload's window `[start, end)`: what would
/// start or end later is left to the final heal.
pub struct FaultScheduler {
    faults: Vec<PlannedFault>,
    /// Timed starts and ends not carried out yet, as `(ns, starts?, index into faults)`.
    timed: VecDeque<(u64, bool, usize)>,
    watch: TriggerWatch,
    /// Triggered faults that fired and wait to be started, with the event's time and when
    /// the nemesis read it.
    fired: VecDeque<(Fired, u64, Option<u64>)>,
    /// `(ns, fault id)`: when each started triggered fault is undone.
    trigger_ends: Vec<(u64, String)>,
    book: FaultBook,
    /// The workload's window once `arm` was called.
    window: Option<(u64, u64)>,
}

/// Something due: carry out `steps`, then pass it to `FaultScheduler::complete`.
#[must_use = "a due fault is recorded only by `complete`"]
pub struct Due {
    pub steps: Vec<Step>,
    kind: DueKind,
}

enum DueKind {
    Start(Box<PendingStart>),
    /// Ends are recorded when they are taken: the record says when the undoing began.
    End,
}

struct PendingStart {
    fault: PlannedFault,
    start: Start,
    trigger: Option<Trigger>,
}

struct Trigger {
    fired: Fired,
    event_ns: u64,
    seen_ns: Option<u64>,
}

impl FaultScheduler {
    pub fn new(
        faults: Vec<PlannedFault>,
        n: usize,
        links: Vec<LinkSpec>,
        twins: Option<TwinsPlan>,
    ) -> FaultScheduler {
        FaultScheduler {
            watch: TriggerWatch::new(&faults, n),
            faults,
            timed: VecDeque::new(),
            fired: VecDeque::new(),
            trigger_ends: Vec::new(),
            book: FaultBook::new(n, links, twins),
            window: None,
        }
    }

    /// The workload runs from `start_ns` to `end_ns`: the timed faults are counted from its
    /// start, and from now on events fire triggers.
    pub fn arm(&mut self, start_ns: u64, end_ns: u64) {
        self.timed = timeline(&self.faults)
            .into_iter()
            .map(|(at_ms, starts, index)| (start_ns + at_ms * MS, starts, index))
            .filter(|(at, _, _)| *at < end_ns)
            .collect();
        self.window = Some((start_ns, end_ns));
    }

    /// Whether events still matter: a trigger is left to fire.
    pub fn watches_events(&self) -> bool {
        !self.watch.is_done()
    }

    /// Nothing is left to do before the heal.
    pub fn is_finished(&self) -> bool {
        self.window.is_some()
            && self.timed.is_empty()
            && self.fired.is_empty()
            && self.trigger_ends.is_empty()
            && self.watch.is_done()
    }

    /// `replica` reported `event` at `event_ns`, and the nemesis read it at `seen_ns` (real
    /// processes; `None` in simulation, which reads it as it happens). Before the workload an
    /// event only tells the replica's view; during it, it may fire triggers (see `poll_due`).
    pub fn observe(
        &mut self,
        replica: ReplicaId,
        event: &ReplicaEvent,
        event_ns: u64,
        seen_ns: Option<u64>,
    ) {
        let Some((start, end)) = self.window.filter(|(start, _)| event_ns >= *start) else {
            self.watch.note(replica, event);
            return;
        };
        if event_ns >= end {
            return;
        }
        let elapsed_ms = (event_ns - start) / MS;
        let book = &self.book;
        let fired = self
            .watch
            .observe(replica, event, elapsed_ms, |id| book.has_ended(id));
        self.fired
            .extend(fired.into_iter().map(|f| (f, event_ns, seen_ns)));
    }

    /// When something is next due: a timed start or end, a triggered fault's end, or now if
    /// a trigger fired. `None` when only events can bring more.
    pub fn poll_timeout(&self) -> Option<u64> {
        let (_, end) = self.window?;
        let fired = self.fired.front().map(|(_, event_ns, _)| *event_ns);
        let trigger_end = self.trigger_ends.iter().map(|(at, _)| *at).min();
        let timed = self.timed.front().map(|(at, _, _)| *at);
        [fired, trigger_end, timed]
            .into_iter()
            .flatten()
            .min()
            .filter(|at| *at < end)
    }

    /// The next thing due at `now_ns`, if any: first the triggered faults to undo, then the
    /// faults triggers fired, then the timed schedule. `primary` is asked only for a fault
    /// aimed at the primary.
    pub fn poll_due(&mut self, now_ns: u64, primary: impl FnOnce() -> ReplicaId) -> Option<Due> {
        let (_, end) = self.window?;
        if now_ns >= end {
            return None;
        }
        if let Some(due) = self.take_trigger_end(now_ns) {
            return Some(due);
        }
        if let Some((fired, event_ns, seen_ns)) = self.fired.pop_front() {
            // A fired fault's target is already resolved: the primary is not asked.
            let start = self.book.plan_start(&fired.fault, || ReplicaId(0));
            tracing::info!(fault = %fired.fault.id, targets = ?start.targets, event = %fired.event, "nemesis: triggered");
            let trigger = Trigger {
                event_ns,
                seen_ns,
                fired,
            };
            return Some(Due {
                steps: start.steps.clone(),
                kind: DueKind::Start(Box::new(PendingStart {
                    fault: trigger.fired.fault.clone(),
                    start,
                    trigger: Some(trigger),
                })),
            });
        }
        let &(at, starts, index) = self.timed.front()?;
        if at > now_ns {
            return None;
        }
        self.timed.pop_front();
        let fault = self.faults[index].clone();
        if starts {
            let start = self.book.plan_start(&fault, primary);
            tracing::info!(fault = %fault.id, targets = ?start.targets, "nemesis: start");
            Some(Due {
                steps: start.steps.clone(),
                kind: DueKind::Start(Box::new(PendingStart {
                    fault,
                    start,
                    trigger: None,
                })),
            })
        } else {
            tracing::info!(fault = %fault.id, "nemesis: end");
            Some(Due {
                steps: self.book.end(&fault.id, now_ns),
                kind: DueKind::End,
            })
        }
    }

    fn take_trigger_end(&mut self, now_ns: u64) -> Option<Due> {
        let position = self
            .trigger_ends
            .iter()
            .enumerate()
            .filter(|(_, (at, _))| *at <= now_ns)
            .min_by_key(|(_, (at, _))| *at)
            .map(|(position, _)| position)?;
        let (_, id) = self.trigger_ends.remove(position);
        tracing::info!(fault = %id, "nemesis: end");
        Some(Due {
            steps: self.book.end(&id, now_ns),
            kind: DueKind::End,
        })
    }

    /// `due`'s steps were carried out by `now_ns`: a start is recorded as in force from then.
    pub fn complete(&mut self, due: Due, now_ns: u64) {
        let DueKind::Start(pending) = due.kind else {
            return;
        };
        let PendingStart {
            fault,
            start,
            trigger,
        } = *pending;
        self.book.record_start(&fault, start, now_ns);
        let Some(trigger) = trigger else {
            return;
        };
        let record = TriggerRecord {
            event: trigger.fired.event,
            replica: trigger.fired.sender,
            event_ns: trigger.event_ns,
            lag_ns: now_ns.saturating_sub(trigger.event_ns),
            seen_lag_ns: trigger
                .seen_ns
                .map(|seen| seen.saturating_sub(trigger.event_ns)),
        };
        self.book.record_trigger(&fault.id, record);
        if let Some(after_ms) = trigger.fired.end_after_ms {
            self.trigger_ends
                .push((now_ns + after_ms * MS, fault.id.clone()));
        }
    }

    /// The final heal at `now_ns`: nothing more is due, and every fault in force is closed
    /// but a kill of a replica that `stays_down`.
    pub fn heal(&mut self, now_ns: u64, stays_down: impl Fn(ReplicaId) -> bool) {
        self.timed.clear();
        self.fired.clear();
        self.trigger_ends.clear();
        self.book.heal(now_ns, stays_down);
    }

    /// Writes `nemesis.jsonl`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        self.book.write(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::{PlannedAction, PlannedTarget, PlannedTrigger, TriggerTarget};
    use crate::scenario::{FaultAction, SentKind};
    use replica::message::MessageKind;
    use replica::{Seq, View};

    const START: u64 = 10 * MS;
    const END: u64 = START + 1_000 * MS;

    fn kill(id: &str, start_ms: u64, end_ms: Option<u64>, target: PlannedTarget) -> PlannedFault {
        PlannedFault {
            id: id.into(),
            start_ms,
            end_ms,
            action: PlannedAction::Kill {
                target,
                permanent: false,
            },
            trigger: None,
        }
    }

    fn kill_after_commit(id: &str, seq: u64, after_ms: u64) -> PlannedFault {
        PlannedFault {
            trigger: Some(PlannedTrigger {
                sent: SentKind::Commit,
                by: None,
                view: None,
                seq: Some(seq),
                after_fault: None,
                target: TriggerTarget::Sender,
                after_ms: Some(after_ms),
                action: FaultAction::Restart,
            }),
            ..kill(id, 0, None, PlannedTarget::Primary)
        }
    }

    fn commit(seq: u64) -> ReplicaEvent {
        ReplicaEvent::Sent {
            kind: MessageKind::Commit,
            view: View(0),
            seq: Seq(seq),
            digest: String::new(),
        }
    }

    fn armed(faults: Vec<PlannedFault>) -> FaultScheduler {
        let mut schedule = FaultScheduler::new(faults, 4, Vec::new(), None);
        schedule.arm(START, END);
        schedule
    }

    /// Carries out (records) everything due at `now`; the steps of each.
    fn take_all(schedule: &mut FaultScheduler, now: u64) -> Vec<Vec<Step>> {
        let mut taken = Vec::new();
        while let Some(due) = schedule.poll_due(now, || ReplicaId(2)) {
            taken.push(due.steps.clone());
            schedule.complete(due, now);
        }
        taken
    }

    fn records(schedule: &FaultScheduler) -> Vec<(String, u64, Option<u64>, Vec<ReplicaId>)> {
        schedule
            .book
            .records()
            .into_iter()
            .map(|r| (r.id, r.start_ns, r.end_ns, r.targets))
            .collect()
    }

    #[test]
    fn timed_faults_come_due_at_their_times_counted_from_the_workload_start() {
        let mut schedule = armed(vec![
            kill("a", 100, Some(300), PlannedTarget::Primary),
            kill(
                "late",
                2_000,
                Some(2_500),
                PlannedTarget::Replica(ReplicaId(1)),
            ),
        ]);
        assert_eq!(schedule.poll_timeout(), Some(START + 100 * MS));
        assert!(take_all(&mut schedule, START + 99 * MS).is_empty());
        let kill_primary = Step::Kill {
            replica: ReplicaId(2),
            permanent: false,
        };
        assert_eq!(
            take_all(&mut schedule, START + 100 * MS),
            vec![vec![kill_primary]]
        );
        assert_eq!(schedule.poll_timeout(), Some(START + 300 * MS));
        assert_eq!(
            take_all(&mut schedule, START + 300 * MS),
            vec![vec![Step::Restart(ReplicaId(2))]]
        );
        // The fault after the workload's end is the heal's business, never due.
        assert_eq!(schedule.poll_timeout(), None);
        assert!(schedule.is_finished());
        assert_eq!(
            records(&schedule),
            vec![(
                "a".into(),
                START + 100 * MS,
                Some(START + 300 * MS),
                vec![ReplicaId(2)]
            )]
        );
    }

    #[test]
    fn an_event_before_the_workload_fires_nothing_and_one_during_it_starts_and_ends_its_fault() {
        let mut schedule =
            FaultScheduler::new(vec![kill_after_commit("t", 5, 50)], 4, Vec::new(), None);
        schedule.observe(ReplicaId(1), &commit(5), 0, None);
        schedule.arm(START, END);
        assert!(schedule.watches_events());
        assert_eq!(schedule.poll_timeout(), None);
        assert!(!schedule.is_finished());

        let event_ns = START + 40 * MS;
        schedule.observe(ReplicaId(3), &commit(5), event_ns, Some(event_ns + 2 * MS));
        assert!(!schedule.watches_events());
        assert_eq!(schedule.poll_timeout(), Some(event_ns));
        let started = event_ns + 3 * MS;
        let due = schedule
            .poll_due(started, || ReplicaId(0))
            .expect("the fired fault");
        assert_eq!(
            due.steps,
            vec![Step::Kill {
                replica: ReplicaId(3),
                permanent: false
            }]
        );
        schedule.complete(due, started);
        let trigger = &schedule.book.triggers()["t"];
        assert_eq!(trigger.lag_ns, 3 * MS);
        assert_eq!(trigger.seen_lag_ns, Some(2 * MS));

        assert_eq!(schedule.poll_timeout(), Some(started + 50 * MS));
        assert!(take_all(&mut schedule, started + 49 * MS).is_empty());
        assert_eq!(
            take_all(&mut schedule, started + 50 * MS),
            vec![vec![Step::Restart(ReplicaId(3))]]
        );
        assert!(schedule.is_finished());
    }

    #[test]
    fn nothing_is_due_from_the_workload_s_end_and_the_heal_closes_what_is_in_force() {
        let mut schedule = armed(vec![
            kill("a", 0, Some(5_000), PlannedTarget::Replica(ReplicaId(1))),
            kill_after_commit("t", 1, 10),
        ]);
        assert_eq!(take_all(&mut schedule, START).len(), 1);
        schedule.observe(ReplicaId(2), &commit(1), END, None);
        assert_eq!(schedule.poll_timeout(), None);
        assert!(take_all(&mut schedule, END).is_empty());
        schedule.heal(END + MS, |_| false);
        assert_eq!(
            records(&schedule),
            vec![("a".into(), START, Some(END + MS), vec![ReplicaId(1)])]
        );
    }
}
