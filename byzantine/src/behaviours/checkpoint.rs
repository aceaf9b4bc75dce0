//! `checkpoint-lie`: lies about state. Its CHECKPOINTs carry a wrong state digest (seeded);
//! its state-transfer answers carry altered state (which no longer matches the certified
//! digest) or an altered committed batch (which no longer matches its signatures).

use crate::rewrite::{me, pass, random_digest, sign_as};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::ids::{ClientId, Timestamp};
use replica::kv::Operation;
use replica::message::{Checkpoint, StateTransfer, WireMessage, batch_digest};
use replica::node::{InterceptContext, Interceptor};
use std::time::Duration;

pub(crate) struct CheckpointLie {
    rng: ChaCha8Rng,
}

impl CheckpointLie {
    pub(crate) fn new(seed: u64) -> CheckpointLie {
        CheckpointLie {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn lie_about_state(&mut self, mut transfer: StateTransfer) -> StateTransfer {
        let alter_batch = !transfer.committed.is_empty() && self.rng.random_bool(0.5);
        if alter_batch {
            let i = self.rng.random_range(0..transfer.committed.len());
            let proof = &mut transfer.committed[i];
            let batch = &mut proof.pre_prepare.body.batch;
            if batch.is_empty() {
                proof.pre_prepare.body.view.0 += 1;
            } else {
                batch.pop();
                proof.pre_prepare.body.digest = batch_digest(batch);
            }
        } else {
            let forged = Operation::Put {
                key: "checkpoint-lie".into(),
                value: format!("{}", self.rng.random::<u32>()),
            };
            transfer
                .state
                .execute(ClientId(u32::MAX), Timestamp(u64::MAX), &forged);
        }
        transfer
    }

    fn lie(&mut self, message: WireMessage, ctx: &InterceptContext<'_>) -> WireMessage {
        match message {
            WireMessage::Checkpoint(c) if c.signer == me(ctx) => {
                let body = Checkpoint {
                    state_digest: random_digest(&mut self.rng),
                    ..c.body
                };
                WireMessage::Checkpoint(sign_as(body, me(ctx), ctx.key))
            }
            WireMessage::StateTransfer(t) if t.signer == me(ctx) => {
                let body = self.lie_about_state(t.body);
                WireMessage::StateTransfer(sign_as(body, me(ctx), ctx.key))
            }
            other => other,
        }
    }
}

impl Interceptor for CheckpointLie {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match effect {
            Effect::Broadcast(message) => pass(Effect::Broadcast(self.lie(message, ctx))),
            Effect::Send { to, message } => pass(Effect::Send {
                to,
                message: self.lie(message, ctx),
            }),
            other => pass(other),
        }
    }
}
