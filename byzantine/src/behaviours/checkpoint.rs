//! `checkpoint-lie`: lies about state. Its CHECKPOINTs carry a wrong state digest (seeded);
//! each of its state-transfer answers goes out three times, with three lies: altered state
//! (which no longer matches the certified digest), a committed certificate it made up and
//! signed all by itself (valid signatures, no quorum), and an altered committed batch (which no
//! longer matches its signatures).

use crate::rewrite::{me, pass, random_digest, sign_as};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::ids::{ClientId, Principal, Seq, Timestamp};
use replica::kv::Operation;
use replica::message::{
    Checkpoint, Commit, CommittedProof, PrePrepare, Request, Signed, StateTransfer, WireMessage,
    batch_digest,
};
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

    /// Every answer becomes three, each with one lie, so each lie is judged on its own by
    /// whoever asked: altered state under the real certificate first (refused whole by an
    /// honest asker, installed by one that does not compare the two), then the real state
    /// with a certificate it made up and signed alone, then the real state with an altered
    /// committed batch. Sent in this order, a later answer cannot have moved the asker past
    /// the sequence number an earlier lie is about.
    fn lies_about_state(
        &mut self,
        transfer: StateTransfer,
        ctx: &InterceptContext<'_>,
    ) -> Vec<StateTransfer> {
        let mut lies = vec![
            self.altered_state(transfer.clone()),
            self.made_up_certificate(transfer.clone(), ctx),
        ];
        if !transfer.committed.is_empty() {
            lies.push(self.altered_batch(transfer));
        }
        lies
    }

    fn altered_state(&mut self, mut transfer: StateTransfer) -> StateTransfer {
        let forged = Operation::Put {
            key: "checkpoint-lie".into(),
            value: format!("{}", self.rng.random::<u32>()),
        };
        transfer
            .state
            .execute(ClientId(u32::MAX), Timestamp(u64::MAX), &forged);
        transfer
    }

    /// A committed batch with a request dropped: its signatures no longer match it.
    fn altered_batch(&mut self, mut transfer: StateTransfer) -> StateTransfer {
        let i = self.rng.random_range(0..transfer.committed.len());
        let proof = &mut transfer.committed[i];
        let batch = &mut proof.pre_prepare.body.batch;
        if batch.is_empty() {
            proof.pre_prepare.body.view.0 += 1;
        } else {
            batch.pop();
            proof.pre_prepare.body.digest = batch_digest(batch);
        }
        transfer
    }

    /// The first certificate: the one the asker applies next, before an honest answer can
    /// bring it past that sequence number: a request dropped from it. With none to replace,
    /// one for the sequence number after the checkpoint carrying a request nobody sent (not an
    /// empty batch: that is what a view change fills a gap with, so it may well match what the
    /// others commit).
    fn made_up_certificate(
        &mut self,
        mut transfer: StateTransfer,
        ctx: &InterceptContext<'_>,
    ) -> StateTransfer {
        let next = match transfer.committed.first() {
            Some(proof) => {
                let mut body = proof.pre_prepare.body.clone();
                body.batch.pop();
                body
            }
            None => PrePrepare {
                view: ctx.core.view(),
                seq: transfer
                    .checkpoint_proof
                    .first()
                    .map_or(Seq(1), |c| c.body.seq.next()),
                digest: batch_digest(&[]),
                batch: vec![self.request_nobody_sent(ctx)],
            },
        };
        let made_up = self_certified(next, ctx);
        match transfer.committed.first_mut() {
            Some(first) => *first = made_up,
            None => transfer.committed.push(made_up),
        }
        transfer
    }

    /// A request in client 0's name, signed with this replica's key: a certified batch's
    /// requests are not checked again, so only the certificate's quorum keeps it out.
    fn request_nobody_sent(&mut self, ctx: &InterceptContext<'_>) -> Signed<Request> {
        let request = Request {
            client: ClientId(0),
            timestamp: Timestamp(u64::MAX),
            op: Operation::Put {
                key: "checkpoint-lie".into(),
                value: format!("{}", self.rng.random::<u32>()),
            },
        };
        Signed::sign(request, Principal::Client(ClientId(0)), ctx.key)
    }

    fn lie(&mut self, message: WireMessage, ctx: &InterceptContext<'_>) -> Vec<WireMessage> {
        match message {
            WireMessage::Checkpoint(c) if c.signer == me(ctx) => {
                let body = Checkpoint {
                    state_digest: random_digest(&mut self.rng),
                    ..c.body
                };
                vec![WireMessage::Checkpoint(sign_as(body, me(ctx), ctx.key))]
            }
            WireMessage::StateTransfer(t) if t.signer == me(ctx) => self
                .lies_about_state(t.body, ctx)
                .into_iter()
                .map(|body| WireMessage::StateTransfer(sign_as(body, me(ctx), ctx.key)))
                .collect(),
            other => vec![other],
        }
    }
}

/// A committed certificate for `body` whose every signature is valid, all of them this
/// replica's own: signed as a PRE-PREPARE and COMMITted by itself alone. Only the receiver's
/// quorum check (a PRE-PREPARE from the view's primary and 2f+1 matching COMMITs) can refuse
/// it.
fn self_certified(mut body: PrePrepare, ctx: &InterceptContext<'_>) -> CommittedProof {
    body.digest = batch_digest(&body.batch);
    let commit = Commit {
        view: body.view,
        seq: body.seq,
        digest: body.digest,
    };
    CommittedProof {
        pre_prepare: sign_as(body, me(ctx), ctx.key),
        commits: vec![sign_as(commit, me(ctx), ctx.key)],
    }
}

impl Interceptor for CheckpointLie {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let lies = match effect {
            Effect::Broadcast(message) => self
                .lie(message, ctx)
                .into_iter()
                .map(Effect::Broadcast)
                .collect(),
            Effect::Send { to, message } => self
                .lie(message, ctx)
                .into_iter()
                .map(|message| Effect::Send { to, message })
                .collect(),
            other => vec![other],
        };
        lies.into_iter().flat_map(pass).collect()
    }
}
