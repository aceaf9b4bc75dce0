//! Carrying out scheduled actions and the hosts' turns, the way the node does.

use super::SimNetwork;
use super::client::CompletedOp;
use super::links::Endpoint;
use crate::client::{ClientOutcome, ClientTransmit, ReplyDrop};
use crate::core::Input;
use crate::digest::Digest;
use crate::events::ReplicaEvent;
use crate::host::{Host, Storage, Transmit};
use crate::ids::Principal;
use crate::ids::{ClientId, ReplicaId};
use crate::message::{MessageKind, WireMessage};
use crate::verify::{self, RejectReason, Verified};
use crate::wire::{self, FrameError};
use std::time::Duration;

pub(super) enum Action {
    Start {
        replica: ReplicaId,
        incarnation: u64,
    },
    Deliver {
        /// `None` for a frame a test injected.
        from: Option<Endpoint>,
        to: Endpoint,
        /// The receiving replica's incarnation when the frame left: a restart in between
        /// breaks the connection it travelled on.
        incarnation: u64,
        frame: Vec<u8>,
    },
    /// The host asked to be woken now (`Host::poll_timeout`): its timers, held-back effects
    /// and interceptor tick.
    Wake {
        replica: ReplicaId,
        incarnation: u64,
        generation: u64,
    },
    /// The client asked to be woken now (`ClientCore::poll_timeout`): a re-send is due.
    ClientWake { client: ClientId, generation: u64 },
    /// The replica finished its last turn: what queued meanwhile is handled in one turn.
    Drain {
        replica: ReplicaId,
        incarnation: u64,
    },
}

/// What could be read of a refused message: its type and claimed signer.
type Signer = (MessageKind, Principal);

fn frame_reason(error: &FrameError) -> RejectReason {
    match error {
        FrameError::Oversized { .. } => RejectReason::OversizedFrame,
        FrameError::Malformed(_) | FrameError::TrailingBytes { .. } => RejectReason::MalformedFrame,
    }
}

fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

impl SimNetwork {
    pub(super) fn schedule(&mut self, at_ns: u64, action: Action) {
        self.queue.insert((at_ns, self.next_order), action);
        self.next_order += 1;
    }

    pub(super) fn perform(&mut self, action: Action) {
        match action {
            Action::Start {
                replica,
                incarnation,
            } => {
                if self.is_current(replica, incarnation) {
                    self.start(replica);
                }
            }
            Action::Deliver {
                to: Endpoint::Replica(replica),
                incarnation,
                frame,
                ..
            } => self.deliver_to_replica(replica, incarnation, &frame),
            Action::Deliver {
                from,
                to: Endpoint::Client(client),
                frame,
                ..
            } => self.deliver_to_client(from, client, &frame),
            Action::Wake {
                replica,
                incarnation,
                generation,
            } => {
                let r = &self.replicas[replica.0 as usize];
                if self.is_current(replica, incarnation) && r.wake_generation == generation {
                    let r = &mut self.replicas[replica.0 as usize];
                    r.wake_at = None;
                    // A stopped process's timers fire when it is resumed.
                    if !r.paused {
                        self.turn(replica, |_, _| {});
                    }
                }
            }
            Action::ClientWake { client, generation } => self.client_wake(client, generation),
            Action::Drain {
                replica,
                incarnation,
            } => {
                if self.is_current(replica, incarnation) {
                    self.drain(replica);
                }
            }
        }
    }

    fn is_current(&self, replica: ReplicaId, incarnation: u64) -> bool {
        self.replicas
            .get(replica.0 as usize)
            .is_some_and(|r| r.is_running() && r.incarnation == incarnation)
    }

    /// The core's first step, in a turn of its own.
    pub(super) fn start(&mut self, replica: ReplicaId) {
        let now = self.now();
        if let Some(host) = self.replicas[replica.0 as usize].host.as_mut() {
            host.start(now);
        }
        self.after_turn(replica);
    }

