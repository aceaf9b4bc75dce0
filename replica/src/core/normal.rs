//! The normal case: requests, PRE-PREPARE, PREPARE, COMMIT.

use super::{Core, Status, Timer};
use crate::events::ReplicaEvent;
use crate::ids::{Principal, Seq, View};
use crate::message::{
    Commit, MessageKind, PrePrepare, Prepare, Request, Signed, WireMessage, batch_digest,
};
use crate::verify::RejectReason;

/// A client counts as active while its last request executed within this many batches.
const RECENT_CLIENT_BATCHES: u64 = 8;

/// Bytes a request adds to a PRE-PREPARE's encoding.
fn batched_size(request: &Signed<Request>) -> usize {
    postcard::experimental::serialized_size(request).unwrap_or(usize::MAX)
}

/// A PRE-PREPARE's encoding without its batch, at its largest: every varint at its widest.
fn pre_prepare_envelope() -> usize {
    let widest = Signed {
        signer: Principal::Replica(crate::ids::ReplicaId(u32::MAX)),
        body: PrePrepare {
            view: View(u64::MAX),
            seq: Seq(u64::MAX),
            digest: batch_digest(&[]),
            batch: Vec::new(),
        },
        seal: crate::message::Seal::Signature([0; crate::crypto::SIGNATURE_LENGTH]),
    };
    // The batch's length prefix grows from one byte to at most ten.
    crate::wire::encode_payload(&WireMessage::PrePrepare(widest)).len() + 9
}

/// A signed PREPARE's encoding at its largest.
fn vote_size() -> usize {
    let widest = Signed {
        signer: Principal::Replica(crate::ids::ReplicaId(u32::MAX)),
        body: Prepare {
            view: View(u64::MAX),
            seq: Seq(u64::MAX),
            digest: batch_digest(&[]),
        },
        seal: crate::message::Seal::Signature([0; crate::crypto::SIGNATURE_LENGTH]),
    };
    postcard::experimental::serialized_size(&widest).unwrap_or(usize::MAX / 4)
}

/// The most request bytes one batch may carry. A batch travels not only in its PRE-PREPARE:
/// a VIEW-CHANGE carries a prepared certificate (the PRE-PREPARE and 2f PREPAREs) for every
/// sequence number of the window, and a NEW-VIEW carries 2f+1 VIEW-CHANGEs and re-issues the
/// window's PRE-PREPAREs. All of them must fit in one frame, or a view change can never
/// complete; so the frame is shared among (2f+2) x (window + 1) certified batches, the one left
/// over paying for the checkpoint certificates and envelopes. Computed once, at `Core::new`.
pub(super) fn max_batch_bytes(params: &super::CoreParams) -> usize {
    let f = params.quorums.f;
    let copies = (2 * f + 2) * (params.watermark_window as usize + 1);
    let certificate = pre_prepare_envelope() + 2 * f * vote_size();
    (params.max_frame_bytes / copies.max(1)).saturating_sub(certificate)
}

impl Core {
    pub(super) fn on_request(&mut self, request: Signed<Request>) {
        let client = request.client();
        let timestamp = request.body.timestamp;
        // A request no batch can carry would be proposed, refused by every backup as an
        // oversized frame (or later break a VIEW-CHANGE) and proposed again by every new
        // primary: refused here by every replica alike (the verdict depends only on its size
        // and the cluster settings), so no view-change timer starts for it.
        if batched_size(&request) > self.max_batch_bytes {
            self.reject(
                RejectReason::OversizedRequest,
                MessageKind::Request,
                request.signer,
            );
            return;
        }
        if self.service.is_done(client, timestamp) {
            if let Some(result) = self.service.cached(client, timestamp).cloned() {
                self.reply(client, timestamp, result);
            }
            return;
        }
        if self
            .pending
            .get(&client)
            .is_some_and(|p| p.body.timestamp > timestamp)
        {
            self.reject(
                RejectReason::StaleRequest,
                MessageKind::Request,
                request.signer,
            );
            return;
        }
        // The client already has a request pending here (this one, received before or seen
        // in a PRE-PREPARE; or an older one not executed yet).
        let known = self.pending.contains_key(&client);
        self.pending.insert(client, request.clone());
        if self.status == Status::Normal && self.is_primary() {
            self.enqueue(request);
            self.try_propose();
        } else {
            if self.status == Status::Normal && !known {
                // The client may not have reached the primary: hand it over, and watch the
                // primary. At most once per (client, timestamp), only the client's newest (an
                // older one was refused as stale above), and only when nothing of the client's
                // is pending here: a PBFT client has one request outstanding, so a newer one
                // while an older one waits comes from a client that floods with fresh
                // timestamps (or finds this replica behind, where f+1 others executed the
                // older one and forward). Such a client costs the primary no more through the
                // backups than it does directly. What stays pending is sent again by the
                // retransmission tick (`retransmit_unfinished`) and guarded by the view-change
                // timer, and the client itself retransmits to all.
                let primary = self.primary();
                self.send(primary, WireMessage::Request(request));
            }
            self.ensure_view_change_timer();
            // Others may have suspected the primary over this request before it reached us.
            self.leave_view_if_suspected();
        }
    }

