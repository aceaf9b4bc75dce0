//! Carrying out scheduled actions and the hosts' turns, the way the node does.

use super::client::CompletedOp;
use super::links::Endpoint;
use super::{Proc, SimNetwork};
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
        process: Proc,
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
        process: Proc,
        incarnation: u64,
        generation: u64,
    },
    /// The client asked to be woken now (`ClientCore::poll_timeout`): a re-send is due.
    ClientWake {
        client: ClientId,
        generation: u64,
    },
    /// The replica finished its last turn: what queued meanwhile is handled in one turn.
    Drain {
        process: Proc,
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
                process,
                incarnation,
            } => {
                if self.is_current(process, incarnation) {
                    self.start(process);
                }
            }
            Action::Deliver {
                from,
                to: Endpoint::Client(client),
                frame,
                ..
            } => self.deliver_to_client(from, client, &frame),
            Action::Deliver {
                from,
                to,
                incarnation,
                frame,
            } => match self.process_of(to) {
                Some(process) => self.deliver_to_replica(from, process, incarnation, &frame),
                None => self.stats.lost_to_crash += 1,
            },
            Action::Wake {
                process,
                incarnation,
                generation,
            } => {
                let r = &self.replicas[process];
                if self.is_current(process, incarnation) && r.wake_generation == generation {
                    let r = &mut self.replicas[process];
                    r.wake_at = None;
                    // A stopped process's timers fire when it is resumed.
                    if !r.paused {
                        self.turn(process, |_, _| {});
                    }
                }
            }
            Action::ClientWake { client, generation } => self.client_wake(client, generation),
            Action::Drain {
                process,
                incarnation,
            } => {
                if self.is_current(process, incarnation) {
                    self.drain(process);
                }
            }
        }
    }

    /// The process an endpoint names (none for a client, or a twin never added).
    pub(super) fn process_of(&self, endpoint: Endpoint) -> Option<Proc> {
        match endpoint {
            Endpoint::Replica(r) => Some(r.0 as usize).filter(|p| *p < self.config.replicas.len()),
            Endpoint::Twin(r) => self.twins.get(&r).copied(),
            Endpoint::Client(_) => None,
        }
    }

    /// How a process appears on the network.
    pub(super) fn endpoint_of(&self, process: Proc) -> Endpoint {
        let id = self.replicas[process].params.id;
        if process < self.config.replicas.len() {
            Endpoint::Replica(id)
        } else {
            Endpoint::Twin(id)
        }
    }

    fn is_current(&self, process: Proc, incarnation: u64) -> bool {
        self.replicas
            .get(process)
            .is_some_and(|r| r.is_running() && r.incarnation == incarnation)
    }

    /// The core's first step, in a turn of its own.
    pub(super) fn start(&mut self, process: Proc) {
        let now = self.now();
        if let Some(host) = self.replicas[process].host.as_mut() {
            host.start(now);
        }
        self.after_turn(process);
    }

    /// One turn of `replica`'s host: `work`, then its timers, then the end of the turn.
    pub(super) fn turn(&mut self, process: Proc, work: impl FnOnce(&mut Host, Duration)) {
        self.turn_with(process, 0, work);
    }

    /// A turn that handled `verified` received messages (their checks cost virtual time).
    fn turn_with(&mut self, process: Proc, verified: u64, work: impl FnOnce(&mut Host, Duration)) {
        let now = self.now();
        let Some(host) = self.replicas[process].host.as_mut() else {
            return;
        };
        host.begin_turn();
        work(host, now);
        host.handle_timeout(now);
        host.end_turn(now);
        self.after_turn_costing(process, verified);
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_ns)
    }

    /// Handles everything that queued while the replica was busy, in one turn.
    fn drain(&mut self, process: Proc) {
        let r = &mut self.replicas[process];
        r.drain_scheduled = false;
        if r.paused {
            return;
        }
        let mut inputs = std::mem::take(&mut r.inbox);
        let requests = r.requests.take_round();
        for (frame, message) in requests {
            if let Some(verified) = self.check(process, &frame, Ok(message)) {
                inputs.push(verified);
            }
        }
        let count = inputs
            .iter()
            .filter(|v| v.message().seal().signature().is_some())
            .count() as u64;
        self.turn_with(process, count, |host, now| {
            for verified in inputs {
                host.handle_input(now, Input::Message(verified));
            }
        });
        if !self.replicas[process].requests.is_empty() {
            self.schedule_drain(process);
        }
    }

    /// Carries out what the turn produced (the disk first, then the network) and schedules
    /// the host's next wake-up.
    fn after_turn(&mut self, process: Proc) {
        self.after_turn_costing(process, 0);
    }

    /// As `after_turn`, for a turn that verified `verified` messages: the turn's virtual cost
    /// (see `CostModel`) keeps the replica busy, and its messages leave when it is done.
    fn after_turn_costing(&mut self, process: Proc, verified: u64) {
        let now = self.now_ns;
        let costs = self.costs;
        let r = &mut self.replicas[process];
        let Some(host) = r.host.as_mut() else {
            return;
        };
        let output = host.take_output();
        let wake = host.poll_timeout().map(nanos);
        for write in output.storage {
            match write {
                Storage::Append(record) => r.disk.records.push(record),
                Storage::InstallCheckpoint { snapshot, retained } => {
                    r.before_truncation();
                    r.disk.snapshot = Some(snapshot);
                    r.disk.records = retained;
                }
            }
        }
        for event in output.events {
            r.record(now, event);
        }
        r.sample_resources_if_due(now);
        if let Some(at) = wake
            && r.wake_at != Some(at)
        {
            r.wake_generation += 1;
            r.wake_at = Some(at);
            let action = Action::Wake {
                process,
                incarnation: r.incarnation,
                generation: r.wake_generation,
            };
            self.schedule(at.max(now), action);
        }
        let cost = costs.of_turn(verified, &output.transmits);
        let r = &mut self.replicas[process];
        if verified > 0 {
            r.stats.verify_batch();
        }
        if let Some(host) = r.host.as_ref() {
            let core = host.core();
            let state = (core.view(), core.in_view_change(), core.last_executed());
            r.stats
                .core_state(state.0, state.1, state.2, core.stable_checkpoint());
        }
        let departs = r.busy_until_ns.max(now).saturating_add(cost);
        r.busy_until_ns = departs;
        for transmit in output.transmits {
            self.send(process, departs, transmit);
        }
    }

    fn send(&mut self, process: Proc, departs: u64, transmit: Transmit) {
        let from = self.endpoint_of(process);
        let id = self.replicas[process].params.id;
        match transmit {
            Transmit::To { to, message } => {
                let to = self.links.destination(from, to);
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
                let others: Vec<ReplicaId> = self.replica_ids().filter(|r| *r != id).collect();
                for to in others {
                    let to = self.links.destination(from, to);
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
        if let Some(sender) = self.process_of(from).and_then(|p| self.replicas.get(p)) {
            sender.stats.messages_out(kind, 1);
            sender.stats.bytes_out(frame.len());
        }
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
        let incarnation = self
            .process_of(to)
            .and_then(|p| self.replicas.get(p))
            .map_or(0, |r| r.incarnation);
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

    fn deliver_to_replica(
        &mut self,
        from: Option<Endpoint>,
        process: Proc,
        incarnation: u64,
        frame: &[u8],
    ) {
        if !self.is_current(process, incarnation) {
            self.stats.lost_to_crash += 1;
            return;
        }
        let now = self.now_ns;
        let r = &mut self.replicas[process];
        if r.paused {
            r.held.push((from, frame.to_vec()));
            return;
        }
        r.stats.bytes_in(frame.len());
        self.stats.delivered += 1;
        let busy = r.busy_until_ns > now || !r.inbox.is_empty() || !r.requests.is_empty();
        let decoded = self.decode(frame);
        if busy && let Ok(WireMessage::Request(request)) = &decoded {
            let client = request.client();
            let r = &mut self.replicas[process];
            if let Ok(message) = decoded
                && r.requests.push(from, client, (frame.to_vec(), message))
            {
                r.stats.request_shed();
            }
            self.schedule_drain(process);
            return;
        }
        if let Some(verified) = self.check(process, frame, decoded) {
            self.accept(process, verified);
        }
    }

    /// Verifies a frame for `process` (`decoded` is what `decode` made of it), counting it in
    /// or refusing it.
    fn check(
        &mut self,
        process: Proc,
        frame: &[u8],
        decoded: Result<WireMessage, RejectReason>,
    ) -> Option<Verified> {
        match self.verdict(process, frame, decoded) {
            Ok(verified) => {
                self.replicas[process]
                    .stats
                    .message_in(verified.message().kind());
                Some(verified)
            }
            Err((reason, what)) => {
                self.reject(process, reason, what);
                None
            }
        }
    }

    /// A turn for what queued, once the replica's current one is over.
    fn schedule_drain(&mut self, process: Proc) {
        let now = self.now_ns;
        let r = &mut self.replicas[process];
        if r.drain_scheduled {
            return;
        }
        r.drain_scheduled = true;
        let (at, incarnation) = (r.busy_until_ns.max(now), r.incarnation);
        self.schedule(
            at,
            Action::Drain {
                process,
                incarnation,
            },
        );
    }

    /// A verified message for `replica`: handled now if the replica is idle, else queued for
    /// the turn after the one it is busy with.
    fn accept(&mut self, process: Proc, verified: Verified) {
        let now = self.now_ns;
        let r = &mut self.replicas[process];
        if r.busy_until_ns <= now && r.inbox.is_empty() {
            let signed = u64::from(verified.message().seal().signature().is_some());
            self.turn_with(process, signed, |host, now| {
                host.handle_input(now, Input::Message(verified));
            });
            return;
        }
        r.inbox.push(verified);
        self.schedule_drain(process);
    }

    /// Delivers what reached a paused replica while it was stopped, then fires its due timers.
    pub(super) fn release_held(&mut self, process: Proc) {
        let r = &mut self.replicas[process];
        let held = std::mem::take(&mut r.held);
        let incarnation = r.incarnation;
        for (from, frame) in held {
            self.deliver_to_replica(from, process, incarnation, &frame);
        }
        self.turn(process, |_, _| {});
    }

    /// Decodes and verifies a frame as the node's receive path does (memoized by frame digest;
    /// see `SimNetwork::verdicts`), and counts the MAC entries its signatures stood in for, as
    /// the node's verifier does: on every delivery, memoized or not, whatever the verdict.
    fn verdict(
        &mut self,
        process: Proc,
        frame: &[u8],
        decoded: Result<WireMessage, RejectReason>,
    ) -> Result<Verified, (RejectReason, Option<Signer>)> {
        let message = decoded.map_err(|reason| (reason, None))?;
        let what = Some((message.kind(), message.signer()));
        let keys = self.replicas[process].keys.clone();
        let memo_key = (keys.sessions().map(|s| s.me()), Digest::of(frame));
        let verdict = match self.verdicts.get(&memo_key) {
            Some(verdict) => verdict.clone(),
            None => {
                let verdict = verify::verify_counted(message, &keys);
                if self.verdicts.len() >= super::MAX_MEMOIZED_VERDICTS {
                    self.verdicts.clear();
                }
                self.verdicts.insert(memo_key, verdict.clone());
                verdict
            }
        };
        self.replicas[process]
            .stats
            .mac_fallbacks(verdict.mac_fallbacks);
        verdict.result.map_err(|reason| (reason, what))
    }

    /// The receive path refused a frame: reported and counted like the node does.
    fn reject(&mut self, process: Proc, reason: RejectReason, what: Option<Signer>) {
        let event = ReplicaEvent::Rejected {
            reason,
            kind: what.map(|(kind, _)| kind),
            from: what.map(|(_, signer)| signer),
        };
        let now = self.now_ns;
        self.replicas[process].record(now, event);
    }

    fn deliver_to_client(&mut self, from: Option<Endpoint>, client: ClientId, frame: &[u8]) {
        self.stats.delivered += 1;
        let link = match from {
            Some(Endpoint::Replica(r) | Endpoint::Twin(r)) => Some(r),
            _ => None,
        };
        let (Ok(WireMessage::Reply(reply)), Some(link)) = (self.decode(frame), link) else {
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
                    let to = self.links.destination(from, replica);
                    self.transmit(from, to, &message);
                }
                ClientTransmit::ToAll(request) => {
                    let frame = wire::encode_frame(&WireMessage::Request(request));
                    for replica in self.replica_ids() {
                        let to = self.links.destination(from, replica);
                        self.transmit_frame(now, from, to, MessageKind::Request, frame.clone());
                    }
                }
            }
        }
    }
}
