//! Signature checks for everything that arrives, batched across connections.
//!
//! Connection tasks decode frames and queue them in the `Intake`: replica traffic in a FIFO
//! lane, client requests in a queue with one slot per sender (see `intake`). This task takes
//! what is queued, replica traffic first, up to `MAX_BATCH` messages, checks all their
//! signatures in one batch, and hands the verified ones to the core: replica traffic on one
//! channel, requests on another, which the core drains after the first (see `driver`). So a
//! flood of requests, however fast, never makes a PRE-PREPARE, a vote or a VIEW-CHANGE wait
//! behind it; and requests keep `CLIENT_SHARE` of every batch while any wait, so replica
//! traffic cannot starve them either.
//!
//! Checking n signatures together costs about half of n separate checks once n passes a
//! handful, and under load a primary receives many requests at once. A batch that fails is
//! re-checked message by message, so one bad signature costs its sender's batch-mates a second
//! check, never their verdict (see `crypto`).

use super::inbound::Inbound;
use super::intake::{Intake, is_request};
use crate::core::Input;
use crate::ids::Principal;
use crate::message::WireMessage;
use crate::verify::verify_many;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

/// Messages verified in one batch at most.
pub const MAX_BATCH: usize = 256;
/// The part of a batch kept for requests while any wait.
pub const CLIENT_SHARE: usize = MAX_BATCH / 4;

/// A decoded message waiting for its signatures to be checked.
pub struct Unverified {
    pub message: WireMessage,
    /// Set for a client's request that arrived on a connection no replica has spoken on: once
    /// the request verifies, that connection becomes where the client's replies go.
    pub reply_route: Option<ReplyRoute>,
}

pub struct ReplyRoute {
    pub connection: u64,
    pub replies: super::reply_queue::ReplySender,
}

/// Where verified messages go: the core's two input channels.
pub struct ToCore {
    pub replicas: mpsc::Sender<Input>,
    pub requests: mpsc::Sender<Input>,
}

/// Runs until the core is gone (or every connection's sender is, and nothing is queued).
pub async fn run(mut replicas: mpsc::Receiver<Unverified>, to_core: ToCore, inbound: Arc<Inbound>) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    loop {
        if !take_batch(
            &mut replicas,
            &inbound.intake,
            &to_core.requests,
            &mut queued,
        )
        .await
        {
            return;
        }
        let mut messages = Vec::with_capacity(queued.len());
        let mut details = Vec::with_capacity(queued.len());
        for Unverified {
            message,
            reply_route,
        } in queued.drain(..)
        {
            details.push((message.kind(), message.signer(), reply_route));
            messages.push(message);
        }
        inbound.stats.verify_batch();
        let verdicts = verify_many(messages, &inbound.keys);
        for (verdict, (kind, signer, reply_route)) in verdicts.into_iter().zip(details) {
            // Counted whatever the verdict: a refused PRE-PREPARE whose spoiled entries also
            // had bad signatures was still an attempt at the MAC attack.
            inbound.stats.mac_fallbacks(verdict.mac_fallbacks);
            let verified = match verdict.result {
                Ok(verified) => verified,
                Err(reason) => {
                    inbound.reject(reason, Some(kind), Some(signer));
                    continue;
                }
            };
            inbound.stats.message_in(kind);
            if let (Some(route), Principal::Client(client)) = (reply_route, signer) {
                inbound
                    .routes
                    .register(client, route.connection, &route.replies);
            }
            let sent = if is_request(verified.message()) {
                // `take_batch` took no more requests than the channel had room for, and this
                // task is its only sender: never full here.
                to_core.requests.try_send(Input::Message(verified)).is_ok()
            } else {
                to_core
                    .replicas
                    .send(Input::Message(verified))
                    .await
                    .is_ok()
            };
            if !sent {
                return;
            }
        }
    }
}

/// Fills `batch` with the next messages to verify, replica traffic first: waits until there
/// is at least one. False once no more can come.
pub async fn take_batch(
    replicas: &mut mpsc::Receiver<Unverified>,
    intake: &Intake,
    requests_to_core: &mpsc::Sender<Input>,
    batch: &mut Vec<Unverified>,
) -> bool {
    loop {
        let request_room = requests_to_core.capacity();
        let requests_waiting = request_room > 0 && intake.requests_waiting();
        let replica_limit = if requests_waiting {
            MAX_BATCH - CLIENT_SHARE
        } else {
            MAX_BATCH
        };
        let mut replicas_gone = false;
        while batch.len() < replica_limit {
            match replicas.try_recv() {
                Ok(message) => batch.push(message),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    replicas_gone = true;
                    break;
                }
            }
        }
        let room = (MAX_BATCH - batch.len()).min(request_room);
        intake.take_requests(room, batch);
        if !batch.is_empty() {
            return true;
        }
        if replicas_gone {
            return false;
        }
        // Nothing to verify: wait for replica traffic, or for a request (or, when the core has
        // no room for requests, for room).
        tokio::select! {
            biased;
            message = replicas.recv() => match message {
                Some(message) => batch.push(message),
                None => return false,
            },
            () = intake.request_queued(), if request_room > 0 => {}
            permit = requests_to_core.reserve(), if request_room == 0 => {
                if permit.is_err() {
                    return false;
                }
            }
        }
    }
}
