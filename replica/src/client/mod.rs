//! The PBFT client as a sans-IO state machine: it signs requests (under `auth: macs` also
//! with an authenticator for the backups), sends each to the primary
//! it believes in, accepts a result once f+1 distinct replicas sent matching signed replies
//! (at least one of them is honest), and, when no decision comes within `retry`, sends the
//! same signed request to every replica until the outcome is known or `deadline` passes.
//!
//! The tokio client (`workloads::client`) and the simulator (`replica::sim`) both drive this
//! one piece; they own time (a `Duration` since an epoch they pick) and the network. One
//! request is outstanding at a time, as PBFT clients are sequential.

mod tally;

pub use tally::{Decision, ReplyDrop, ReplyTally};

use crate::crypto::KeyStore;
use crate::ids::{ClientId, Principal, Quorums, ReplicaId, Timestamp, View};
use crate::kv::{OpResult, Operation};
use crate::message::{Reply, Request, Signed};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::Duration;

/// When a client re-sends and when it gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTiming {
    /// Wait this long for f+1 matching replies before re-sending to every replica, and again
    /// between re-sends.
    pub retry: Duration,
    /// Give up (outcome unknown) this long after the first send; `None` never gives up.
    pub deadline: Option<Duration>,
}

/// Where the outstanding request is to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTransmit {
    /// The primary of the view the client believes in.
    To(ReplicaId, Signed<Request>),
    /// Every replica (a re-send).
    ToAll(Signed<Request>),
}

/// A request the cluster answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    pub request: Signed<Request>,
    pub result: OpResult,
    /// The view f+1 of the answering replicas have reached.
    pub view: View,
    /// The replicas whose verified replies matched.
    pub answered: Vec<ReplicaId>,
    /// From the first send to the decision.
    pub latency: Duration,
    /// Whether the request had to be re-sent to every replica.
    pub broadcast: bool,
    /// Replies whose signature failed while this request was outstanding.
    pub bad_signatures: u64,
}

/// How an outstanding request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutcome {
    Completed(Completed),
    /// No f+1 matching replies before the deadline: the request may or may not have executed.
    TimedOut {
        request: Signed<Request>,
        needed: usize,
        waited: Duration,
        bad_signatures: u64,
    },
}

struct Outstanding {
    request: Signed<Request>,
    tally: ReplyTally,
    sent_at: Duration,
    next_retry: Duration,
    broadcast: bool,
}

pub struct ClientCore {
    id: ClientId,
    key: SigningKey,
    keys: Arc<KeyStore>,
    quorums: Quorums,
    timing: ClientTiming,
    last_timestamp: u64,
    /// The latest view f+1 replies vouched for; requests go first to its primary.
    view: View,
    outstanding: Option<Outstanding>,
    transmits: Vec<ClientTransmit>,
}

impl ClientCore {
    pub fn new(
        id: ClientId,
        key: SigningKey,
        keys: Arc<KeyStore>,
        quorums: Quorums,
        timing: ClientTiming,
    ) -> ClientCore {
        ClientCore {
            id,
            key,
            keys,
            quorums,
            timing,
            last_timestamp: 0,
            view: View(0),
            outstanding: None,
            transmits: Vec::new(),
        }
    }

    pub fn id(&self) -> ClientId {
        self.id
    }

    pub fn timing(&self) -> ClientTiming {
        self.timing
    }

    /// The view the client believes current.
    pub fn view(&self) -> View {
        self.view
    }

    pub fn believed_primary(&self) -> ReplicaId {
        self.view.primary(self.quorums.n())
    }

    /// The request waiting for its replies, if any.
    pub fn outstanding(&self) -> Option<&Signed<Request>> {
        self.outstanding.as_ref().map(|o| &o.request)
    }

