//! Carrying out scheduled actions and the cores' effects, the way the node does.

use super::links::Endpoint;
use super::{INTERCEPTOR_TICK_MS, SimNetwork};
use crate::core::{Effect, Input, Timer};
use crate::digest::Digest;
use crate::events::ReplicaEvent;
use crate::ids::Principal;
use crate::ids::{ClientId, ReplicaId, Timestamp};
use crate::message::{MessageKind, WireMessage};
use crate::node::InterceptContext;
use crate::verify::{self, RejectReason, Verified};
use crate::wire::{self, FrameError};
use rand::RngExt;
use std::time::Duration;

pub(super) enum Action {
    Start {
        replica: ReplicaId,
        incarnation: u64,
    },
    Deliver {
        to: Endpoint,
        /// The receiving replica's incarnation when the frame left: a restart in between
        /// breaks the connection it travelled on.
        incarnation: u64,
        frame: Vec<u8>,
    },
    TimerFired {
        replica: ReplicaId,
        incarnation: u64,
        timer: Timer,
        generation: u64,
    },
    /// An effect an interceptor held back.
    DelayedEffect {
        replica: ReplicaId,
        incarnation: u64,
        effect: Effect,
    },
    Tick {
        replica: ReplicaId,
        incarnation: u64,
        generation: u64,
    },
    ClientRetry {
        client: ClientId,
        timestamp: Timestamp,
    },
}

/// What could be read of a refused message: its type and claimed signer.
type Signer = (MessageKind, Principal);

fn frame_reason(error: &FrameError) -> RejectReason {
    match error {
        FrameError::Oversized { .. } => RejectReason::OversizedFrame,
        FrameError::Malformed(_) | FrameError::TrailingBytes { .. } => RejectReason::MalformedFrame,
    }
}

/// Whole milliseconds, rounded up so a non-zero delay never becomes "now".
fn delay_ms(delay: Duration) -> u64 {
    delay.as_nanos().div_ceil(1_000_000) as u64
}

impl SimNetwork {
    pub(super) fn schedule(&mut self, at_ms: u64, action: Action) {
        self.queue.insert((at_ms, self.next_order), action);
        self.next_order += 1;
    }

    pub(super) fn perform(&mut self, action: Action) {
        match action {
            Action::Start {
                replica,
                incarnation,
            } => {
                if self.is_current(replica, incarnation) {
                    self.start_ticks(replica);
                    self.start(replica);
                }
            }
            Action::Deliver {
                to: Endpoint::Replica(replica),
                incarnation,
                frame,
            } => self.deliver_to_replica(replica, incarnation, &frame),
            Action::Deliver {
                to: Endpoint::Client(client),
                frame,
                ..
            } => self.deliver_to_client(client, &frame),
            Action::TimerFired {
                replica,
                incarnation,
                timer,
                generation,
            } => {
                if !self.is_current(replica, incarnation) {
                    return;
                }
                let timers = &mut self.replicas[replica.0 as usize].timers;
                if timers.get(&timer) == Some(&generation) {
                    timers.remove(&timer);
                    self.feed(replica, Input::TimerFired(timer));
                }
            }
            Action::DelayedEffect {
                replica,
                incarnation,
                effect,
            } => {
                if self.is_current(replica, incarnation) {
                    self.carry_out(replica, effect);
                }
            }
            Action::Tick {
                replica,
                incarnation,
                generation,
            } => self.tick(replica, incarnation, generation),
            Action::ClientRetry { client, timestamp } => self.client_retry(client, timestamp),
        }
    }

    fn is_current(&self, replica: ReplicaId, incarnation: u64) -> bool {
        self.replicas
            .get(replica.0 as usize)
            .is_some_and(|r| r.is_running() && r.incarnation == incarnation)
    }

    fn start_ticks(&mut self, replica: ReplicaId) {
        let at = self.now_ms + INTERCEPTOR_TICK_MS;
        let r = &mut self.replicas[replica.0 as usize];
        if r.interceptor.is_none() {
            return;
        }
        r.tick_generation += 1;
        let action = Action::Tick {
            replica,
            incarnation: r.incarnation,
            generation: r.tick_generation,
        };
        self.schedule(at, action);
    }

