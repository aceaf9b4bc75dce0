//! `equivocate-all`: a replica, primary or backup, that lends its vote to both sides of every
//! split. For each `(view, seq)` it tells some peers the truth and the others a conflicting
//! digest, in every round it takes part in: as primary, the PRE-PREPARE (another batch,
//! re-signed); as backup, the PREPARE; and the COMMIT; VIEW-CHANGEs are split the same way
//! (`view_change.rs`). Every lie is sealed as the honest message would be (signature,
//! authenticator or MAC, with its own keys), so each recipient accepts it.
//!
//! Which peer is told what: a peer seen (from what it signed) to back another digest than
//! this replica's own core gets votes for that digest, the votes it needs to commit there;
//! otherwise a seeded split decides (`rewrite::deceived_part`, as `equivocate` does), the
//! deceived part getting the other side's digest if one is known, else a made-up one, which
//! withholds the vote. A backup holds its messages to a peer for up to `hold_ms` until it has
//! seen which side that peer is on. The choice per peer is fixed at its first message, so
//! retransmissions repeat it, and the first message carries the replica's remaining votes for
//! that digest at once (a faulty replica need not wait for its own core to prepare).

mod round;
#[cfg(test)]
mod tests;
mod view_change;

use crate::rewrite::{
    MEMORY_CAP, conflicting_batch, deceived_part, me, message_of, near_digest, now, pass, peers,
    per_recipient, sign_as,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replica::core::{Effect, Input};
use replica::digest::Digest;
use replica::ids::{Principal, ReplicaId, Seq, View};
use replica::message::{PrePrepare, WireMessage, batch_digest};
use replica::node::{InterceptContext, Interceptor};
use round::Round;
use std::collections::BTreeMap;
use std::time::Duration;
use view_change::ViewChanges;

/// In which rounds the replica lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Only in the views it is primary of (its PRE-PREPAREs and COMMITs there).
    Primary,
    /// Only as a backup (PREPAREs, COMMITs), and in its VIEW-CHANGEs.
    Backup,
    Both,
}

impl Targets {
    /// As the `targets` parameter spells it.
    pub fn name(self) -> &'static str {
        match self {
            Targets::Primary => "primary",
            Targets::Backup => "backup",
            Targets::Both => "both",
        }
    }

    fn covers(self, proposer: bool) -> bool {
        match self {
            Targets::Primary => proposer,
            Targets::Backup => !proposer,
            Targets::Both => true,
        }
    }
}

type Key = (View, Seq);

pub(crate) struct EquivocateAll {
    rng: ChaCha8Rng,
    targets: Targets,
    hold: Duration,
    rounds: BTreeMap<Key, Round>,
    /// What each other replica was seen to back per round, from the messages it signed: kept
    /// apart from `rounds`, since a peer's vote often arrives before this replica's own.
    seen: BTreeMap<Key, BTreeMap<ReplicaId, Digest>>,
    view_changes: ViewChanges,
}

impl EquivocateAll {
    pub(crate) fn new(seed: u64, targets: Targets, hold: Duration) -> EquivocateAll {
        EquivocateAll {
            rng: ChaCha8Rng::seed_from_u64(seed),
            targets,
            hold,
            rounds: BTreeMap::new(),
            seen: BTreeMap::new(),
            view_changes: ViewChanges::default(),
        }
    }

    /// Notes which digest the signer of an incoming PRE-PREPARE, PREPARE or COMMIT backs.
    fn observe(&mut self, message: &WireMessage, ctx: &InterceptContext<'_>) {
        let Some((key, digest)) = vote_of(message) else {
            return;
        };
        let from = match message.signer() {
            Principal::Replica(from) if from != ctx.core.id() => from,
            _ => return,
        };
        if !self.seen.contains_key(&key) && self.seen.len() >= MEMORY_CAP {
            self.seen.pop_first();
        }
        // The first vote counts at an honest receiver, so the first one seen names the side.
        self.seen
            .entry(key)
            .or_default()
            .entry(from)
            .or_insert(digest);
        if let Some(round) = self.rounds.get_mut(&key) {
            round.learn(digest);
        }
    }

    /// Rewrites one effect of the core; anything but its own votes and VIEW-CHANGEs passes.
    fn rewrite(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let Some(message) = message_of(&effect).filter(|m| m.signer() == me(ctx)) else {
            return pass(effect);
        };
        let recipients = per_recipient(&effect, ctx).unwrap_or_default();
        if let WireMessage::ViewChange(vc) = message {
            if self.targets == Targets::Primary {
                return pass(effect);
            }
            let to = recipients.into_iter().map(|(to, _)| to).collect();
            return self.view_changes.split(vc.clone(), to, &mut self.rng, ctx);
        }
        let Some((key, _)) = vote_of(message) else {
            return pass(effect);
        };
        let proposer = key.0.primary(ctx.config.replicas.len()) == ctx.core.id();
        if !self.targets.covers(proposer) {
            return pass(effect);
        }
        self.open(key, message, proposer, ctx);
        recipients
            .into_iter()
            .flat_map(|(to, m)| self.deliver(key, to, m, ctx))
            .collect()
    }

