//! The replica host: the core and everything around it that is not I/O — the installed
//! interceptor, the protocol timers, effects an interceptor holds back, the interceptor's
//! periodic tick, and turns. The tokio node (`node::driver`) and the simulator (`sim`) both
//! drive this one host, so a simulated replica is the replica, not a copy of its wiring.
//!
//! In the style of quinn-proto, the caller owns time and I/O. Time is a `Duration` since an
//! epoch the caller picks (a process's start, or virtual time zero). A turn is
//! `begin_turn`, any number of `handle_input`, `handle_timeout`, then `end_turn`; the core
//! holds proposals and reply signatures for the end of the turn, so everything that arrived
//! together shares one PRE-PREPARE and one reply signature. `take_output` then hands over
//! what the turn produced, in the order that keeps the replica's promises: make `storage`
//! durable first, only then send `transmits`. `poll_timeout` says when to call
//! `handle_timeout` next.

use crate::config::ClusterConfig;
use crate::core::{Core, Effect, Input, Snapshot, Timer, WalRecord};
use crate::crypto::KeyStore;
use crate::events::ReplicaEvent;
use crate::ids::{ClientId, ReplicaId};
use crate::message::{Reply, Signed, WireMessage};
use crate::node::{InterceptContext, Interceptor};
use ed25519_dalek::SigningKey;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

/// How often the interceptor's `tick` runs.
pub const TICK: Duration = Duration::from_millis(50);
/// Effects an interceptor may hold back at once; beyond this they are dropped.
const MAX_DELAYED: usize = 100_000;
/// How often the caller reports what the replica holds (`Host::sample_resources`): often
/// enough that a short run has samples, rarely enough that the events file does not notice.
pub const RESOURCE_SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// What the replica's storage held, as its caller (the node's `Wal`, the simulator's disk)
/// measured it since the previous resources sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Most bytes the write-ahead log held at once.
    pub peak_log_bytes: u64,
    /// The snapshot's bytes now.
    pub snapshot_bytes: u64,
}

/// A write the log must make durable, in order, before the turn's messages leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    Append(WalRecord),
    /// Replace the log with this snapshot and the records after it.
    InstallCheckpoint {
        snapshot: Snapshot,
        retained: Vec<WalRecord>,
    },
}

/// A message for the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    To {
        to: ReplicaId,
        message: WireMessage,
    },
    /// To every other replica.
    Broadcast(WireMessage),
    Reply {
        client: ClientId,
        reply: Signed<Reply>,
    },
}

/// What the host produced since the last `take_output`.
#[derive(Debug, Default)]
pub struct Output {
    /// Make these durable, in order, before sending any of `transmits`.
    pub storage: Vec<Storage>,
    pub transmits: Vec<Transmit>,
    /// For the events file; their order is the order they happened in.
    pub events: Vec<ReplicaEvent>,
}

