//! Receiving: the listener, one task per accepted connection, and the routes for replies.
//!
//! A connection task reads and decodes frames and hands them to the verifier (`verifier`)
//! through the `Intake`: replica traffic over a bounded channel, which pushes back on the
//! sender's TCP stream when the replica is busy; client requests into one slot per sender
//! (see `intake`): a client's connection waits until its one queued request was taken, while
//! on a peer's connection a forwarded request replaces the sender's older one (counted as
//! shed) and never holds back the peer's votes.
//! Bad input is counted and reported; a frame that cannot be decoded ends its connection,
//! because the stream cannot be resynchronised after it.

use super::event_log::EventLog;
use super::intake::{Intake, Pushed, is_request};
use super::stats::NodeStats;
use super::verifier::{ReplyRoute, Unverified};
use crate::crypto::KeyStore;
use crate::events::ReplicaEvent;
use crate::ids::{ClientId, Principal};
use crate::message::{MessageKind, WireMessage};
use crate::verify::RejectReason;
use crate::wire::{FrameError, decode_payload, split_frame};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::intake::CONNECTION_SLOTS;
use super::reply_queue::{QueueError, ReplyReceiver, ReplySender, reply_queue};
use tokio::task::JoinSet;

/// Open inbound connections at once; each may hold up to one frame's worth of buffer.
const MAX_CONNECTIONS: usize = 256;
/// Replies queued per client connection before further ones are dropped (clients retry): a
/// count, and bytes, so a client that never reads cannot make a replica hold its large values.
const REPLY_QUEUE: usize = 256;
const REPLY_QUEUE_BYTES: usize = 1 << 20;
const READ_CHUNK: usize = 64 * 1024;

/// What every connection task needs.
pub struct Inbound {
    pub keys: Arc<KeyStore>,
    pub max_frame: usize,
    pub intake: Intake,
    pub stats: Arc<NodeStats>,
    pub events: Arc<EventLog>,
    pub routes: Arc<ClientRoutes>,
}

impl Inbound {
    pub(super) fn reject(
        &self,
        reason: RejectReason,
        kind: Option<MessageKind>,
        from: Option<Principal>,
    ) {
        self.stats.rejected(reason);
        self.events
            .write(&ReplicaEvent::Rejected { reason, kind, from });
    }
}

/// Where a reply for each client goes: the newest live connection that carried a verified
/// request from that client.
#[derive(Default)]
pub struct ClientRoutes {
    routes: Mutex<HashMap<ClientId, Route>>,
}

struct Route {
    connection: u64,
    replies: ReplySender,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    NoRoute,
    QueueFull,
}

impl ClientRoutes {
    pub(super) fn register(&self, client: ClientId, connection: u64, replies: &ReplySender) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let newer = routes
            .get(&client)
            .is_none_or(|route| route.connection <= connection || route.replies.is_closed());
        if newer {
            routes.insert(
                client,
                Route {
                    connection,
                    replies: replies.clone(),
                },
            );
        }
    }

    fn forget_connection(&self, connection: u64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes.retain(|_, route| route.connection != connection);
    }

    pub fn deliver(&self, client: ClientId, frame: Bytes) -> Delivery {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(route) = routes.get(&client) else {
            return Delivery::NoRoute;
        };
        match route.replies.try_send(frame) {
            Ok(()) => Delivery::Queued,
            Err(QueueError::Full) => Delivery::QueueFull,
            Err(QueueError::Closed) => {
                routes.remove(&client);
                Delivery::NoRoute
            }
        }
    }
}

/// Accepts connections until aborted; aborting it also ends every connection it started.
pub async fn serve(listener: TcpListener, inbound: Arc<Inbound>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let next_id = AtomicU64::new(1);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and similar: back off briefly instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many open connections; refusing one");
            continue;
        };
        inbound.stats.connection_accepted();
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let inbound = inbound.clone();
        connections.spawn(async move {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            connection(stream, id, &inbound).await;
            inbound.routes.forget_connection(id);
            drop(permit);
        });
    }
}

