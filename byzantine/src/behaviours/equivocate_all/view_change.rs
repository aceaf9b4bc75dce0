//! VIEW-CHANGEs told two ways: the seeded deceived part of the peers gets one that is still
//! valid under this replica's own signature but claims less: the genesis checkpoint instead
//! of the stable one (it needs no proof), or, at genesis, fewer prepared certificates. Both
//! are things an honest replica could have said, so each side takes its VIEW-CHANGE, and the
//! new primary's choice of what to carry over depends on which one it holds.

use crate::rewrite::{MEMORY_CAP, deceived_part, me, now, peers, sign_as};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::ids::{ReplicaId, Seq, View};
use replica::message::{Signed, ViewChange, WireMessage};
use replica::node::InterceptContext;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

struct Split {
    /// `None` when there is nothing less to claim (no checkpoint, nothing prepared).
    alternate: Option<Signed<ViewChange>>,
    deceived: BTreeSet<ReplicaId>,
}

#[derive(Default)]
pub(super) struct ViewChanges {
    splits: BTreeMap<View, Split>,
}

impl ViewChanges {
    /// The real VIEW-CHANGE to each of `recipients`, or its alternate to the deceived part.
    pub fn split(
        &mut self,
        real: Signed<ViewChange>,
        recipients: Vec<ReplicaId>,
        rng: &mut ChaCha8Rng,
        ctx: &InterceptContext<'_>,
    ) -> Vec<(Duration, Effect)> {
        let view = real.body.new_view;
        if !self.splits.contains_key(&view) {
            if self.splits.len() >= MEMORY_CAP {
                self.splits.pop_first();
            }
            let deceived = deceived_part(peers(ctx), rng);
            let window = ctx.config.watermark_window;
            let alternate =
                conflicting(&real.body, window, rng).map(|b| sign_as(b, me(ctx), ctx.key));
            self.splits.insert(
                view,
                Split {
                    alternate,
                    deceived,
                },
            );
        }
        let split = self.splits.get(&view);
        recipients
            .into_iter()
            .map(|to| {
                let told = split
                    .filter(|s| s.deceived.contains(&to))
                    .and_then(|s| s.alternate.clone())
                    .unwrap_or_else(|| real.clone());
                now(Effect::Send {
                    to,
                    message: WireMessage::ViewChange(told),
                })
            })
            .collect()
    }
}

/// A VIEW-CHANGE for the same view that claims less than `vc`, or `None` if it claims nothing.
pub(super) fn conflicting(
    vc: &ViewChange,
    window: u64,
    rng: &mut ChaCha8Rng,
) -> Option<ViewChange> {
    if vc.stable_seq > Seq(0) {
        // The genesis checkpoint is always provable; certificates beyond its window must go.
        let prepared = vc
            .prepared
            .iter()
            .filter(|p| p.pre_prepare.body.seq.0 <= window)
            .cloned()
            .collect();
        return Some(ViewChange {
            new_view: vc.new_view,
            stable_seq: Seq(0),
            checkpoint_proof: Vec::new(),
            prepared,
        });
    }
    if vc.prepared.is_empty() {
        return None;
    }
    // Drop a seeded, non-empty subset of the prepared certificates.
    let always = rng.random_range(0..vc.prepared.len());
    let prepared = vc
        .prepared
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != always && rng.random_bool(0.5))
        .map(|(_, p)| p.clone())
        .collect();
    Some(ViewChange {
        prepared,
        ..vc.clone()
    })
}