struct Delayed {
    due: Duration,
    order: u64,
    effect: Effect,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    /// Reversed, so the `BinaryHeap` pops the earliest (then first scheduled) effect.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

/// What an interceptor is shown besides the core.
struct Identity {
    key: SigningKey,
    keys: Arc<KeyStore>,
    config: Arc<ClusterConfig>,
    /// When this host started, on the caller's clock (the interceptor sees time since then).
    started: Duration,
}

fn context<'a>(core: &'a Core, identity: &'a Identity, now: Duration) -> InterceptContext<'a> {
    InterceptContext {
        core,
        key: &identity.key,
        keys: &identity.keys,
        config: &identity.config,
        elapsed: now.saturating_sub(identity.started),
    }
}

/// A protocol timer in force: when it fires, and how long it was set for.
#[derive(Clone, Copy, Debug)]
struct Armed {
    deadline: Duration,
    period: Duration,
}

pub struct Host {
    core: Core,
    /// `None` for an honest replica: nothing between the core and the world, and no tick.
    interceptor: Option<Box<dyn Interceptor>>,
    identity: Identity,
    timers: BTreeMap<Timer, Armed>,
    delayed: BinaryHeap<Delayed>,
    delayed_scheduled: u64,
    delayed_dropped: u64,
    timers_fired: u64,
    /// View-change timers waited again because they came due while the replica was not
    /// running (see `handle_timeout`).
    timers_rearmed: u64,
    next_tick: Duration,
    output: Output,
    /// Most message-log slots the core held after any step since the last resources sample.
    peak_slots: usize,
    next_resource_sample: Duration,
}

impl Host {
    pub fn new(
        core: Core,
        interceptor: Option<Box<dyn Interceptor>>,
        key: SigningKey,
        keys: Arc<KeyStore>,
        config: Arc<ClusterConfig>,
        now: Duration,
    ) -> Host {
        Host {
            peak_slots: core.log_len(),
            next_resource_sample: now + RESOURCE_SAMPLE_INTERVAL,
            core,
            interceptor,
            identity: Identity {
                key,
                keys,
                config,
                started: now,
            },
            timers: BTreeMap::new(),
            delayed: BinaryHeap::new(),
            delayed_scheduled: 0,
            delayed_dropped: 0,
            timers_fired: 0,
            timers_rearmed: 0,
            next_tick: now + TICK,
            output: Output::default(),
        }
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Puts the replica behind an interceptor (a Byzantine behaviour); its tick starts now.
    pub fn set_interceptor(&mut self, now: Duration, interceptor: Box<dyn Interceptor>) {
        self.interceptor = Some(interceptor);
        self.next_tick = now + TICK;
    }

    pub fn has_interceptor(&self) -> bool {
        self.interceptor.is_some()
    }

    /// The interceptor, to carry over a crash into the restarted replica's host.
    pub fn into_interceptor(self) -> Option<Box<dyn Interceptor>> {
        self.interceptor
    }

    /// Effects an interceptor wanted to hold back but could not, for want of room.
    pub fn delayed_dropped(&self) -> u64 {
        self.delayed_dropped
    }

    /// Protocol timers that fired so far.
    pub fn timers_fired(&self) -> u64 {
        self.timers_fired
    }

    /// View-change timers that came due a whole period late and were waited again.
    pub fn timers_rearmed(&self) -> u64 {
        self.timers_rearmed
    }

    /// The core's first step, in a turn of its own.
    pub fn start(&mut self, now: Duration) {
        self.begin_turn();
        self.handle_input(now, Input::Start);
        self.end_turn(now);
    }

    pub fn begin_turn(&mut self) {
        self.core.begin_turn();
    }

    /// Runs `input` through the interceptor and the core.
    pub fn handle_input(&mut self, now: Duration, input: Input) {
        let inputs = match self.interceptor.as_mut() {
            None => vec![input],
            Some(interceptor) => {
                interceptor.inbound(input, &context(&self.core, &self.identity, now))
            }
        };
        for input in inputs {
            let effects = self.core.step(input);
            self.note_slots();
            self.carry_out(now, effects);
        }
    }

    /// Fires due timers (earliest first), carries out due held-back effects and runs the
    /// interceptor's tick when it is due. Call it every turn, not only when `poll_timeout`
    /// passes, so a flood of inputs cannot starve the timers.
    ///
    /// A view-change timer that comes due a whole period late is waited again instead: the
    /// replica was not running (frozen by SIGSTOP, a VM pause, or starved) for most of the
    /// wait, so the wait says nothing about the primary, and what queued up meanwhile may show
    /// the request executed. Fired on return, it would put this replica alone in the next view,
    /// where it stops voting until the others change view too (found by `soak-quiet-windows`
    /// in simulation: a backup resumed from a 4 s pause sat out the remaining 30 s).
    pub fn handle_timeout(&mut self, now: Duration) {
        let mut due: Vec<(Duration, Timer)> = self
            .timers
            .iter()
            .filter(|(_, armed)| armed.deadline <= now)
            .map(|(timer, armed)| (armed.deadline, *timer))
            .collect();
        due.sort();
        for (_, timer) in due {
            let Some(armed) = self.timers.remove(&timer) else {
                continue;
            };
            if timer == Timer::ViewChange && now >= armed.deadline + armed.period {
                self.timers_rearmed += 1;
                let again = Armed {
                    deadline: now + armed.period,
                    period: armed.period,
                };
                self.timers.insert(timer, again);
                continue;
            }
            self.timers_fired += 1;
            self.handle_input(now, Input::TimerFired(timer));
        }
        while self.delayed.peek().is_some_and(|d| d.due <= now) {
            if let Some(delayed) = self.delayed.pop() {
                self.apply(now, delayed.effect);
            }
        }
        if let Some(interceptor) = self.interceptor.as_mut()
            && now >= self.next_tick
        {
            self.next_tick = now + TICK;
            let planned = interceptor.tick(&context(&self.core, &self.identity, now));
            self.schedule(now, planned);
        }
    }

    /// Ends the turn: the core proposes what the turn queued and signs its replies.
    pub fn end_turn(&mut self, now: Duration) {
        let effects = self.core.end_turn();
        self.note_slots();
        self.carry_out(now, effects);
    }

    /// Whether a resources sample is due (`sample_resources`); checked first, so the caller
    /// measures its disk and memory only when one is.
    pub fn resources_due(&self, now: Duration) -> bool {
        now >= self.next_resource_sample
    }

    /// The resources sample of the interval that ends now: the core's peak slot count, the
    /// caller's disk measurements and, from a real process, its resident memory. The peak
    /// starts over from what the log holds now.
    pub fn sample_resources(
        &mut self,
        now: Duration,
        disk: DiskUsage,
        rss_bytes: Option<u64>,
    ) -> ReplicaEvent {
        self.next_resource_sample = now + RESOURCE_SAMPLE_INTERVAL;
        let slots = std::mem::replace(&mut self.peak_slots, self.core.log_len());
        ReplicaEvent::Resources {
            slots: slots as u64,
            wal_bytes: disk.peak_log_bytes,
            snapshot_bytes: disk.snapshot_bytes,
            stable_seq: self.core.stable_checkpoint(),
            rss_bytes,
        }
    }

    fn note_slots(&mut self) {
        self.peak_slots = self.peak_slots.max(self.core.log_len());
    }

    /// When `handle_timeout` has something to do next; `None` while nothing is due ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let timer = self.timers.values().map(|armed| armed.deadline).min();
        let delayed = self.delayed.peek().map(|d| d.due);
        let tick = self.interceptor.is_some().then_some(self.next_tick);
        [timer, delayed, tick].into_iter().flatten().min()
    }

