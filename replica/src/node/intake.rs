//! Client requests waiting for their signatures to be checked, kept apart from replica traffic
//! and shared fairly among their senders.
//!
//! Replica messages (PRE-PREPARE, PREPARE, COMMIT, VIEW-CHANGE, ...) wait in their own FIFO
//! channel with back-pressure and are verified, and handed to the core, before requests (see
//! `verifier`). Requests wait here instead, in one slot per sender, a sender being a
//! (connection, claimed signer) pair, served round-robin: a client that floods gets one
//! request verified per pass over the senders, like everybody else.
//!
//! How a sender is held to its one slot depends on its connection:
//!
//! * A client's own connection has one request queued at most (`CONNECTION_SLOTS`): the
//!   connection task waits for the verifier to take it before it reads on, so the flood is
//!   pushed back onto the flooder's TCP stream, and nothing is dropped: every request a client
//!   sends is checked and counted, however many it sends.
//! * A peer replica's connection carries the requests that backup forwards (one sender per
//!   client) and its protocol messages, in one stream: waiting for a request's slot there
//!   would hold back its votes. So a request forwarded there never waits: it replaces the one
//!   waiting in its sender's slot unless its timestamp is older, and the one left out is
//!   counted as shed (`requests_shed`). The newest is kept, not the oldest, because a PBFT
//!   client has one request outstanding and only its newest matters: the oldest would be
//!   refused as stale by the core once the newer one is pending, after costing a signature
//!   check and making the newer one wait. The copy shed was a forwarded one; the client sent
//!   its own, and retransmits to all.
//!
//! The signer is only claimed until verification; because the connection is part of the
//! sender, a forger naming an honest client can push out only what it queued itself.

use super::verifier::Unverified;
use crate::ids::Principal;
use crate::message::{MessageKind, WireMessage};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

/// Requests a client's own connection may have queued unverified at once.
pub const CONNECTION_SLOTS: usize = 1;

/// Requests queued from one connection at most (its distinct claimed signers); a further one
/// from a new signer is shed.
pub const PER_CONNECTION: usize = 512;
/// Requests queued in all at most; a further one from a new sender is shed.
pub const TOTAL: usize = 4096;

type Sender = (u64, Principal);

/// What became of a pushed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued in an empty slot.
    Queued,
    /// Took its sender's slot from an older request, which is shed.
    Replaced,
    /// Shed itself: older than the one waiting, or no room for another sender.
    Shed,
}

/// A queued request, with the connection's slot it holds, if its connection has slots.
struct Slot {
    request: Unverified,
    _held: Option<OwnedSemaphorePermit>,
}

/// One slot per sender, served round-robin in the order the slots filled.
#[derive(Default)]
pub struct RequestQueue {
    slots: HashMap<Sender, Slot>,
    /// Each sender with a full slot, once; the front is served next.
    turns: VecDeque<Sender>,
    per_connection: HashMap<u64, usize>,
}

fn timestamp(message: &WireMessage) -> u64 {
    match message {
        WireMessage::Request(request) => request.body.timestamp.0,
        _ => 0,
    }
}

impl RequestQueue {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Queues a request that arrived on `connection`, holding `held` (its connection's slot,
    /// if it has slots) until the request is taken.
    pub fn push(
        &mut self,
        connection: u64,
        request: Unverified,
        held: Option<OwnedSemaphorePermit>,
    ) -> Pushed {
        let sender = (connection, request.message.signer());
        let slot = Slot {
            request,
            _held: held,
        };
        if let Some(waiting) = self.slots.get_mut(&sender) {
            if timestamp(&slot.request.message) < timestamp(&waiting.request.message) {
                return Pushed::Shed;
            }
            // Equal timestamps: a retransmission; the newer copy carries the same request.
            *waiting = slot;
            return Pushed::Replaced;
        }
        let from_connection = self.per_connection.entry(connection).or_default();
        if *from_connection >= PER_CONNECTION || self.slots.len() >= TOTAL {
            return Pushed::Shed;
        }
        *from_connection += 1;
        self.slots.insert(sender, slot);
        self.turns.push_back(sender);
        Pushed::Queued
    }

    /// The next sender's request, round-robin.
    pub fn pop(&mut self) -> Option<Unverified> {
        let sender = self.turns.pop_front()?;
        let request = self.slots.remove(&sender)?.request;
        if let Some(count) = self.per_connection.get_mut(&sender.0) {
            *count -= 1;
            if *count == 0 {
                self.per_connection.remove(&sender.0);
            }
        }
        Some(request)
    }
}

/// Everything the connection tasks hand to the verifier: replica traffic in a bounded FIFO
/// channel (a full one stops the connection reading), requests in a `RequestQueue`.
pub struct Intake {
    replicas: mpsc::Sender<Unverified>,
    requests: Mutex<RequestQueue>,
    requests_queued: Notify,
}

/// Whether a message waits in the request queue rather than in the replica lane. A request
/// a backup forwards is still a client's request: it waits with the others.
pub fn is_request(message: &WireMessage) -> bool {
    message.kind() == MessageKind::Request
}

impl Intake {
    /// An intake whose replica lane holds `capacity` messages, and the verifier's end of it.
    pub fn new(capacity: usize) -> (Intake, mpsc::Receiver<Unverified>) {
        let (replicas, receiver) = mpsc::channel(capacity);
        let intake = Intake {
            replicas,
            requests: Mutex::new(RequestQueue::default()),
            requests_queued: Notify::new(),
        };
        (intake, receiver)
    }

    /// Queues replica traffic, waiting for room; false once the verifier is gone.
    pub async fn push_replica(&self, message: Unverified) -> bool {
        self.replicas.send(message).await.is_ok()
    }

