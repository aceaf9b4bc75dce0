//! The core task: the only owner of the replica's `Host` (the core, its interceptor and
//! timers). It feeds the host the queued inputs as one turn and carries the turn's output out
//! with group commit: the turn's records are written, one `fsync` makes them durable, and
//! only then do the turn's messages leave.
//!
//! It runs on its own thread (see `node::run`), so a slow `fsync` blocks only the core, which
//! has to wait for it anyway, never the connection tasks.
//!
//! Verified inputs come on two channels (`Inputs`): replica traffic and client requests. A
//! turn takes replica traffic first, so a PRE-PREPARE, a vote or a VIEW-CHANGE never waits
//! behind a flood of requests; requests keep `REQUEST_SHARE` of every turn while any wait.

use super::event_log::EventLog;
use super::inbound::{ClientRoutes, Delivery};
use super::outbound::PeerQueue;
use super::stats::NodeStats;
use super::wal::{Wal, WalError};
use crate::core::Input;
use crate::host::{Host, Output, Storage, Transmit};
use crate::message::{MessageKind, WireMessage};
use crate::wire::encode_frame;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Queued inputs handled in one turn, under one `fsync`.
const MAX_INPUTS_PER_TURN: usize = 256;
/// The part of a turn kept for client requests while any wait.
const REQUEST_SHARE: usize = MAX_INPUTS_PER_TURN / 4;

/// The core's inputs: verified replica traffic, and verified client requests.
pub struct Inputs {
    replicas: mpsc::Receiver<Input>,
    requests: mpsc::Receiver<Input>,
}

impl Inputs {
    pub fn new(replicas: mpsc::Receiver<Input>, requests: mpsc::Receiver<Input>) -> Inputs {
        Inputs { replicas, requests }
    }

    /// Waits for an input, replica traffic first; `None` once both senders are gone.
    async fn next(&mut self) -> Option<Input> {
        tokio::select! {
            biased;
            Some(input) = self.replicas.recv() => Some(input),
            Some(input) = self.requests.recv() => Some(input),
            else => None,
        }
    }

    /// Adds what is queued to `turn`, up to `max` inputs in all: replica traffic first, all
    /// but `REQUEST_SHARE` of the turn if requests wait, then requests, then replica traffic
    /// again if requests left room.
    pub fn fill_turn(&mut self, turn: &mut Vec<Input>, max: usize) {
        let requests_waiting = !self.requests.is_empty();
        let replica_limit = if requests_waiting {
            max.saturating_sub(REQUEST_SHARE)
        } else {
            max
        };
        take(&mut self.replicas, turn, replica_limit);
        take(&mut self.requests, turn, max);
        take(&mut self.replicas, turn, max);
    }
}

fn take(from: &mut mpsc::Receiver<Input>, turn: &mut Vec<Input>, max: usize) {
    while turn.len() < max {
        match from.try_recv() {
            Ok(input) => turn.push(input),
            Err(_) => break,
        }
    }
}

pub struct Driver {
    /// The core, its interceptor and timers; time is measured from `epoch`.
    pub host: Host,
    pub epoch: Instant,
    /// Held-back effects dropped for want of room, as last reported.
    pub reported_dropped: u64,
    pub wal: Wal,
    pub events: Arc<EventLog>,
    /// How often `events` reaches its file (zero: after every turn).
    pub events_flush: Duration,
    pub stats: Arc<NodeStats>,
    /// Indexed by replica id; `None` for this replica.
    pub peers: Vec<Option<Arc<PeerQueue>>>,
    pub routes: Arc<ClientRoutes>,
}

