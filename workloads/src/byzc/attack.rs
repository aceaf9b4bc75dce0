//! The sans-IO Byzantine client: what to send and when, from the behaviour, the client's key
//! and a seed. The caller owns time (a `Duration` since the attack started) and the network;
//! the same calls give the same frames, byte for byte.

use super::report::SendClass;
use super::sizes::request_with_payload;
use super::{Rate, SizeClass, Spec, Spoil, Targets};
use ed25519_dalek::SigningKey;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::auth::{AuthMode, Mac, SessionKeys};
use replica::ids::{ClientId, Principal, ReplicaId, Timestamp, View};
use replica::kv::Operation;
use replica::message::{Request, Seal, Signed, WireMessage};
use replica::wire::encode_frame;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Everything an attack needs besides its behaviour.
#[derive(Clone)]
pub struct AttackConfig {
    pub client: ClientId,
    /// The client's own key: every request it sends is validly signed.
    pub key: SigningKey,
    /// Under `auth: macs`, its session keys: its requests then carry an authenticator for the
    /// backups too, as an honest client's do.
    pub sessions: Option<Arc<SessionKeys>>,
    /// Replicas in the cluster (n = 3f+1).
    pub replicas: usize,
    /// The replicas' frame cap (`max_frame_bytes`): the payload of the largest frame they read.
    pub max_frame: usize,
    pub seed: u64,
    /// The pace of an unpaced behaviour (`flood` at `rate: max`): zero in a real run, where
    /// the connections' backpressure paces it; a fixed gap in the simulator.
    pub unpaced_gap: Duration,
}

/// Who a frame goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    All,
    Replica(ReplicaId),
}

/// One request frame, due at `at`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// When it was due (since the attack started).
    pub at: Duration,
    pub class: SendClass,
    pub timestamp: u64,
    pub to: Target,
    /// The whole frame: length prefix and payload.
    pub frame: Arc<[u8]>,
    /// `mac-attack`: the replicas whose entry of the request's authenticator was spoiled, in
    /// id order (empty for every other behaviour).
    pub spoiled: Vec<ReplicaId>,
}

impl Outgoing {
    /// The replicas it goes to, in id order.
    pub fn recipients(&self, replicas: usize) -> Vec<ReplicaId> {
        match self.to {
            Target::All => (0..replicas as u32).map(ReplicaId).collect(),
            Target::Replica(r) => vec![r],
        }
    }