    /// Starts a round at the core's first message for it: the split, and the other side.
    fn open(&mut self, key: Key, first: &WireMessage, proposer: bool, ctx: &InterceptContext<'_>) {
        if self.rounds.contains_key(&key) {
            return;
        }
        if self.rounds.len() >= MEMORY_CAP {
            self.rounds.pop_first();
        }
        let Some((_, mine)) = vote_of(first) else {
            return;
        };
        let deceived = deceived_part(peers(ctx), &mut self.rng);
        let alternate = match first {
            WireMessage::PrePrepare(pp) if proposer && !pp.body.batch.is_empty() => {
                let batch = conflicting_batch(&pp.body.batch, &mut self.rng);
                let body = PrePrepare {
                    view: key.0,
                    seq: key.1,
                    digest: batch_digest(&batch),
                    batch,
                };
                Some(sign_as(body, me(ctx), ctx.key))
            }
            _ => None,
        };
        let (alt, alt_real) = match &alternate {
            Some(pp) => (pp.body.digest, true),
            None => (near_digest(mine, &mut self.rng), false),
        };
        let mut round = Round {
            view: key.0,
            seq: key.1,
            mine,
            alt,
            alt_real,
            alternate,
            proposer,
            deceived,
            given: BTreeMap::new(),
            held: Vec::new(),
            opened: ctx.elapsed,
        };
        for digest in self.seen.get(&key).into_iter().flat_map(|s| s.values()) {
            round.learn(*digest);
        }
        self.rounds.insert(key, round);
    }

    /// Sends `message` to `to` as the round tells it, or holds it until the round can say.
    fn deliver(
        &mut self,
        key: Key,
        to: ReplicaId,
        message: WireMessage,
        ctx: &InterceptContext<'_>,
    ) -> Vec<(Duration, Effect)> {
        let seen = self.seen.get(&key);
        let holds = seen.and_then(|s| s.get(&to)).copied();
        // Once every peer has shown its side, no other side can still appear: no more waiting.
        let wait_over = seen.is_some_and(|s| peers(ctx).iter().all(|p| s.contains_key(p)));
        let Some(round) = self.rounds.get_mut(&key) else {
            return pass(Effect::Send { to, message });
        };
        let waited = ctx.elapsed >= round.opened + self.hold;
        let Some((digest, first)) = round.decide(to, holds, wait_over || waited) else {
            round.held.push((to, message));
            return Vec::new();
        };
        let kind = message.kind();
        let told = round.as_told(message, digest, to, ctx);
        let extra = if first {
            round.votes(to, digest, kind, ctx)
        } else {
            Vec::new()
        };
        std::iter::once(told)
            .chain(extra)
            .map(|message| now(Effect::Send { to, message }))
            .collect()
    }

    /// Sends what was held for peers whose side is now known (or whose wait is over).
    fn release(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let waiting: Vec<Key> = self
            .rounds
            .iter()
            .filter(|(_, r)| !r.held.is_empty())
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for key in waiting {
            let held = self
                .rounds
                .get_mut(&key)
                .map(|r| std::mem::take(&mut r.held))
                .unwrap_or_default();
            for (to, message) in held {
                out.extend(self.deliver(key, to, message, ctx));
            }
        }
        out
    }
}

/// The round and digest of a PRE-PREPARE, PREPARE or COMMIT.
fn vote_of(message: &WireMessage) -> Option<(Key, Digest)> {
    match message {
        WireMessage::PrePrepare(m) => Some(((m.body.view, m.body.seq), m.body.digest)),
        WireMessage::Prepare(m) => Some(((m.body.view, m.body.seq), m.body.digest)),
        WireMessage::Commit(m) => Some(((m.body.view, m.body.seq), m.body.digest)),
        _ => None,
    }
}

impl Interceptor for EquivocateAll {
    fn inbound(&mut self, input: Input, ctx: &InterceptContext<'_>) -> Vec<Input> {
        if let Input::Message(verified) = &input {
            self.observe(verified.message(), ctx);
        }
        vec![input]
    }

    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let mut out = self.rewrite(effect, ctx);
        out.extend(self.release(ctx));
        out
    }

    fn tick(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        self.release(ctx)
    }
}
