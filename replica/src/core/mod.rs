//! The PBFT protocol as a sans-IO state machine.
//!
//! `Core::step` takes one input (a verified message, a timer) and returns the effects to carry
//! out, in order. It never touches sockets, clocks, threads, randomness or disk, so the same
//! code runs in the `replica` process, in unit tests and in the simulator.

mod checkpoint;
mod effects;
mod execution;
mod log;
mod normal;
mod recovery;
mod suspicion;
#[cfg(test)]
mod tests;
mod view_change;

pub use effects::{Effect, Input, Snapshot, Timer, WalRecord};

use crate::config::{ClusterConfig, Timeouts};
use crate::crypto::KeyStore;
use crate::digest::Digest;
use crate::events::ReplicaEvent;
use crate::ids::{ClientId, Principal, Quorums, ReplicaId, Seq, View};
use crate::message::{
    Checkpoint, NewView, Request, RequestId, Signable, Signed, ViewChange, WireMessage,
};
use crate::service::ServiceState;
use crate::verify::RejectReason;
use ed25519_dalek::SigningKey;
use log::MessageLog;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Everything the core needs to know about its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreParams {
    pub id: ReplicaId,
    pub quorums: Quorums,
    pub checkpoint_interval: u64,
    pub watermark_window: u64,
    pub max_batch: usize,
    pub pipeline_depth: u64,
    pub timeouts: Timeouts,
    /// The frame cap: a PRE-PREPARE must fit in one frame, so it bounds requests and batches.
    pub max_frame_bytes: usize,
}