impl Driver {
    /// Runs until `stop` fires (or its sender is dropped) or every input sender is gone;
    /// then makes the log durable and flushes events. A log write error is fatal: a replica
    /// that cannot keep its promises must stop rather than send.
    pub async fn run(
        mut self,
        inputs: Inputs,
        stop: oneshot::Receiver<()>,
    ) -> Result<(), WalError> {
        let result = self.turns(inputs, stop).await;
        self.events.flush();
        result
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn turns(
        &mut self,
        mut inputs: Inputs,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<(), WalError> {
        let now = self.now();
        self.host.start(now);
        self.finish()?;
        let mut last_events_flush = now;
        let mut turn = Vec::with_capacity(MAX_INPUTS_PER_TURN);
        loop {
            // The node always has an interceptor (`Honest` at least), so it always ticks.
            let wake = self.epoch
                + self
                    .host
                    .poll_timeout()
                    .unwrap_or(self.now() + crate::host::TICK);
            tokio::select! {
                _ = &mut stop => break,
                input = inputs.next() => {
                    let Some(input) = input else { break };
                    // One clock reading per turn: its inputs arrived together.
                    let now = self.now();
                    self.host.begin_turn();
                    turn.push(input);
                    inputs.fill_turn(&mut turn, MAX_INPUTS_PER_TURN);
                    for input in turn.drain(..) {
                        self.host.handle_input(now, input);
                    }
                }
                () = tokio::time::sleep_until(wake) => self.host.begin_turn(),
            }
            let now = self.now();
            self.host.handle_timeout(now);
            self.host.end_turn(now);
            self.finish()?;
            if now.saturating_sub(last_events_flush) >= self.events_flush {
                last_events_flush = now;
                self.events.flush();
            }
        }
        self.finish()
    }

    /// Ends a turn: the turn's records are written and one sync covers them, then its
    /// messages leave.
    fn finish(&mut self) -> Result<(), WalError> {
        let Output {
            storage,
            transmits,
            events,
        } = self.host.take_output();
        for write in &storage {
            match write {
                Storage::Append(record) => self.wal.append(record)?,
                Storage::InstallCheckpoint { snapshot, retained } => {
                    self.wal.install_checkpoint(snapshot, retained)?
                }
            }
        }
        self.wal.sync()?;
        // After the sync: an events line (a `sent` vote above all) never reaches the file
        // before what it reports is durable, however a kill -9 falls.
        for event in &events {
            self.stats.observe_event(event);
            self.events.write(event);
        }
        self.sample_resources();
        for transmit in transmits {
            self.send(transmit);
        }
        let dropped = self.host.delayed_dropped();
        if dropped > self.reported_dropped && dropped.is_power_of_two() {
            self.reported_dropped = dropped;
            tracing::warn!(dropped, "too many delayed effects; dropping");
        }
        let core = self.host.core();
        self.stats.core_state(
            core.view(),
            core.in_view_change(),
            core.last_executed(),
            core.stable_checkpoint(),
        );
        Ok(())
    }

    /// Writes a resources sample when one is due: the host's slots, the log's bytes, and the
    /// process's resident memory. The node measures its own memory rather than having the
    /// harness's supervisor do it, so the sample travels in the events file the oracles read
    /// already, in line with the events around it, and for twins and byzantine builds alike.
    fn sample_resources(&mut self) {
        let now = self.now();
        if self.host.resources_due(now) {
            let disk = self.wal.take_usage();
            let sample = self.host.sample_resources(now, disk, resident_bytes());
            self.events.write(&sample);
        }
    }

    fn send(&self, transmit: Transmit) {
        match transmit {
            Transmit::To { to, message } => {
                let kind = message.kind();
                match self.peers.get(to.0 as usize).and_then(Option::as_ref) {
                    Some(queue) => {
                        let frame = Bytes::from(encode_frame(&message));
                        self.stats.outbound_dropped(queue.push(frame));
                        self.stats.messages_out(kind, 1);
                    }
                    None => tracing::debug!(%to, %kind, "no such peer; message dropped"),
                }
            }
            Transmit::Broadcast(message) => {
                let frame = Bytes::from(encode_frame(&message));
                let mut sent = 0;
                for queue in self.peers.iter().flatten() {
                    self.stats.outbound_dropped(queue.push(frame.clone()));
                    sent += 1;
                }
                self.stats.messages_out(message.kind(), sent);
            }
            Transmit::Reply { client, reply } => {
                let frame = Bytes::from(encode_frame(&WireMessage::Reply(reply)));
                match self.routes.deliver(client, frame) {
                    Delivery::Queued => self.stats.messages_out(MessageKind::Reply, 1),
                    Delivery::NoRoute | Delivery::QueueFull => self.stats.outbound_dropped(1),
                }
            }
        }
    }
}

/// This process's resident memory (VmRSS), where the kernel reports it (`/proc` on Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_vm_rss_line() {
        let status = "Name:\treplica\nVmPeak:\t  200 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\treplica\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
        // This test runs on Linux in CI: the process's own figure is there and nonzero.
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 0));
        }
    }
}