    fn tick(&mut self, replica: ReplicaId, incarnation: u64, generation: u64) {
        if !self.is_current(replica, incarnation) {
            return;
        }
        let now = self.now_ms;
        let r = &mut self.replicas[replica.0 as usize];
        if r.tick_generation != generation {
            return;
        }
        let (Some(core), Some(interceptor)) = (r.core.as_ref(), r.interceptor.as_mut()) else {
            return;
        };
        let ctx = InterceptContext {
            core,
            key: &r.key,
            keys: &self.keys,
            config: &self.config,
            elapsed: Duration::from_millis(now - r.started_at_ms),
        };
        let effects = interceptor.tick(&ctx);
        self.schedule(
            now + INTERCEPTOR_TICK_MS,
            Action::Tick {
                replica,
                incarnation,
                generation,
            },
        );
        self.carry_out_all(replica, incarnation, effects);
    }

    /// Steps `replica`'s core with `input`, through its interceptor if it has one.
    pub(super) fn feed(&mut self, replica: ReplicaId, input: Input) {
        let now = self.now_ms;
        let r = &mut self.replicas[replica.0 as usize];
        let Some(core) = r.core.as_mut() else {
            return;
        };
        let elapsed = Duration::from_millis(now - r.started_at_ms);
        let inputs = match r.interceptor.as_mut() {
            None => vec![input],
            Some(interceptor) => {
                let ctx = InterceptContext {
                    core,
                    key: &r.key,
                    keys: &self.keys,
                    config: &self.config,
                    elapsed,
                };
                interceptor.inbound(input, &ctx)
            }
        };
        let mut outgoing = Vec::new();
        for input in inputs {
            let effects = core.step(input);
            match r.interceptor.as_mut() {
                None => outgoing.extend(effects.into_iter().map(|e| (Duration::ZERO, e))),
                Some(interceptor) => {
                    let ctx = InterceptContext {
                        core,
                        key: &r.key,
                        keys: &self.keys,
                        config: &self.config,
                        elapsed,
                    };
                    for effect in effects {
                        outgoing.extend(interceptor.outbound(effect, &ctx));
                    }
                }
            }
        }
        let incarnation = r.incarnation;
        self.carry_out_all(replica, incarnation, outgoing);
    }

    fn carry_out_all(
        &mut self,
        replica: ReplicaId,
        incarnation: u64,
        effects: Vec<(Duration, Effect)>,
    ) {
        for (delay, effect) in effects {
            if delay.is_zero() {
                self.carry_out(replica, effect);
            } else {
                let at = self.now_ms + delay_ms(delay);
                let action = Action::DelayedEffect {
                    replica,
                    incarnation,
                    effect,
                };
                self.schedule(at, action);
            }
        }
    }

    fn carry_out(&mut self, replica: ReplicaId, effect: Effect) {
        let now = self.now_ms;
        let from = Endpoint::Replica(replica);
        match effect {
            Effect::Send { to, message } => self.transmit(from, Endpoint::Replica(to), &message),
            Effect::Broadcast(message) => {
                let frame = wire::encode_frame(&message);
                let others: Vec<ReplicaId> = self.replica_ids().filter(|r| *r != replica).collect();
                for to in others {
                    let to = Endpoint::Replica(to);
                    self.transmit_frame(from, to, message.kind(), frame.clone());
                }
            }
            Effect::Reply { client, reply } => {
                self.transmit(from, Endpoint::Client(client), &WireMessage::Reply(reply));
            }
            Effect::Persist(record) => self.replicas[replica.0 as usize].disk.records.push(record),
            Effect::StableCheckpoint { snapshot, retained } => {
                let disk = &mut self.replicas[replica.0 as usize].disk;
                disk.snapshot = Some(snapshot);
                disk.records = retained;
            }
            Effect::SetTimer { timer, after_ms } => {
                let r = &mut self.replicas[replica.0 as usize];
                r.timer_generation += 1;
                let generation = r.timer_generation;
                r.timers.insert(timer, generation);
                let action = Action::TimerFired {
                    replica,
                    incarnation: r.incarnation,
                    timer,
                    generation,
                };
                self.schedule(now + after_ms, action);
            }
            Effect::CancelTimer(timer) => {
                self.replicas[replica.0 as usize].timers.remove(&timer);
            }
            Effect::Event(event) => self.replicas[replica.0 as usize].record(now, event),
        }
    }

    pub(super) fn transmit(&mut self, from: Endpoint, to: Endpoint, message: &WireMessage) {
        self.transmit_frame(from, to, message.kind(), wire::encode_frame(message));
    }

