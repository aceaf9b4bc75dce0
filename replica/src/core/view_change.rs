//! View change: VIEW-CHANGE, NEW-VIEW, and the timers that start them.

use super::{Core, Stable, Status, Timer};
use crate::digest::Digest;
use crate::events::ReplicaEvent;
use crate::ids::{Principal, ReplicaId, Seq, View};
use crate::message::{
    MessageKind, NewView, PrePrepare, PreparedProof, Request, Signed, ViewChange, WireMessage,
    batch_digest,
};
use crate::verify::RejectReason;
use std::collections::{BTreeMap, BTreeSet};

/// What a NEW-VIEW must re-issue, computed identically by the new primary and every backup.
struct Reissue {
    /// The highest stable checkpoint among the VIEW-CHANGEs, with its proof.
    min_seq: Seq,
    batches: Vec<(Seq, Digest, Vec<Signed<Request>>)>,
}

impl Core {
    pub(super) fn on_view_change_timer(&mut self) {
        self.view_change_timer_running = false;
        if self.status == Status::Normal && (self.pending.is_empty() || self.is_primary()) {
            return;
        }
        if self.status == Status::Normal && self.fetching.is_some() {
            // We are behind and catching up: the slowness is ours, not the primary's.
            self.restart_view_change_timer();
            return;
        }
        match self.status {
            Status::Normal => self.suspect_primary(),
            Status::ViewChanging => self.start_view_change(self.view.next()),
        }
    }

    pub(super) fn start_view_change(&mut self, target: View) {
        if target <= self.view {
            return;
        }
        let from = self.view;
        self.view = target;
        self.status = Status::ViewChanging;
        self.proposal_queue.clear();
        self.proposed.clear();
        let stable_seq = self.stable.seq;
        let view_change = self.sign(ViewChange {
            new_view: target,
            stable_seq,
            checkpoint_proof: self.stable.proof.clone(),
            prepared: self
                .prepared_certs
                .range(stable_seq.next()..)
                .map(|(_, p)| p.clone())
                .collect(),
        });
        self.persist(WireMessage::ViewChange(view_change.clone()));
        self.broadcast(WireMessage::ViewChange(view_change.clone()));
        self.view_changes.insert(self.params.id, view_change);
        self.event(ReplicaEvent::ViewChangeStarted { from, view: target });
        self.view_change_timer_running = false;
        self.cancel_timer(Timer::ViewChange);
        self.await_new_view();
        self.try_new_view(target);
    }

    /// Once 2f+1 replicas asked for our target view, wait for its NEW-VIEW; if it does not come,
    /// the next view is tried, with twice the patience. A replica that alone wants a new view
    /// (it is cut off) waits without moving further ahead of the others (Castro & Liskov 4.5.2).
    fn await_new_view(&mut self) {
        if self.status != Status::ViewChanging || self.view_change_timer_running {
            return;
        }
        let asking = self
            .view_changes
            .values()
            .filter(|vc| vc.body.new_view == self.view)
            .count();
        if asking >= self.quorum() {
            self.view_change_timer_running = true;
            self.set_timer(Timer::ViewChange, self.view_change_timeout_ms);
            self.view_change_timeout_ms =
                (self.view_change_timeout_ms * 2).min(self.params.timeouts.max_view_change_ms);
        }
    }

    pub(super) fn on_view_change(&mut self, view_change: Signed<ViewChange>) {
        let Some(from) = view_change.replica() else {
            return;
        };
        let signer = view_change.signer;
        if !self.valid_view_change(&view_change) {
            return self.reject(
                RejectReason::InvalidViewChange,
                MessageKind::ViewChange,
                signer,
            );
        }
        let target = view_change.body.new_view;
        if from == self.params.id {
            // Our own, replayed from the log after a restart.
            if target > self.view {
                self.view = target;
                self.status = Status::ViewChanging;
            }
            self.view_changes.insert(from, view_change);
            return;
        }
        if target < self.view || (target == self.view && self.status == Status::Normal) {
            self.forward_new_view(signer);
            return self.reject(RejectReason::StaleView, MessageKind::ViewChange, signer);
        }
        let newer = self
            .view_changes
            .get(&from)
            .is_none_or(|vc| vc.body.new_view < target);
        if !newer {
            return;
        }
        self.view_changes.insert(from, view_change);
        // f+1 replicas (so at least one honest) want a higher view: join the smallest of them.
        let higher: Vec<View> = self
            .view_changes
            .iter()
            .filter(|(r, vc)| **r != self.params.id && vc.body.new_view > self.view)
            .map(|(_, vc)| vc.body.new_view)
            .collect();
        if higher.len() >= self.weak_quorum()
            && let Some(smallest) = higher.iter().min().copied()
        {
            self.start_view_change(smallest);
        }
        self.await_new_view();
        self.try_new_view(target);
    }