    pub(super) fn enqueue(&mut self, request: Signed<Request>) {
        let id = request.id();
        if self.proposed.contains(&id) {
            return;
        }
        // Bounded: at most a few entries per client can wait here.
        let cap = 4 * (self.pending.len() + 1)
            + self.params.max_batch * self.params.pipeline_depth as usize;
        if self.proposal_queue.len() >= cap {
            return;
        }
        self.proposed.insert(id);
        self.proposal_queue.push_back(request);
    }

    /// The primary turns queued requests into batches while the pipeline has room.
    pub(super) fn try_propose(&mut self) {
        if self.in_turn {
            return;
        }
        while self.status == Status::Normal
            && self.is_primary()
            && !self.proposal_queue.is_empty()
            && self.next_seq <= self.high_watermark()
            && self.next_seq.0.saturating_sub(self.last_executed.0 + 1) < self.params.pipeline_depth
        {
            if !self.batch_ready() {
                self.hold_batch();
                return;
            }
            let mut batch = Vec::new();
            let mut batch_bytes = 0;
            while batch.len() < self.params.max_batch {
                let Some(request) = self.proposal_queue.pop_front() else {
                    break;
                };
                let size = batched_size(&request);
                if !batch.is_empty() && batch_bytes + size > self.max_batch_bytes {
                    // The next PRE-PREPARE takes it: this one would not fit in a frame.
                    self.proposal_queue.push_front(request);
                    break;
                }
                let still_wanted = !self
                    .service
                    .is_done(request.client(), request.body.timestamp)
                    && self
                        .pending
                        .get(&request.client())
                        .is_none_or(|p| p.body.timestamp <= request.body.timestamp);
                if still_wanted {
                    batch_bytes += size;
                    batch.push(request);
                } else {
                    self.proposed.remove(&request.id());
                }
            }
            if batch.is_empty() {
                continue;
            }
            let body = PrePrepare {
                view: self.view,
                seq: self.next_seq,
                digest: batch_digest(&batch),
                batch,
            };
            let pre_prepare = self.sign(body);
            self.batch_wait_over = false;
            if self.batch_timer_running {
                self.batch_timer_running = false;
                self.cancel_timer(Timer::Batch);
            }
            self.next_seq = self.next_seq.next();
            self.broadcast(WireMessage::PrePrepare(pre_prepare.clone()));
            let body = &pre_prepare.body;
            self.sent(MessageKind::PrePrepare, body.view, body.seq, body.digest);
            self.accept_pre_prepare(pre_prepare);
        }
    }

    /// Whether to propose what is queued now: once it holds a request from at least half of
    /// the recently active clients (at once, then, for a lone client), or once the batch has
    /// been held for `batch_wait_ms`.
    fn batch_ready(&mut self) -> bool {
        if self.params.timeouts.batch_wait_ms == 0 || self.batch_wait_over {
            return true;
        }
        let horizon = self.last_executed.0.saturating_sub(RECENT_CLIENT_BATCHES);
        self.recent_clients.retain(|_, seq| seq.0 >= horizon);
        let expected = self.recent_clients.len().div_ceil(2);
        self.proposal_queue.len() >= expected.clamp(1, self.params.max_batch)
    }

    fn hold_batch(&mut self) {
        if !self.batch_timer_running {
            self.batch_timer_running = true;
            self.set_timer(Timer::Batch, self.params.timeouts.batch_wait_ms);
        }
    }

