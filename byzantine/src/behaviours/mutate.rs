//! `mutate`: ByzzFuzz-style message mutations (Winter et al., OOPSLA 2023).
//!
//! Each outgoing message of a chosen kind (a protocol round), to each recipient separately, is
//! mutated with the given probability by one seeded mutation that applies to it: view +/-1,
//! sequence number +/-1, digest changed, request operand changed, result +1, or omission.
//! Small scope changes a field to a neighbouring value; `scope=any` sets random values.
//! Mutated messages are re-signed with the replica's own key.

use crate::rewrite::{me, near_digest, now, pass, per_recipient, random_digest, resign};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::ids::{Seq, View};
use replica::kv::{OpResult, Operation};
use replica::message::{MessageKind, Signed, WireMessage};
use replica::node::{InterceptContext, Interceptor};
use std::collections::BTreeSet;
use std::time::Duration;

/// How far a mutated value lands from the honest one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Neighbouring values: the boundary cases a protocol is most likely to get wrong.
    Small,
    /// Arbitrary values.
    Any,
}

impl Scope {
    /// As the `scope` parameter spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Small => "small",
            Scope::Any => "any",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mutation {
    View,
    Seq,
    Digest,
    Operand,
    Result,
    Omit,
}

/// The mutations that change something in a message of this kind.
fn applicable(kind: MessageKind) -> &'static [Mutation] {
    use Mutation::*;
    match kind {
        MessageKind::PrePrepare => &[View, Seq, Digest, Operand, Omit],
        MessageKind::Prepare | MessageKind::Commit => &[View, Seq, Digest, Omit],
        MessageKind::Checkpoint => &[Seq, Digest, Omit],
        MessageKind::ViewChange => &[View, Seq, Omit],
        MessageKind::Suspect => &[View, Omit],
        MessageKind::NewView => &[View, Operand, Omit],
        MessageKind::Reply => &[View, Result, Omit],
        MessageKind::Request | MessageKind::FetchState | MessageKind::StateTransfer => &[Omit],
    }
}

pub(crate) struct Mutate {
    rng: ChaCha8Rng,
    kinds: BTreeSet<MessageKind>,
    probability: f64,
    scope: Scope,
}

impl Mutate {
    pub(crate) fn new(
        seed: u64,
        kinds: BTreeSet<MessageKind>,
        probability: f64,
        scope: Scope,
    ) -> Mutate {
        Mutate {
            rng: ChaCha8Rng::seed_from_u64(seed),
            kinds,
            probability,
            scope,
        }
    }

    /// Whether to mutate, and how; `None` leaves the message alone.
    fn choose(&mut self, kind: MessageKind) -> Option<Mutation> {
        if !self.kinds.contains(&kind) || !self.rng.random_bool(self.probability) {
            return None;
        }
        let options = applicable(kind);
        Some(options[self.rng.random_range(0..options.len())])
    }

    fn view(&mut self, view: View) -> View {
        match self.scope {
            Scope::Small if view.0 > 0 && self.rng.random_bool(0.5) => View(view.0 - 1),
            Scope::Small => View(view.0 + 1),
            Scope::Any => View(self.rng.random_range(0..1 << 20)),
        }
    }

    fn seq(&mut self, seq: Seq) -> Seq {
        match self.scope {
            Scope::Small if seq.0 > 0 && self.rng.random_bool(0.5) => Seq(seq.0 - 1),
            Scope::Small => Seq(seq.0 + 1),
            Scope::Any => Seq(self.rng.random()),
        }
    }

    fn digest(&mut self, digest: replica::digest::Digest) -> replica::digest::Digest {
        match self.scope {
            Scope::Small => near_digest(digest, &mut self.rng),
            Scope::Any => random_digest(&mut self.rng),
        }
    }

    fn text(&mut self, text: &str) -> String {
        match self.scope {
            Scope::Small => format!("{text}1"),
            Scope::Any => format!("{:x}", self.rng.random::<u64>()),
        }
    }

    fn operand(&mut self, op: &mut Operation) {
        match op {
            Operation::Put { value, .. } | Operation::Append { value, .. } => {
                *value = self.text(value)
            }
            Operation::Cas { new, .. } => *new = self.text(new),
            Operation::Get { key } => *key = self.text(key),
        }
    }

    /// "+1": a number goes up by one, anything else is changed just as little.
    fn result(&mut self, result: &OpResult) -> OpResult {
        match (self.scope, result) {
            (Scope::Small, OpResult::Value(Some(v))) => match v.parse::<i64>() {
                Ok(n) => OpResult::Value(Some((n + 1).to_string())),
                Err(_) => OpResult::Value(Some(self.text(v))),
            },
            (Scope::Small, OpResult::Value(None)) => OpResult::Value(Some("1".into())),
            (Scope::Small, OpResult::Done) => OpResult::Value(None),
            (_, OpResult::Swapped(b)) => OpResult::Swapped(!b),
            (Scope::Any, _) => OpResult::Value(Some(self.text(""))),
        }
    }

