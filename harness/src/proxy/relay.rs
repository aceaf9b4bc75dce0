//! Relaying one direction of one connection: re-frame, decide each frame's fate, hold what is
//! delayed or reordered, and deliver in release order (FIFO among frames released together).

use super::Shared;
use super::fate::{Copy, decide};
use super::log::LogEntry;
use super::matching::FrameInfo;
use super::rules::Direction;
use rand::seq::SliceRandom;
use replica::wire::{FrameError, decode_payload, split_frame};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

/// Frames one direction of a link may hold (delayed or waiting to be reordered) before it
/// drops new ones; keeps memory bounded under long delays.
pub const MAX_HELD_FRAMES: usize = 4096;
const READ_CHUNK: usize = 64 * 1024;

struct Held {
    release: Instant,
    order: u64,
    frame: Vec<u8>,
    kind: &'static str,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.release, self.order) == (other.release, other.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.release, self.order).cmp(&(other.release, other.order))
    }
}

/// Frames held back for shuffling, released together once the window fills or time is up.
struct ReorderBuffer {
    frames: Vec<(Copy, &'static str)>,
    window: usize,
    deadline: Option<Instant>,
}

pub struct Relay {
    shared: Arc<Shared>,
    link: usize,
    direction: Direction,
    queue: BinaryHeap<Reverse<Held>>,
    reorder: ReorderBuffer,
    next_order: u64,
    /// After an oversized length prefix the stream cannot be re-framed: bytes pass unchanged.
    passthrough: bool,
}

impl Relay {
    pub fn new(shared: Arc<Shared>, link: usize, direction: Direction) -> Self {
        Relay {
            shared,
            link,
            direction,
            queue: BinaryHeap::new(),
            reorder: ReorderBuffer {
                frames: Vec::new(),
                window: 1,
                deadline: None,
            },
            next_order: 0,
            passthrough: false,
        }
    }

