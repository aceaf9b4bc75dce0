//! The core task: the only owner of the `Core`. It runs inputs through the interceptor and the
//! core, and carries the effects out in order with group commit: persisted records are
//! buffered, and at the end of a turn (several queued inputs, one `fsync`) the log is made
//! durable before any message produced in that turn leaves.
//!
//! It runs on its own thread (see `node::run`), so a slow `fsync` blocks only the core, which
//! has to wait for it anyway, never the connection tasks.

use super::event_log::EventLog;
use super::inbound::{ClientRoutes, Delivery};
use super::intercept::{InterceptContext, Interceptor};
use super::outbound::PeerQueue;
use super::stats::NodeStats;
use super::wal::{Wal, WalError};
use crate::config::ClusterConfig;
use crate::core::{Core, Effect, Input, Timer};
use crate::crypto::KeyStore;
use crate::ids::{ClientId, ReplicaId};
use crate::message::{MessageKind, WireMessage};
use crate::wire::encode_frame;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Queued inputs handled in one turn, under one `fsync`.
const MAX_INPUTS_PER_TURN: usize = 256;
const TICK: Duration = Duration::from_millis(50);
const EVENTS_FLUSH: Duration = Duration::from_millis(200);
/// Effects an interceptor may hold back at once; beyond this they are dropped.
const MAX_DELAYED: usize = 100_000;

pub struct Driver {
    pub core: Core,
    pub interceptor: Box<dyn Interceptor>,
    pub key: SigningKey,
    pub keys: Arc<KeyStore>,
    pub config: Arc<ClusterConfig>,
    pub started: std::time::Instant,
    pub wal: Wal,
    pub events: Arc<EventLog>,
    pub stats: Arc<NodeStats>,
    /// Indexed by replica id; `None` for this replica.
    pub peers: Vec<Option<Arc<PeerQueue>>>,
    pub routes: Arc<ClientRoutes>,
}

/// A message produced in the current turn, waiting for the log to be durable.
enum Outgoing {
    Peer {
        to: ReplicaId,
        kind: MessageKind,
        frame: Bytes,
    },
    Broadcast {
        kind: MessageKind,
        frame: Bytes,
    },
    Reply {
        client: ClientId,
        frame: Bytes,
    },
}

struct Delayed {
    due: Instant,
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

struct Turn {
    driver: Driver,
    timers: BTreeMap<Timer, Instant>,
    delayed: BinaryHeap<Delayed>,
    delayed_scheduled: u64,
    delayed_dropped: u64,
    outgoing: Vec<Outgoing>,
    next_tick: Instant,
    last_events_flush: Instant,
}

fn context<'a>(
    core: &'a Core,
    key: &'a SigningKey,
    keys: &'a KeyStore,
    config: &'a ClusterConfig,
    started: std::time::Instant,
) -> InterceptContext<'a> {
    InterceptContext {
        core,
        key,
        keys,
        config,
        elapsed: started.elapsed(),
    }
}

impl Driver {
    /// Runs until `stop` fires (or its sender is dropped) or every input sender is gone;
    /// then makes the log durable and flushes events. A log write error is fatal: a replica
    /// that cannot keep its promises must stop rather than send.
    pub async fn run(
        self,
        inputs: mpsc::Receiver<Input>,
        stop: oneshot::Receiver<()>,
    ) -> Result<(), WalError> {
        let now = Instant::now();
        let mut turn = Turn {
            driver: self,
            timers: BTreeMap::new(),
            delayed: BinaryHeap::new(),
            delayed_scheduled: 0,
            delayed_dropped: 0,
            outgoing: Vec::new(),
            next_tick: now + TICK,
            last_events_flush: now,
        };
        let result = turn.run(inputs, stop).await;
        turn.driver.events.flush();
        result
    }
}

