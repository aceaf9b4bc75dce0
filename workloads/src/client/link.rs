//! One client-to-replica connection: dial with back-off, write request frames, read reply
//! frames. Replies come back on the connection that carried the request, so each link task
//! forwards the replies of its replica to the client's single in-flight request.

use super::stats::StatCounters;
use bytes::{Buf, BytesMut};
use replica::ids::{ClientId, ReplicaId, Timestamp};
use replica::message::{Reply, Signed, WireMessage};
use replica::wire::{decode_payload, split_frame};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const INITIAL_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const READ_BUFFER: usize = 64 * 1024;

/// A signed request, framed once and shared by every link it is sent on.
#[derive(Clone, Debug)]
pub struct OutgoingFrame {
    pub timestamp: Timestamp,
    pub frame: Arc<[u8]>,
}

/// A reply that passed the link's cheap checks (right client, awaited timestamp).
pub struct IncomingReply {
    pub link: ReplicaId,
    pub reply: Signed<Reply>,
}

/// What every link of one client shares with the request loop.
pub struct LinkShared {
    pub client: ClientId,
    pub max_frame: usize,
    /// Timestamp of the request being awaited; 0 while idle. Replies for anything else are
    /// dropped here, before they cost a signature check or a channel slot.
    pub in_flight: AtomicU64,
    pub stats: StatCounters,
    /// Per replica: whether the current connection has carried one of our requests. A replica
    /// can only route replies to a connection a request of ours arrived on, so the next request
    /// also goes to every replica whose connection is new.
    pub introduced: Vec<AtomicBool>,
}

pub struct Link {
    pub replica: ReplicaId,
    pub address: SocketAddr,
    pub shared: Arc<LinkShared>,
    pub replies: mpsc::Sender<IncomingReply>,
}

enum Closed {
    /// The client was dropped: the task ends.
    ClientGone,
    /// The connection failed or the replica misbehaved: dial again.
    Reconnect,
}

impl Link {
    pub async fn run(self, mut outgoing: mpsc::Receiver<OutgoingFrame>) {
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let stream = match TcpStream::connect(self.address).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::trace!(replica = %self.replica, %error, "dial failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            // Requests are small and latency-bound: never wait for Nagle.
            if stream.set_nodelay(true).is_err() {
                continue;
            }
            self.shared.stats.connects.fetch_add(1, Ordering::Relaxed);
            if let Some(introduced) = self.shared.introduced.get(self.replica.0 as usize) {
                introduced.store(false, Ordering::Relaxed);
            }
            backoff = INITIAL_BACKOFF;
            match self.serve(stream, &mut outgoing).await {
                Closed::ClientGone => return,
                Closed::Reconnect => tokio::time::sleep(INITIAL_BACKOFF).await,
            }
        }
    }

    async fn serve(
        &self,
        stream: TcpStream,
        outgoing: &mut mpsc::Receiver<OutgoingFrame>,
    ) -> Closed {
        let (mut reader, mut writer) = stream.into_split();
        let mut buffer = BytesMut::with_capacity(READ_BUFFER);
        loop {
            tokio::select! {
                frame = outgoing.recv() => {
                    let Some(frame) = frame else { return Closed::ClientGone };
                    // A frame queued while disconnected may belong to a finished request.
                    if frame.timestamp.0 != self.shared.in_flight.load(Ordering::Acquire) {
                        continue;
                    }
                    if writer.write_all(&frame.frame).await.is_err() {
                        return Closed::Reconnect;
                    }
                }
                read = reader.read_buf(&mut buffer) => {
                    match read {
                        Ok(0) | Err(_) => return Closed::Reconnect,
                        Ok(_) => {
                            if let Err(closed) = self.drain_frames(&mut buffer).await {
                                return closed;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Decodes every complete frame in `buffer`. A frame that cannot be split or decoded
    /// leaves the stream unsynchronised, so the connection is dropped.
    async fn drain_frames(&self, buffer: &mut BytesMut) -> Result<(), Closed> {
        let stats = &self.shared.stats;
        loop {
            let (message, used) = match split_frame(buffer, self.shared.max_frame) {
                Ok(Some((payload, used))) => (decode_payload(payload, self.shared.max_frame), used),
                Ok(None) => return Ok(()),
                Err(_) => {
                    stats.malformed_frames.fetch_add(1, Ordering::Relaxed);
                    return Err(Closed::Reconnect);
                }
            };
            buffer.advance(used);
            let reply = match message {
                Ok(WireMessage::Reply(reply)) => reply,
                Ok(_) => {
                    stats.unexpected_messages.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(_) => {
                    stats.malformed_frames.fetch_add(1, Ordering::Relaxed);
                    return Err(Closed::Reconnect);
                }
            };
            let awaited = self.shared.in_flight.load(Ordering::Acquire);
            if reply.body.client != self.shared.client || reply.body.timestamp.0 != awaited {
                stats.stale_replies.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let incoming = IncomingReply {
                link: self.replica,
                reply,
            };
            if self.replies.send(incoming).await.is_err() {
                return Err(Closed::ClientGone);
            }
        }
    }
}