    pub(super) fn on_batch_timer(&mut self) {
        self.batch_timer_running = false;
        self.batch_wait_over = true;
        self.try_propose();
    }

    pub(super) fn on_pre_prepare(&mut self, pre_prepare: Signed<PrePrepare>) {
        let signer = pre_prepare.signer;
        let body = &pre_prepare.body;
        let reason = if pre_prepare.replica() != Some(self.primary_of(body.view)) {
            Some(RejectReason::NotFromPrimary)
        } else if body.view < self.view {
            Some(RejectReason::StaleView)
        } else if body.view > self.view || self.status != Status::Normal {
            Some(RejectReason::FutureView)
        } else if !self.in_window(body.seq) {
            Some(RejectReason::OutsideWatermarks)
        } else if body.batch.len() > self.params.max_batch
            || body.batch.iter().map(batched_size).sum::<usize>() > self.max_batch_bytes
        {
            // A faulty primary's batch over the byte bound would make VIEW-CHANGEs too large.
            Some(RejectReason::OversizedBatch)
        } else {
            None
        };
        if let Some(reason) = reason {
            let view = body.view;
            match reason {
                RejectReason::StaleView => self.forward_new_view(signer),
                RejectReason::FutureView => self.note_future_view(signer, view),
                _ => {}
            }
            return self.reject(reason, MessageKind::PrePrepare, signer);
        }
        let slot = self.log.slot(body.seq, body.view);
        match slot.digest() {
            Some(d) if d == body.digest => {
                // A retransmission: the primary lacks our votes.
                let seq = body.seq;
                self.resend_votes(seq, signer);
                return;
            }
            Some(_) => {
                return self.reject(RejectReason::Conflicting, MessageKind::PrePrepare, signer);
            }
            None => {}
        }
        if slot
            .committed
            .as_ref()
            .is_some_and(|c| c.body.digest != body.digest)
        {
            return self.reject(RejectReason::Conflicting, MessageKind::PrePrepare, signer);
        }
        if pre_prepare.replica() == Some(self.params.id) {
            self.next_seq = self.next_seq.max(body.seq.next());
        }
        self.accept_pre_prepare(pre_prepare);
    }

    /// Stores a valid pre-prepare for the current view; a backup answers with its PREPARE.
    pub(super) fn accept_pre_prepare(&mut self, pre_prepare: Signed<PrePrepare>) {
        let (view, seq, digest) = (
            pre_prepare.body.view,
            pre_prepare.body.seq,
            pre_prepare.body.digest,
        );
        for request in &pre_prepare.body.batch {
            let client = request.client();
            if !self.service.is_done(client, request.body.timestamp)
                && self
                    .pending
                    .get(&client)
                    .is_none_or(|p| p.body.timestamp < request.body.timestamp)
            {
                self.pending.insert(client, request.clone());
            }
            if self.is_primary() {
                self.proposed.insert(request.id());
            }
        }
        self.persist(WireMessage::PrePrepare(pre_prepare.clone()));
        self.log.slot(seq, view).pre_prepare = Some(pre_prepare);
        if !self.is_primary() {
            let prepare = self.sign(Prepare { view, seq, digest });
            self.persist(WireMessage::Prepare(prepare.clone()));
            self.broadcast(WireMessage::Prepare(prepare.clone()));
            self.sent(MessageKind::Prepare, view, seq, digest);
            self.log
                .slot(seq, view)
                .prepares
                .insert(self.params.id, prepare);
            self.ensure_view_change_timer();
            self.leave_view_if_suspected();
        }
        self.check_prepared(seq);
    }

    pub(super) fn on_prepare(&mut self, prepare: Signed<Prepare>) {
        let signer = prepare.signer;
        let Some(from) = prepare.replica() else {
            return;
        };
        let body = prepare.body;
        if !self.admit_vote(body.view, body.seq, MessageKind::Prepare, signer) {
            return;
        }
        if from == self.primary_of(body.view) {
            return self.reject(RejectReason::Misdirected, MessageKind::Prepare, signer);
        }
        let slot = self.log.slot(body.seq, body.view);
        match slot.prepares.get(&from) {
            Some(existing) if existing.body == body => {
                self.resend_votes(body.seq, signer);
                return;
            }
            Some(_) => return self.reject(RejectReason::Conflicting, MessageKind::Prepare, signer),
            None => {}
        }
        slot.prepares.insert(from, prepare.clone());
        self.persist(WireMessage::Prepare(prepare));
        self.check_prepared(body.seq);
    }

