//! A seeded, structure-aware mutation fuzzer for the replica's whole inbound path (issue 12).
//!
//! cargo-fuzz needs a nightly toolchain, so this is plain Rust driven by one ChaCha8 seed:
//!
//! 1. **Corpus** ([`Corpus::build`]): the simulator runs a short workload with a state
//!    transfer and two view changes, and every message its replicas receive or send is
//!    captured. Every `WireMessage` kind is there, genuinely signed.
//! 2. **Mutation** (`mutate.rs`): untouched originals, replays of recently accepted frames,
//!    byte-level mutations (bit flips, byte sets, truncation, extension, splicing, two frames
//!    in one stream, length-prefix corruption, insertions and deletions), and structure-level
//!    ones (decode, change a field such as a view, sequence number, digest, principal,
//!    vector or operation, encode again) that keep the stale signature or sign anew: as the
//!    one Byzantine replica (what f = 1 allows), as a client, or, in every other epoch, as
//!    whoever is named (more than f faulty replicas). "Retargeted" inputs move genuine
//!    batches and their votes to the target's next sequence numbers, signed as the rest of
//!    the cluster would, so the core also commits, executes and checkpoints under fuzzing.
//! 3. **Inbound path**: each input is the byte stream of one connection, taken apart with
//!    `wire::split_frame` and `wire::decode_payload` exactly as `node::inbound` does (a bad
//!    frame ends the stream). A turn's messages are authenticated together with
//!    `verify::verify_many`, as `node::verifier` does, or one by one with `verify::verify`,
//!    as the simulator does, and every few turns both ways to compare the verdicts.
//! 4. **Core**: the `Verified` messages are stepped into one live `Core`, a backup rebuilt
//!    from its simulated disk, between `begin_turn` and `end_turn` as `node::driver` does,
//!    with virtual time and the core's own timers. Every `primary_every` turns they also go
//!    to the primary of the final view. Every `epoch_frames` frames both restart with
//!    `Core::recover`, from what they persisted themselves or from the simulated state.
//!
//! Every stage runs under `catch_unwind`: a panic is a crash, recorded with the seed, the
//! frame index, the mutation and the frame's bytes, and the run goes on. The same seed and
//! frame count always give the same [`Counts`], so a crash at frame `i` reproduces with
//! `--seed S --frames i+1`.

mod corpus;
mod host;
mod mutate;
mod report;

pub use corpus::{Corpus, Sample};
pub use report::{Counts, Crash, MAX_CRASHES_KEPT, Report, resident_bytes};

use crate::auth::AuthMode;
use crate::core::Input;
use crate::ids::Principal;
use crate::message::WireMessage;
use crate::sim::SimError;
use crate::verify::{RejectReason, Verified, verify, verify_many};
use crate::wire::{FrameError, decode_payload, split_frame};
use host::Host;
use mutate::{Generator, Hints, Mutation};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct FuzzConfig {
    pub seed: u64,
    /// Inputs to feed.
    pub frames: u64,
    /// Every this many turns the turn's messages also go to the primary instance.
    pub primary_every: u64,
    /// Frames between crash-restarts of both instances.
    pub epoch_frames: u64,
    /// Most inputs one core turn carries (the node takes up to 256 queued inputs per turn).
    pub max_turn: usize,
    /// Every this many turns, batch and single verdicts are both computed and compared.
    pub cross_check_every: u64,
    /// The progress callback runs every this many frames (0: never).
    pub progress_every: u64,
    /// Whether, in every other epoch, structure-level mutations may also sign as other
    /// replicas than the Byzantine one (more than f faulty). Off, every mutated input is one
    /// a single faulty replica, the network or a faulty client could produce; retargeted
    /// traffic (genuine batches moved to the target's next sequence numbers, with their
    /// votes) is signed as the rest of the cluster would sign it either way.
    pub collusion: bool,
    /// The cluster's authentication: the corpus is captured, and frames checked, under it.
    pub auth: AuthMode,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        FuzzConfig {
            seed: 0,
            frames: 20_000,
            primary_every: 4,
            epoch_frames: 4_096,
            max_turn: 8,
            cross_check_every: 16,
            progress_every: 0,
            collusion: true,
            auth: AuthMode::Signatures,
        }
    }
}

/// Where a run is, for progress output.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub frames: u64,
    pub crashes: u64,
    pub seconds: f64,
    pub rss: u64,
}

