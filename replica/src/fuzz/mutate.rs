//! Making fuzzed frames from the corpus: untouched originals, replays, byte-level mutations of
//! encoded frames, and structure-level mutations of decoded messages that are then encoded
//! again, either keeping the stale signature or signing anew with a key the fuzzer holds.

use super::corpus::{Corpus, Sample};
use crate::digest::Digest;
use crate::ids::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};
use crate::kv::{OpResult, Operation};
use crate::message::{
    Checkpoint, Commit, CommittedProof, MessageKind, NewView, PrePrepare, Prepare, PreparedProof,
    Reply, Request, Seal, Signable, Signed, StateTransfer, ViewChange, WireMessage, batch_digest,
};
use crate::reply_tree::{MAX_PATH_LENGTH, PathStep};
use crate::service::CachedReply;
use crate::wire::{LENGTH_PREFIX, encode_frame};
use ed25519_dalek::SigningKey;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// What the target backup looks like now, so values land near its watermarks and view.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hints {
    pub view: View,
    pub stable: Seq,
    pub executed: Seq,
    pub state_digest: Digest,
}

/// How a structurally mutated message was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signing {
    /// The original signature, now over different content.
    Stale,
    /// Signer set to the faulty replica, signed with its own key: what one Byzantine replica
    /// can really send.
    Byzantine,
    /// A request signed anew by the client it names (any client may be faulty).
    Client,
    /// The outer envelope signed by whoever it names: more than f faulty replicas.
    Colluding,
    /// Every nested signature too, each by its own signer: more than f faulty replicas.
    Deep,
    /// Retargeted traffic signed by whoever it names, as the rest of the cluster carrying on
    /// would sign it.
    Cluster,
}

impl Signing {
    pub(super) fn name(self) -> &'static str {
        match self {
            Signing::Stale => "stale signature",
            Signing::Byzantine => "byzantine replica",
            Signing::Client => "client",
            Signing::Colluding => "colluding (> f)",
            Signing::Deep => "colluding deep (> f)",
            Signing::Cluster => "as the cluster would",
        }
    }
}

/// How one frame was made: enough to read a crash report.
#[derive(Clone, Debug)]
pub(super) struct Mutation {
    pub op: &'static str,
    pub kind: Option<MessageKind>,
    pub field: &'static str,
    pub how: &'static str,
    pub signing: Option<Signing>,
    /// A byte-level mutation applied after the structure-level one.
    pub stacked: Option<&'static str>,
}

impl Mutation {
    fn plain(op: &'static str, kind: Option<MessageKind>) -> Mutation {
        Mutation {
            op,
            kind,
            field: "",
            how: "",
            signing: None,
            stacked: None,
        }
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op)?;
        if let Some(kind) = self.kind {
            write!(f, " of a {kind}")?;
        }
        if !self.field.is_empty() {
            write!(f, ", {} {}", self.field, self.how)?;
        }
        if let Some(signing) = self.signing {
            write!(f, ", {}", signing.name())?;
        }
        if let Some(stacked) = self.stacked {
            write!(f, ", then {stacked}")?;
        }
        Ok(())
    }
}

type Change = (&'static str, &'static str);

/// Generates every fuzzed frame from one seeded stream.
pub(super) struct Generator {
    corpus: Arc<Corpus>,
    rng: ChaCha8Rng,
    kinds: Vec<MessageKind>,
    n: u32,
    clients: u32,
    interval: u64,
    window: u64,
    max_batch: usize,
    max_frame: usize,
    /// Whether mutated messages may be signed as anyone but the one Byzantine replica and
    /// clients.
    collusion: bool,
}

const INTERESTING_BYTES: [u8; 6] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/// Applies `$e` to the `Signed<_>` inside any `WireMessage` variant.
macro_rules! with_signed {
    ($message:expr, $s:ident => $e:expr) => {
        match $message {
            WireMessage::Request($s) => $e,
            WireMessage::Reply($s) => $e,
            WireMessage::PrePrepare($s) => $e,
            WireMessage::Prepare($s) => $e,
            WireMessage::Commit($s) => $e,
            WireMessage::Checkpoint($s) => $e,
            WireMessage::Suspect($s) => $e,
            WireMessage::ViewChange($s) => $e,
            WireMessage::NewView($s) => $e,
            WireMessage::FetchState($s) => $e,
            WireMessage::StateTransfer($s) => $e,
        }
    };
}

impl Generator {
    pub(super) fn set_collusion(&mut self, collusion: bool) {
        self.collusion = collusion;
    }