    /// The new primary sends NEW-VIEW once it holds 2f+1 VIEW-CHANGEs for its view.
    fn try_new_view(&mut self, view: View) {
        if self.status != Status::ViewChanging
            || self.view != view
            || self.primary_of(view) != self.params.id
        {
            return;
        }
        let chosen: Vec<Signed<ViewChange>> = self
            .view_changes
            .values()
            .filter(|vc| vc.body.new_view == view)
            .take(self.quorum())
            .cloned()
            .collect();
        if chosen.len() < self.quorum() {
            return;
        }
        let reissue = self.reissue(&chosen);
        let pre_prepares = reissue
            .batches
            .into_iter()
            .map(|(seq, digest, batch)| {
                self.sign(PrePrepare {
                    view,
                    seq,
                    digest,
                    batch,
                })
            })
            .collect();
        let new_view = self.sign(NewView {
            view,
            view_changes: chosen,
            pre_prepares,
        });
        self.broadcast(WireMessage::NewView(new_view.clone()));
        for pre_prepare in &new_view.body.pre_prepares {
            let body = &pre_prepare.body;
            self.sent(MessageKind::PrePrepare, body.view, body.seq, body.digest);
        }
        self.enter_new_view(new_view);
    }

    pub(super) fn on_new_view(&mut self, new_view: Signed<NewView>) {
        let signer = new_view.signer;
        let view = new_view.body.view;
        if new_view.replica() != Some(self.primary_of(view)) {
            return self.reject(RejectReason::NotFromPrimary, MessageKind::NewView, signer);
        }
        let already_in = view == self.view
            && self.status == Status::Normal
            && (self.new_view.is_some() || view == View(0));
        if view < self.view || already_in {
            return;
        }
        if !self.valid_new_view(&new_view) {
            return self.reject(
                RejectReason::InvalidViewChange,
                MessageKind::NewView,
                signer,
            );
        }
        self.enter_new_view(new_view);
    }

    fn enter_new_view(&mut self, new_view: Signed<NewView>) {
        let view = new_view.body.view;
        self.persist(WireMessage::NewView(new_view.clone()));
        self.view = view;
        self.status = Status::Normal;
        self.view_changes.retain(|_, vc| vc.body.new_view > view);
        let reissue = self.reissue(&new_view.body.view_changes);
        // Adopt the chosen stable checkpoint if we hold its state; otherwise fetch it.
        if reissue.min_seq > self.stable.seq {
            let proof_holder = new_view
                .body
                .view_changes
                .iter()
                .find(|vc| vc.body.stable_seq == reissue.min_seq);
            match (self.checkpoint_states.get(&reissue.min_seq), proof_holder) {
                (Some(state), Some(vc))
                    if state.digest()
                        == self
                            .valid_checkpoint_proof(reissue.min_seq, &vc.body.checkpoint_proof)
                            .unwrap_or_default() =>
                {
                    let stable = Stable {
                        seq: reissue.min_seq,
                        digest: state.digest(),
                        proof: vc.body.checkpoint_proof.clone(),
                        state: state.clone(),
                    };
                    self.make_stable(stable);
                }
                _ => self.start_state_transfer(reissue.min_seq),
            }
        }
        let max_seq = new_view
            .body
            .pre_prepares
            .iter()
            .map(|p| p.body.seq)
            .max()
            .unwrap_or(reissue.min_seq);
        self.log.drop_uncommitted_above(max_seq);
        self.new_view = Some(new_view.clone());
        self.proposal_queue.clear();
        self.proposed.clear();
        self.next_seq = max_seq.max(self.last_executed).next();
        self.event(ReplicaEvent::ViewChangeCompleted {
            view,
            primary: self.primary_of(view),
        });
        for pre_prepare in new_view.body.pre_prepares {
            if self.in_window(pre_prepare.body.seq) {
                self.log.slot(pre_prepare.body.seq, view);
                self.accept_pre_prepare(pre_prepare);
            }
        }
        self.view_change_timer_running = false;
        self.cancel_timer(Timer::ViewChange);
        let waiting: Vec<Signed<Request>> = self.pending.values().cloned().collect();
        if self.is_primary() {
            for request in waiting {
                self.enqueue(request);
            }
            self.try_propose();
        } else {
            let primary = self.primary();
            for request in waiting {
                self.send(primary, WireMessage::Request(request));
            }
            self.ensure_view_change_timer();
        }
        // Suspicions of this view may have come before its NEW-VIEW.
        self.leave_view_if_suspected();
    }

    /// Sends the NEW-VIEW of our view to a peer that still speaks from an older view (once per
    /// peer and view), so a replica that missed it — or restarted — can catch up.
    pub(super) fn forward_new_view(&mut self, to: Principal) {
        let Principal::Replica(peer) = to else { return };
        if self.status != Status::Normal || peer == self.params.id {
            return;
        }
        let Some(new_view) = self.new_view.clone() else {
            return;
        };
        if self.new_view_forwarded.insert((peer, self.view)) {
            self.send(peer, WireMessage::NewView(new_view));
        }
    }

