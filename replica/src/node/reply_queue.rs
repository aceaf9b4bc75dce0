//! The queue of replies waiting to be written to one client connection, bounded in frames and
//! in bytes: a client that never reads its replies (or reads them slowly) costs the replica at
//! most `max_bytes` of memory, however large the values it asks for. Over the bound, replies
//! are dropped and counted; the client retries.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Why a reply was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    Full,
    Closed,
}

#[derive(Clone, Debug)]
pub struct ReplySender {
    frames: mpsc::Sender<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

pub struct ReplyReceiver {
    frames: mpsc::Receiver<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
}

/// A queue of at most `max_frames` replies and `max_bytes` bytes; one reply larger than
/// `max_bytes` still goes through when the queue is empty, so no reply is undeliverable.
pub fn reply_queue(max_frames: usize, max_bytes: usize) -> (ReplySender, ReplyReceiver) {
    let (tx, rx) = mpsc::channel(max_frames);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (
        ReplySender {
            frames: tx,
            queued_bytes: Arc::clone(&queued_bytes),
            max_bytes,
        },
        ReplyReceiver {
            frames: rx,
            queued_bytes,
        },
    )
}

impl ReplySender {
    pub fn try_send(&self, frame: Bytes) -> Result<(), QueueError> {
        let size = frame.len();
        let reserved =
            self.queued_bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                    (queued == 0 || queued + size <= self.max_bytes).then_some(queued + size)
                });
        if reserved.is_err() {
            return Err(QueueError::Full);
        }
        self.frames.try_send(frame).map_err(|error| {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            match error {
                mpsc::error::TrySendError::Full(_) => QueueError::Full,
                mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
            }
        })
    }

    pub fn is_closed(&self) -> bool {
        self.frames.is_closed()
    }
}

impl ReplyReceiver {
    pub async fn recv(&mut self) -> Option<Bytes> {
        let frame = self.frames.recv().await?;
        self.queued_bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    pub fn try_recv(&mut self) -> Option<Bytes> {
        let frame = self.frames.try_recv().ok()?;
        self.queued_bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(size: usize) -> Bytes {
        Bytes::from(vec![0u8; size])
    }

    #[test]
    fn replies_over_the_byte_bound_are_refused_until_the_writer_takes_some() {
        let (tx, mut rx) = reply_queue(100, 1000);
        assert_eq!(tx.try_send(frame(600)), Ok(()));
        assert_eq!(tx.try_send(frame(300)), Ok(()));
        assert_eq!(tx.try_send(frame(200)), Err(QueueError::Full));
        assert_eq!(rx.try_recv().map(|f| f.len()), Some(600));
        assert_eq!(tx.try_send(frame(200)), Ok(()));
    }

    #[test]
    fn the_frame_bound_still_holds_for_small_replies() {
        let (tx, _rx) = reply_queue(2, 1_000_000);
        assert_eq!(tx.try_send(frame(1)), Ok(()));
        assert_eq!(tx.try_send(frame(1)), Ok(()));
        assert_eq!(tx.try_send(frame(1)), Err(QueueError::Full));
    }

    #[test]
    fn one_reply_larger_than_the_bound_goes_through_an_empty_queue() {
        let (tx, mut rx) = reply_queue(10, 100);
        assert_eq!(tx.try_send(frame(5000)), Ok(()));
        assert_eq!(tx.try_send(frame(1)), Err(QueueError::Full));
        assert!(rx.try_recv().is_some());
        assert_eq!(tx.try_send(frame(1)), Ok(()));
    }

    #[test]
    fn a_closed_queue_says_so() {
        let (tx, rx) = reply_queue(10, 100);
        drop(rx);
        assert_eq!(tx.try_send(frame(1)), Err(QueueError::Closed));
        assert!(tx.is_closed());
    }
}