    /// Queues a request forwarded on a peer's connection; never waits.
    pub fn push_request(&self, connection: u64, request: Unverified) -> Pushed {
        self.push(connection, request, None)
    }

    /// Queues a request on a client's connection, first waiting until the connection's
    /// earlier request (`slots` holds `CONNECTION_SLOTS`) was taken for verification.
    pub async fn push_client_request(
        &self,
        connection: u64,
        slots: &Arc<Semaphore>,
        request: Unverified,
    ) -> Pushed {
        let Ok(held) = slots.clone().acquire_owned().await else {
            return Pushed::Shed;
        };
        self.push(connection, request, Some(held))
    }

    fn push(
        &self,
        connection: u64,
        request: Unverified,
        held: Option<OwnedSemaphorePermit>,
    ) -> Pushed {
        let pushed = self.queue().push(connection, request, held);
        if pushed != Pushed::Shed {
            self.requests_queued.notify_one();
        }
        pushed
    }

    pub fn requests_waiting(&self) -> bool {
        !self.queue().is_empty()
    }

    /// Moves up to `max` requests, round-robin over their senders, to `into`.
    pub fn take_requests(&self, max: usize, into: &mut Vec<Unverified>) {
        let mut queue = self.queue();
        for _ in 0..max {
            let Some(request) = queue.pop() else { break };
            into.push(request);
        }
    }

    /// Completes once a request was queued since the last time it completed (at once if one
    /// was queued while nobody waited).
    pub async fn request_queued(&self) {
        self.requests_queued.notified().await;
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, RequestQueue> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::key_from_seed;
    use crate::ids::{ClientId, Timestamp};
    use crate::kv::Operation;
    use crate::message::{Request, Signed};

    pub(crate) fn request(client: u32, timestamp: u64) -> Unverified {
        let signer = Principal::Client(ClientId(client));
        let body = Request {
            client: ClientId(client),
            timestamp: Timestamp(timestamp),
            op: Operation::Get { key: "k".into() },
        };
        let signed = Signed::sign(body, signer, &key_from_seed(1, signer));
        Unverified {
            message: WireMessage::Request(signed),
            reply_route: None,
        }
    }

    fn stamp(request: &Unverified) -> (Principal, u64) {
        (request.message.signer(), timestamp(&request.message))
    }

    #[test]
    fn a_flood_forwarded_on_a_peer_connection_keeps_one_slot_and_its_newest_request() {
        let mut queue = RequestQueue::default();
        assert_eq!(queue.push(1, request(0, 1), None), Pushed::Queued);
        for t in 1..=1000 {
            let pushed = queue.push(2, request(3, t), None);
            assert_eq!(
                pushed,
                if t == 1 {
                    Pushed::Queued
                } else {
                    Pushed::Replaced
                }
            );
        }
        // An older request of the flooder, late: shed, the newest stays.
        assert_eq!(queue.push(2, request(3, 5), None), Pushed::Shed);
        assert_eq!(queue.push(3, request(1, 1), None), Pushed::Queued);
        assert_eq!(queue.len(), 3);
        let client = |c| Principal::Client(ClientId(c));
        assert_eq!(queue.pop().map(|r| stamp(&r)), Some((client(0), 1)));
        assert_eq!(queue.pop().map(|r| stamp(&r)), Some((client(3), 1000)));
        // The flooder goes on: it waits behind the honest client that queued before it.
        queue.push(2, request(3, 1001), None);
        assert_eq!(queue.pop().map(|r| stamp(&r)), Some((client(1), 1)));
        assert_eq!(queue.pop().map(|r| stamp(&r)), Some((client(3), 1001)));
        assert!(queue.pop().is_none());
        assert!(queue.is_empty());
    }

    #[test]
    fn a_client_connection_has_one_request_queued_and_gets_its_slot_back_when_it_is_taken() {
        let (intake, _replicas) = Intake::new(1);
        let slots = Arc::new(Semaphore::new(CONNECTION_SLOTS));
        let held = slots.clone().try_acquire_owned().expect("a free slot");
        assert_eq!(
            intake.queue().push(4, request(2, 1), Some(held)),
            Pushed::Queued
        );
        // The connection task would wait here: nothing is dropped, it stops reading.
        assert!(slots.clone().try_acquire_owned().is_err());
        let mut taken = Vec::new();
        intake.take_requests(8, &mut taken);
        assert_eq!(taken.len(), 1);
        assert!(slots.clone().try_acquire_owned().is_ok());
    }

    #[test]
    fn a_forger_evicts_only_what_it_queued_on_its_own_connection() {
        let mut queue = RequestQueue::default();
        assert_eq!(queue.push(1, request(0, 7), None), Pushed::Queued);
        // Another connection claims client 0 with a newer timestamp: a slot of its own.
        assert_eq!(queue.push(9, request(0, 100), None), Pushed::Queued);
        let first = queue.pop().expect("queued");
        assert_eq!(timestamp(&first.message), 7);
    }

    #[test]
    fn one_connection_cannot_fill_the_queue_with_claimed_signers() {
        let mut queue = RequestQueue::default();
        for client in 0..PER_CONNECTION as u32 {
            assert_eq!(queue.push(1, request(client, 1), None), Pushed::Queued);
        }
        assert_eq!(
            queue.push(1, request(PER_CONNECTION as u32, 1), None),
            Pushed::Shed
        );
        // Others still get in, and the connection gets room back as its requests leave.
        assert_eq!(queue.push(2, request(0, 1), None), Pushed::Queued);
        queue.pop();
        assert_eq!(
            queue.push(1, request(PER_CONNECTION as u32, 1), None),
            Pushed::Queued
        );
    }
}