async fn connection(stream: TcpStream, id: u64, inbound: &Inbound) {
    let (reader, writer) = stream.into_split();
    let (replies_tx, replies_rx) = reply_queue(REPLY_QUEUE, REPLY_QUEUE_BYTES);
    let ended = tokio::select! {
        ended = read_frames(reader, id, inbound, replies_tx) => ended,
        ended = write_replies(writer, replies_rx, &inbound.stats) => ended,
    };
    tracing::debug!(connection = id, %ended, "inbound connection ended");
}

/// Who is on the other end, as far as the messages tell.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    Unknown,
    /// Has sent a replica-signed message: a peer's dialer. Replies never go here, even when
    /// it relays a client's request.
    Replica,
}

async fn read_frames(
    mut reader: OwnedReadHalf,
    id: u64,
    inbound: &Inbound,
    replies: ReplySender,
) -> String {
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    let mut peer = Peer::Unknown;
    let slots = Arc::new(Semaphore::new(CONNECTION_SLOTS));
    loop {
        loop {
            let message = match split_frame(&buffer, inbound.max_frame) {
                Ok(None) => break,
                Ok(Some((payload, used))) => {
                    let decoded = decode_payload(payload, inbound.max_frame);
                    buffer.advance(used);
                    match decoded {
                        Ok(message) => message,
                        Err(e) => return refuse_frame(inbound, e),
                    }
                }
                Err(e) => return refuse_frame(inbound, e),
            };
            if !accept_message(message, id, &mut peer, &slots, inbound, &replies).await {
                return "node is shutting down".into();
            }
        }
        if buffer.capacity() - buffer.len() < READ_CHUNK / 4 {
            buffer.reserve(READ_CHUNK);
        }
        match reader.read_buf(&mut buffer).await {
            Ok(0) if buffer.is_empty() => return "closed".into(),
            Ok(0) => {
                inbound.reject(RejectReason::MalformedFrame, None, None);
                return format!("closed inside a frame ({} bytes buffered)", buffer.len());
            }
            Ok(read) => inbound.stats.bytes_in(read),
            Err(e) => return format!("read failed: {e}"),
        }
    }
}

fn refuse_frame(inbound: &Inbound, error: FrameError) -> String {
    let reason = match error {
        FrameError::Oversized { .. } => RejectReason::OversizedFrame,
        FrameError::Malformed(_) | FrameError::TrailingBytes { .. } => RejectReason::MalformedFrame,
    };
    inbound.reject(reason, None, None);
    format!("refused frame: {error}")
}

/// Passes one decoded message on to the verifier; false once the replica is shutting down.
/// Which connection a client's replies go to is decided only once its request verifies; a
/// message that merely claims a replica signer already keeps replies off this connection,
/// which can only hurt the connection's own sender.
async fn accept_message(
    message: WireMessage,
    id: u64,
    peer: &mut Peer,
    slots: &Arc<Semaphore>,
    inbound: &Inbound,
    replies: &ReplySender,
) -> bool {
    let mut reply_route = None;
    match message.signer() {
        Principal::Replica(_) if *peer != Peer::Replica => {
            *peer = Peer::Replica;
            inbound.routes.forget_connection(id);
        }
        Principal::Client(_)
            if *peer != Peer::Replica && message.kind() == MessageKind::Request =>
        {
            reply_route = Some(ReplyRoute {
                connection: id,
                replies: replies.clone(),
            });
        }
        _ => {}
    }
    let request = is_request(&message);
    let unverified = Unverified {
        message,
        reply_route,
    };
    if request {
        let pushed = if *peer == Peer::Replica {
            inbound.intake.push_request(id, unverified)
        } else {
            inbound
                .intake
                .push_client_request(id, slots, unverified)
                .await
        };
        if pushed != Pushed::Queued {
            inbound.stats.request_shed();
        }
        true
    } else {
        inbound.intake.push_replica(unverified).await
    }
}

async fn write_replies(
    mut writer: OwnedWriteHalf,
    mut replies: ReplyReceiver,
    stats: &NodeStats,
) -> String {
    let mut buffer = Vec::with_capacity(16 * 1024);
    while let Some(frame) = replies.recv().await {
        buffer.clear();
        buffer.extend_from_slice(&frame);
        while let Some(more) = replies.try_recv() {
            buffer.extend_from_slice(&more);
        }
        if let Err(e) = writer.write_all(&buffer).await {
            return format!("write failed: {e}");
        }
        stats.bytes_out(buffer.len());
    }
    "reply channel closed".into()
}
