//! Behaviours that add traffic beside the replica's honest messages: `replay`, `forge-sender`,
//! `flood` and `stale-view`. Each keeps its real traffic, so its core keeps participating.

use crate::rewrite::{
    MEMORY_CAP, me, message_of, near_digest, now, pass, peers, random_digest, resign, sign_as,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::core::{Effect, Input};
use replica::ids::{Principal, ReplicaId, Seq, Timestamp, View};
use replica::kv::{OpResult, Operation};
use replica::message::{Commit, Prepare, Reply, Request, WireMessage};
use replica::node::{InterceptContext, Interceptor};
use std::time::Duration;

/// Whether a message is one of the protocol's replica-to-replica rounds worth replaying.
fn protocol_round(message: &WireMessage) -> bool {
    matches!(
        message,
        WireMessage::PrePrepare(_)
            | WireMessage::Prepare(_)
            | WireMessage::Commit(_)
            | WireMessage::Checkpoint(_)
            | WireMessage::Suspect(_)
            | WireMessage::ViewChange(_)
            | WireMessage::NewView(_)
    )
}

/// Keeps a seeded sample of every protocol message it sent or received (reservoir sampling,
/// so old views and sequence numbers stay represented) and re-sends a burst of them to random
/// peers every tick. Messages of other replicas keep their valid signatures.
pub(crate) struct Replay {
    rng: ChaCha8Rng,
    burst: u64,
    seen: u64,
    sample: Vec<WireMessage>,
}

impl Replay {
    pub(crate) fn new(seed: u64, burst: u64) -> Replay {
        Replay {
            rng: ChaCha8Rng::seed_from_u64(seed),
            burst,
            seen: 0,
            sample: Vec::new(),
        }
    }

    fn record(&mut self, message: &WireMessage) {
        if !protocol_round(message) {
            return;
        }
        self.seen += 1;
        if self.sample.len() < MEMORY_CAP {
            self.sample.push(message.clone());
        } else {
            let slot = self.rng.random_range(0..self.seen);
            if let Some(kept) = self.sample.get_mut(slot as usize) {
                *kept = message.clone();
            }
        }
    }
}

impl Interceptor for Replay {
    fn inbound(&mut self, input: Input, _ctx: &InterceptContext<'_>) -> Vec<Input> {
        if let Input::Message(verified) = &input {
            self.record(verified.message());
        }
        vec![input]
    }

    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        if let Some(message) = message_of(&effect) {
            let message = message.clone();
            self.record(&message);
        }
        pass(effect)
    }

    fn tick(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let peers = peers(ctx);
        if self.sample.is_empty() || peers.is_empty() {
            return Vec::new();
        }
        (0..self.burst)
            .map(|_| {
                let message = self.sample[self.rng.random_range(0..self.sample.len())].clone();
                let to = peers[self.rng.random_range(0..peers.len())];
                now(Effect::Send { to, message })
            })
            .collect()
    }
}

/// Beside each protocol message it sends, a conflicting copy claiming another replica's
/// identity; beside each reply, a wrong reply claiming another replica; and every tick a
/// request claiming a client. None of them carries a valid signature.
pub(crate) struct ForgeSender {
    rng: ChaCha8Rng,
    forged_requests: u64,
}

impl ForgeSender {
    pub(crate) fn new(seed: u64) -> ForgeSender {
        ForgeSender {
            rng: ChaCha8Rng::seed_from_u64(seed),
            forged_requests: 0,
        }
    }

    fn someone_else(&mut self, ctx: &InterceptContext<'_>) -> Option<ReplicaId> {
        let others = peers(ctx);
        (!others.is_empty()).then(|| others[self.rng.random_range(0..others.len())])
    }

    /// The message with its body changed (so it conflicts) and claiming `victim`.
    fn forge(
        &mut self,
        message: &WireMessage,
        victim: ReplicaId,
        ctx: &InterceptContext<'_>,
    ) -> Option<WireMessage> {
        let mut message = message.clone();
        match &mut message {
            WireMessage::PrePrepare(m) => {
                m.body.batch.clear();
                m.body.digest = replica::message::batch_digest(&[]);
            }
            WireMessage::Prepare(m) => m.body.digest = near_digest(m.body.digest, &mut self.rng),
            WireMessage::Commit(m) => m.body.digest = near_digest(m.body.digest, &mut self.rng),
            WireMessage::Checkpoint(m) => {
                m.body.state_digest = near_digest(m.body.state_digest, &mut self.rng);
            }
            WireMessage::ViewChange(m) => m.body.prepared.clear(),
            WireMessage::NewView(m) => m.body.pre_prepares.clear(),
            WireMessage::Suspect(_)
            | WireMessage::FetchState(_)
            | WireMessage::StateTransfer(_) => {}
            WireMessage::Request(_) | WireMessage::Reply(_) => return None,
        }
        Some(resign(message, Principal::Replica(victim), ctx.key))
    }
}

