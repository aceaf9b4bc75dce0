//! The view-change timer of a backup, and suspicions of the primary.
//!
//! As in Castro & Liskov, the timer runs while the backup waits to execute a request and
//! restarts only when the request it waits for executes, so a primary that serves some clients
//! and starves others is still caught. When it expires the backup does not leave the view at
//! once: it broadcasts a SUSPECT naming the requests waiting at it, and keeps voting. A VIEW-CHANGE can never be taken back (a
//! NEW-VIEW may be built on it), so a replica that alone leaves the view — one cut off by a
//! partition, or busy with a backlog after a pause — would stay outside the vote until the
//! others change view too. f+1 suspicions (one at least from an honest replica) of the same
//! view make a replica leave it.

use super::{Core, Status, Timer};
use crate::events::ReplicaEvent;
use crate::message::{MAX_SUSPECT_REQUESTS, MessageKind, RequestId, Signed, Suspect, WireMessage};
use crate::verify::RejectReason;
use std::ops::Bound::{Excluded, Unbounded};

impl Core {
    /// Starts the view-change timer if a request is waiting and the timer is not running.
    pub(super) fn ensure_view_change_timer(&mut self) {
        if self.status == Status::Normal
            && !self.view_change_timer_running
            && !self.pending.is_empty()
            && !self.is_primary()
        {
            self.restart_view_change_timer();
        }
    }

    /// A whole period from now, for the request it waits for if that still waits, otherwise for
    /// the next pending one in turn (or stopped if none).
    pub(super) fn restart_view_change_timer(&mut self) {
        if self.status != Status::Normal {
            return;
        }
        self.guarded = self.next_guarded();
        if self.guarded.is_none() || self.is_primary() {
            if self.view_change_timer_running {
                self.view_change_timer_running = false;
                self.cancel_timer(Timer::ViewChange);
            }
        } else {
            self.view_change_timer_running = true;
            self.set_timer(Timer::ViewChange, self.view_change_timeout_ms);
        }
    }

    /// After execution: the timer restarts only if what it waited for is no longer pending.
    pub(super) fn rearm_if_guarded_executed(&mut self) {
        if !self.view_change_timer_running || self.guarded.is_none_or(|g| !self.is_pending(g)) {
            self.restart_view_change_timer();
        }
    }

    fn is_pending(&self, request: RequestId) -> bool {
        self.pending
            .get(&request.client)
            .is_some_and(|p| p.body.timestamp == request.timestamp)
    }

    /// The guarded request while it waits; then the pending request of the next client after
    /// it, in client order: each waiting client is guarded in turn, so none is starved by others
    /// that keep the primary busy.
    fn next_guarded(&self) -> Option<RequestId> {
        if let Some(guarded) = self.guarded
            && self.is_pending(guarded)
        {
            return Some(guarded);
        }
        let after = self.guarded.map(|g| g.client);
        after
            .and_then(|client| self.pending.range((Excluded(client), Unbounded)).next())
            .or_else(|| self.pending.iter().next())
            .map(|(_, request)| request.id())
    }

    /// Tells the others we suspect our primary, and keeps working in this view. The suspicion
    /// is repeated at every expiry, so a lost one is resent.
    pub(super) fn suspect_primary(&mut self) {
        let Some(guarded) = self.next_guarded() else {
            return;
        };
        self.guarded = Some(guarded);
        let others = self
            .pending
            .values()
            .map(Signed::id)
            .filter(|r| *r != guarded);
        let waiting_for: Vec<RequestId> = std::iter::once(guarded)
            .chain(others)
            .take(MAX_SUSPECT_REQUESTS)
            .collect();
        let suspect = Suspect {
            view: self.view,
            waiting_for,
        };
        let sealed = self.authenticate(suspect.clone());
        self.broadcast(WireMessage::Suspect(sealed));
        self.suspicions.insert(self.params.id, suspect);
        self.event(ReplicaEvent::Suspected {
            view: self.view,
            waiting_for: guarded,
        });
        self.restart_view_change_timer();
        self.leave_view_if_suspected();
    }

    pub(super) fn on_suspect(&mut self, suspect: Signed<Suspect>) {
        let Some(from) = suspect.replica() else {
            return;
        };
        let Signed { signer, body, .. } = suspect;
        if body.view < self.view {
            self.forward_new_view(signer);
            return self.reject(RejectReason::StaleView, MessageKind::Suspect, signer);
        }
        if body.view > self.view {
            self.note_future_view(signer, body.view);
        }
        let newer = self
            .suspicions
            .get(&from)
            .is_none_or(|known| known.view <= body.view);
        if newer {
            self.suspicions.insert(from, body);
        }
        self.leave_view_if_suspected();
    }

    /// f+1 replicas (so at least one honest) suspect the primary of our view, each while waiting
    /// for a request that waits here too: leave the view. One whose requests have executed here
    /// was behind, or has been served since; one for requests this replica never received
    /// cannot be told from a faulty replica's invention (clients that go unanswered send their
    /// request to every replica, so a real one arrives).
    pub(super) fn leave_view_if_suspected(&mut self) {
        // Called on every PRE-PREPARE a backup accepts: nothing to count outside a view.
        if self.status != Status::Normal {
            return;
        }
        let current = self.view;
        let suspecting = self
            .suspicions
            .values()
            .filter(|s| s.view == current && s.waiting_for.iter().any(|r| self.is_pending(*r)))
            .count();
        if suspecting >= self.weak_quorum() {
            self.start_view_change(current.next());
        }
    }
}
