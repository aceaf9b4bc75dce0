//! Checkpoints, garbage collection and state transfer.

use super::{Core, Effect, Snapshot, Stable, Timer, WalRecord};
use crate::digest::Digest;
use crate::events::ReplicaEvent;
use crate::ids::{Principal, ReplicaId, Seq};
use crate::message::{
    Checkpoint, CommittedProof, FetchState, MessageKind, Signed, StateTransfer, WireMessage,
};
use crate::service::ServiceState;
use crate::verify::RejectReason;
use std::collections::BTreeSet;

impl Core {
    pub(super) fn on_checkpoint(&mut self, checkpoint: Signed<Checkpoint>) {
        let Some(from) = checkpoint.replica() else {
            return;
        };
        let seq = checkpoint.body.seq;
        if !seq.0.is_multiple_of(self.params.checkpoint_interval) {
            return self.reject(
                RejectReason::Misdirected,
                MessageKind::Checkpoint,
                checkpoint.signer,
            );
        }
        if seq <= self.stable.seq {
            return;
        }
        if seq > self.high_watermark() {
            // We are far behind if f+1 replicas (one of them honest) are beyond our window.
            let claim = self.checkpoint_claims.entry(from).or_default();
            *claim = (*claim).max(seq);
            let high = self.high_watermark();
            let ahead: Vec<Seq> = self
                .checkpoint_claims
                .values()
                .copied()
                .filter(|s| *s > high)
                .collect();
            if ahead.len() >= self.weak_quorum() {
                let target = ahead.into_iter().min().unwrap_or(seq);
                self.start_state_transfer(target);
            }
            return;
        }
        let votes = self.checkpoint_votes.entry(seq).or_default();
        match votes.get(&from) {
            Some(existing) if existing.body == checkpoint.body => return,
            Some(_) => {
                return self.reject(
                    RejectReason::Conflicting,
                    MessageKind::Checkpoint,
                    checkpoint.signer,
                );
            }
            None => {}
        }
        votes.insert(from, checkpoint.clone());
        self.persist(WireMessage::Checkpoint(checkpoint));
        self.check_stable(seq);
    }

    fn check_stable(&mut self, seq: Seq) {
        let Some(votes) = self.checkpoint_votes.get(&seq) else {
            return;
        };
        let mut digests: Vec<Digest> = votes.values().map(|c| c.body.state_digest).collect();
        digests.sort();
        let quorum = self.quorum();
        let Some(digest) = digests
            .iter()
            .copied()
            .find(|d| digests.iter().filter(|x| *x == d).count() >= quorum)
        else {
            return;
        };
        let proof: Vec<_> = votes
            .values()
            .filter(|c| c.body.state_digest == digest)
            .take(quorum)
            .cloned()
            .collect();
        match self.checkpoint_states.get(&seq) {
            Some(state) if state.digest() == digest => {
                let state = state.clone();
                self.make_stable(Stable {
                    seq,
                    digest,
                    proof,
                    state,
                });
            }
            // Behind (never executed `seq`) or diverged: fetch the certified state.
            _ => self.start_state_transfer(seq),
        }
    }

    /// Moves the low watermark to `stable` and forgets everything at or below it.
    pub(super) fn make_stable(&mut self, stable: Stable) {
        let seq = stable.seq;
        if seq <= self.stable.seq {
            return;
        }
        self.stable = stable;
        self.log.truncate_through(seq);
        self.prepared_certs = self.prepared_certs.split_off(&seq.next());
        self.checkpoint_states = self.checkpoint_states.split_off(&seq.next());
        self.checkpoint_votes = self.checkpoint_votes.split_off(&seq.next());
        let high = self.high_watermark();
        self.checkpoint_claims.retain(|_, s| *s > high);
        let current_view = self.view;
        let latest_new_view = self.new_view.as_ref().map(|nv| nv.body.view);
        self.wal_tail.retain(|record| match record {
            WalRecord::Message(WireMessage::ViewChange(vc)) => vc.body.new_view >= current_view,
            WalRecord::Message(WireMessage::NewView(nv)) => Some(nv.body.view) == latest_new_view,
            WalRecord::Message(m) => m.seq().is_some_and(|s| s > seq),
        });
        self.event(ReplicaEvent::CheckpointStable {
            seq,
            state_digest: self.stable.digest.to_hex(),
        });
        if !self.replaying {
            self.out.push(Effect::StableCheckpoint {
                snapshot: Snapshot {
                    seq,
                    view: self.view,
                    state: self.stable.state.clone(),
                    checkpoint_proof: self.stable.proof.clone(),
                },
                retained: self.wal_tail.clone(),
            });
        }
        self.try_propose();
    }

    /// Whether `proof` is 2f+1 CHECKPOINTs from distinct replicas for `seq` with one digest.
    pub(super) fn valid_checkpoint_proof(
        &self,
        seq: Seq,
        proof: &[Signed<Checkpoint>],
    ) -> Option<Digest> {
        if seq == Seq(0) {
            return proof
                .is_empty()
                .then(|| crate::service::ServiceState::default().digest());
        }
        let digest = proof.first()?.body.state_digest;
        let signers: BTreeSet<ReplicaId> = proof
            .iter()
            .filter(|c| c.body.seq == seq && c.body.state_digest == digest)
            .filter_map(|c| c.replica())
            .filter(|r| (r.0 as usize) < self.n)
            .collect();
        (signers.len() >= self.quorum() && signers.len() == proof.len()).then_some(digest)
    }

    pub(super) fn start_state_transfer(&mut self, target: Seq) {
        if self.fetching.is_some_and(|t| t >= target) {
            return;
        }
        self.fetching = Some(target);
        self.broadcast(WireMessage::FetchState(self.sign(FetchState {
            have: self.last_executed,
        })));
        self.set_timer(
            Timer::StateTransfer,
            self.params.timeouts.state_transfer_retry_ms,
        );
    }