    pub(super) fn on_commit(&mut self, commit: Signed<Commit>) {
        let signer = commit.signer;
        let Some(from) = commit.replica() else { return };
        let body = commit.body;
        if !self.admit_vote(body.view, body.seq, MessageKind::Commit, signer) {
            return;
        }
        let slot = self.log.slot(body.seq, body.view);
        match slot.commits.get(&from) {
            Some(existing) if existing.body == body => {
                self.resend_votes(body.seq, signer);
                return;
            }
            Some(_) => return self.reject(RejectReason::Conflicting, MessageKind::Commit, signer),
            None => {}
        }
        slot.commits.insert(from, commit.clone());
        self.persist(WireMessage::Commit(commit));
        self.check_committed(body.seq);
    }

    /// Whether a PREPARE or COMMIT for `(view, seq)` from `signer` can be taken now.
    fn admit_vote(&mut self, view: View, seq: Seq, kind: MessageKind, signer: Principal) -> bool {
        let reason = if view < self.view {
            self.forward_new_view(signer);
            RejectReason::StaleView
        } else if view > self.view || self.status != Status::Normal {
            self.note_future_view(signer, view);
            RejectReason::FutureView
        } else if seq <= self.low_watermark() {
            // Already garbage collected here: late, not wrong.
            return false;
        } else if seq > self.high_watermark() {
            RejectReason::OutsideWatermarks
        } else {
            return true;
        };
        self.reject(reason, kind, signer);
        false
    }

    fn check_prepared(&mut self, seq: Seq) {
        let needed = self.quorum() - 1;
        let Some(slot) = self.log.get_mut(seq) else {
            return;
        };
        if slot.prepared {
            return;
        }
        let Some(proof) = slot.prepared_proof(needed) else {
            return;
        };
        slot.prepared = true;
        let (view, digest) = (proof.pre_prepare.body.view, proof.pre_prepare.body.digest);
        self.prepared_certs.insert(seq, proof);
        let commit = self.authenticate(Commit { view, seq, digest });
        self.persist(WireMessage::Commit(commit.clone()));
        self.broadcast(WireMessage::Commit(commit.clone()));
        self.sent(MessageKind::Commit, view, seq, digest);
        self.log
            .slot(seq, view)
            .commits
            .insert(self.params.id, commit);
        self.check_committed(seq);
    }

    fn check_committed(&mut self, seq: Seq) {
        let quorum = self.quorum();
        let Some(slot) = self.log.get_mut(seq) else {
            return;
        };
        if !slot.prepared || slot.committed.is_some() {
            return;
        }
        let Some(pre_prepare) = slot.pre_prepare.clone() else {
            return;
        };
        if slot.matching_commits(pre_prepare.body.digest).len() < quorum {
            return;
        }
        slot.committed = Some(pre_prepare.clone());
        self.event(ReplicaEvent::Commit {
            view: pre_prepare.body.view,
            seq,
            digest: pre_prepare.body.digest.to_hex(),
            requests: pre_prepare.body.batch.iter().map(|r| r.id()).collect(),
        });
        self.execute_ready();
    }

    /// A peer re-sent something we already hold: it is missing our votes for `seq`.
    /// Answered at most once per peer and slot between retransmission ticks: an answer is
    /// itself a duplicate at its receiver, and must not start an echo between two replicas.
    pub(super) fn resend_votes(&mut self, seq: Seq, to: Principal) {
        let Principal::Replica(to) = to else { return };
        if self.replaying || !self.vote_resends.insert((to, seq)) {
            return;
        }
        let Some(slot) = self.log.get(seq) else {
            return;
        };
        let me = self.params.id;
        let mut messages = Vec::new();
        if let Some(pre_prepare) = slot
            .pre_prepare
            .as_ref()
            .filter(|p| p.replica() == Some(me))
        {
            messages.push(WireMessage::PrePrepare(pre_prepare.clone()));
        }
        if let Some(prepare) = slot.prepares.get(&me) {
            messages.push(WireMessage::Prepare(prepare.clone()));
        }
        if let Some(commit) = slot.commits.get(&me) {
            messages.push(WireMessage::Commit(commit.clone()));
        }
        for message in messages {
            self.send(to, message);
        }
    }
}