    /// Peers speak from a view we have not entered: we missed its NEW-VIEW (cut off, or
    /// restarted). Once f+1 of them do (one is honest), ask for the lowest such view; the peers
    /// already in it answer our VIEW-CHANGE with its NEW-VIEW.
    pub(super) fn note_future_view(&mut self, signer: Principal, view: View) {
        let Principal::Replica(peer) = signer else {
            return;
        };
        if view <= self.view || peer == self.params.id {
            return;
        }
        let seen = self.future_views.entry(peer).or_default();
        *seen = (*seen).max(view);
        let current = self.view;
        let ahead: Vec<View> = self
            .future_views
            .values()
            .copied()
            .filter(|v| *v > current)
            .collect();
        if ahead.len() >= self.weak_quorum()
            && let Some(lowest) = ahead.into_iter().min()
        {
            self.future_views.clear();
            self.start_view_change(lowest);
        }
    }

    fn valid_view_change(&self, view_change: &Signed<ViewChange>) -> bool {
        let vc = &view_change.body;
        if self
            .valid_checkpoint_proof(vc.stable_seq, &vc.checkpoint_proof)
            .is_none()
        {
            return false;
        }
        let mut seqs = BTreeSet::new();
        let window = self.params.watermark_window;
        vc.prepared.iter().all(|proof| {
            let pp = &proof.pre_prepare.body;
            seqs.insert(pp.seq)
                && pp.view < vc.new_view
                && pp.seq > vc.stable_seq
                && pp.seq.0 <= vc.stable_seq.0 + window
                && self.valid_prepared_proof(proof)
        })
    }

    fn valid_prepared_proof(&self, proof: &PreparedProof) -> bool {
        let pp = &proof.pre_prepare.body;
        let primary = self.primary_of(pp.view);
        if proof.pre_prepare.replica() != Some(primary) || batch_digest(&pp.batch) != pp.digest {
            return false;
        }
        let signers: BTreeSet<ReplicaId> = proof
            .prepares
            .iter()
            .filter(|p| {
                p.body.view == pp.view && p.body.seq == pp.seq && p.body.digest == pp.digest
            })
            .filter_map(|p| p.replica())
            .filter(|r| *r != primary && (r.0 as usize) < self.n)
            .collect();
        signers.len() >= self.quorum() - 1
    }

    fn valid_new_view(&self, new_view: &Signed<NewView>) -> bool {
        let nv = &new_view.body;
        let signers: BTreeSet<ReplicaId> = nv
            .view_changes
            .iter()
            .filter_map(|vc| vc.replica())
            .collect();
        if signers.len() != nv.view_changes.len()
            || signers.len() < self.quorum()
            || nv
                .view_changes
                .iter()
                .any(|vc| vc.body.new_view != nv.view || !self.valid_view_change(vc))
        {
            return false;
        }
        let expected = self.reissue(&nv.view_changes).batches;
        expected.len() == nv.pre_prepares.len()
            && expected
                .iter()
                .zip(&nv.pre_prepares)
                .all(|((seq, digest, _), pp)| {
                    pp.body.view == nv.view
                        && pp.body.seq == *seq
                        && pp.body.digest == *digest
                        && pp.replica() == Some(self.primary_of(nv.view))
                })
    }

    /// PBFT's rule: from the highest stable checkpoint among the VIEW-CHANGEs to the highest
    /// prepared sequence number, re-issue the batch prepared in the highest view, or a null
    /// request where none prepared.
    fn reissue(&self, view_changes: &[Signed<ViewChange>]) -> Reissue {
        let min_seq = view_changes
            .iter()
            .map(|vc| vc.body.stable_seq)
            .max()
            .unwrap_or_default();
        let mut best: BTreeMap<Seq, &PreparedProof> = BTreeMap::new();
        for proof in view_changes.iter().flat_map(|vc| &vc.body.prepared) {
            let pp = &proof.pre_prepare.body;
            if pp.seq <= min_seq {
                continue;
            }
            let better = best.get(&pp.seq).is_none_or(|current| {
                let c = &current.pre_prepare.body;
                (pp.view, std::cmp::Reverse(pp.digest)) > (c.view, std::cmp::Reverse(c.digest))
            });
            if better {
                best.insert(pp.seq, proof);
            }
        }
        let max_seq = best.keys().next_back().copied().unwrap_or(min_seq);
        let batches = (min_seq.0 + 1..=max_seq.0)
            .map(Seq)
            .map(|seq| match best.get(&seq) {
                Some(proof) => (
                    seq,
                    proof.pre_prepare.body.digest,
                    proof.pre_prepare.body.batch.clone(),
                ),
                None => (seq, batch_digest(&[]), Vec::new()),
            })
            .collect();
        Reissue { min_seq, batches }
    }
}
