//! A Byzantine client over TCP: one connection per replica, as an honest client has.
//!
//! Frames are made (and signed) on a thread of their own, so a flood never stalls the async
//! tasks beside it, and go out as fast as each connection takes them. Frames over the cap
//! go on a connection of their own, which the replica closes once it reads the length prefix.
//! A client that reads its replies learns the view from them (where `primary` frames go); a
//! `never-read` client keeps each connection's read half and never touches it.

use super::attack::Attack;
use super::report::{SendClass, Tally};
use bytes::{Buf, BytesMut};
use replica::message::WireMessage;
use replica::wire::{decode_payload, split_frame};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Frames made ahead of the connections.
const MADE_AHEAD: usize = 256;
/// Frames queued per connection.
const LINK_QUEUE: usize = 256;
/// Frames written in one system call at most.
const COALESCE: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection that carried an over-cap frame is watched for the replica's close.
const CLOSE_WATCH: Duration = Duration::from_secs(3);

/// Where the replicas are and how large their frames may be.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// Each replica's address, by id (in a run: the client's proxy ports).
    pub addresses: Vec<SocketAddr>,
    pub max_frame: usize,
}

struct Shared {
    tally: Mutex<Tally>,
    view: AtomicU64,
    stop: AtomicBool,
    max_frame: usize,
}

impl Shared {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type Queued = (SendClass, Arc<[u8]>);

/// Runs `attack` for `duration` and returns what it sent and read.
pub async fn run(attack: Attack, options: NetOptions, duration: Duration) -> Tally {
    let reads = attack.spec().reads_replies();
    let shared = Arc::new(Shared {
        tally: Mutex::new(Tally::default()),
        view: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        max_frame: options.max_frame,
    });
    let deadline = Instant::now() + duration;
    let (made_tx, mut made) = mpsc::channel(MADE_AHEAD);
    let maker = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("byzc-{}", attack.client()))
            .spawn(move || make_frames(attack, duration, &shared, &made_tx))
    };
    let mut tasks = JoinSet::new();
    let links: Vec<mpsc::Sender<Queued>> = options
        .addresses
        .iter()
        .map(|address| {
            let (tx, rx) = mpsc::channel(LINK_QUEUE);
            tasks.spawn(link(*address, rx, Arc::clone(&shared), reads));
            tx
        })
        .collect();
    loop {
        let out = tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            out = made.recv() => match out {
                Some(out) => out,
                None => break,
            },
        };
        shared.tally().produced(out.class);
        for replica in out.recipients(links.len()) {
            let index = replica.0 as usize;
            if out.class.over_cap() {
                if let Some(address) = options.addresses.get(index) {
                    let frame = Arc::clone(&out.frame);
                    tasks.spawn(over_cap(*address, out.class, frame, Arc::clone(&shared)));
                }
                continue;
            }
            let Some(link) = links.get(index) else {
                continue;
            };
            let queued = (out.class, Arc::clone(&out.frame));
            if !matches!(
                tokio::time::timeout_at(deadline, link.send(queued)).await,
                Ok(Ok(()))
            ) {
                shared.tally().unsent += 1;
            }
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    drop(made);
    drop(links);
    tasks.shutdown().await;
    if let Ok(maker) = maker {
        let _ = tokio::task::spawn_blocking(move || maker.join()).await;
    }
    shared.tally().clone()
}

/// The frame maker's thread: polls the attack on the wall clock until `duration` passed.
fn make_frames(
    mut attack: Attack,
    duration: Duration,
    shared: &Shared,
    made: &mpsc::Sender<super::Outgoing>,
) {
    let start = std::time::Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        attack.observe_view(shared.view.load(Ordering::Relaxed));
        let now = start.elapsed();
        if now >= duration {
            return;
        }
        let due = attack.next_due();
        if due > now {
            std::thread::sleep(
                (due - now)
                    .min(duration - now)
                    .min(Duration::from_millis(50)),
            );
            continue;
        }
        if let Some(out) = attack.poll(now)
            && made.blocking_send(out).is_err()
        {
            return;
        }
    }
}

/// One replica's connection: dial, write what is queued, read replies (or never read);
/// dial again when it breaks.
async fn link(
    address: SocketAddr,
    mut queue: mpsc::Receiver<Queued>,
    shared: Arc<Shared>,
    reads: bool,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let stream = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            _ => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        let _ = stream.set_nodelay(true);
        shared.tally().connects += 1;
        let (reader, mut writer) = stream.into_split();
        let mut reading = JoinSet::new();
        // Never read: the read half stays open, and the replicas' replies pile up behind it.
        let mut _unread = None;
        if reads {
            reading.spawn(read_replies(reader, Arc::clone(&shared)));
        } else {
            _unread = Some(reader);
        }
        let mut batch: Vec<Queued> = Vec::with_capacity(COALESCE);
        let mut bytes = Vec::new();
        loop {
            let Some(first) = queue.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < COALESCE {
                match queue.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            bytes.clear();
            for (_, frame) in &batch {
                bytes.extend_from_slice(frame);
            }
            let written = writer.write_all(&bytes).await;
            let mut tally = shared.tally();
            match written {
                Ok(()) => {
                    for (class, frame) in batch.drain(..) {
                        tally.wrote(class, frame.len());
                    }
                }
                Err(_) => {
                    tally.unsent += batch.len() as u64;
                    tally.closed_by_peer += 1;
                    batch.clear();
                    break;
                }
            }
        }
        reading.shutdown().await;
        tokio::time::sleep(FIRST_BACKOFF).await;
    }
}

/// Reads reply frames, counts them and learns the view from them (nothing else of a reply
/// matters to this client, so nothing is checked).
async fn read_replies(mut reader: OwnedReadHalf, shared: Arc<Shared>) {
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    loop {
        match reader.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let (message, used) = match split_frame(&buffer, shared.max_frame) {
                Ok(Some((payload, used))) => (decode_payload(payload, shared.max_frame), used),
                Ok(None) => break,
                Err(_) => return,
            };
            buffer.advance(used);
            if let Ok(WireMessage::Reply(reply)) = message {
                shared.view.fetch_max(reply.body.view.0, Ordering::Relaxed);
                let mut tally = shared.tally();
                tally.replies += 1;
                tally.reply_bytes += used as u64;
            }
        }
    }
}

/// A frame over the cap, on a connection of its own: written, then watched until the replica
/// (or the proxy in front of it) closes the connection.
async fn over_cap(address: SocketAddr, class: SendClass, frame: Arc<[u8]>, shared: Arc<Shared>) {
    let Ok(Ok(stream)) = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(address)).await
    else {
        shared.tally().unsent += 1;
        return;
    };
    shared.tally().connects += 1;
    let (mut reader, mut writer) = stream.into_split();
    // The replica may close before the whole frame is in: the write then fails.
    let written = writer.write_all(&frame).await;
    shared.tally().wrote(class, frame.len());
    let closed = tokio::time::timeout(CLOSE_WATCH, async {
        let mut discard = [0u8; 4096];
        loop {
            match reader.read(&mut discard).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    if closed || written.is_err() {
        shared.tally().closed_by_peer += 1;
    }
}