impl Turn {
    async fn run(
        &mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<(), WalError> {
        self.step(Input::Start)?;
        self.finish()?;
        loop {
            let wake = self.next_wake();
            tokio::select! {
                _ = &mut stop => break,
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    self.driver.core.begin_turn();
                    self.step(input)?;
                    for _ in 1..MAX_INPUTS_PER_TURN {
                        match inputs.try_recv() {
                            Ok(input) => self.step(input)?,
                            Err(_) => break,
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => self.driver.core.begin_turn(),
            }
            // Checked every turn, not only on wake-up, so a flood of inputs cannot starve timers.
            self.run_due()?;
            self.end_core_turn()?;
            self.finish()?;
        }
        self.finish()
    }

    /// What the core held back for the end of the turn (its proposals and signed replies).
    fn end_core_turn(&mut self) -> Result<(), WalError> {
        let effects = self.driver.core.end_turn();
        self.carry_out(effects)
    }

    fn next_wake(&self) -> Instant {
        let timer = self.timers.values().min().copied();
        let delayed = self.delayed.peek().map(|d| d.due);
        [Some(self.next_tick), timer, delayed]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_tick)
    }

    fn step(&mut self, input: Input) -> Result<(), WalError> {
        let d = &mut self.driver;
        let ctx = context(&d.core, &d.key, &d.keys, &d.config, d.started);
        let inputs = d.interceptor.inbound(input, &ctx);
        for input in inputs {
            let effects = self.driver.core.step(input);
            self.carry_out(effects)?;
        }
        Ok(())
    }

    /// Passes the core's effects through the interceptor and applies or delays them.
    fn carry_out(&mut self, effects: Vec<Effect>) -> Result<(), WalError> {
        for effect in effects {
            let d = &mut self.driver;
            let ctx = context(&d.core, &d.key, &d.keys, &d.config, d.started);
            let planned = d.interceptor.outbound(effect, &ctx);
            self.schedule(planned)?;
        }
        Ok(())
    }

    fn schedule(&mut self, planned: Vec<(Duration, Effect)>) -> Result<(), WalError> {
        for (delay, effect) in planned {
            if delay.is_zero() {
                self.apply(effect)?;
            } else if self.delayed.len() >= MAX_DELAYED {
                self.delayed_dropped += 1;
                if self.delayed_dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.delayed_dropped,
                        "too many delayed effects; dropping"
                    );
                }
            } else {
                self.delayed_scheduled += 1;
                self.delayed.push(Delayed {
                    due: Instant::now() + delay,
                    order: self.delayed_scheduled,
                    effect,
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, effect: Effect) -> Result<(), WalError> {
        match effect {
            Effect::Persist(record) => self.driver.wal.append(&record)?,
            Effect::StableCheckpoint { snapshot, retained } => {
                self.driver.wal.install_checkpoint(&snapshot, &retained)?
            }
            Effect::Send { to, message } => self.outgoing.push(Outgoing::Peer {
                to,
                kind: message.kind(),
                frame: Bytes::from(encode_frame(&message)),
            }),
            Effect::Broadcast(message) => self.outgoing.push(Outgoing::Broadcast {
                kind: message.kind(),
                frame: Bytes::from(encode_frame(&message)),
            }),
            Effect::Reply { client, reply } => self.outgoing.push(Outgoing::Reply {
                client,
                frame: Bytes::from(encode_frame(&WireMessage::Reply(reply))),
            }),
            Effect::SetTimer { timer, after_ms } => {
                self.timers
                    .insert(timer, Instant::now() + Duration::from_millis(after_ms));
            }
            Effect::CancelTimer(timer) => {
                self.timers.remove(&timer);
            }
            Effect::Event(event) => {
                self.driver.stats.observe_event(&event);
                self.driver.events.write(&event);
            }
        }
        Ok(())
    }

    /// Fires due timers, carries out due delayed effects, and runs the periodic tick.
    fn run_due(&mut self) -> Result<(), WalError> {
        let now = Instant::now();
        let mut due: Vec<(Instant, Timer)> = self
            .timers
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(timer, deadline)| (*deadline, *timer))
            .collect();
        due.sort();
        for (_, timer) in due {
            self.timers.remove(&timer);
            self.step(Input::TimerFired(timer))?;
        }
        while self.delayed.peek().is_some_and(|d| d.due <= now) {
            if let Some(delayed) = self.delayed.pop() {
                self.apply(delayed.effect)?;
            }
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            let d = &mut self.driver;
            let ctx = context(&d.core, &d.key, &d.keys, &d.config, d.started);
            let planned = d.interceptor.tick(&ctx);
            self.schedule(planned)?;
            if now.duration_since(self.last_events_flush) >= EVENTS_FLUSH {
                self.last_events_flush = now;
                self.driver.events.flush();
            }
        }
        Ok(())
    }

    /// Ends a turn: one sync covers every record of the turn, then its messages leave.
    fn finish(&mut self) -> Result<(), WalError> {
        self.driver.wal.sync()?;
        let d = &self.driver;
        for outgoing in self.outgoing.drain(..) {
            match outgoing {
                Outgoing::Peer { to, kind, frame } => {
                    match d.peers.get(to.0 as usize).and_then(Option::as_ref) {
                        Some(queue) => {
                            d.stats.outbound_dropped(queue.push(frame));
                            d.stats.messages_out(kind, 1);
                        }
                        None => tracing::debug!(%to, %kind, "no such peer; message dropped"),
                    }
                }
                Outgoing::Broadcast { kind, frame } => {
                    let mut sent = 0;
                    for queue in d.peers.iter().flatten() {
                        d.stats.outbound_dropped(queue.push(frame.clone()));
                        sent += 1;
                    }
                    d.stats.messages_out(kind, sent);
                }
                Outgoing::Reply { client, frame } => match d.routes.deliver(client, frame) {
                    Delivery::Queued => d.stats.messages_out(MessageKind::Reply, 1),
                    Delivery::NoRoute | Delivery::QueueFull => d.stats.outbound_dropped(1),
                },
            }
        }
        let core = &d.core;
        d.stats.core_state(
            core.view(),
            core.in_view_change(),
            core.last_executed(),
            core.stable_checkpoint(),
        );
        Ok(())
    }
}
