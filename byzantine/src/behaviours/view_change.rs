//! `bad-view-change`: lies during a view change.
//!
//! Each VIEW-CHANGE it sends is, by seeded choice, stripped of its prepared certificates
//! (valid, but hiding what prepared here), or given a forged certificate: a prepared batch
//! that never prepared, with PREPAREs claiming other replicas (bad signatures) or a
//! PRE-PREPARE claiming a primary it never was (an invalid certificate). As the new primary,
//! its NEW-VIEW drops a re-issued request or reassigns batches to other sequence numbers.

use crate::rewrite::{me, pass, sign_as};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::ids::{Principal, ReplicaId, Seq, View};
use replica::message::{
    NewView, PrePrepare, Prepare, PreparedProof, Signed, ViewChange, WireMessage, batch_digest,
};
use replica::node::{InterceptContext, Interceptor};
use std::time::Duration;

pub(crate) struct BadViewChange {
    rng: ChaCha8Rng,
}

impl BadViewChange {
    pub(crate) fn new(seed: u64) -> BadViewChange {
        BadViewChange {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn corrupt_view_change(&mut self, vc: ViewChange, ctx: &InterceptContext<'_>) -> ViewChange {
        let omit = !vc.prepared.is_empty() && self.rng.random_bool(0.5);
        if omit {
            return ViewChange {
                prepared: Vec::new(),
                ..vc
            };
        }
        let forged = self.forged_certificate(&vc, ctx);
        let mut prepared: Vec<PreparedProof> = vc
            .prepared
            .iter()
            .filter(|p| p.pre_prepare.body.seq != forged.pre_prepare.body.seq)
            .cloned()
            .collect();
        prepared.push(forged);
        prepared.sort_by_key(|p| p.pre_prepare.body.seq);
        ViewChange { prepared, ..vc }
    }

    /// A certificate for a batch that did not prepare: the first prepared batch (or a null
    /// request above the checkpoint) with one request dropped or a request appended.
    fn forged_certificate(&mut self, vc: &ViewChange, ctx: &InterceptContext<'_>) -> PreparedProof {
        let n = ctx.config.replicas.len();
        let (view, seq, mut batch) = match vc.prepared.first() {
            Some(p) => (
                p.pre_prepare.body.view,
                p.pre_prepare.body.seq,
                p.pre_prepare.body.batch.clone(),
            ),
            None => (
                View(vc.new_view.0.saturating_sub(1)),
                Seq(vc.stable_seq.0 + 1),
                Vec::new(),
            ),
        };
        if batch.is_empty() {
            // Reassign a request this replica saw elsewhere, if it holds any certificate.
            if let Some(request) = vc
                .prepared
                .iter()
                .flat_map(|p| &p.pre_prepare.body.batch)
                .next()
            {
                batch.push(request.clone());
            }
        } else {
            let drop = self.rng.random_range(0..batch.len());
            batch.remove(drop);
        }
        let digest = batch_digest(&batch);
        let primary = view.primary(n);
        let body = PrePrepare {
            view,
            seq,
            digest,
            batch,
        };
        let vote = Prepare { view, seq, digest };
        let (pre_prepare, prepares) = if self.rng.random_bool(0.5) {
            // Claims the real primary and a full quorum of backups: signatures do not verify.
            let pre_prepare = sign_as(body, Principal::Replica(primary), ctx.key);
            let prepares = (0..n as u32)
                .map(ReplicaId)
                .filter(|r| *r != primary)
                .map(|r| sign_as(vote, Principal::Replica(r), ctx.key))
                .collect();
            (pre_prepare, prepares)
        } else {
            // Honestly signed by us alone: not a certificate (wrong primary or no quorum).
            (
                sign_as(body, me(ctx), ctx.key),
                vec![sign_as(vote, me(ctx), ctx.key)],
            )
        };
        PreparedProof {
            pre_prepare,
            prepares,
        }
    }

    fn corrupt_new_view(&mut self, nv: NewView, ctx: &InterceptContext<'_>) -> NewView {
        let mut bodies: Vec<PrePrepare> = nv.pre_prepares.iter().map(|p| p.body.clone()).collect();
        let non_null: Vec<usize> = (0..bodies.len())
            .filter(|i| !bodies[*i].batch.is_empty())
            .collect();
        let reassign = bodies.len() >= 2 && !non_null.is_empty() && self.rng.random_bool(0.5);
        if reassign {
            // Move a prepared batch to another sequence number (a swap, so none is lost).
            let a = non_null[self.rng.random_range(0..non_null.len())];
            let b = (a + 1 + self.rng.random_range(0..bodies.len() - 1)) % bodies.len();
            let (batch_a, batch_b) = (bodies[a].batch.clone(), bodies[b].batch.clone());
            bodies[a].batch = batch_b;
            bodies[b].batch = batch_a;
        } else if let Some(&i) = non_null.first() {
            // Drop a prepared request: its sequence number becomes a null request.
            bodies[i].batch.clear();
        } else if !bodies.is_empty() {
            // Only null requests to re-issue: leave one out.
            bodies.pop();
        } else {
            // Nothing to re-issue: invent a batch above the checkpoint.
            let first = nv.view_changes.iter().map(|vc| vc.body.stable_seq).max();
            bodies.push(PrePrepare {
                view: nv.view,
                seq: Seq(first.unwrap_or_default().0 + 1),
                digest: batch_digest(&[]),
                batch: Vec::new(),
            });
        }
        let pre_prepares = bodies
            .into_iter()
            .map(|mut body| {
                body.digest = batch_digest(&body.batch);
                sign_as(body, me(ctx), ctx.key)
            })
            .collect();
        NewView { pre_prepares, ..nv }
    }

    fn corrupt(&mut self, message: WireMessage, ctx: &InterceptContext<'_>) -> WireMessage {
        match message {
            WireMessage::ViewChange(vc) if vc.signer == me(ctx) => {
                let body = self.corrupt_view_change(vc.body, ctx);
                WireMessage::ViewChange(sign_as(body, me(ctx), ctx.key))
            }
            WireMessage::NewView(nv) if nv.signer == me(ctx) => {
                let body = self.corrupt_new_view(nv.body, ctx);
                WireMessage::NewView(Signed::sign(body, me(ctx), ctx.key))
            }
            other => other,
        }
    }
}

impl Interceptor for BadViewChange {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match effect {
            Effect::Broadcast(message) => pass(Effect::Broadcast(self.corrupt(message, ctx))),
            Effect::Send { to, message } => pass(Effect::Send {
                to,
                message: self.corrupt(message, ctx),
            }),
            other => pass(other),
        }
    }
}