    fn transmit_frame(&mut self, from: Endpoint, to: Endpoint, kind: MessageKind, frame: Vec<u8>) {
        self.stats.sent += 1;
        *self.stats.sent_by_kind.entry(kind).or_default() += 1;
        if !self.faults.allows(from, to) {
            self.stats.dropped_by_fault += 1;
            return;
        }
        if self.drop_probability > 0.0 && self.rng.random_bool(self.drop_probability) {
            self.stats.dropped_randomly += 1;
            return;
        }
        let jitter = match self.latency.jitter_ms {
            0 => 0,
            j => self.rng.random_range(0..=j),
        };
        let mut at = self.now_ms + self.latency.base_ms + jitter;
        if !self.reorder {
            let clock = self.link_clock.entry((from, to)).or_default();
            at = at.max(*clock);
            *clock = at;
        }
        let incarnation = match to {
            Endpoint::Replica(r) => self.replicas.get(r.0 as usize).map_or(0, |r| r.incarnation),
            Endpoint::Client(_) => 0,
        };
        self.schedule(
            at,
            Action::Deliver {
                to,
                incarnation,
                frame,
            },
        );
    }

    /// Splits and decodes one frame; on failure, the reason and what could be read of it.
    fn decode(&self, frame: &[u8]) -> Result<WireMessage, RejectReason> {
        let max = self.config.max_frame_bytes;
        match wire::split_frame(frame, max) {
            Ok(Some((payload, used))) if used == frame.len() => {
                wire::decode_payload(payload, max).map_err(|e| frame_reason(&e))
            }
            // Truncated, or bytes after the one frame a delivery carries.
            Ok(_) => Err(RejectReason::MalformedFrame),
            Err(e) => Err(frame_reason(&e)),
        }
    }

    fn deliver_to_replica(&mut self, replica: ReplicaId, incarnation: u64, frame: &[u8]) {
        if !self.is_current(replica, incarnation) {
            self.stats.lost_to_crash += 1;
            return;
        }
        self.stats.delivered += 1;
        match self.verdict(frame) {
            Ok(verified) => self.feed(replica, Input::Message(verified)),
            Err((reason, what)) => self.reject(replica, reason, what),
        }
    }

    /// Decodes and verifies a frame as the node's receive path does (memoized by frame digest;
    /// see `SimNetwork::verdicts`).
    fn verdict(&mut self, frame: &[u8]) -> Result<Verified, (RejectReason, Option<Signer>)> {
        let message = self.decode(frame).map_err(|reason| (reason, None))?;
        let what = Some((message.kind(), message.signer()));
        let digest = Digest::of(frame);
        let verdict = match self.verdicts.get(&digest) {
            Some(verdict) => verdict.clone(),
            None => {
                let verdict = verify::verify(message, &self.keys);
                if self.verdicts.len() >= super::MAX_MEMOIZED_VERDICTS {
                    self.verdicts.clear();
                }
                self.verdicts.insert(digest, verdict.clone());
                verdict
            }
        };
        verdict.map_err(|reason| (reason, what))
    }

    /// The receive path refused a frame: reported and counted like the node does.
    fn reject(&mut self, replica: ReplicaId, reason: RejectReason, what: Option<Signer>) {
        let event = ReplicaEvent::Rejected {
            reason,
            kind: what.map(|(kind, _)| kind),
            from: what.map(|(_, signer)| signer),
        };
        let now = self.now_ms;
        self.replicas[replica.0 as usize].record(now, event);
    }

    fn deliver_to_client(&mut self, client: ClientId, frame: &[u8]) {
        self.stats.delivered += 1;
        let Ok(WireMessage::Reply(reply)) = self.decode(frame) else {
            self.stats.client_rejections += 1;
            return;
        };
        let Some(sim_client) = self.clients.get(client.0 as usize) else {
            return;
        };
        if !sim_client.wants(&reply) {
            return;
        }
        let message = WireMessage::Reply(reply);
        let reply = match verify::verify(message, &self.keys).map(verify::Verified::into_message) {
            Ok(WireMessage::Reply(reply)) => reply,
            _ => {
                self.stats.client_rejections += 1;
                return;
            }
        };
        let (now, quorums) = (self.now_ms, self.config.quorums());
        if let Some(done) = self.clients[client.0 as usize].accept(reply, now, quorums) {
            self.completed.push(done);
        }
    }

    fn client_retry(&mut self, client: ClientId, timestamp: Timestamp) {
        let Some(outstanding) = self
            .clients
            .get(client.0 as usize)
            .and_then(|c| c.outstanding.as_ref())
        else {
            return;
        };
        if outstanding.request.body.timestamp != timestamp {
            return;
        }
        let frame = wire::encode_frame(&WireMessage::Request(outstanding.request.clone()));
        for replica in self.replica_ids() {
            let (from, to) = (Endpoint::Client(client), Endpoint::Replica(replica));
            self.transmit_frame(from, to, MessageKind::Request, frame.clone());
        }
        let at = self.now_ms + self.config.timeouts.client_retry_ms;
        self.schedule(at, Action::ClientRetry { client, timestamp });
    }
}
