//! `amnesia-probe`: as primary, asks a backup that came back for a second opinion.
//!
//! A replica restarted from its write-ahead log must remember every vote it sent before the
//! crash (Castro & Liskov 4.6: PREPAREs and COMMITs are logged before they are sent). Honest
//! primaries never ask twice, so a log that silently loses records goes unnoticed. This
//! primary keeps track of how far each backup has voted; when one asks for state
//! (FETCH-STATE) from below that point, as a restarted replica does at once, the primary sends
//! it alone, for every sequence number it had voted on above what it still has, a conflicting
//! PRE-PREPARE (another batch, correctly signed) in the same view. A backup that remembers its
//! votes refuses each one; one that forgot them votes again, for another digest, and the
//! no-amnesia oracle sees the contradiction in its `sent` events. Everything else it does is
//! honest.

use crate::rewrite::{MEMORY_CAP, conflicting_batch, me, now, pass, sign_as};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replica::core::{Effect, Input};
use replica::ids::{ReplicaId, Seq, View};
use replica::message::{PrePrepare, Signed, WireMessage, batch_digest};
use replica::node::{InterceptContext, Interceptor};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub(crate) struct AmnesiaProbe {
    rng: ChaCha8Rng,
    /// What this replica proposed as primary, by (view, seq).
    proposed: BTreeMap<(View, Seq), Signed<PrePrepare>>,
    /// Per backup, the highest sequence number it voted on (PREPARE or COMMIT), in any view.
    voted_up_to: BTreeMap<ReplicaId, Seq>,
    /// Probes waiting to go out: the core is not asked, the next outbound call carries them.
    probes: Vec<(ReplicaId, Signed<PrePrepare>)>,
    /// Slots already probed per backup: a backup re-asks for state every retransmission tick
    /// while it is behind, and one probe per slot is enough to make it contradict itself.
    probed: BTreeSet<(ReplicaId, View, Seq)>,
}

impl AmnesiaProbe {
    pub(crate) fn new(seed: u64) -> AmnesiaProbe {
        AmnesiaProbe {
            rng: ChaCha8Rng::seed_from_u64(seed),
            proposed: BTreeMap::new(),
            voted_up_to: BTreeMap::new(),
            probes: Vec::new(),
            probed: BTreeSet::new(),
        }
    }

    fn remember_vote(&mut self, from: ReplicaId, seq: Seq) {
        let highest = self.voted_up_to.entry(from).or_insert(seq);
        *highest = (*highest).max(seq);
    }

    /// A backup that voted up to M asks for state from `have` < M: it lost what lies between
    /// (or never executed it). Conflicting proposals for those slots go to it alone.
    fn probe(&mut self, from: ReplicaId, have: Seq, ctx: &InterceptContext<'_>) {
        let Some(&voted) = self.voted_up_to.get(&from) else {
            return;
        };
        if have >= voted || !ctx.core.is_primary() || ctx.core.in_view_change() {
            return;
        }
        let view = ctx.core.view();
        let forgotten: Vec<Signed<PrePrepare>> = self
            .proposed
            .range((view, have.next())..=(view, voted))
            .map(|(_, pp)| pp.clone())
            .collect();
        for real in forgotten {
            if !self.probed.insert((from, view, real.body.seq)) {
                continue;
            }
            if self.probed.len() > MEMORY_CAP {
                self.probed.pop_first();
            }
            let batch = conflicting_batch(&real.body.batch, &mut self.rng);
            let body = PrePrepare {
                view,
                seq: real.body.seq,
                digest: batch_digest(&batch),
                batch,
            };
            if body.digest != real.body.digest {
                self.probes.push((from, sign_as(body, me(ctx), ctx.key)));
            }
        }
    }

    fn remember_proposal(&mut self, message: &WireMessage, ctx: &InterceptContext<'_>) {
        if let WireMessage::PrePrepare(pp) = message
            && pp.signer == me(ctx)
        {
            if self.proposed.len() >= MEMORY_CAP {
                self.proposed.pop_first();
            }
            self.proposed
                .insert((pp.body.view, pp.body.seq), pp.clone());
        }
    }

    fn take_probes(&mut self) -> Vec<(Duration, Effect)> {
        self.probes
            .drain(..)
            .map(|(to, pp)| {
                now(Effect::Send {
                    to,
                    message: WireMessage::PrePrepare(pp),
                })
            })
            .collect()
    }
}

impl Interceptor for AmnesiaProbe {
    fn inbound(&mut self, input: Input, ctx: &InterceptContext<'_>) -> Vec<Input> {
        if let Input::Message(verified) = &input {
            let message = verified.message();
            match message {
                WireMessage::Prepare(p) => {
                    if let Some(from) = p.replica() {
                        self.remember_vote(from, p.body.seq);
                    }
                }
                WireMessage::Commit(c) => {
                    if let Some(from) = c.replica() {
                        self.remember_vote(from, c.body.seq);
                    }
                }
                WireMessage::FetchState(fetch) => {
                    if let Some(from) = fetch.replica() {
                        self.probe(from, fetch.body.have, ctx);
                    }
                }
                _ => {}
            }
        }
        vec![input]
    }

    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match &effect {
            Effect::Broadcast(message) | Effect::Send { message, .. } => {
                self.remember_proposal(message, ctx);
            }
            _ => {}
        }
        // Probes first: on the link to the backup they then arrive before this replica's own
        // answer to its FETCH-STATE, while its slots are still empty if it forgot them.
        let mut out = self.take_probes();
        out.extend(pass(effect));
        out
    }

    fn tick(&mut self, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        self.take_probes()
    }
}
