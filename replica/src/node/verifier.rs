//! Signature checks for everything that arrives, batched across connections.
//!
//! Connection tasks decode frames and queue them here; this task takes whatever is queued (up
//! to `MAX_BATCH` messages), checks all their signatures in one batch, and hands the verified
//! ones to the core in arrival order. Checking n signatures together costs about half of n
//! separate checks once n passes a handful, and under load a primary receives many requests
//! at once. A batch that fails is re-checked message by message, so one bad signature costs
//! its sender's batch-mates a second check, never their verdict (see `crypto`).

use super::inbound::Inbound;
use crate::core::Input;
use crate::ids::Principal;
use crate::message::WireMessage;
use crate::verify::verify_many;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Messages verified in one batch at most.
const MAX_BATCH: usize = 256;

/// A decoded message waiting for its signatures to be checked.
pub struct Unverified {
    pub message: WireMessage,
    /// Set for a client's request that arrived on a connection no replica has spoken on: once
    /// the request verifies, that connection becomes where the client's replies go.
    pub reply_route: Option<ReplyRoute>,
}

pub struct ReplyRoute {
    pub connection: u64,
    pub replies: mpsc::Sender<Bytes>,
}

/// Runs until every connection's sender and the core are gone.
pub async fn run(
    mut incoming: mpsc::Receiver<Unverified>,
    to_core: mpsc::Sender<Input>,
    inbound: Arc<Inbound>,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    loop {
        if incoming.recv_many(&mut queued, MAX_BATCH).await == 0 {
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
            let verified = match verdict {
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
            if to_core.send(Input::Message(verified)).await.is_err() {
                return;
            }
        }
    }
}
