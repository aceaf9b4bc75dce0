//! Sending to peer replicas: one bounded queue and one dialer task per peer.
//!
//! A replica sends only on connections it dialed, so each directed link is one TCP connection
//! (the harness's proxy relies on that). The queue drops its oldest frame when full instead of
//! blocking the core: PBFT retransmits what matters, and a stalled peer must not stall us.

use super::stats::NodeStats;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;

const FIRST_BACKOFF: Duration = Duration::from_millis(20);
/// The longest a dialer waits between attempts, so a restarted peer is reached again within it.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Frames written to the socket in one go: coalescing saves system calls under load.
const MAX_COALESCED_BYTES: usize = 1024 * 1024;

/// Bounded by frame count and by total bytes, whichever is hit first.
pub struct PeerQueue {
    state: Mutex<QueueState>,
    ready: Notify,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct QueueState {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl PeerQueue {
    pub fn new(max_frames: usize, max_bytes: usize) -> PeerQueue {
        PeerQueue {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes,
        }
    }

    /// Queues a frame; returns how many old frames were dropped to make room.
    pub fn push(&self, frame: Bytes) -> u64 {
        let mut dropped = 0;
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            while !state.frames.is_empty()
                && (state.frames.len() >= self.max_frames
                    || state.bytes + frame.len() > self.max_bytes)
            {
                if let Some(old) = state.frames.pop_front() {
                    state.bytes -= old.len();
                    dropped += 1;
                }
            }
            state.bytes += frame.len();
            state.frames.push_back(frame);
        }
        self.ready.notify_one();
        dropped
    }

    /// Moves queued frames into `out`, up to about `max_bytes` of them.
    fn take(&self, out: &mut Vec<Bytes>, max_bytes: usize) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken = 0;
        while let Some(frame) = state.frames.front() {
            if taken > 0 && taken + frame.len() > max_bytes {
                break;
            }
            taken += frame.len();
            if let Some(frame) = state.frames.pop_front() {
                state.bytes -= frame.len();
                out.push(frame);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .frames
            .len()
    }
}

/// Keeps a connection to `address` and writes what the queue holds; reconnects with
/// exponential back-off. Runs until aborted.
pub async fn dial_peer(
    peer: crate::ids::ReplicaId,
    address: SocketAddr,
    queue: Arc<PeerQueue>,
    stats: Arc<NodeStats>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut was_connected = true;
    loop {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                }
                tracing::info!(%peer, %address, "connected to peer");
                backoff = FIRST_BACKOFF;
                was_connected = true;
                let (reader, writer) = stream.into_split();
                let reason = tokio::select! {
                    r = pump(&queue, writer, &stats) => r,
                    r = watch_for_close(reader) => r,
                };
                tracing::info!(%peer, %address, %reason, "lost connection to peer");
            }
            Err(error) => {
                // Peers being down is normal during start-up and under fault injection.
                if was_connected {
                    tracing::debug!(%peer, %address, %error, "cannot reach peer; retrying");
                    was_connected = false;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn pump(queue: &PeerQueue, mut writer: OwnedWriteHalf, stats: &NodeStats) -> String {
    let mut frames = Vec::new();
    let mut buffer = Vec::with_capacity(64 * 1024);
    loop {
        queue.take(&mut frames, MAX_COALESCED_BYTES);
        if frames.is_empty() {
            queue.ready.notified().await;
            continue;
        }
        buffer.clear();
        for frame in frames.drain(..) {
            buffer.extend_from_slice(&frame);
        }
        if let Err(e) = writer.write_all(&buffer).await {
            return format!("write failed: {e}");
        }
        stats.bytes_out(buffer.len());
    }
}

/// Peers never send on a connection we dialed; reading only tells us when it closes.
async fn watch_for_close(mut reader: OwnedReadHalf) -> String {
    let mut discard = [0u8; 4096];
    loop {
        match reader.read(&mut discard).await {
            Ok(0) => return "closed by peer".to_string(),
            Ok(_) => {}
            Err(e) => return format!("read failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest_frames_and_keeps_the_newest() {
        let queue = PeerQueue::new(3, usize::MAX);
        let mut dropped = 0;
        for i in 0u8..5 {
            dropped += queue.push(Bytes::from(vec![i]));
        }
        assert_eq!(dropped, 2);
        let mut out = Vec::new();
        queue.take(&mut out, usize::MAX);
        assert_eq!(
            out,
            vec![
                Bytes::from(vec![2]),
                Bytes::from(vec![3]),
                Bytes::from(vec![4])
            ]
        );
    }

    #[test]
    fn the_byte_bound_holds_even_when_frames_are_few() {
        let queue = PeerQueue::new(1000, 100);
        for _ in 0..10 {
            queue.push(Bytes::from(vec![0u8; 40]));
        }
        assert_eq!(queue.len(), 2);
        // A frame larger than the bound still goes out alone rather than being lost.
        queue.push(Bytes::from(vec![0u8; 500]));
        assert_eq!(queue.len(), 1);
    }
}