    pub(super) fn on_state_transfer_timer(&mut self) {
        match self.fetching {
            Some(target) if self.last_executed < target => {
                self.broadcast(WireMessage::FetchState(self.sign(FetchState {
                    have: self.last_executed,
                })));
                self.set_timer(
                    Timer::StateTransfer,
                    self.params.timeouts.state_transfer_retry_ms,
                );
            }
            _ => self.fetching = None,
        }
    }

    /// Answers a replica that is behind: with the stable checkpoint when it is behind that,
    /// and in any case with the committed certificates after the point it reached, so a replica
    /// that missed one message of the last requests catches up even when no more traffic
    /// comes to make a new checkpoint.
    pub(super) fn on_fetch_state(&mut self, fetch: Signed<FetchState>) {
        let Some(from) = fetch.replica() else { return };
        let have = fetch.body.have;
        if self.last_executed <= have
            || from == self.params.id
            || !self.fetches_answered.insert(from)
        {
            return;
        }
        let send_checkpoint = self.stable.seq > have;
        let mut committed = Vec::new();
        let mut seq = if send_checkpoint {
            self.stable.seq.next()
        } else {
            have.next()
        };
        while seq <= self.last_executed {
            match self
                .log
                .get(seq)
                .and_then(|slot| slot.committed_proof(self.quorum()))
            {
                Some(proof) => committed.push(proof),
                None => break,
            }
            seq = seq.next();
        }
        if !send_checkpoint && committed.is_empty() {
            return;
        }
        let (checkpoint_proof, state) = if send_checkpoint {
            (self.stable.proof.clone(), self.stable.state.clone())
        } else {
            (Vec::new(), ServiceState::default())
        };
        let transfer = self.sign(StateTransfer {
            checkpoint_proof,
            state,
            committed,
        });
        self.send(from, WireMessage::StateTransfer(transfer));
    }

    pub(super) fn on_state_transfer(&mut self, transfer: Signed<StateTransfer>) {
        let Some(source) = transfer.replica() else {
            return;
        };
        let signer = transfer.signer;
        let StateTransfer {
            checkpoint_proof,
            state,
            committed,
        } = transfer.body;
        if checkpoint_proof.is_empty() {
            // Only committed certificates: each proves itself.
            if committed.is_empty() {
                return self.reject(
                    RejectReason::InvalidStateTransfer,
                    MessageKind::StateTransfer,
                    signer,
                );
            }
            return self.apply_committed_proofs(committed, signer);
        }
        let Some(seq) = checkpoint_proof.first().map(|c| c.body.seq) else {
            return;
        };
        let certified = self.valid_checkpoint_proof(seq, &checkpoint_proof);
        if certified.is_none() || certified != Some(state.digest()) {
            return self.reject(
                RejectReason::InvalidStateTransfer,
                MessageKind::StateTransfer,
                signer,
            );
        }
        if seq > self.last_executed {
            let from_seq = self.last_executed;
            self.service = state.clone();
            self.last_executed = seq;
            self.checkpoint_states.insert(seq, state.clone());
            self.pending
                .retain(|client, request| !state.is_done(*client, request.body.timestamp));
            self.event(ReplicaEvent::StateTransfer {
                from_seq,
                to_seq: seq,
                source,
            });
            self.restart_view_change_timer();
            let digest = state.digest();
            self.make_stable(Stable {
                seq,
                digest,
                proof: checkpoint_proof,
                state,
            });
        }
        self.apply_committed_proofs(committed, signer);
    }

    /// Commits and executes the certificates that continue from what this replica executed.
    fn apply_committed_proofs(&mut self, committed: Vec<CommittedProof>, signer: Principal) {
        for proof in committed {
            if proof.pre_prepare.body.seq != self.last_executed.next() {
                continue;
            }
            // The log holds slots inside the watermarks only: certificates beyond the window
            // wait for the checkpoint that moves it (or a transfer that carries one).
            if proof.pre_prepare.body.seq > self.high_watermark() {
                break;
            }
            if !self.valid_committed_proof(&proof) {
                return self.reject(
                    RejectReason::InvalidStateTransfer,
                    MessageKind::StateTransfer,
                    signer,
                );
            }
            let seq = proof.pre_prepare.body.seq;
            let view = proof.pre_prepare.body.view;
            let slot = self.log.slot(seq, view);
            if slot.committed.is_none() {
                slot.committed = Some(proof.pre_prepare.clone());
                self.event(ReplicaEvent::Commit {
                    view,
                    seq,
                    digest: proof.pre_prepare.body.digest.to_hex(),
                    requests: proof
                        .pre_prepare
                        .body
                        .batch
                        .iter()
                        .map(|r| r.id())
                        .collect(),
                });
            }
            self.execute_ready();
        }
        if self.fetching.is_some_and(|t| self.last_executed >= t) {
            self.fetching = None;
            self.cancel_timer(Timer::StateTransfer);
        }
    }

    fn valid_committed_proof(&self, proof: &CommittedProof) -> bool {
        let pp = &proof.pre_prepare.body;
        if proof.pre_prepare.replica() != Some(self.primary_of(pp.view)) {
            return false;
        }
        let signers: BTreeSet<ReplicaId> = proof
            .commits
            .iter()
            .filter(|c| {
                c.body.view == pp.view && c.body.seq == pp.seq && c.body.digest == pp.digest
            })
            .filter_map(|c| c.replica())
            .filter(|r| (r.0 as usize) < self.n)
            .collect();
        signers.len() >= self.quorum()
    }
}