    /// The length the frame's prefix announces (its payload).
    pub fn payload_len(&self) -> usize {
        self.frame
            .len()
            .saturating_sub(replica::wire::LENGTH_PREFIX)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dest {
    All,
    /// The primary of the view when the frame is taken.
    Primary,
    /// One replica, chosen when the frame was made.
    Replica(ReplicaId),
}

struct Planned {
    at: Duration,
    class: SendClass,
    timestamp: u64,
    to: Dest,
    frame: Arc<[u8]>,
    spoiled: Vec<ReplicaId>,
}

/// A Byzantine client's schedule of frames.
pub struct Attack {
    spec: Spec,
    config: AttackConfig,
    rng: ChaCha8Rng,
    /// The highest view replies vouched for: its primary is where `Primary` frames go.
    view: u64,
    round: u64,
    queue: VecDeque<Planned>,
    /// `replay-timestamps`: the fresh requests sent, newest last, at most `depth`.
    fresh: VecDeque<(u64, Arc<[u8]>)>,
    /// The highest timestamp used so far.
    last_timestamp: u64,
    /// `never-read`: the value its reads return, and the latest read.
    large_value: String,
    large_read: Option<(u64, Arc<[u8]>)>,
}

/// Timestamps `replay-timestamps` reserves per round: two for lower-timestamp requests, two
/// for the fresh one (or an out-of-order pair).
const REPLAY_BLOCK: u64 = 4;
/// Private keys a behaviour writes: honest workloads use `k<i>` and `r<i>`.
const PRIVATE_KEYS: u64 = 4;

/// See `Attack::caveat`. The client holds session keys exactly when the cluster is under MACs.
fn caveat(spec: &Spec, config: &AttackConfig) -> Option<String> {
    let needs = spec.needs_auth()?;
    let has = if config.sessions.is_some() {
        AuthMode::Macs
    } else {
        AuthMode::Signatures
    };
    (needs != has).then(|| {
        format!(
            "`{}` needs `auth: {needs}`, but the cluster runs under `{has}`: its requests carry \
             no authenticator to spoil, so it sends validly signed requests only (`{}` in \
             byzantine-clients.json) and this run does not test the MAC attack",
            spec.behaviour().name(),
            SendClass::SignedOnly.name()
        )
    })
}

fn frame_of(request: Signed<Request>) -> Arc<[u8]> {
    Arc::from(encode_frame(&WireMessage::Request(request)))
}

impl Attack {
    /// Warns (once, in the run's log) when the behaviour cannot do what it is named for in
    /// this cluster: see `caveat`.
    pub fn new(spec: Spec, config: AttackConfig) -> Attack {
        if let Some(caveat) = caveat(&spec, &config) {
            tracing::warn!("Byzantine client {}: {caveat}", config.client);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let large_value = match &spec {
            Spec::NeverRead { value_bytes, .. } => (0..*value_bytes)
                .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                .collect(),
            _ => String::new(),
        };
        Attack {
            spec,
            config,
            rng,
            view: 0,
            round: 0,
            queue: VecDeque::new(),
            fresh: VecDeque::new(),
            last_timestamp: 0,
            large_value,
            large_read: None,
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Why this attack is not the one its behaviour names, if it is not: `mac-attack` in a
    /// cluster under `signatures`, which only an `--auth` override can make (a scenario that
    /// asks for it is refused at load), has no authenticator to spoil.
    pub fn caveat(&self) -> Option<String> {
        caveat(&self.spec, &self.config)
    }

    pub fn client(&self) -> ClientId {
        self.config.client
    }

    /// A reply (or anything else the client trusts) showed view `view`.
    pub fn observe_view(&mut self, view: u64) {
        self.view = self.view.max(view);
    }

    /// The replica `Primary` frames go to now.
    pub fn primary(&self) -> ReplicaId {
        View(self.view).primary(self.config.replicas)
    }

    /// When the next frame is due (it may be due already).
    pub fn next_due(&self) -> Duration {
        self.queue
            .front()
            .map_or_else(|| self.round_at(self.round), |p| p.at)
    }

    /// The next frame if it is due by `now`.
    pub fn poll(&mut self, now: Duration) -> Option<Outgoing> {
        while self.queue.is_empty() {
            let at = self.round_at(self.round);
            if at > now {
                return None;
            }
            self.plan_round(at);
            self.round += 1;
        }
        if self.queue.front().is_some_and(|p| p.at > now) {
            return None;
        }
        let planned = self.queue.pop_front()?;
        let to = match planned.to {
            Dest::All => Target::All,
            Dest::Primary => Target::Replica(self.primary()),
            Dest::Replica(replica) => Target::Replica(replica),
        };
        Some(Outgoing {
            at: planned.at,
            class: planned.class,
            timestamp: planned.timestamp,
            to,
            frame: planned.frame,
            spoiled: planned.spoiled,
        })
    }

    /// Every frame due by `now`, in order.
    pub fn poll_all(&mut self, now: Duration) -> Vec<Outgoing> {
        std::iter::from_fn(|| self.poll(now)).collect()
    }

    fn round_interval(&self) -> Duration {
        let per_second = |rate: f64| Duration::from_nanos((1e9 / rate).round().max(1.0) as u64);
        match &self.spec {
            Spec::ReplayTimestamps { interval, .. } | Spec::MaxSizeRequests { interval, .. } => {
                *interval
            }
            Spec::Flood {
                rate: Rate::Max, ..
            } => self.config.unpaced_gap,
            Spec::Flood {
                rate: Rate::PerSecond(rate),
                ..
            } => per_second(*rate),
            Spec::NeverRead { rate, .. } | Spec::MacAttack { rate, .. } => per_second(*rate),
        }
    }

    fn round_at(&self, round: u64) -> Duration {
        let nanos = self.round_interval().as_nanos() as u64;
        Duration::from_nanos(nanos.saturating_mul(round))
    }

    fn sign(&self, timestamp: u64, op: Operation) -> Signed<Request> {
        self.seal(Request {
            client: self.config.client,
            timestamp: Timestamp(timestamp),
            op,
        })
    }

    /// Signed, and under `auth: macs` authenticated for the backups, as `ClientCore` does.
    fn seal(&self, body: Request) -> Signed<Request> {
        match &self.config.sessions {
            Some(sessions) => Signed::sign_and_authenticate(body, &self.config.key, sessions),
            None => Signed::sign(
                body,
                Principal::Client(self.config.client),
                &self.config.key,
            ),
        }
    }

    fn private_key(&self, name: impl std::fmt::Display) -> String {
        format!("byzc-{}-{name}", self.config.client)
    }

    /// A small seeded operation on one of the client's own keys.
    fn small_op(&mut self, value: String) -> Operation {
        let index = self.rng.random_range(0..PRIVATE_KEYS);
        let key = self.private_key(index);
        match self.rng.random_range(0..3u8) {
            0 => Operation::Put { key, value },
            1 => Operation::Append { key, value },
            _ => Operation::Get { key },
        }
    }

    fn push(&mut self, at: Duration, class: SendClass, timestamp: u64, to: Dest, frame: Arc<[u8]>) {
        self.last_timestamp = self.last_timestamp.max(timestamp);
        self.queue.push_back(Planned {
            at,
            class,
            timestamp,
            to,
            frame,
            spoiled: Vec::new(),
        });
    }

    fn plan_round(&mut self, at: Duration) {
        match self.spec.clone() {
            Spec::ReplayTimestamps {
                interval,
                replays,
                depth,
            } => self.plan_replay(at, interval, replays, depth),
            Spec::MaxSizeRequests { interval, sizes } => self.plan_sizes(at, interval, &sizes),
            Spec::Flood { targets, .. } => {
                let timestamp = self.last_timestamp + 1;
                let op = self.small_op(format!("f{timestamp}"));
                let primary = match targets {
                    Targets::Primary => true,
                    Targets::All => false,
                    Targets::Mixed => self.rng.random_bool(0.5),
                };
                let (class, to) = if primary {
                    (SendClass::FloodPrimary, Dest::Primary)
                } else {
                    (SendClass::FloodAll, Dest::All)
                };
                let frame = frame_of(self.sign(timestamp, op));
                self.push(at, class, timestamp, to, frame);
            }
            Spec::NeverRead { rate, .. } => self.plan_never_read(at, rate),
            Spec::MacAttack {
                spoil,
                valid_signature,
                ..
            } => self.plan_mac_attack(at, spoil, valid_signature),
        }
    }

    /// One request with a new timestamp, to the primary of the view it believes in: its
    /// authenticator's entry for that primary is valid, those of a seeded choice of backups are
    /// spoiled; its signature is valid unless `valid_signature` is false. (Without session
    /// keys, a cluster under `signatures`, there is no authenticator: the request is only
    /// signed.)
    fn plan_mac_attack(&mut self, at: Duration, spoil: Spoil, valid_signature: bool) {
        let timestamp = self.last_timestamp + 1;
        let op = self.small_op(format!("m{timestamp}"));
        let mut request = self.sign(timestamp, op);
        let primary = self.primary();
        let mut spoiled = Vec::new();
        if let Seal::SignedAuthenticator { macs, .. } = &mut request.seal {
            let mut backups: Vec<ReplicaId> = (0..self.config.replicas as u32)
                .map(ReplicaId)
                .filter(|r| *r != primary)
                .collect();
            let count = match spoil {
                Spoil::All => backups.len(),
                Spoil::Backups(count) => count.min(backups.len()),
            };
            // A seeded partial Fisher-Yates shuffle: the first `count` are the chosen ones.
            for i in 0..count {
                let j = self.rng.random_range(i..backups.len());
                backups.swap(i, j);
            }
            spoiled = backups[..count].to_vec();
            spoiled.sort_unstable();
            for replica in &spoiled {
                if let Some(entry) = macs.get_mut(replica.0 as usize) {
                    let mut mask: Mac = self.rng.random();
                    // Never the zero mask: the entry must change.
                    mask[0] |= 1;
                    entry.iter_mut().zip(mask).for_each(|(byte, m)| *byte ^= m);
                }
            }
        }
        if !valid_signature && let Some(signature) = request.seal.signature_mut() {
            let bit = self.rng.random_range(0..8 * signature.len());
            signature[bit / 8] ^= 1 << (bit % 8);
        }
        let authenticated = matches!(request.seal, Seal::SignedAuthenticator { .. });
        let class = match (valid_signature, authenticated) {
            (false, _) => SendClass::BadSignature,
            (true, true) => SendClass::SpoiledMacs,
            (true, false) => SendClass::SignedOnly,
        };
        self.push(
            at,
            class,
            timestamp,
            Dest::Replica(primary),
            frame_of(request),
        );
        if let Some(last) = self.queue.back_mut() {
            last.spoiled = spoiled;
        }
    }

    /// One fresh request (now and then an out-of-order pair), then `replays` frames that
    /// must not execute again: the fresh one again, an older one again, the fresh timestamp
    /// with another operation, an unused lower timestamp.
    fn plan_replay(&mut self, at: Duration, interval: Duration, replays: u32, depth: usize) {
        let block = self.round * REPLAY_BLOCK;
        let value = format!("r{}", self.round);
        let latest = if self.rng.random_range(0..4u8) == 0 {
            let (high, low) = (block + 4, block + 3);
            let high_op = self.small_op(value.clone());
            let high_frame = frame_of(self.sign(high, high_op));
            self.push(at, SendClass::Fresh, high, Dest::All, high_frame.clone());
            let low_op = self.small_op(value);
            let low_frame = frame_of(self.sign(low, low_op));
            self.push(at, SendClass::OutOfOrder, low, Dest::All, low_frame);
            (high, high_frame)
        } else {
            let timestamp = block + 3;
            let op = self.small_op(value);
            let frame = frame_of(self.sign(timestamp, op));
            self.push(at, SendClass::Fresh, timestamp, Dest::All, frame.clone());
            (timestamp, frame)
        };
        let older: Vec<(u64, Arc<[u8]>)> = self.fresh.iter().cloned().collect();
        self.fresh.push_back(latest.clone());
        while self.fresh.len() > depth {
            self.fresh.pop_front();
        }
        let step = interval / (replays + 1);
        for i in 0..replays {
            let when = at + step * (i + 1);
            match self.rng.random_range(0..4u8) {
                1 if !older.is_empty() => {
                    let (timestamp, frame) = older[self.rng.random_range(0..older.len())].clone();
                    self.push(when, SendClass::ReplayOld, timestamp, Dest::All, frame);
                }
                2 => {
                    let index = self.rng.random_range(0..PRIVATE_KEYS);
                    let op = Operation::Append {
                        key: self.private_key(index),
                        value: format!("dup{}-{i}", self.round),
                    };
                    let frame = frame_of(self.sign(latest.0, op));
                    self.push(
                        when,
                        SendClass::DuplicateTimestamp,
                        latest.0,
                        Dest::All,
                        frame,
                    );
                }
                3 => {
                    let timestamp = block + 1 + self.rng.random_range(0..2u64);
                    let op = self.small_op(format!("old{}-{i}", self.round));
                    let frame = frame_of(self.sign(timestamp, op));
                    self.push(when, SendClass::OlderTimestamp, timestamp, Dest::All, frame);
                }
                _ => {
                    let (timestamp, frame) = latest.clone();
                    self.push(when, SendClass::ReplayExecuted, timestamp, Dest::All, frame);
                }
            }
        }
    }

    /// One request per size, each with a new timestamp, spread over the round.
    fn plan_sizes(&mut self, at: Duration, interval: Duration, sizes: &[SizeClass]) {
        let cap = self.config.max_frame;
        let under_by = 4096.min(cap / 2).max(1);
        for (i, size) in sizes.iter().enumerate() {
            let (payload, class) = match size {
                SizeClass::Under => (
                    cap - self.rng.random_range(1..=under_by),
                    SendClass::UnderCap,
                ),
                SizeClass::At => (cap, SendClass::AtCap),
                SizeClass::Over => (cap + self.rng.random_range(1..=1024), SendClass::OverCap),
            };
            let timestamp = self.last_timestamp + 1;
            let prefix = self.private_key("size-");
            let Some(request) = request_with_payload(
                self.config.client,
                &|body| self.seal(body),
                timestamp,
                payload,
                &prefix,
            ) else {
                continue;
            };
            let when = at + interval * i as u32 / sizes.len() as u32;
            self.push(when, class, timestamp, Dest::All, frame_of(request));
        }
    }

    /// About once a second a write of the large value and, ten rounds later (so that the
    /// write executed first), a read of it; until the next write, that read again: each copy
    /// is answered from the reply cache with the large value, and never executed again.
    fn plan_never_read(&mut self, at: Duration, rate: f64) {
        let per_refresh = (rate.round() as u64).max(12);
        let phase = self.round % per_refresh;
        let key = self.private_key("large");
        if phase == 0 {
            let timestamp = self.last_timestamp + 1;
            let op = Operation::Put {
                key,
                value: self.large_value.clone(),
            };
            let frame = frame_of(self.sign(timestamp, op));
            self.push(at, SendClass::LargeValue, timestamp, Dest::All, frame);
        } else if phase == 10 {
            let timestamp = self.last_timestamp + 1;
            let frame = frame_of(self.sign(timestamp, Operation::Get { key }));
            self.large_read = Some((timestamp, frame.clone()));
            self.push(at, SendClass::LargeRead, timestamp, Dest::All, frame);
        } else if phase > 10
            && let Some((timestamp, frame)) = self.large_read.clone()
        {
            self.push(at, SendClass::LargeRead, timestamp, Dest::All, frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attack_without_sessions(behaviour: &str) -> Attack {
        let spec = super::super::validate(behaviour, &Default::default()).expect("valid");
        let client = ClientId(3);
        Attack::new(
            spec,
            AttackConfig {
                client,
                key: replica::crypto::key_from_seed(9, Principal::Client(client)),
                sessions: None,
                replicas: 4,
                max_frame: 1 << 20,
                seed: 1,
                unpaced_gap: Duration::from_micros(50),
            },
        )
    }

    /// Under `signatures` a `mac-attack` says that it mounts no MAC attack; a behaviour that
    /// needs no particular mode says nothing.
    #[test]
    fn a_mac_attack_without_session_keys_says_it_spoils_nothing() {
        let caveat = attack_without_sessions("mac-attack")
            .caveat()
            .expect("nothing to spoil");
        assert!(
            caveat.contains("needs `auth: macs`") && caveat.contains("`signed-only`"),
            "{caveat}"
        );
        assert_eq!(attack_without_sessions("flood").caveat(), None);
    }
}