    /// What the host produced since the last call: storage before transmits.
    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.output)
    }

    /// Passes the core's effects through the interceptor and applies or holds them.
    fn carry_out(&mut self, now: Duration, effects: Vec<Effect>) {
        for effect in effects {
            match self.interceptor.as_mut() {
                None => self.apply(now, effect),
                Some(interceptor) => {
                    let ctx = context(&self.core, &self.identity, now);
                    let planned = interceptor.outbound(effect, &ctx);
                    self.schedule(now, planned);
                }
            }
        }
    }

    fn schedule(&mut self, now: Duration, planned: Vec<(Duration, Effect)>) {
        for (delay, effect) in planned {
            if delay.is_zero() {
                self.apply(now, effect);
            } else if self.delayed.len() >= MAX_DELAYED {
                self.delayed_dropped += 1;
            } else {
                self.delayed_scheduled += 1;
                self.delayed.push(Delayed {
                    due: now + delay,
                    order: self.delayed_scheduled,
                    effect,
                });
            }
        }
    }

    fn apply(&mut self, now: Duration, effect: Effect) {
        let out = &mut self.output;
        match effect {
            Effect::Persist(record) => out.storage.push(Storage::Append(record)),
            Effect::StableCheckpoint { snapshot, retained } => out
                .storage
                .push(Storage::InstallCheckpoint { snapshot, retained }),
            Effect::Send { to, message } => out.transmits.push(Transmit::To { to, message }),
            Effect::Broadcast(message) => out.transmits.push(Transmit::Broadcast(message)),
            Effect::Reply { client, reply } => {
                out.transmits.push(Transmit::Reply { client, reply })
            }
            Effect::SetTimer { timer, after_ms } => {
                let period = Duration::from_millis(after_ms);
                let armed = Armed {
                    deadline: now + period,
                    period,
                };
                self.timers.insert(timer, armed);
            }
            Effect::CancelTimer(timer) => {
                self.timers.remove(&timer);
            }
            Effect::Event(event) => out.events.push(event),
        }
    }
}