impl CoreParams {
    pub fn from_config(config: &ClusterConfig, id: ReplicaId) -> CoreParams {
        CoreParams {
            id,
            quorums: config.quorums(),
            checkpoint_interval: config.checkpoint_interval,
            watermark_window: config.watermark_window,
            max_batch: config.max_batch,
            pipeline_depth: config.pipeline_depth,
            timeouts: config.timeouts.clone(),
            max_frame_bytes: config.max_frame_bytes,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Normal,
    /// Sent a VIEW-CHANGE for `Core::view`; waiting for its NEW-VIEW.
    ViewChanging,
}

/// The latest stable checkpoint: its proof and the state at it.
#[derive(Clone, Debug)]
struct Stable {
    seq: Seq,
    digest: Digest,
    proof: Vec<Signed<Checkpoint>>,
    state: ServiceState,
}

pub struct Core {
    params: CoreParams,
    key: SigningKey,
    keys: Arc<KeyStore>,
    n: usize,

    view: View,
    status: Status,
    log: MessageLog,
    /// Per sequence number above the stable checkpoint, the prepared certificate from the
    /// highest view in which it prepared here (the P set of a VIEW-CHANGE).
    prepared_certs: BTreeMap<Seq, crate::message::PreparedProof>,

    service: ServiceState,
    last_executed: Seq,
    stable: Stable,
    /// This replica's own state at each checkpoint above the stable one.
    checkpoint_states: BTreeMap<Seq, ServiceState>,
    checkpoint_votes: BTreeMap<Seq, BTreeMap<ReplicaId, Signed<Checkpoint>>>,
    /// Highest checkpoint each peer claimed beyond our window: f+1 of them mean we are behind.
    checkpoint_claims: BTreeMap<ReplicaId, Seq>,

    // Primary side.
    next_seq: Seq,
    proposal_queue: VecDeque<Signed<Request>>,
    /// Requests queued or proposed in this view and not yet executed.
    proposed: HashSet<RequestId>,
    /// Each client whose request executed recently, with the sequence number it executed at:
    /// how many requests the primary can expect soon (PBFT clients have one in flight each).
    recent_clients: HashMap<ClientId, Seq>,
    /// Whether the primary is holding a partial batch, and whether it has held it long enough.
    batch_timer_running: bool,
    batch_wait_over: bool,

    // Backup side: the newest unexecuted request of each client, which the view-change timer guards.
    pending: BTreeMap<ClientId, Signed<Request>>,
    /// The pending request the running view-change timer waits for.
    guarded: Option<RequestId>,
    view_change_timer_running: bool,
    view_change_timeout_ms: u64,

    /// The latest suspicion of each replica (this one included): see `suspicion.rs`.
    suspicions: BTreeMap<ReplicaId, crate::message::Suspect>,
    view_changes: BTreeMap<ReplicaId, Signed<ViewChange>>,
    /// The NEW-VIEW that established `view` (none in view 0).
    new_view: Option<Signed<NewView>>,
    /// Peers sent our NEW-VIEW since the last retransmission tick because they spoke from an
    /// older view.
    new_view_forwarded: HashSet<(ReplicaId, View)>,
    /// The highest view each peer spoke from beyond ours.
    future_views: BTreeMap<ReplicaId, View>,

    /// Target sequence number of an ongoing state transfer.
    fetching: Option<Seq>,

    retransmit_ms: u64,
    executed_at_last_tick: Seq,
    /// (peer, seq) pairs whose duplicate we answered since the last retransmission tick.
    vote_resends: HashSet<(ReplicaId, Seq)>,
    /// Peers whose FETCH-STATE we answered since the last retransmission tick: an answer is
    /// signed and may carry the whole state, so a peer (faulty or not) gets one per tick.
    fetches_answered: HashSet<ReplicaId>,

    /// Records persisted since the stable checkpoint: what the log must keep when it is truncated.
    wal_tail: Vec<WalRecord>,
    /// Replaying the write-ahead log: state is rebuilt, nothing is sent, persisted or reported.
    replaying: bool,
    recovered: Option<ReplicaEvent>,
    out: Vec<Effect>,
    /// Replies produced in the current step, signed together when it ends.
    unsigned_replies: Vec<crate::message::Reply>,
    /// Between `begin_turn` and `end_turn`.
    in_turn: bool,
    /// `normal::max_batch_bytes` of `params`: the request bytes one batch may carry.
    max_batch_bytes: usize,
}

impl Core {
    /// A replica starting from nothing (view 0, empty state).
    pub fn new(params: CoreParams, key: SigningKey, keys: Arc<KeyStore>) -> Core {
        let n = params.quorums.n();
        let view_change_timeout_ms = params.timeouts.view_change_ms;
        let retransmit_ms = base_retransmit_ms(&params.timeouts);
        let genesis = ServiceState::default();
        Core {
            n,
            view: View(0),
            status: Status::Normal,
            log: MessageLog::default(),
            prepared_certs: BTreeMap::new(),
            last_executed: Seq(0),
            stable: Stable {
                seq: Seq(0),
                digest: genesis.digest(),
                proof: Vec::new(),
                state: genesis.clone(),
            },
            service: genesis,
            checkpoint_states: BTreeMap::new(),
            checkpoint_votes: BTreeMap::new(),
            checkpoint_claims: BTreeMap::new(),
            next_seq: Seq(1),
            proposal_queue: VecDeque::new(),
            proposed: HashSet::new(),
            recent_clients: HashMap::new(),
            batch_timer_running: false,
            batch_wait_over: false,
            pending: BTreeMap::new(),
            guarded: None,
            view_change_timer_running: false,
            view_change_timeout_ms,
            suspicions: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            new_view: None,
            new_view_forwarded: HashSet::new(),
            future_views: BTreeMap::new(),
            fetching: None,
            retransmit_ms,
            executed_at_last_tick: Seq(0),
            vote_resends: HashSet::new(),
            fetches_answered: HashSet::new(),
            wal_tail: Vec::new(),
            replaying: false,
            recovered: None,
            out: Vec::new(),
            unsigned_replies: Vec::new(),
            in_turn: false,
            max_batch_bytes: normal::max_batch_bytes(&params),
            params,
            key,
            keys,
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Start => self.on_start(),
            Input::TimerFired(timer) => self.on_timer(timer),
            Input::Message(verified) => self.on_message(verified.into_message()),
        }
        if !self.in_turn {
            self.sign_replies();
        }
        std::mem::take(&mut self.out)
    }

    /// Starts a turn: until `end_turn`, steps queue requests without proposing them and hold
    /// replies unsigned. A node that has several inputs at hand steps them all inside one
    /// turn, so they share one PRE-PREPARE and one reply signature; nothing leaves a node
    /// before its turn ends anyway (the log is synced first), so this costs no latency.
    pub fn begin_turn(&mut self) {
        self.in_turn = true;
    }

    /// Ends a turn: proposes what was queued and signs the turn's replies.
    pub fn end_turn(&mut self) -> Vec<Effect> {
        self.in_turn = false;
        self.try_propose();
        self.sign_replies();
        std::mem::take(&mut self.out)
    }

    fn on_message(&mut self, message: WireMessage) {
        match message {
            WireMessage::Request(m) => self.on_request(m),
            WireMessage::PrePrepare(m) => self.on_pre_prepare(m),
            WireMessage::Prepare(m) => self.on_prepare(m),
            WireMessage::Commit(m) => self.on_commit(m),
            WireMessage::Checkpoint(m) => self.on_checkpoint(m),
            WireMessage::Suspect(m) => self.on_suspect(m),
            WireMessage::ViewChange(m) => self.on_view_change(m),
            WireMessage::NewView(m) => self.on_new_view(m),
            WireMessage::FetchState(m) => self.on_fetch_state(m),
            WireMessage::StateTransfer(m) => self.on_state_transfer(m),
            WireMessage::Reply(m) => self.reject(
                RejectReason::Misdirected,
                crate::message::MessageKind::Reply,
                m.signer,
            ),
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::ViewChange => self.on_view_change_timer(),
            Timer::Retransmit => self.on_retransmit_timer(),
            Timer::StateTransfer => self.on_state_transfer_timer(),
            Timer::Batch => self.on_batch_timer(),
        }
    }

    // ---- Effects -------------------------------------------------------------------------

    fn sign<T: Signable>(&self, body: T) -> Signed<T> {
        Signed::sign(body, Principal::Replica(self.params.id), &self.key)
    }

    /// For what convinces only its recipients (a COMMIT): under `auth: macs` an authenticator,
    /// otherwise a signature.
    fn authenticate<T: Signable>(&self, body: T) -> Signed<T> {
        match self.keys.sessions() {
            Some(sessions) => Signed::authenticate(body, sessions),
            None => self.sign(body),
        }
    }

    fn persist(&mut self, message: WireMessage) {
        if self.replaying {
            return;
        }
        let record = WalRecord::Message(message);
        self.wal_tail.push(record.clone());
        self.out.push(Effect::Persist(record));
    }

    fn send(&mut self, to: ReplicaId, message: WireMessage) {
        if !self.replaying && to != self.params.id {
            self.out.push(Effect::Send { to, message });
        }
    }

    fn broadcast(&mut self, message: WireMessage) {
        if !self.replaying {
            self.out.push(Effect::Broadcast(message));
        }
    }

    fn event(&mut self, event: ReplicaEvent) {
        if !self.replaying {
            self.out.push(Effect::Event(event));
        }
    }

    /// Reports a vote this replica made and sent (`ReplicaEvent::Sent`).
    fn sent(&mut self, kind: crate::message::MessageKind, view: View, seq: Seq, digest: Digest) {
        self.event(ReplicaEvent::Sent {
            kind,
            view,
            seq,
            digest: digest.to_hex(),
        });
    }

    fn set_timer(&mut self, timer: Timer, after_ms: u64) {
        if !self.replaying {
            self.out.push(Effect::SetTimer { timer, after_ms });
        }
    }

    fn cancel_timer(&mut self, timer: Timer) {
        if !self.replaying {
            self.out.push(Effect::CancelTimer(timer));
        }
    }

    fn reject(&mut self, reason: RejectReason, kind: crate::message::MessageKind, from: Principal) {
        self.event(ReplicaEvent::Rejected {
            reason,
            kind: Some(kind),
            from: Some(from),
        });
    }

    // ---- Arithmetic ----------------------------------------------------------------------

    fn quorum(&self) -> usize {
        self.params.quorums.quorum()
    }

    fn weak_quorum(&self) -> usize {
        self.params.quorums.weak()
    }

    fn low_watermark(&self) -> Seq {
        self.stable.seq
    }

    fn high_watermark(&self) -> Seq {
        Seq(self.stable.seq.0 + self.params.watermark_window)
    }

    fn in_window(&self, seq: Seq) -> bool {
        seq > self.low_watermark() && seq <= self.high_watermark()
    }

    fn primary_of(&self, view: View) -> ReplicaId {
        view.primary(self.n)
    }

    // ---- Read-only accessors -------------------------------------------------------------

    pub fn params(&self) -> &CoreParams {
        &self.params
    }
    pub fn id(&self) -> ReplicaId {
        self.params.id
    }
    pub fn view(&self) -> View {
        self.view
    }
    pub fn primary(&self) -> ReplicaId {
        self.primary_of(self.view)
    }
    pub fn is_primary(&self) -> bool {
        self.primary() == self.params.id
    }
    pub fn in_view_change(&self) -> bool {
        self.status == Status::ViewChanging
    }
    pub fn last_executed(&self) -> Seq {
        self.last_executed
    }
    pub fn stable_checkpoint(&self) -> Seq {
        self.stable.seq
    }
    pub fn service(&self) -> &ServiceState {
        &self.service
    }
    pub fn state_digest(&self) -> Digest {
        self.service.digest()
    }
    /// Sequence numbers held in the message log (bounded by the watermark window).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
    /// The cluster's public keys, as this replica knows them.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }
    /// Requests this replica knows of and has not executed yet.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }
}

/// Well inside the view-change timeout, so a lost message is re-sent before backups give up
/// on the primary.
fn base_retransmit_ms(timeouts: &Timeouts) -> u64 {
    (timeouts.view_change_ms / 8).max(20)
}

/// Longest back-off between retransmissions while nothing progresses.
const MAX_RETRANSMIT_MS: u64 = 2_000;
