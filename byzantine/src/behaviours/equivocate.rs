//! `equivocate`: as primary, tells different backups different things about one sequence
//! number. Each PRE-PREPARE it proposes goes unchanged to a seeded, non-empty subset of the
//! backups and, re-signed with its own key, with a reordered or shrunk batch to the rest.

use crate::rewrite::{MEMORY_CAP, conflicting_batch, deceived_part, me, now, pass, peers, sign_as};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::ids::{ReplicaId, Seq, View};
use replica::message::{PrePrepare, Signed, WireMessage, batch_digest};
use replica::node::{InterceptContext, Interceptor};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What one `(view, seq)` looks like to whom. Kept, so a retransmission repeats the same lie.
struct Split {
    alternate: Signed<PrePrepare>,
    deceived: BTreeSet<ReplicaId>,
}

pub(crate) struct Equivocate {
    rng: ChaCha8Rng,
    splits: BTreeMap<(View, Seq), Split>,
}

impl Equivocate {
    pub(crate) fn new(seed: u64) -> Equivocate {
        Equivocate {
            rng: ChaCha8Rng::seed_from_u64(seed),
            splits: BTreeMap::new(),
        }
    }

    fn split_for(&mut self, real: &Signed<PrePrepare>, ctx: &InterceptContext<'_>) -> &Split {
        let key = (real.body.view, real.body.seq);
        if !self.splits.contains_key(&key) {
            if self.splits.len() >= MEMORY_CAP {
                self.splits.pop_first();
            }
            let deceived = deceived_part(peers(ctx), &mut self.rng);
            let batch = conflicting_batch(&real.body.batch, &mut self.rng);
            let body = PrePrepare {
                view: real.body.view,
                seq: real.body.seq,
                digest: batch_digest(&batch),
                batch,
            };
            let alternate = sign_as(body, me(ctx), ctx.key);
            self.splits.insert(
                key,
                Split {
                    alternate,
                    deceived,
                },
            );
        }
        &self.splits[&key]
    }
}

impl Interceptor for Equivocate {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let own_proposal = |m: &WireMessage| match m {
            WireMessage::PrePrepare(pp) if pp.signer == me(ctx) => Some(pp.clone()),
            _ => None,
        };
        match effect {
            Effect::Broadcast(message) => {
                let Some(real) = own_proposal(&message) else {
                    return pass(Effect::Broadcast(message));
                };
                let split = self.split_for(&real, ctx);
                peers(ctx)
                    .into_iter()
                    .map(|to| {
                        let pp = if split.deceived.contains(&to) {
                            split.alternate.clone()
                        } else {
                            real.clone()
                        };
                        now(Effect::Send {
                            to,
                            message: WireMessage::PrePrepare(pp),
                        })
                    })
                    .collect()
            }
            Effect::Send { to, message } => {
                let Some(real) = own_proposal(&message) else {
                    return pass(Effect::Send { to, message });
                };
                let split = self.split_for(&real, ctx);
                let message = if split.deceived.contains(&to) {
                    WireMessage::PrePrepare(split.alternate.clone())
                } else {
                    message
                };
                pass(Effect::Send { to, message })
            }
            other => pass(other),
        }
    }
}