    /// One turn of `replica`'s host: `work`, then its timers, then the end of the turn.
    pub(super) fn turn(&mut self, replica: ReplicaId, work: impl FnOnce(&mut Host, Duration)) {
        self.turn_with(replica, 0, work);
    }

    /// A turn that handled `verified` received messages (their checks cost virtual time).
    fn turn_with(
        &mut self,
        replica: ReplicaId,
        verified: u64,
        work: impl FnOnce(&mut Host, Duration),
    ) {
        let now = self.now();
        let Some(host) = self.replicas[replica.0 as usize].host.as_mut() else {
            return;
        };
        host.begin_turn();
        work(host, now);
        host.handle_timeout(now);
        host.end_turn(now);
        self.after_turn_costing(replica, verified);
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_ns)
    }

    /// Handles everything that queued while the replica was busy, in one turn.
    fn drain(&mut self, replica: ReplicaId) {
        let r = &mut self.replicas[replica.0 as usize];
        r.drain_scheduled = false;
        if r.paused {
            return;
        }
        let inputs = std::mem::take(&mut r.inbox);
        let count = inputs.len() as u64;
        self.turn_with(replica, count, |host, now| {
            for verified in inputs {
                host.handle_input(now, Input::Message(verified));
            }
        });
    }

    /// Carries out what the turn produced (the disk first, then the network) and schedules
    /// the host's next wake-up.
    fn after_turn(&mut self, replica: ReplicaId) {
        self.after_turn_costing(replica, 0);
    }

    /// As `after_turn`, for a turn that verified `verified` messages: the turn's virtual cost
    /// (see `CostModel`) keeps the replica busy, and its messages leave when it is done.
    fn after_turn_costing(&mut self, replica: ReplicaId, verified: u64) {
        let now = self.now_ns;
        let costs = self.costs;
        let r = &mut self.replicas[replica.0 as usize];
        let Some(host) = r.host.as_mut() else {
            return;
        };
        let output = host.take_output();
        let wake = host.poll_timeout().map(nanos);
        for write in output.storage {
            match write {
                Storage::Append(record) => r.disk.records.push(record),
                Storage::InstallCheckpoint { snapshot, retained } => {
                    r.disk.snapshot = Some(snapshot);
                    r.disk.records = retained;
                }
            }
        }
        for event in output.events {
            r.record(now, event);
        }
        if let Some(at) = wake
            && r.wake_at != Some(at)
        {
            r.wake_generation += 1;
            r.wake_at = Some(at);
            let action = Action::Wake {
                replica,
                incarnation: r.incarnation,
                generation: r.wake_generation,
            };
            self.schedule(at.max(now), action);
        }
        let cost = costs.of_turn(verified, &output.transmits);
        let r = &mut self.replicas[replica.0 as usize];
        let departs = r.busy_until_ns.max(now).saturating_add(cost);
        r.busy_until_ns = departs;
        for transmit in output.transmits {
            self.send(replica, departs, transmit);
        }
    }

    fn send(&mut self, replica: ReplicaId, departs: u64, transmit: Transmit) {
        let from = Endpoint::Replica(replica);
        match transmit {
            Transmit::To { to, message } => {
                let to = Endpoint::Replica(to);
                self.transmit_frame(
                    departs,
                    from,
                    to,
                    message.kind(),
                    wire::encode_frame(&message),
                );
            }
            Transmit::Broadcast(message) => {
                let frame = wire::encode_frame(&message);
                let others: Vec<ReplicaId> = self.replica_ids().filter(|r| *r != replica).collect();
                for to in others {
                    let to = Endpoint::Replica(to);
                    self.transmit_frame(departs, from, to, message.kind(), frame.clone());
                }
            }
            Transmit::Reply { client, reply } => {
                let message = WireMessage::Reply(reply);
                let frame = wire::encode_frame(&message);
                let to = Endpoint::Client(client);
                self.transmit_frame(departs, from, to, message.kind(), frame);
            }
        }
    }

    pub(super) fn transmit(&mut self, from: Endpoint, to: Endpoint, message: &WireMessage) {
        let now = self.now_ns;
        self.transmit_frame(now, from, to, message.kind(), wire::encode_frame(message));
    }

    /// Hands one frame to the link from `from` to `to` at virtual time `departs`.
    fn transmit_frame(
        &mut self,
        departs: u64,
        from: Endpoint,
        to: Endpoint,
        kind: MessageKind,
        frame: Vec<u8>,
    ) {
        self.stats.sent += 1;
        *self.stats.sent_by_kind.entry(kind).or_default() += 1;
        if !self.faults.allows(from, to) {
            self.stats.dropped_by_fault += 1;
            return;
        }
        let deliveries = self
            .links
            .route(Duration::from_nanos(departs), from, to, frame);
        if deliveries.is_empty() {
            self.stats.dropped_randomly += 1;
        }
        let incarnation = match to {
            Endpoint::Replica(r) => self.replicas.get(r.0 as usize).map_or(0, |r| r.incarnation),
            Endpoint::Client(_) => 0,
        };
        for delivery in deliveries {
            let mut at = departs.saturating_add(nanos(delivery.delay));
            if delivery.in_order {
                let clock = self.link_clock.entry((from, to)).or_default();
                at = at.max(*clock);
                *clock = at;
            }
            self.schedule(
                at,
                Action::Deliver {
                    from: Some(from),
                    to,
                    incarnation,
                    frame: delivery.frame,
                },
            );
        }
    }

    /// Splits and decodes one frame; on failure, the reason and what could be read of it.
    fn decode(&self, frame: &[u8]) -> Result<WireMessage, RejectReason> {
        let max = self.config.max_frame_bytes;
        match wire::split_frame(frame, max) {
            Ok(Some((payload, used))) if used == frame.len() => {
                wire::decode_payload(payload, max).map_err(|e| frame_reason(&e))
            }
            // Truncated, or bytes after the one frame a delivery carries.
            Ok(_) => Err(RejectReason::MalformedFrame),
            Err(e) => Err(frame_reason(&e)),
        }
    }

    fn deliver_to_replica(&mut self, replica: ReplicaId, incarnation: u64, frame: &[u8]) {
        if !self.is_current(replica, incarnation) {
            self.stats.lost_to_crash += 1;
            return;
        }
        let r = &mut self.replicas[replica.0 as usize];
        if r.paused {
            r.held.push(frame.to_vec());
            return;
        }
        self.stats.delivered += 1;
        match self.verdict(frame) {
            Ok(verified) => self.accept(replica, verified),
            Err((reason, what)) => self.reject(replica, reason, what),
        }
    }

    /// A verified message for `replica`: handled now if the replica is idle, else queued for
    /// the turn after the one it is busy with.
    fn accept(&mut self, replica: ReplicaId, verified: Verified) {
        let now = self.now_ns;
        let r = &mut self.replicas[replica.0 as usize];
        if r.busy_until_ns <= now && r.inbox.is_empty() {
            self.turn_with(replica, 1, |host, now| {
                host.handle_input(now, Input::Message(verified));
            });
            return;
        }
        r.inbox.push(verified);
        if !r.drain_scheduled {
            r.drain_scheduled = true;
            let (at, incarnation) = (r.busy_until_ns.max(now), r.incarnation);
            self.schedule(
                at,
                Action::Drain {
                    replica,
                    incarnation,
                },
            );
        }
    }

    /// Delivers what reached a paused replica while it was stopped, then fires its due timers.
    pub(super) fn release_held(&mut self, replica: ReplicaId) {
        let r = &mut self.replicas[replica.0 as usize];
        let held = std::mem::take(&mut r.held);
        let incarnation = r.incarnation;
        for frame in held {
            self.deliver_to_replica(replica, incarnation, &frame);
        }
        self.turn(replica, |_, _| {});
    }

    /// Decodes and verifies a frame as the node's receive path does (memoized by frame digest;
    /// see `SimNetwork::verdicts`).
    fn verdict(&mut self, frame: &[u8]) -> Result<Verified, (RejectReason, Option<Signer>)> {
        let message = self.decode(frame).map_err(|reason| (reason, None))?;
        let what = Some((message.kind(), message.signer()));
        let digest = Digest::of(frame);
        let verdict = match self.verdicts.get(&digest) {
            Some(verdict) => verdict.clone(),
            None => {
                let verdict = verify::verify(message, &self.keys);
                if self.verdicts.len() >= super::MAX_MEMOIZED_VERDICTS {
                    self.verdicts.clear();
                }
                self.verdicts.insert(digest, verdict.clone());
                verdict
            }
        };
        verdict.map_err(|reason| (reason, what))
    }

    /// The receive path refused a frame: reported and counted like the node does.
    fn reject(&mut self, replica: ReplicaId, reason: RejectReason, what: Option<Signer>) {
        let event = ReplicaEvent::Rejected {
            reason,
            kind: what.map(|(kind, _)| kind),
            from: what.map(|(_, signer)| signer),
        };
        let now = self.now_ns;
        self.replicas[replica.0 as usize].record(now, event);
    }

    fn deliver_to_client(&mut self, from: Option<Endpoint>, client: ClientId, frame: &[u8]) {
        self.stats.delivered += 1;
        let (Ok(WireMessage::Reply(reply)), Some(Endpoint::Replica(link))) =
            (self.decode(frame), from)
        else {
            self.stats.client_rejections += 1;
            return;
        };
        let now = self.now_ns;
        let Some(sim_client) = self.clients.get_mut(client.0 as usize) else {
            return;
        };
        match sim_client
            .core
            .handle_reply(Duration::from_nanos(now), link, reply)
        {
            Ok(Some(ClientOutcome::Completed(done))) => {
                let invoked_at_ns = sim_client.invoked_at_ns;
                self.completed.push(CompletedOp {
                    client,
                    request: done.request,
                    result: done.result,
                    invoked_at_ns,
                    completed_at_ns: now,
                });
            }
            Err(ReplyDrop::BadSignature | ReplyDrop::WrongSigner) => {
                self.stats.client_rejections += 1;
            }
            Ok(_) | Err(_) => {}
        }
        self.after_client_step(client);
    }

    fn client_wake(&mut self, client: ClientId, generation: u64) {
        let now = Duration::from_nanos(self.now_ns);
        let Some(sim_client) = self.clients.get_mut(client.0 as usize) else {
            return;
        };
        if sim_client.wake_generation == generation {
            // Simulated clients have no deadline: the only thing due is a re-send.
            sim_client.core.handle_timeout(now);
            self.after_client_step(client);
        }
    }

    /// Sends what the client's core asked for and schedules its next wake-up.
    pub(super) fn after_client_step(&mut self, client: ClientId) {
        let Some(sim_client) = self.clients.get_mut(client.0 as usize) else {
            return;
        };
        let transmits = sim_client.core.take_transmits();
        let now = self.now_ns;
        if let Some(at) = sim_client.core.poll_timeout().map(nanos) {
            sim_client.wake_generation += 1;
            let action = Action::ClientWake {
                client,
                generation: sim_client.wake_generation,
            };
            self.schedule(at.max(now), action);
        }
        let from = Endpoint::Client(client);
        for transmit in transmits {
            match transmit {
                ClientTransmit::To(replica, request) => {
                    let message = WireMessage::Request(request);
                    self.transmit(from, Endpoint::Replica(replica), &message);
                }
                ClientTransmit::ToAll(request) => {
                    let frame = wire::encode_frame(&WireMessage::Request(request));
                    for replica in self.replica_ids() {
                        let to = Endpoint::Replica(replica);
                        self.transmit_frame(now, from, to, MessageKind::Request, frame.clone());
                    }
                }
            }
        }
    }
}