// ---- panics ------------------------------------------------------------------------------

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// While `guarded` runs on this thread, panics are recorded instead of printed; elsewhere the
/// previous hook runs as before.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let message = info.payload_as_str().unwrap_or("(non-text panic payload)");
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{location}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into its message.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    CAPTURING.with(|c| c.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    result.map_err(|payload| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(panic)".into())
    })
}

// ---- the engine ----------------------------------------------------------------------------

/// One fuzzed input and how it was made.
struct Fed {
    index: u64,
    bytes: Vec<u8>,
    mutation: Mutation,
}

/// Accepted frames kept for replays.
const REPLAY_RING: usize = 128;
/// Views from here on are only reached when colluding replicas ask for them.
const ABSURD_VIEW: u64 = 1 << 32;

struct Engine {
    config: FuzzConfig,
    corpus: Arc<Corpus>,
    generator: Generator,
    rng: ChaCha8Rng,
    backup: Host,
    primary: Host,
    now_ms: u64,
    epoch: u64,
    replay: VecDeque<Vec<u8>>,
    counts: Counts,
    crashes: Vec<Crash>,
    rss_max: u64,
}

#[derive(Clone, Copy)]
enum Role {
    Backup,
    Primary,
}

/// The node's receive loop over one connection's bytes: frames are split off and decoded
/// until the bytes run out, a frame is incomplete, or one is refused (which ends a
/// connection).
fn receive(bytes: &[u8], max_frame: usize, counts: &mut Counts) -> Vec<WireMessage> {
    let mut messages = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match split_frame(rest, max_frame) {
            Ok(None) => {
                counts.split_incomplete += 1;
                break;
            }
            Err(_) => {
                counts.split_oversized += 1;
                break;
            }
            Ok(Some((payload, used))) => {
                counts.framed += 1;
                match decode_payload(payload, max_frame) {
                    Ok(message) => {
                        counts.decoded += 1;
                        *counts.decoded_by_kind.entry(message.kind()).or_default() += 1;
                        messages.push(message);
                        rest = &rest[used..];
                    }
                    Err(error) => {
                        match error {
                            FrameError::Malformed(_) => counts.decode_malformed += 1,
                            FrameError::TrailingBytes { .. } => counts.decode_trailing += 1,
                            FrameError::Oversized { .. } => counts.decode_oversized += 1,
                        }
                        break;
                    }
                }
            }
        }
    }
    messages
}

fn verdict_shape(verdicts: &[Result<Verified, RejectReason>]) -> Vec<Result<(), RejectReason>> {
    verdicts
        .iter()
        .map(|v| v.as_ref().map(|_| ()).map_err(|r| *r))
        .collect()
}

impl Engine {
    fn new(config: FuzzConfig, corpus: Arc<Corpus>) -> Result<Engine, String> {
        let mut counts = Counts::default();
        let backup = Host::new(corpus.backup, &corpus, &mut counts)?;
        let primary = Host::new(corpus.primary, &corpus, &mut counts)?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(2);
        Ok(Engine {
            generator: Generator::new(corpus.clone(), config.seed),
            config,
            corpus,
            rng,
            backup,
            primary,
            now_ms: 0,
            epoch: 0,
            replay: VecDeque::new(),
            counts,
            crashes: Vec::new(),
            rss_max: 0,
        })
    }

    fn finding(&self, stage: &'static str, frames: &[&Fed], panic: String) -> Crash {
        let last = frames.last();
        Crash {
            seed: self.config.seed,
            frame: last.map_or(self.counts.frames.saturating_sub(1), |f| f.index),
            stage,
            mutation: last.map_or_else(|| "(none)".into(), |f| f.mutation.to_string()),
            panic,
            frames: frames
                .iter()
                .map(|f| (f.index, hex::encode(&f.bytes)))
                .collect(),
        }
    }

    fn keep(&mut self, finding: Crash) {
        if self.crashes.len() < MAX_CRASHES_KEPT {
            self.crashes.push(finding);
        }
    }

    /// A panic: counted, and kept in full while there is room.
    fn crash(&mut self, stage: &'static str, frames: &[&Fed], panic: String) {
        self.counts.crashes += 1;
        let finding = self.finding(stage, frames, panic);
        self.keep(finding);
    }

    fn hints(&self) -> Hints {
        let core = self.backup.core();
        Hints {
            view: core.view(),
            stable: core.stable_checkpoint(),
            executed: core.last_executed(),
            state_digest: core.state_digest(),
        }
    }