    /// Starts without collusion (see `set_collusion`).
    pub(super) fn new(corpus: Arc<Corpus>, seed: u64) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let config = &corpus.config;
        Generator {
            kinds: corpus.samples.keys().copied().collect(),
            n: config.replicas.len() as u32,
            clients: config.clients.len() as u32,
            interval: config.checkpoint_interval,
            window: config.watermark_window,
            max_batch: config.max_batch,
            max_frame: config.max_frame_bytes,
            collusion: false,
            corpus,
            rng,
        }
    }

    /// The next fuzzed input: the bytes one connection delivers, and how they were made.
    pub(super) fn next(
        &mut self,
        hints: &Hints,
        replay: &VecDeque<Vec<u8>>,
    ) -> (Vec<u8>, Mutation) {
        let roll = self.rng.random_range(0..100u32);
        if roll < 5 && !replay.is_empty() {
            let i = self.rng.random_range(0..replay.len());
            return (replay[i].clone(), Mutation::plain("replay", None));
        }
        let corpus = self.corpus.clone();
        let sample = self.sample(&corpus);
        let kind = sample.message.kind();
        if roll < 10 {
            return (
                sample.frame.clone(),
                Mutation::plain("original", Some(kind)),
            );
        }
        if roll < 42 {
            let (bytes, op) = self.bytes(&sample.frame);
            return (bytes, Mutation::plain(op, Some(kind)));
        }
        if roll < 52
            && let Some((mut message, (field, how))) = self.retarget(hints)
        {
            let kind = message.kind();
            let signing = if kind == MessageKind::Request {
                Signing::Client
            } else {
                Signing::Cluster
            };
            self.sign(&mut message, signing);
            let mutation = Mutation {
                op: "retarget",
                kind: Some(kind),
                field,
                how,
                signing: Some(signing),
                stacked: None,
            };
            return (encode_frame(&message), mutation);
        }
        let mut message = sample.message.clone();
        let signing = self.signing(kind);
        let deep = signing == Signing::Deep;
        let (mut field, how) = self.structure(&mut message, hints, deep);
        if self.rng.random_ratio(1, 4) {
            self.structure(&mut message, hints, deep);
            field = "several fields, first";
        }
        self.sign(&mut message, signing);
        let mut bytes = encode_frame(&message);
        let stacked = if self.rng.random_ratio(1, 20) {
            let (mutated, op) = self.bytes(&bytes);
            bytes = mutated;
            Some(op)
        } else {
            None
        };
        let mutation = Mutation {
            op: "structure",
            kind: Some(kind),
            field,
            how,
            signing: Some(signing),
            stacked,
        };
        (bytes, mutation)
    }

    fn sample<'c>(&mut self, corpus: &'c Corpus) -> &'c Sample {
        let kind = self.kinds[self.rng.random_range(0..self.kinds.len())];
        let samples = &corpus.samples[&kind];
        &samples[self.rng.random_range(0..samples.len())]
    }

    /// A random sample of `kind`, if the corpus has one.
    fn sample_of<'c>(&mut self, corpus: &'c Corpus, kind: MessageKind) -> Option<&'c Sample> {
        let samples = corpus.samples.get(&kind).filter(|s| !s.is_empty())?;
        Some(&samples[self.rng.random_range(0..samples.len())])
    }

    // ---- byte level ----------------------------------------------------------------------

    fn reframe(payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(LENGTH_PREFIX + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        self.rng.fill(&mut bytes[..]);
        bytes
    }

    fn other_frame(&mut self) -> Vec<u8> {
        let corpus = self.corpus.clone();
        self.sample(&corpus).frame.clone()
    }

    /// A byte-level mutation of a whole frame (length prefix and payload).
    fn bytes(&mut self, frame: &[u8]) -> (Vec<u8>, &'static str) {
        let mut out = frame.to_vec();
        let payload = frame.get(LENGTH_PREFIX..).unwrap_or_default();
        let len = payload.len();
        if len == 0 {
            return (out, "none");
        }
        let at = self.rng.random_range(LENGTH_PREFIX..out.len());
        let op = match self.rng.random_range(0..11u32) {
            0 => {
                for _ in 0..self.rng.random_range(1..=4u32) {
                    let i = self.rng.random_range(LENGTH_PREFIX..out.len());
                    let bit = self.rng.random_range(0..8u32);
                    out[i] ^= 1 << bit;
                }
                "bit-flip"
            }
            1 => {
                for _ in 0..self.rng.random_range(1..=4u32) {
                    let i = self.rng.random_range(LENGTH_PREFIX..out.len());
                    let pick = self.rng.random_range(0..INTERESTING_BYTES.len());
                    out[i] = if self.rng.random_bool(0.7) {
                        INTERESTING_BYTES[pick]
                    } else {
                        self.rng.random()
                    };
                }
                "byte-set"
            }
            2 => {
                out.truncate(self.rng.random_range(0..out.len()));
                "truncate"
            }
            3 => {
                out = Self::reframe(&payload[..self.rng.random_range(0..len)]);
                "truncate-reframed"
            }
            4 => {
                let count = self.rng.random_range(1..=32);
                let extra = self.random_bytes(count);
                out.extend_from_slice(&extra);
                "extend"
            }
            5 => {
                let mut longer = payload.to_vec();
                let count = self.rng.random_range(1..=32);
                let extra = self.random_bytes(count);
                longer.extend_from_slice(&extra);
                out = Self::reframe(&longer);
                "extend-reframed"
            }
            6 => {
                let other = self.other_frame();
                let other = &other[LENGTH_PREFIX..];
                let cut_a = self.rng.random_range(0..=len);
                let cut_b = self.rng.random_range(0..=other.len());
                let mut spliced = payload[..cut_a].to_vec();
                spliced.extend_from_slice(&other[cut_b..]);
                out = Self::reframe(&spliced);
                "splice"
            }
            7 => {
                let other = self.other_frame();
                out.extend_from_slice(&other);
                "concat"
            }
            8 => {
                let value: u32 = match self.rng.random_range(0..7u32) {
                    0 => 0,
                    1 => len as u32 - 1,
                    2 => len as u32 + 1,
                    3 => self.max_frame as u32 + 1,
                    4 => u32::MAX,
                    5 => self.rng.random_range(0..=self.max_frame as u32),
                    _ => self.rng.random(),
                };
                out[..LENGTH_PREFIX].copy_from_slice(&value.to_be_bytes());
                "length-prefix"
            }
            9 => {
                let mut edited = payload.to_vec();
                let start = at - LENGTH_PREFIX;
                if self.rng.random_bool(0.5) {
                    let end = (start + self.rng.random_range(1..=16)).min(edited.len());
                    edited.drain(start..end);
                } else {
                    let count = self.rng.random_range(1..=16);
                    let extra = self.random_bytes(count);
                    edited.splice(start..start, extra);
                }
                out = Self::reframe(&edited);
                "insert-delete"
            }
            _ => {
                let mut edited = payload.to_vec();
                let start = at - LENGTH_PREFIX;
                let end = (start + self.rng.random_range(1..=64)).min(edited.len());
                let chunk = edited[start..end].to_vec();
                let copies = self.rng.random_range(1..=4);
                for _ in 0..copies {
                    edited.splice(end..end, chunk.iter().copied());
                }
                out = Self::reframe(&edited);
                "duplicate-chunk"
            }
        };
        (out, op)
    }

    // ---- values --------------------------------------------------------------------------

    fn u64_near(&mut self, old: u64, anchors: &[u64]) -> (u64, &'static str) {
        match self.rng.random_range(0..9u32) {
            0 => (old.wrapping_add(1), "+1"),
            1 => (old.wrapping_sub(1), "-1"),
            2 | 3 if !anchors.is_empty() => {
                let anchor = anchors[self.rng.random_range(0..anchors.len())];
                (anchor, "near the target's state")
            }
            4 => (u64::MAX - self.rng.random_range(0..2u64), "huge"),
            5 => (self.rng.random(), "random"),
            6 => (0, "zero"),
            7 => (old.wrapping_add(self.rng.random_range(2..=64u64)), "jump"),
            _ => (
                old.wrapping_sub(self.rng.random_range(2..=64u64)),
                "jump back",
            ),
        }
    }

    fn view(&mut self, view: &mut View, h: &Hints) -> &'static str {
        let v = h.view.0;
        let n = u64::from(self.n);
        let anchors = [
            v,
            v.saturating_add(1),
            v.saturating_sub(1),
            v.saturating_add(n),
            v.saturating_add(2),
        ];
        let (value, how) = self.u64_near(view.0, &anchors);
        *view = View(value);
        how
    }

    fn seq(&mut self, seq: &mut Seq, h: &Hints) -> &'static str {
        let (stable, executed) = (h.stable.0, h.executed.0);
        let high = stable.saturating_add(self.window);
        let anchors = [
            stable,
            stable.saturating_add(1),
            executed,
            executed.saturating_add(1),
            executed.saturating_add(2),
            high,
            high.saturating_add(1),
            stable.saturating_add(self.interval),
        ];
        let (value, how) = self.u64_near(seq.0, &anchors);
        *seq = Seq(value);
        how
    }

    fn checkpoint_seq(&mut self, seq: &mut Seq, h: &Hints) -> &'static str {
        let stable = h.stable.0;
        let i = self.interval;
        let high = stable.saturating_add(self.window);
        let anchors = [
            stable,
            stable.saturating_add(i),
            stable.saturating_add(2 * i),
            high,
            high.saturating_add(i),
            stable.saturating_add(1),
        ];
        let (value, how) = self.u64_near(seq.0, &anchors);
        *seq = Seq(value);
        how
    }

    fn timestamp(&mut self, timestamp: &mut Timestamp) -> &'static str {
        let (value, how) = self.u64_near(timestamp.0, &[0, 1]);
        *timestamp = Timestamp(value);
        how
    }

    fn digest(&mut self, digest: &mut Digest) -> &'static str {
        match self.rng.random_range(0..5u32) {
            0 => {
                self.rng.fill(&mut digest.0[..]);
                "random"
            }
            1 => {
                *digest = Digest::default();
                "zero"
            }
            2 => {
                let i = self.rng.random_range(0..digest.0.len());
                let bit = self.rng.random_range(0..8u32);
                digest.0[i] ^= 1 << bit;
                "bit-flip"
            }
            3 => {
                *digest = batch_digest(&[]);
                "null request"
            }
            _ => {
                let corpus = self.corpus.clone();
                match self.sample_of(&corpus, MessageKind::PrePrepare) {
                    Some(Sample {
                        message: WireMessage::PrePrepare(p),
                        ..
                    }) => *digest = p.body.digest,
                    _ => *digest = Digest::of(b"elsewhere"),
                }
                "another batch's"
            }
        }
    }

    fn replica_id(&mut self) -> ReplicaId {
        ReplicaId(match self.rng.random_range(0..5u32) {
            0 | 1 => self.rng.random_range(0..self.n),
            2 => self.n,
            3 => u32::MAX,
            _ => self.rng.random(),
        })
    }

    fn client_id(&mut self) -> ClientId {
        ClientId(match self.rng.random_range(0..5u32) {
            0 | 1 => self.rng.random_range(0..self.clients.max(1)),
            2 => self.clients,
            3 => u32::MAX,
            _ => self.rng.random(),
        })
    }

    fn principal(&mut self) -> Principal {
        if self.rng.random_bool(0.5) {
            Principal::Replica(self.replica_id())
        } else {
            Principal::Client(self.client_id())
        }
    }

    fn text(&mut self) -> String {
        match self.rng.random_range(0..6u32) {
            0 => String::new(),
            1 => "k0".into(),
            2 => "é\u{0}\u{10ffff}⁂".into(),
            3 => "x".repeat(self.rng.random_range(1024..=65_536)),
            _ => {
                let len = self.rng.random_range(1..=12);
                (0..len)
                    .map(|_| char::from(self.rng.random_range(b' '..=b'~')))
                    .collect()
            }
        }
    }

    fn operation(&mut self, op: &mut Operation) -> &'static str {
        match self.rng.random_range(0..5u32) {
            0 => {
                let key = self.text();
                *op = match self.rng.random_range(0..4u32) {
                    0 => Operation::Get { key },
                    1 => Operation::Put {
                        key,
                        value: self.text(),
                    },
                    2 => Operation::Append {
                        key,
                        value: self.text(),
                    },
                    _ => Operation::Cas {
                        key,
                        expected: self.rng.random_bool(0.5).then(|| self.text()),
                        new: self.text(),
                    },
                };
                "new operation"
            }
            1 => {
                let text = self.text();
                match op {
                    Operation::Put { key, .. }
                    | Operation::Get { key }
                    | Operation::Append { key, .. }
                    | Operation::Cas { key, .. } => *key = text,
                }
                "key"
            }
            2 | 3 => {
                let text = self.text();
                match op {
                    Operation::Put { value, .. } | Operation::Append { value, .. } => *value = text,
                    Operation::Cas { new, expected, .. } => {
                        if self.rng.random_bool(0.5) {
                            *new = text;
                        } else {
                            *expected = expected.is_none().then_some(text);
                        }
                    }
                    Operation::Get { key } => *key = text,
                }
                "value"
            }
            _ => {
                *op = Operation::Append {
                    key: "k1".into(),
                    value: "v".repeat(self.rng.random_range(16_384..=65_536)),
                };
                "huge value"
            }
        }
    }

    fn result(&mut self) -> OpResult {
        match self.rng.random_range(0..4u32) {
            0 => OpResult::Done,
            1 => OpResult::Value(None),
            2 => OpResult::Value(Some(self.text())),
            _ => OpResult::Swapped(self.rng.random()),
        }
    }

    /// Empties, shortens, reorders, duplicates or inflates a vector, or grafts in an element
    /// taken from another captured message.
    fn vector<T: Clone>(
        &mut self,
        items: &mut Vec<T>,
        huge: usize,
        graft: impl FnOnce(&mut Self) -> Option<T>,
    ) -> &'static str {
        let len = items.len();
        let choice = if len == 0 {
            6
        } else {
            self.rng.random_range(0..7u32)
        };
        match choice {
            0 => {
                items.clear();
                "emptied"
            }
            1 => {
                items.remove(self.rng.random_range(0..len));
                "one dropped"
            }
            2 => {
                let item = items[self.rng.random_range(0..len)].clone();
                items.insert(self.rng.random_range(0..=len), item);
                "one duplicated"
            }
            3 => {
                let (i, j) = (self.rng.random_range(0..len), self.rng.random_range(0..len));
                items.swap(i, j);
                "reordered"
            }
            4 => {
                let target = self.rng.random_range(huge / 2..=huge).max(len + 1);
                while items.len() < target {
                    let item = items[self.rng.random_range(0..len)].clone();
                    items.push(item);
                }
                "inflated"
            }
            5 => {
                items.truncate(self.rng.random_range(0..len));
                "truncated"
            }
            _ => match graft(self) {
                Some(item) => {
                    items.insert(self.rng.random_range(0..=len), item);
                    "grafted"
                }
                None => "unchanged",
            },
        }
    }

    /// An element grafted from a random captured message of `kind`.
    fn graft<T>(
        &mut self,
        kind: MessageKind,
        pick: impl Fn(&WireMessage) -> Option<T>,
    ) -> Option<T> {
        let corpus = self.corpus.clone();
        let sample = self.sample_of(&corpus, kind)?;
        pick(&sample.message)
    }

    // ---- structure level -----------------------------------------------------------------

    fn signing(&mut self, kind: MessageKind) -> Signing {
        let roll = self.rng.random_range(0..100u32);
        if kind == MessageKind::Request {
            return if roll < 40 {
                Signing::Stale
            } else {
                Signing::Client
            };
        }
        match roll {
            0..30 => Signing::Stale,
            30..75 => Signing::Byzantine,
            _ if !self.collusion => Signing::Byzantine,
            75..90 => Signing::Colluding,
            _ => Signing::Deep,
        }
    }

    /// A genuine message moved to where the target is now, as the rest of the cluster
    /// carrying on would send it: a captured batch re-proposed by the current primary at the
    /// target's next sequence numbers with PREPAREs and COMMITs for it from other replicas, a
    /// CHECKPOINT of the target's own state, a newer request. (No VIEW-CHANGEs: two of them
    /// would rightly move the target to a view whose NEW-VIEW never comes.)
    /// The batch stays the same while the target's last executed number does, so its votes
    /// meet: this drives the core through prepare, commit, execution, replies and
    /// checkpoints rather than only into refusals. Signed by whoever it names.
    fn retarget(&mut self, h: &Hints) -> Option<(WireMessage, Change)> {
        let corpus = self.corpus.clone();
        let roll = self.rng.random_range(0..100u32);
        let at_checkpoint = h.executed.0.is_multiple_of(self.interval) && h.executed > h.stable;
        if roll < 12 && at_checkpoint {
            let sample = self.sample_of(&corpus, MessageKind::Checkpoint)?;
            let WireMessage::Checkpoint(mut c) = sample.message.clone() else {
                return None;
            };
            c.signer = Principal::Replica(ReplicaId(self.rng.random_range(0..self.n)));
            c.body = Checkpoint {
                seq: h.executed,
                state_digest: h.state_digest,
            };
            return Some((
                WireMessage::Checkpoint(c),
                ("seq and digest", "the target's"),
            ));
        }
        if roll < 20 {
            let sample = self.sample_of(&corpus, MessageKind::Request)?;
            let WireMessage::Request(mut r) = sample.message.clone() else {
                return None;
            };
            let bump = self.rng.random_range(1..=1_000u64);
            r.body.timestamp = Timestamp(r.body.timestamp.0.saturating_add(bump));
            return Some((WireMessage::Request(r), ("timestamp", "newer")));
        }
        // One batch per sequence number, so a proposal and its votes agree: a captured batch
        // whose requests are made newer the higher the number, so each one executes anew.
        let seq = Seq(h
            .executed
            .0
            .saturating_add(match self.rng.random_range(0..4u32) {
                0 => self.rng.random_range(2..=4),
                _ => 1,
            }));
        let proposals = corpus.samples.get(&MessageKind::PrePrepare)?;
        let focus = seq.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize % proposals.len();
        let WireMessage::PrePrepare(proposal) = &proposals[focus].message else {
            return None;
        };
        let mut proposal = proposal.clone();
        for request in &mut proposal.body.batch {
            let newer = (seq.0 << 20).saturating_add(request.body.timestamp.0);
            request.body.timestamp = Timestamp(newer);
        }
        proposal.body.digest = batch_digest(&proposal.body.batch);
        let (view, digest) = (h.view, proposal.body.digest);
        let primary = h.view.primary(self.n as usize);
        let replica = |r: u32| Principal::Replica(ReplicaId(r));
        let message = match self.rng.random_range(0..8u32) {
            0 | 1 => {
                let mut p = proposal;
                for request in &mut p.body.batch {
                    self.resign(request);
                }
                p.signer = Principal::Replica(primary);
                p.body.view = view;
                p.body.seq = seq;
                return Some((WireMessage::PrePrepare(p), ("batch", "re-proposed")));
            }
            2..=4 => {
                let mut from = self.rng.random_range(0..self.n);
                if ReplicaId(from) == primary {
                    from = (from + 1) % self.n;
                }
                WireMessage::Prepare(Signed {
                    signer: replica(from),
                    body: Prepare { view, seq, digest },
                    seal: Seal::Signature([0; 64]),
                })
            }
            _ => WireMessage::Commit(Signed {
                signer: replica(self.rng.random_range(0..self.n)),
                body: Commit { view, seq, digest },
                seal: Seal::Signature([0; 64]),
            }),
        };
        Some((message, ("vote", "for the re-proposed batch")))
    }

    /// Changes one field somewhere in the message; returns (field, how).
    fn structure(&mut self, message: &mut WireMessage, h: &Hints, deep: bool) -> Change {
        if self.rng.random_ratio(1, 6) {
            return self.envelope(message);
        }
        match message {
            WireMessage::Request(s) => self.request(&mut s.body),
            WireMessage::Reply(s) => self.reply(&mut s.body, h),
            WireMessage::PrePrepare(s) => self.pre_prepare(&mut s.body, h, deep),
            WireMessage::Prepare(s) => {
                let Prepare { view, seq, digest } = &mut s.body;
                self.vote(view, seq, digest, h)
            }
            WireMessage::Commit(s) => {
                let Commit { view, seq, digest } = &mut s.body;
                self.vote(view, seq, digest, h)
            }
            WireMessage::Checkpoint(s) => self.checkpoint(&mut s.body, h),
            WireMessage::Suspect(s) => ("view", self.view(&mut s.body.view, h)),
            WireMessage::ViewChange(s) => self.view_change(&mut s.body, h, deep),
            WireMessage::NewView(s) => self.new_view(&mut s.body, h, deep),
            WireMessage::FetchState(s) => ("have", self.seq(&mut s.body.have, h)),
            WireMessage::StateTransfer(s) => self.state_transfer(&mut s.body, h, deep),
        }
    }

    fn envelope(&mut self, message: &mut WireMessage) -> Change {
        match self.rng.random_range(0..4u32) {
            0 => {
                let principal = self.principal();
                with_signed!(message, s => s.signer = principal);
                ("signer", "any principal")
            }
            1 => {
                let how = match self.rng.random_range(0..3u32) {
                    0 => {
                        with_signed!(message, s => s.seal = Seal::Signature([0; 64]));
                        "zeroed"
                    }
                    1 => {
                        let mut random = [0u8; 64];
                        self.rng.fill(&mut random[..]);
                        with_signed!(message, s => s.seal = Seal::Signature(random));
                        "random"
                    }
                    _ => {
                        let i = self.rng.random_range(0..64);
                        let bit = 1u8 << self.rng.random_range(0..8u32);
                        with_signed!(message, s => flip_seal_bit(&mut s.seal, i, bit));
                        "bit-flip"
                    }
                };
                ("signature", how)
            }
            2 => {
                // PREPARE and COMMIT have one shape: only the signed kind tells them apart.
                let swapped = match message {
                    WireMessage::Prepare(s) => Some(WireMessage::Commit(Signed {
                        signer: s.signer,
                        body: Commit {
                            view: s.body.view,
                            seq: s.body.seq,
                            digest: s.body.digest,
                        },
                        seal: s.seal.clone(),
                    })),
                    WireMessage::Commit(s) => Some(WireMessage::Prepare(Signed {
                        signer: s.signer,
                        body: Prepare {
                            view: s.body.view,
                            seq: s.body.seq,
                            digest: s.body.digest,
                        },
                        seal: s.seal.clone(),
                    })),
                    _ => None,
                };
                match swapped {
                    Some(swapped) => {
                        *message = swapped;
                        ("kind", "prepare/commit swapped")
                    }
                    None => self.impersonate(message),
                }
            }
            _ => self.impersonate(message),
        }
    }

    /// Another principal of the cluster claims the message.
    fn impersonate(&mut self, message: &mut WireMessage) -> Change {
        let principal = match message.signer() {
            Principal::Replica(_) => {
                Principal::Replica(ReplicaId(self.rng.random_range(0..self.n)))
            }
            Principal::Client(_) => {
                Principal::Client(ClientId(self.rng.random_range(0..self.clients.max(1))))
            }
        };
        with_signed!(message, s => s.signer = principal);
        ("signer", "another member")
    }

    fn request(&mut self, request: &mut Request) -> Change {
        match self.rng.random_range(0..4u32) {
            0 => {
                request.client = self.client_id();
                ("client", "id")
            }
            1 => ("timestamp", self.timestamp(&mut request.timestamp)),
            _ => ("operation", self.operation(&mut request.op)),
        }
    }

    fn reply(&mut self, reply: &mut Reply, h: &Hints) -> Change {
        match self.rng.random_range(0..6u32) {
            0 => ("view", self.view(&mut reply.view, h)),
            1 => {
                reply.client = self.client_id();
                ("client", "id")
            }
            2 => ("timestamp", self.timestamp(&mut reply.timestamp)),
            3 => {
                reply.result = self.result();
                ("result", "another")
            }
            4 => {
                let extra = self.rng.random_range(1..=8);
                while reply.path.len() <= MAX_PATH_LENGTH + extra {
                    let mut sibling = Digest::default();
                    self.rng.fill(&mut sibling.0[..]);
                    reply.path.push(PathStep {
                        sibling,
                        sibling_is_left: self.rng.random(),
                    });
                }
                ("path", "too long")
            }
            _ => {
                let how = self.vector(&mut reply.path, MAX_PATH_LENGTH, |g| {
                    let mut sibling = Digest::default();
                    g.rng.fill(&mut sibling.0[..]);
                    Some(PathStep {
                        sibling,
                        sibling_is_left: g.rng.random(),
                    })
                });
                if let Some(step) = reply.path.first_mut() {
                    step.sibling_is_left = !step.sibling_is_left;
                }
                ("path", how)
            }
        }
    }

    fn vote(&mut self, view: &mut View, seq: &mut Seq, digest: &mut Digest, h: &Hints) -> Change {
        match self.rng.random_range(0..3u32) {
            0 => ("view", self.view(view, h)),
            1 => ("seq", self.seq(seq, h)),
            _ => ("digest", self.digest(digest)),
        }
    }

    fn pre_prepare(&mut self, p: &mut PrePrepare, h: &Hints, deep: bool) -> Change {
        let change = match self.rng.random_range(0..5u32) {
            0 => ("view", self.view(&mut p.view, h)),
            1 => ("seq", self.seq(&mut p.seq, h)),
            2 => return ("digest", self.digest(&mut p.digest)),
            3 => {
                let huge = self.max_batch * 4 + 2;
                let how = self.vector(&mut p.batch, huge, |g| {
                    g.graft(MessageKind::Request, |m| match m {
                        WireMessage::Request(r) => Some(r.clone()),
                        _ => None,
                    })
                });
                ("batch", how)
            }
            _ if !p.batch.is_empty() => {
                let i = self.rng.random_range(0..p.batch.len());
                let request = &mut p.batch[i];
                let change = self.request(&mut request.body);
                if deep || self.rng.random_bool(0.5) {
                    self.resign(request);
                }
                ("batch request", change.0)
            }
            _ => ("view", self.view(&mut p.view, h)),
        };
        if self.rng.random_bool(0.6) {
            p.digest = batch_digest(&p.batch);
        }
        change
    }

    fn checkpoint(&mut self, c: &mut Checkpoint, h: &Hints) -> Change {
        if self.rng.random_bool(0.6) {
            ("seq", self.checkpoint_seq(&mut c.seq, h))
        } else {
            ("state digest", self.digest(&mut c.state_digest))
        }
    }

    /// Mutates one nested signed item; signs it anew by its signer for a deep mutation.
    fn nested<T: Signable + Clone>(
        &mut self,
        items: &mut [Signed<T>],
        deep: bool,
        change: impl FnOnce(&mut Self, &mut T) -> Change,
    ) -> Change {
        if items.is_empty() {
            return ("nested", "none to change");
        }
        let i = self.rng.random_range(0..items.len());
        let result = change(self, &mut items[i].body);
        if deep {
            self.resign(&mut items[i]);
        }
        result
    }

    fn prepared(&mut self, proof: &mut PreparedProof, h: &Hints, deep: bool) -> Change {
        let votes = Votes {
            name: "prepares",
            kind: MessageKind::Prepare,
            pick: |m| match m {
                WireMessage::Prepare(p) => Some(p.clone()),
                _ => None,
            },
            fields: |p: &mut Prepare| (&mut p.view, &mut p.seq, &mut p.digest),
        };
        self.certificate(&mut proof.pre_prepare, &mut proof.prepares, votes, h, deep)
    }

    fn committed(&mut self, proof: &mut CommittedProof, h: &Hints, deep: bool) -> Change {
        let votes = Votes {
            name: "commits",
            kind: MessageKind::Commit,
            pick: |m| match m {
                WireMessage::Commit(c) => Some(c.clone()),
                _ => None,
            },
            fields: |c: &mut Commit| (&mut c.view, &mut c.seq, &mut c.digest),
        };
        self.certificate(&mut proof.pre_prepare, &mut proof.commits, votes, h, deep)
    }

    /// A certificate (a PRE-PREPARE and its votes): the PRE-PREPARE, the vote list, or a vote.
    fn certificate<V: Signable + Clone>(
        &mut self,
        pre_prepare: &mut Signed<PrePrepare>,
        votes: &mut Vec<Signed<V>>,
        kind: Votes<V>,
        h: &Hints,
        deep: bool,
    ) -> Change {
        match self.rng.random_range(0..3u32) {
            0 => {
                let change = self.pre_prepare(&mut pre_prepare.body, h, deep);
                if deep {
                    self.resign(pre_prepare);
                }
                change
            }
            1 => {
                let how = self.vector(votes, 12, |g| g.graft(kind.kind, kind.pick));
                (kind.name, how)
            }
            _ => self.nested(votes, deep, |g, vote| {
                let (view, seq, digest) = (kind.fields)(vote);
                g.vote(view, seq, digest, h)
            }),
        }
    }

    fn checkpoint_proof(
        &mut self,
        proof: &mut Vec<Signed<Checkpoint>>,
        h: &Hints,
        deep: bool,
    ) -> Change {
        if self.rng.random_bool(0.5) {
            let how = self.vector(proof, 12, |g| {
                g.graft(MessageKind::Checkpoint, |m| match m {
                    WireMessage::Checkpoint(c) => Some(c.clone()),
                    _ => None,
                })
            });
            ("checkpoint proof", how)
        } else {
            self.nested(proof, deep, |g, c| g.checkpoint(c, h))
        }
    }

    fn view_change(&mut self, vc: &mut ViewChange, h: &Hints, deep: bool) -> Change {
        match self.rng.random_range(0..6u32) {
            0 => ("new view", self.view(&mut vc.new_view, h)),
            1 => ("stable seq", self.checkpoint_seq(&mut vc.stable_seq, h)),
            2 | 3 => self.checkpoint_proof(&mut vc.checkpoint_proof, h, deep),
            4 => {
                let how = self.vector(&mut vc.prepared, 40, |g| {
                    g.graft(MessageKind::ViewChange, |m| match m {
                        WireMessage::ViewChange(v) => v.body.prepared.first().cloned(),
                        _ => None,
                    })
                });
                ("prepared", how)
            }
            _ if !vc.prepared.is_empty() => {
                let i = self.rng.random_range(0..vc.prepared.len());
                self.prepared(&mut vc.prepared[i], h, deep)
            }
            _ => ("new view", self.view(&mut vc.new_view, h)),
        }
    }

    fn new_view(&mut self, nv: &mut NewView, h: &Hints, deep: bool) -> Change {
        match self.rng.random_range(0..5u32) {
            0 => ("view", self.view(&mut nv.view, h)),
            1 => {
                let how = self.vector(&mut nv.view_changes, 12, |g| {
                    g.graft(MessageKind::ViewChange, |m| match m {
                        WireMessage::ViewChange(v) => Some(v.clone()),
                        _ => None,
                    })
                });
                ("view changes", how)
            }
            2 => self.nested(&mut nv.view_changes, deep, |g, vc| {
                g.view_change(vc, h, deep)
            }),
            3 => {
                let how = self.vector(&mut nv.pre_prepares, 40, |g| {
                    g.graft(MessageKind::PrePrepare, |m| match m {
                        WireMessage::PrePrepare(p) => Some(p.clone()),
                        _ => None,
                    })
                });
                ("pre-prepares", how)
            }
            _ => self.nested(&mut nv.pre_prepares, deep, |g, p| g.pre_prepare(p, h, deep)),
        }
    }

    fn state_transfer(&mut self, st: &mut StateTransfer, h: &Hints, deep: bool) -> Change {
        match self.rng.random_range(0..5u32) {
            0 | 1 => self.checkpoint_proof(&mut st.checkpoint_proof, h, deep),
            2 => {
                let how = match self.rng.random_range(0..3u32) {
                    0 => {
                        let mut op = Operation::Get { key: "k0".into() };
                        self.operation(&mut op);
                        st.state.kv.execute(&op);
                        "store changed"
                    }
                    1 => {
                        let client = self.client_id();
                        let mut timestamp = Timestamp(1);
                        self.timestamp(&mut timestamp);
                        let result = self.result();
                        st.state
                            .last_reply
                            .insert(client, CachedReply { timestamp, result });
                        "reply cache changed"
                    }
                    _ => {
                        st.state = Default::default();
                        "emptied"
                    }
                };
                ("state", how)
            }
            3 => {
                let how = self.vector(&mut st.committed, 40, |_| None);
                ("committed", how)
            }
            _ if !st.committed.is_empty() => {
                let i = self.rng.random_range(0..st.committed.len());
                self.committed(&mut st.committed[i], h, deep)
            }
            _ => self.checkpoint_proof(&mut st.checkpoint_proof, h, deep),
        }
    }

    // ---- signing -------------------------------------------------------------------------

    fn key_of(&self, principal: Principal) -> Option<&SigningKey> {
        match principal {
            Principal::Replica(r) => self.corpus.replica_keys.get(r.0 as usize),
            Principal::Client(c) => self.corpus.client_keys.get(c.0 as usize),
        }
    }

    /// Signs `signed` anew as its signer, if the fuzzer holds that key.
    fn resign<T: Signable>(&self, signed: &mut Signed<T>) {
        if let Some(key) = self.key_of(signed.signer) {
            signed.resign(key);
        }
    }

    fn sign(&mut self, message: &mut WireMessage, signing: Signing) {
        match signing {
            Signing::Stale => {}
            Signing::Client => {
                if let WireMessage::Request(s) = message {
                    s.signer = Principal::Client(s.body.client);
                    self.resign(s);
                }
            }
            Signing::Byzantine => {
                let byzantine = Principal::Replica(self.corpus.byzantine);
                with_signed!(message, s => {
                    s.signer = byzantine;
                    self.resign(s);
                });
            }
            Signing::Colluding | Signing::Cluster => with_signed!(message, s => self.resign(s)),
            Signing::Deep => self.resign_deep(message),
        }
    }

    fn resign_pre_prepare(&self, p: &mut Signed<PrePrepare>) {
        for request in &mut p.body.batch {
            self.resign(request);
        }
        self.resign(p);
    }

    fn resign_view_change(&self, vc: &mut Signed<ViewChange>) {
        for c in &mut vc.body.checkpoint_proof {
            self.resign(c);
        }
        for proof in &mut vc.body.prepared {
            self.resign_pre_prepare(&mut proof.pre_prepare);
            for p in &mut proof.prepares {
                self.resign(p);
            }
        }
        self.resign(vc);
    }

    /// Every signature in the message, nested ones first, by its own signer.
    fn resign_deep(&self, message: &mut WireMessage) {
        match message {
            WireMessage::PrePrepare(p) => self.resign_pre_prepare(p),
            WireMessage::ViewChange(vc) => self.resign_view_change(vc),
            WireMessage::NewView(nv) => {
                for vc in &mut nv.body.view_changes {
                    self.resign_view_change(vc);
                }
                for p in &mut nv.body.pre_prepares {
                    self.resign_pre_prepare(p);
                }
                self.resign(nv);
            }
            WireMessage::StateTransfer(st) => {
                for c in &mut st.body.checkpoint_proof {
                    self.resign(c);
                }
                for proof in &mut st.body.committed {
                    self.resign_pre_prepare(&mut proof.pre_prepare);
                    for c in &mut proof.commits {
                        self.resign(c);
                    }
                }
                self.resign(st);
            }
            other => with_signed!(other, s => self.resign(s)),
        }
    }
}

/// What `certificate` needs to know of one kind of vote.
struct Votes<V> {
    name: &'static str,
    kind: MessageKind,
    pick: fn(&WireMessage) -> Option<Signed<V>>,
    fields: fn(&mut V) -> (&mut View, &mut Seq, &mut Digest),
}

/// Flips one bit of the signature, or of the first MAC where the seal has no signature.
fn flip_seal_bit(seal: &mut Seal, i: usize, bit: u8) {
    match seal {
        Seal::Signature(signature) | Seal::SignedAuthenticator { signature, .. } => {
            signature[i % signature.len()] ^= bit;
        }
        Seal::Mac(mac) => mac[i % mac.len()] ^= bit,
        Seal::Authenticator(macs) => {
            if let Some(mac) = macs.iter_mut().next() {
                mac[i % mac.len()] ^= bit;
            }
        }
    }
}