    /// Signs `op` with the next timestamp: above every earlier one and at least `not_before`
    /// (a process that may restart passes the wall clock, so it never reuses a timestamp).
    pub fn prepare(&mut self, op: Operation, not_before: u64) -> Signed<Request> {
        self.last_timestamp = not_before.max(self.last_timestamp + 1);
        let body = Request {
            client: self.id,
            timestamp: Timestamp(self.last_timestamp),
            op,
        };
        match self.keys.sessions() {
            Some(sessions) => Signed::sign_and_authenticate(body, &self.key, sessions),
            None => Signed::sign(body, Principal::Client(self.id), &self.key),
        }
    }

    /// Makes `request` the outstanding one (replacing any other) and sends it to the primary.
    /// Submitting the same request again after a timeout retries it: replicas answer a request
    /// they already executed from their reply cache, never by executing it twice.
    pub fn submit(&mut self, now: Duration, request: Signed<Request>) {
        let tally = ReplyTally::new(
            self.id,
            request.body.timestamp,
            self.quorums.weak(),
            self.keys.clone(),
        );
        self.transmits
            .push(ClientTransmit::To(self.believed_primary(), request.clone()));
        self.outstanding = Some(Outstanding {
            request,
            tally,
            sent_at: now,
            next_retry: now + self.retry_wait(now, now),
            broadcast: false,
        });
    }

    /// Forgets the outstanding request without an outcome (its caller gave up on it).
    pub fn abandon(&mut self) {
        self.outstanding = None;
    }

    /// Takes a reply that arrived from `link` (the replica whose connection carried it).
    /// `Ok(Some(_))` when it decides the outstanding request.
    pub fn handle_reply(
        &mut self,
        now: Duration,
        link: ReplicaId,
        reply: Signed<Reply>,
    ) -> Result<Option<ClientOutcome>, ReplyDrop> {
        let Some(outstanding) = self.outstanding.as_mut() else {
            return Err(ReplyDrop::NotForThisRequest);
        };
        let Some(decision) = outstanding.tally.add(link, reply)? else {
            return Ok(None);
        };
        self.view = self.view.max(decision.view);
        let Some(done) = self.outstanding.take() else {
            return Ok(None);
        };
        Ok(Some(ClientOutcome::Completed(Completed {
            request: done.request,
            result: decision.result,
            view: decision.view,
            answered: decision.answered,
            latency: now.saturating_sub(done.sent_at),
            broadcast: done.broadcast,
            bad_signatures: done.tally.bad_signatures,
        })))
    }

    /// Re-sends the outstanding request to every replica when its retry is due, or gives it
    /// up at its deadline.
    pub fn handle_timeout(&mut self, now: Duration) -> Option<ClientOutcome> {
        let outstanding = self.outstanding.as_ref()?;
        let (sent_at, next_retry) = (outstanding.sent_at, outstanding.next_retry);
        if let Some(deadline) = self.timing.deadline
            && now >= sent_at + deadline
        {
            let done = self.outstanding.take()?;
            return Some(ClientOutcome::TimedOut {
                request: done.request,
                needed: self.quorums.weak(),
                waited: now.saturating_sub(sent_at),
                bad_signatures: done.tally.bad_signatures,
            });
        }
        if now >= next_retry {
            let wait = self.retry_wait(sent_at, now);
            let outstanding = self.outstanding.as_mut()?;
            outstanding.broadcast = true;
            outstanding.next_retry = now + wait;
            self.transmits
                .push(ClientTransmit::ToAll(outstanding.request.clone()));
        }
        None
    }

    /// When `handle_timeout` has something to do next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let outstanding = self.outstanding.as_ref()?;
        Some(outstanding.next_retry)
    }

    pub fn take_transmits(&mut self) -> Vec<ClientTransmit> {
        std::mem::take(&mut self.transmits)
    }

    /// The wait before the next re-send, cut short by the deadline.
    fn retry_wait(&self, sent_at: Duration, now: Duration) -> Duration {
        let retry = self.timing.retry.max(Duration::from_millis(1));
        match self.timing.deadline {
            Some(deadline) => retry.min((sent_at + deadline).saturating_sub(now)),
            None => retry,
        }
    }
}

#[cfg(test)]
mod tests;