    /// Crash-restarts both instances at every epoch boundary.
    fn maybe_restart(&mut self) {
        let epoch = self.counts.frames / self.config.epoch_frames.max(1);
        if epoch == self.epoch {
            return;
        }
        self.epoch = epoch;
        self.rss_max = self.rss_max.max(resident_bytes());
        self.generator
            .set_collusion(self.config.collusion && epoch % 2 == 1);
        for role in [Role::Backup, Role::Primary] {
            let mut own_log = self.rng.random_bool(0.5);
            let now = self.now_ms;
            let host = match role {
                Role::Backup => &mut self.backup,
                Role::Primary => &mut self.primary,
            };
            // Colluding replicas can drive a core to an absurd view, where every genuine
            // message is stale: that state has been fuzzed for an epoch, start afresh.
            own_log &= host.core().view().0 < ABSURD_VIEW;
            if let Err(panic) = host.restart(own_log, now, &mut self.counts) {
                host.reset(now, &mut self.counts);
                self.crash("Core::recover", &[], panic);
            }
        }
    }

    fn turn(&mut self) {
        self.maybe_restart();
        let remaining = self.config.frames - self.counts.frames;
        let size = if self.rng.random_bool(0.5) {
            1
        } else {
            self.rng.random_range(2..=self.config.max_turn.max(2))
        };
        let size = size.min(remaining as usize);
        let hints = self.hints();
        let max_frame = self.corpus.config.max_frame_bytes;

        // Framing and decoding, one input at a time.
        let mut fed: Vec<Fed> = Vec::with_capacity(size);
        let mut messages = Vec::new();
        let mut origin = Vec::new();
        for position in 0..size {
            let index = self.counts.frames;
            self.counts.frames += 1;
            let (bytes, mutation) = self.generator.next(&hints, &self.replay);
            *self.counts.mutations.entry(mutation.op).or_default() += 1;
            if let Some(signing) = mutation.signing {
                *self.counts.signing.entry(signing.name()).or_default() += 1;
            }
            let counts = &mut self.counts;
            let decoded = guarded(|| receive(&bytes, max_frame, counts));
            let item = Fed {
                index,
                bytes,
                mutation,
            };
            match decoded {
                Ok(decoded) => {
                    origin.extend(std::iter::repeat_n(position, decoded.len()));
                    messages.extend(decoded);
                }
                Err(panic) => self.crash("split_frame/decode_payload", &[&item], panic),
            }
            fed.push(item);
        }

        // Authentication: batched as the node's verifier does, or one by one as the simulator.
        let single = self.counts.turns % 2 == 1;
        let cross_check = !messages.is_empty()
            && self
                .counts
                .turns
                .is_multiple_of(self.config.cross_check_every.max(1));
        let copies = cross_check.then(|| messages.clone());
        // Under MACs a verdict depends on the receiver: the backup's, which gets every input.
        let keys = self.corpus.keys_of(Principal::Replica(self.corpus.backup));
        let check = |messages: Vec<WireMessage>, single: bool| {
            if single {
                messages.into_iter().map(|m| verify(m, &keys)).collect()
            } else {
                verify_many(messages, &keys)
                    .into_iter()
                    .map(|verdict| verdict.result)
                    .collect()
            }
        };
        let verdicts: Vec<Result<Verified, RejectReason>> =
            match guarded(|| check(messages, single)) {
                Ok(verdicts) => verdicts,
                Err(panic) => {
                    let all: Vec<&Fed> = fed.iter().collect();
                    self.crash("verify/verify_many", &all, panic);
                    return;
                }
            };
        if let Some(copies) = copies {
            self.counts.verdict_cross_checks += 1;
            match guarded(|| check(copies, !single)) {
                Ok(other) if verdict_shape(&other) == verdict_shape(&verdicts) => {}
                Ok(_) => {
                    self.counts.verdict_divergences += 1;
                    let all: Vec<&Fed> = fed.iter().collect();
                    let text = "batch and single verdicts differ".to_string();
                    let finding = self.finding("verify vs verify_many", &all, text);
                    self.keep(finding);
                }
                Err(panic) => {
                    let all: Vec<&Fed> = fed.iter().collect();
                    self.crash("verify/verify_many", &all, panic);
                }
            }
        }
        let mut accepted: Vec<(usize, Verified)> = Vec::new();
        for (verdict, position) in verdicts.into_iter().zip(origin) {
            match verdict {
                Ok(verified) => {
                    self.counts.verified += 1;
                    let kind = verified.message().kind();
                    *self.counts.verified_by_kind.entry(kind).or_default() += 1;
                    accepted.push((position, verified));
                }
                Err(reason) => *self.counts.verify_rejected.entry(reason).or_default() += 1,
            }
        }
        let mut replayable: Vec<usize> = accepted.iter().map(|(p, _)| *p).collect();
        replayable.dedup();
        for position in replayable {
            if self.replay.len() >= REPLAY_RING {
                self.replay.pop_front();
            }
            self.replay.push_back(fed[position].bytes.clone());
        }

        // The core turn, on the backup and every few turns on the primary too. Virtual time
        // mostly creeps (the retransmission timer fires now and then, a pending request's
        // view-change timer seldom within an epoch) and now and then jumps ahead.
        self.now_ms += if self.rng.random_ratio(1, 1_000) {
            self.rng.random_range(100..=1_500u64)
        } else {
            self.rng.random_range(0..=1u64)
        };
        let to_primary = self
            .counts
            .turns
            .is_multiple_of(self.config.primary_every.max(1));
        self.counts.turns += 1;
        self.drive(Role::Backup, &accepted, &fed);
        if to_primary {
            self.drive(Role::Primary, &accepted, &fed);
        }
    }