    /// Runs until the sender closes (then delivers what is held and half-closes) or an I/O
    /// error occurs on either side.
    pub async fn run(
        mut self,
        mut reader: OwnedReadHalf,
        mut writer: OwnedWriteHalf,
    ) -> std::io::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut sender_closed = false;
        loop {
            let now = Instant::now();
            if self.reorder.deadline.is_some_and(|d| d <= now)
                || (sender_closed && !self.reorder.frames.is_empty())
            {
                self.flush_reorder(now);
            }
            self.deliver_due(now, &mut writer).await?;
            let next_wakeup = [
                self.queue.peek().map(|h| h.0.release),
                self.reorder.deadline,
            ]
            .into_iter()
            .flatten()
            .min();
            if sender_closed && next_wakeup.is_none() {
                writer.shutdown().await?;
                return Ok(());
            }
            tokio::select! {
                read = reader.read(&mut chunk), if !sender_closed => {
                    match read? {
                        0 => sender_closed = true,
                        n => {
                            pending.extend_from_slice(&chunk[..n]);
                            self.take_frames(&mut pending);
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_wakeup.unwrap_or(now)), if next_wakeup.is_some() => {}
            }
        }
    }

    async fn deliver_due(
        &mut self,
        now: Instant,
        writer: &mut OwnedWriteHalf,
    ) -> std::io::Result<()> {
        let mut out = Vec::new();
        let mut delivered: Vec<&'static str> = Vec::new();
        while self.queue.peek().is_some_and(|h| h.0.release <= now) {
            if let Some(Reverse(held)) = self.queue.pop() {
                out.extend_from_slice(&held.frame);
                delivered.push(held.kind);
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        writer.write_all(&out).await?;
        let mut stats = self.shared.lock_stats();
        for kind in delivered {
            stats.frame(self.link, self.direction, kind).forwarded += 1;
        }
        Ok(())
    }

    fn hold(&mut self, release: Instant, frame: Vec<u8>, kind: &'static str) {
        self.next_order += 1;
        self.queue.push(Reverse(Held {
            release,
            order: self.next_order,
            frame,
            kind,
        }));
    }

    fn held(&self) -> usize {
        self.queue.len() + self.reorder.frames.len()
    }

    fn flush_reorder(&mut self, now: Instant) {
        let mut frames = std::mem::take(&mut self.reorder.frames);
        self.reorder.deadline = None;
        frames.shuffle(&mut *self.shared.rng(self.link, self.direction));
        for (copy, kind) in frames {
            self.hold(now + copy.delay, copy.frame, kind);
        }
    }

    /// Splits every complete frame off `pending` and decides its fate.
    fn take_frames(&mut self, pending: &mut Vec<u8>) {
        let max_frame = self.shared.max_frame;
        let mut consumed = 0;
        while !self.passthrough {
            match split_frame(&pending[consumed..], max_frame) {
                Ok(Some((payload, frame_len))) => {
                    let frame = pending[consumed..consumed + frame_len].to_vec();
                    let payload = payload.to_vec();
                    consumed += frame_len;
                    self.on_frame(frame, &payload);
                }
                Ok(None) => break,
                Err(error) => {
                    self.start_passthrough(&error);
                }
            }
        }
        if self.passthrough && consumed < pending.len() {
            let raw = pending[consumed..].to_vec();
            consumed = pending.len();
            self.hold(Instant::now(), raw, "undecodable");
        }
        pending.drain(..consumed);
    }

    fn start_passthrough(&mut self, error: &FrameError) {
        self.passthrough = true;
        let info = FrameInfo::new(
            self.shared.links[self.link].from,
            self.shared.links[self.link].to,
            self.direction,
            None,
        );
        self.shared.log.record(&LogEntry::new(
            self.shared.now_ns(),
            &info,
            "passthrough",
            None,
            Some(format!(
                "{error}; the rest of this connection is relayed unframed"
            )),
        ));
    }

    fn on_frame(&mut self, frame: Vec<u8>, payload: &[u8]) {
        let spec = &self.shared.links[self.link];
        let decoded = decode_payload(payload, self.shared.max_frame).ok();
        let info = FrameInfo::new(spec.from, spec.to, self.direction, decoded.as_ref());
        let kind = info.kind_label();
        let rules = self.shared.rules();
        let now = Instant::now();
        if rules.is_empty() {
            self.shared
                .lock_stats()
                .frame(self.link, self.direction, kind)
                .received += 1;
            self.admit(now, frame, kind);
            return;
        }
        let fate = {
            let mut rng = self.shared.rng(self.link, self.direction);
            decide(&rules, &info, &frame, decoded.as_ref(), &mut rng)
        };
        let time_ns = self.shared.now_ns();
        self.shared
            .lock_stats()
            .frame(self.link, self.direction, kind)
            .count_received(&fate);
        for entry in LogEntry::for_fate(time_ns, &info, &fate) {
            self.shared.log.record(&entry);
        }
        match fate.reorder {
            Some((window, max_hold)) => {
                for copy in fate.copies {
                    if self.held() >= MAX_HELD_FRAMES {
                        self.overflow(&info);
                        continue;
                    }
                    self.reorder.frames.push((copy, kind));
                }
                self.reorder.window = window;
                let deadline = *self.reorder.deadline.get_or_insert(now + max_hold);
                if self.reorder.frames.len() >= self.reorder.window || deadline <= now {
                    self.flush_reorder(now);
                }
            }
            None => {
                for copy in fate.copies {
                    if copy.delay.is_zero() {
                        self.admit(now, copy.frame, kind);
                    } else if self.held() >= MAX_HELD_FRAMES {
                        self.overflow(&info);
                    } else {
                        self.hold(now + copy.delay, copy.frame, kind);
                    }
                }
            }
        }
    }

    /// Queues a frame for immediate delivery (behind anything already due).
    /// (Bounded without a cap: everything admitted from one read goes out before the next.)
    fn admit(&mut self, now: Instant, frame: Vec<u8>, kind: &'static str) {
        self.hold(now, frame, kind);
    }

    fn overflow(&mut self, info: &FrameInfo) {
        self.shared
            .lock_stats()
            .frame(self.link, self.direction, info.kind_label())
            .overflowed += 1;
        self.shared.log.record(&LogEntry::new(
            self.shared.now_ns(),
            info,
            "overflow",
            None,
            Some(format!(
                "more than {MAX_HELD_FRAMES} frames held on this link"
            )),
        ));
    }
}