impl Interceptor for ForgeSender {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let Some(victim) = self.someone_else(ctx) else {
            return pass(effect);
        };
        let forged = match &effect {
            Effect::Broadcast(m) if m.signer() == me(ctx) => {
                self.forge(m, victim, ctx).map(Effect::Broadcast)
            }
            Effect::Send { to, message } if message.signer() == me(ctx) => self
                .forge(message, victim, ctx)
                .map(|message| Effect::Send { to: *to, message }),
            Effect::Reply { client, reply } => {
                let body = Reply {
                    result: OpResult::Value(Some("forged".into())),
                    ..reply.body.clone()
                };
                Some(Effect::Reply {
                    client: *client,
                    reply: sign_as(body, Principal::Replica(victim), ctx.key),
                })
            }
            _ => None,
        };
        let mut out = pass(effect);
        out.extend(forged.map(now));
        out
    }

    fn tick(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let clients = &ctx.config.clients;
        if clients.is_empty() {
            return Vec::new();
        }
        let client = clients[self.rng.random_range(0..clients.len())].id;
        self.forged_requests += 1;
        let body = Request {
            client,
            // Far ahead of anything the real client sent, so it would supersede its requests.
            timestamp: Timestamp(u64::MAX / 2 + self.forged_requests),
            op: Operation::Put {
                key: "forged".into(),
                value: format!("by {}", ctx.core.id()),
            },
        };
        let request = sign_as(body, Principal::Client(client), ctx.key);
        let to = if ctx.core.is_primary() {
            self.someone_else(ctx)
        } else {
            Some(ctx.core.primary())
        };
        to.map(|to| {
            now(Effect::Send {
                to,
                message: WireMessage::Request(request),
            })
        })
        .into_iter()
        .collect()
    }
}

/// Validly signed PREPAREs and COMMITs for sequence numbers far above the high watermark, at
/// `rate` messages per second, each to every peer.
pub(crate) struct Flood {
    rng: ChaCha8Rng,
    rate: u64,
    /// Messages owed but not yet sent (rate x elapsed is not a whole number per tick).
    owed_millis: u64,
    last_tick: Option<Duration>,
}

impl Flood {
    pub(crate) fn new(seed: u64, rate: u64) -> Flood {
        Flood {
            rng: ChaCha8Rng::seed_from_u64(seed),
            rate,
            owed_millis: 0,
            last_tick: None,
        }
    }
}

/// How far beyond the high watermark flood messages land, at least.
const FLOOD_DISTANCE: u64 = 1_000_000;

impl Interceptor for Flood {
    fn tick(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let since = self.last_tick.map_or(Duration::from_millis(50), |last| {
            ctx.elapsed.saturating_sub(last)
        });
        self.last_tick = Some(ctx.elapsed);
        self.owed_millis += self.rate.saturating_mul(since.as_millis() as u64);
        let count = self.owed_millis / 1000;
        self.owed_millis %= 1000;
        let high = ctx.core.stable_checkpoint().0 + ctx.config.watermark_window;
        let view = ctx.core.view();
        (0..count)
            .map(|_| {
                let seq = Seq(high + FLOOD_DISTANCE + self.rng.random_range(0..u32::MAX as u64));
                let digest = random_digest(&mut self.rng);
                let message = if self.rng.random_bool(0.5) {
                    WireMessage::Prepare(sign_as(Prepare { view, seq, digest }, me(ctx), ctx.key))
                } else {
                    WireMessage::Commit(sign_as(Commit { view, seq, digest }, me(ctx), ctx.key))
                };
                now(Effect::Broadcast(message))
            })
            .collect()
    }
}

/// Beside each PRE-PREPARE, PREPARE and COMMIT it sends, a re-signed copy for an older or a
/// newer view (one to three views away).
pub(crate) struct StaleView {
    rng: ChaCha8Rng,
}

impl StaleView {
    pub(crate) fn new(seed: u64) -> StaleView {
        StaleView {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn shifted(
        &mut self,
        message: &WireMessage,
        ctx: &InterceptContext<'_>,
    ) -> Option<WireMessage> {
        let view = message.view()?;
        let by = self.rng.random_range(1..=3u64);
        let target = if view.0 >= by && self.rng.random_bool(0.5) {
            View(view.0 - by)
        } else {
            View(view.0 + by)
        };
        let mut message = message.clone();
        match &mut message {
            WireMessage::PrePrepare(m) => m.body.view = target,
            WireMessage::Prepare(m) => m.body.view = target,
            WireMessage::Commit(m) => m.body.view = target,
            _ => return None,
        }
        Some(resign(message, me(ctx), ctx.key))
    }
}

impl Interceptor for StaleView {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let copy = match &effect {
            Effect::Broadcast(m) if m.signer() == me(ctx) => {
                self.shifted(m, ctx).map(Effect::Broadcast)
            }
            Effect::Send { to, message } if message.signer() == me(ctx) => self
                .shifted(message, ctx)
                .map(|message| Effect::Send { to: *to, message }),
            _ => None,
        };
        let mut out = pass(effect);
        out.extend(copy.map(now));
        out
    }
}