    fn drive(&mut self, role: Role, accepted: &[(usize, Verified)], fed: &[Fed]) {
        let now = self.now_ms;
        let (host, steps) = match role {
            Role::Backup => (&mut self.backup, &mut self.counts.steps_backup),
            Role::Primary => (&mut self.primary, &mut self.counts.steps_primary),
        };
        *steps += accepted.len() as u64;
        host.begin_turn();
        let mut failure = None;
        for (position, verified) in accepted {
            if let Err(panic) = host.step(Input::Message(verified.clone()), now, &mut self.counts) {
                failure = Some((
                    match role {
                        Role::Backup => "Core::step (backup)",
                        Role::Primary => "Core::step (primary)",
                    },
                    vec![&fed[*position]],
                    panic,
                ));
                break;
            }
        }
        if failure.is_none() {
            let turn_end = host
                .run_due(now, &mut self.counts)
                .map_err(|p| ("timer", p))
                .and_then(|()| {
                    host.end_turn(now, &mut self.counts)
                        .map_err(|p| ("Core::end_turn", p))
                });
            if let Err((stage, panic)) = turn_end {
                failure = Some((stage, fed.iter().collect(), panic));
            }
        }
        if let Some((stage, frames, panic)) = failure {
            host.reset(now, &mut self.counts);
            self.crash(stage, &frames, panic);
        }
    }
}

/// Builds the corpus for `config.seed` and fuzzes the inbound path with `config.frames`
/// inputs; `progress` runs every `config.progress_every` frames.
pub fn run(config: &FuzzConfig, mut progress: impl FnMut(&Progress)) -> Result<Report, SimError> {
    install_hook();
    let started = Instant::now();
    let corpus = Arc::new(Corpus::build(config.seed, config.auth)?);
    let corpus_seconds = started.elapsed().as_secs_f64();
    let mut engine = match Engine::new(config.clone(), corpus.clone()) {
        Ok(engine) => engine,
        Err(panic) => panic!("the simulated replicas do not recover from their own disks: {panic}"),
    };
    let views = |e: &Engine| (e.backup.core().view(), e.primary.core().view());
    let views_start = views(&engine);
    let rss_before = resident_bytes();
    engine.rss_max = rss_before;
    let fuzz_started = Instant::now();
    let mut next_progress = config.progress_every;
    while engine.counts.frames < config.frames {
        engine.turn();
        if config.progress_every > 0 && engine.counts.frames >= next_progress {
            next_progress += config.progress_every;
            let rss = resident_bytes();
            engine.rss_max = engine.rss_max.max(rss);
            progress(&Progress {
                frames: engine.counts.frames,
                crashes: engine.counts.crashes,
                seconds: fuzz_started.elapsed().as_secs_f64(),
                rss,
            });
        }
    }
    let fuzz_seconds = fuzz_started.elapsed().as_secs_f64();
    let rss_after = resident_bytes();
    Ok(Report {
        seed: config.seed,
        views_end: views(&engine),
        counts: engine.counts,
        crashes: engine.crashes,
        corpus: corpus.sizes(),
        corpus_phases_unfinished: corpus.phases_unfinished,
        backup: corpus.backup,
        primary: corpus.primary,
        byzantine: corpus.byzantine,
        views_start,
        corpus_seconds,
        fuzz_seconds,
        rss_before,
        rss_after,
        rss_max: engine.rss_max.max(rss_after),
    })
}