    /// Applies `mutation` to `message`; `None` for an omission.
    fn apply(&mut self, mutation: Mutation, mut message: WireMessage) -> Option<WireMessage> {
        use WireMessage as W;
        match (mutation, &mut message) {
            (Mutation::Omit, _) => return None,
            (Mutation::View, W::PrePrepare(m)) => m.body.view = self.view(m.body.view),
            (Mutation::View, W::Prepare(m)) => m.body.view = self.view(m.body.view),
            (Mutation::View, W::Commit(m)) => m.body.view = self.view(m.body.view),
            (Mutation::View, W::ViewChange(m)) => m.body.new_view = self.view(m.body.new_view),
            (Mutation::View, W::NewView(m)) => m.body.view = self.view(m.body.view),
            (Mutation::View, W::Reply(m)) => m.body.view = self.view(m.body.view),
            (Mutation::Seq, W::PrePrepare(m)) => m.body.seq = self.seq(m.body.seq),
            (Mutation::Seq, W::Prepare(m)) => m.body.seq = self.seq(m.body.seq),
            (Mutation::Seq, W::Commit(m)) => m.body.seq = self.seq(m.body.seq),
            (Mutation::Seq, W::Checkpoint(m)) => m.body.seq = self.seq(m.body.seq),
            (Mutation::Seq, W::ViewChange(m)) => m.body.stable_seq = self.seq(m.body.stable_seq),
            (Mutation::Digest, W::PrePrepare(m)) => m.body.digest = self.digest(m.body.digest),
            (Mutation::Digest, W::Prepare(m)) => m.body.digest = self.digest(m.body.digest),
            (Mutation::Digest, W::Commit(m)) => m.body.digest = self.digest(m.body.digest),
            (Mutation::Digest, W::Checkpoint(m)) => {
                m.body.state_digest = self.digest(m.body.state_digest)
            }
            (Mutation::Operand, W::PrePrepare(m)) => self.operand_in(&mut m.body.batch),
            (Mutation::Operand, W::NewView(m)) => {
                let count = m.body.pre_prepares.len();
                if count > 0 {
                    let i = self.rng.random_range(0..count);
                    self.operand_in(&mut m.body.pre_prepares[i].body.batch);
                }
            }
            (Mutation::Result, W::Reply(m)) => m.body.result = self.result(&m.body.result),
            _ => {}
        }
        Some(message)
    }

    /// Changes the operand of one request of a batch (its client signature no longer holds).
    fn operand_in(&mut self, batch: &mut [Signed<replica::message::Request>]) {
        if batch.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..batch.len());
        self.operand(&mut batch[i].body.op);
    }

    fn mutate_one(
        &mut self,
        message: WireMessage,
        ctx: &InterceptContext<'_>,
    ) -> Option<WireMessage> {
        if message.signer() != me(ctx) {
            return Some(message);
        }
        match self.choose(message.kind()) {
            None => Some(message),
            Some(mutation) => self
                .apply(mutation, message)
                .map(|m| resign(m, me(ctx), ctx.key)),
        }
    }
}

impl Interceptor for Mutate {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        if let Effect::Reply { client, reply } = effect {
            return match self.mutate_one(WireMessage::Reply(reply), ctx) {
                Some(WireMessage::Reply(reply)) => pass(Effect::Reply { client, reply }),
                _ => Vec::new(),
            };
        }
        let untouched = match message_kind(&effect) {
            Some(kind) => !self.kinds.contains(&kind),
            None => true,
        };
        if untouched {
            return pass(effect);
        }
        match per_recipient(&effect, ctx) {
            Some(sends) => sends
                .into_iter()
                .filter_map(|(to, message)| {
                    self.mutate_one(message, ctx)
                        .map(|message| now(Effect::Send { to, message }))
                })
                .collect(),
            None => pass(effect),
        }
    }
}

fn message_kind(effect: &Effect) -> Option<MessageKind> {
    crate::rewrite::message_of(effect).map(WireMessage::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_chooses_the_same_mutations_and_another_seed_differs() {
        let kinds: BTreeSet<MessageKind> = [MessageKind::Prepare, MessageKind::Reply].into();
        let draw = |seed: u64| {
            let mut m = Mutate::new(seed, kinds.clone(), 0.5, Scope::Small);
            (0..64)
                .map(|i| {
                    m.choose(if i % 2 == 0 {
                        MessageKind::Prepare
                    } else {
                        MessageKind::Reply
                    })
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(7).iter().any(Option::is_none));
        assert!(draw(7).iter().any(Option::is_some));
    }

    #[test]
    fn unchosen_kinds_are_never_mutated() {
        let mut m = Mutate::new(1, [MessageKind::Commit].into(), 1.0, Scope::Any);
        assert!((0..32).all(|_| m.choose(MessageKind::Prepare).is_none()));
        assert!((0..32).all(|_| m.choose(MessageKind::Commit).is_some()));
    }

    #[test]
    fn small_scope_moves_view_and_sequence_by_exactly_one() {
        let mut m = Mutate::new(3, BTreeSet::new(), 1.0, Scope::Small);
        for _ in 0..32 {
            let v = m.view(View(5));
            assert!(v == View(4) || v == View(6), "{v:?}");
            let s = m.seq(Seq(0));
            assert_eq!(s, Seq(1), "sequence numbers do not go below zero");
        }
        assert_eq!(
            m.result(&OpResult::Value(Some("41".into()))),
            OpResult::Value(Some("42".into()))
        );
    }
}
