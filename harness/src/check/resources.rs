//! Bounded resources (issue 11): a replica whose log grows without bound must not pass. Per
//! honest replica, the message-log slots it holds and the bytes of its write-ahead log stay
//! under bounds derived from the cluster settings, and a real process's resident memory under
//! a generous bound built on the log's.
//!
//! Its input is the `resources` samples a replica's host writes every
//! `replica::host::RESOURCE_SAMPLE_INTERVAL` (the node measures its `wal.log` and VmRSS; the
//! simulator its simulated disk, in virtual time, with no memory figure). Each sample carries
//! the peaks of the interval before it, so the log's high point just before a stable
//! checkpoint truncates it is judged. Like the other incremental oracles, the offline check
//! feeds it a run's files and the simulator feeds it every event as it happens, stopping at the
//! first violation. A run whose honest replicas wrote no sample at all (a folder from before
//! the samples existed) is inconclusive, never a pass.

use super::{CheckOutcome, CheckResult};
use replica::auth::{AuthMode, MAC_LENGTH};
use replica::config::ClusterConfig;
use replica::crypto::SIGNATURE_LENGTH;
use replica::digest::Digest;
use replica::events::{EventLine, ReplicaEvent};
use replica::message::{Checkpoint, Commit, PrePrepare, Prepare, Seal, Signed, WireMessage};
use replica::node::wal::record_len;
use replica::{Principal, ReplicaId, Seq, View, WalRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

pub const NAME: &str = "bounded-resources";

/// The fixed part of the memory bound: the tokio runtime and its threads' stacks, allocator
/// slack, the bounded inbound and outbound queues and their frame buffers, and the service
/// state of a test workload (a few keys per client). Measured: about 8 MiB under `byz-flood`
/// and `byzc-flood`, 40 MiB under `byzc-max-size-requests` (buffers for frames near the cap).
/// Generous on purpose, so that only memory that grows with the run, not a busy moment, can
/// cross it; the protocol state proper is the part that scales with the settings, below.
pub const RSS_BASE_BYTES: u64 = 256 << 20;
/// The protocol state in memory is what the log holds (slots and their certificates, prepared
/// certificates, VIEW-CHANGEs, checkpoint votes) kept a few times over: in the core's log,
/// in the certificates a VIEW-CHANGE reuses, and as encoded frames in outbound queues.
pub const RSS_LOG_COPIES: u64 = 4;
/// How many view changes a restart may hide: the replica makes its log durable before it
/// writes the event line, and buffers lines for up to 200 ms, so a `kill -9` can cost the
/// lines of a VIEW-CHANGE it started and of the NEW-VIEW it entered just before.
const HIDDEN_VIEW_CHANGES_PER_RESTART: u64 = 2;
/// How many breaches the details list.
const MAX_LISTED: usize = 20;

/// What the cluster settings allow one honest replica to hold, and the parts it is made of.
///
/// Slots: the message log holds sequence numbers in (low, high] only, high = low + window, so
/// `slots ≤ W`.
///
/// Log bytes: the log keeps the records above the stable checkpoint S (and the latest
/// VIEW-CHANGE and NEW-VIEW). Each record is `record_len` of the widest such message
/// (`wal.rs`'s 8-byte header included). Per view a slot has at most one PRE-PREPARE, n−1
/// PREPAREs and n COMMITs (one per replica: a second, conflicting one is refused); a
/// PRE-PREPARE is at most its envelope plus `F / ((2f+2)(W+1))`, the batch share of the frame
/// cap `F` that `max_batch_bytes` gives (backups refuse bigger batches). Checkpoint sequence
/// numbers are multiples of K in (S, S+W]: at most ⌈W/K⌉ × n CHECKPOINT records. A view change
/// starts another view whose records a truncation at S keeps while they are above S: each
/// counts one window of slots more, plus its VIEW-CHANGE or NEW-VIEW record, which fits one
/// frame (`≤ F`, the frame cap is sized for it). So, with e = the view changes whose window
/// still reaches above S,
///
/// `wal ≤ ⌈W/K⌉·n·checkpoint + W·slot + e·(W·slot + F) + retained·F`
///
/// where `retained` (0–2) counts the latest VIEW-CHANGE and NEW-VIEW once the replica has
/// made one. Memory: `rss ≤ RSS_BASE_BYTES + RSS_LOG_COPIES × wal bound`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceBounds {
    pub replicas: u64,
    pub f: u64,
    pub checkpoint_interval: u64,
    pub window: u64,
    pub max_frame_bytes: u64,
    /// `W`.
    pub slots: u64,
    pub pre_prepare_record: u64,
    pub prepare_record: u64,
    pub commit_record: u64,
    pub checkpoint_record: u64,
    /// One slot in one view: a PRE-PREPARE, n−1 PREPAREs and n COMMITs.
    pub slot_bytes: u64,
    /// ⌈W/K⌉ checkpoints of n CHECKPOINTs each.
    pub checkpoint_bytes: u64,
    /// A window of slots in one view.
    pub window_bytes: u64,
}

fn widest_signer() -> Principal {
    Principal::Replica(ReplicaId(u32::MAX))
}

fn signature() -> Seal {
    Seal::Signature([0; SIGNATURE_LENGTH])
}

fn record(message: WireMessage) -> u64 {
    record_len(&WalRecord::Message(message))
}

/// The widest vote bodies: every varint at its longest.
fn widest_vote() -> (View, Seq, Digest) {
    (View(u64::MAX), Seq(u64::MAX), Digest([0xff; 32]))
}

impl ResourceBounds {
    pub fn new(config: &ClusterConfig) -> ResourceBounds {
        let n = config.replicas.len().max(3 * config.f + 1) as u64;
        let f = config.f as u64;
        let (window, interval) = (config.watermark_window, config.checkpoint_interval.max(1));
        let frame = config.max_frame_bytes as u64;
        let (view, seq, digest) = widest_vote();
        let empty_pre_prepare = Signed {
            signer: widest_signer(),
            body: PrePrepare {
                view,
                seq,
                digest,
                batch: Vec::new(),
            },
            seal: signature(),
        };
        // The batch's length prefix grows to at most ten bytes from one.
        let batch_share = frame / ((2 * f + 2) * (window + 1)).max(1);
        let pre_prepare_record =
            record(WireMessage::PrePrepare(empty_pre_prepare)) + 9 + batch_share;
        let prepare = Prepare { view, seq, digest };
        let prepare_record = record(WireMessage::Prepare(Signed {
            signer: widest_signer(),
            body: prepare,
            seal: signature(),
        }));
        let commit_seal = match config.auth {
            AuthMode::Signatures => signature(),
            AuthMode::Macs => Seal::Authenticator(vec![[0xff; MAC_LENGTH]; n as usize]),
        };
        let commit = Commit { view, seq, digest };
        let commit_record = record(WireMessage::Commit(Signed {
            signer: widest_signer(),
            body: commit,
            seal: commit_seal,
        }))
        .max(record(WireMessage::Commit(Signed {
            signer: widest_signer(),
            body: commit,
            seal: signature(),
        })));
        let checkpoint_record = record(WireMessage::Checkpoint(Signed {
            signer: widest_signer(),
            body: Checkpoint {
                seq,
                state_digest: digest,
            },
            seal: signature(),
        }));
        let slot_bytes = pre_prepare_record + (n - 1) * prepare_record + n * commit_record;
        ResourceBounds {
            replicas: n,
            f,
            checkpoint_interval: interval,
            window,
            max_frame_bytes: frame,
            slots: window,
            pre_prepare_record,
            prepare_record,
            commit_record,
            checkpoint_record,
            slot_bytes,
            checkpoint_bytes: window.div_ceil(interval) * n * checkpoint_record,
            window_bytes: window.saturating_mul(slot_bytes),
        }
    }

    /// The log bound with `view_changes` view changes still reaching above the stable
    /// checkpoint and `retained` (0–2) VIEW-CHANGE and NEW-VIEW records kept across
    /// truncations.
    pub fn wal_bytes(&self, view_changes: u64, retained: u64) -> u64 {
        let per_view_change = self.window_bytes.saturating_add(self.max_frame_bytes);
        self.checkpoint_bytes
            .saturating_add(self.window_bytes)
            .saturating_add(view_changes.saturating_mul(per_view_change))
            .saturating_add(retained.saturating_mul(self.max_frame_bytes))
    }

    pub fn rss_bytes(&self, wal_bound: u64) -> u64 {
        RSS_BASE_BYTES.saturating_add(RSS_LOG_COPIES.saturating_mul(wal_bound))
    }

    /// The log bound's formula with this cluster's numbers.
    pub fn wal_derivation(&self, view_changes: u64, retained: u64) -> String {
        format!(
            "⌈W/K⌉·n·checkpoint + W·slot + e·(W·slot + F) + retained·F = {}·{}·{} + {}·{} + {}·({} + {}) + {}·{} = {} bytes, where W = {} (window), K = {} (checkpoint interval), n = {}, F = {} (frame cap), e = {} view changes still above the stable checkpoint, slot = one PRE-PREPARE ({} B, envelope plus the batch share F/((2f+2)(W+1))) + {} PREPAREs ({} B) + {} COMMITs ({} B)",
            self.window.div_ceil(self.checkpoint_interval),
            self.replicas,
            self.checkpoint_record,
            self.window,
            self.slot_bytes,
            view_changes,
            self.window_bytes,
            self.max_frame_bytes,
            retained,
            self.max_frame_bytes,
            self.wal_bytes(view_changes, retained),
            self.window,
            self.checkpoint_interval,
            self.replicas,
            self.max_frame_bytes,
            view_changes,
            self.pre_prepare_record,
            self.replicas - 1,
            self.prepare_record,
            self.replicas,
            self.commit_record,
        )
    }
}

/// One `resources` line, where it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// 1-based position in the replica's events file.
    pub line: usize,
    /// The line's own time (wall clock for real processes, from `SIM_EPOCH_NS` in simulation).
    pub time_ns: u64,
    /// Since the run started (the history's zero).
    pub since_start_ms: u64,
    pub slots: u64,
    pub wal_bytes: u64,
    pub snapshot_bytes: u64,
    pub stable_seq: Seq,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

/// A sample over a bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breach {
    pub replica: ReplicaId,
    /// `slots`, `wal-bytes` or `rss-bytes`.
    pub resource: String,
    pub measured: u64,
    pub bound: u64,
    /// How the bound was derived, with the numbers.
    pub derivation: String,
    pub sample: Sample,
}

impl Breach {
    pub fn describe(&self) -> String {
        format!(
            "replica {} held {} {} at {:.3} s (events line {}), over its bound of {}",
            self.replica,
            self.measured,
            self.resource,
            self.sample.since_start_ms as f64 / 1e3,
            self.sample.line,
            self.bound
        )
    }
}

/// The most each replica was seen to hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peaks {
    pub samples: u64,
    pub slots: u64,
    pub wal_bytes: u64,
    /// The log bound at the sample with the most log bytes.
    pub wal_bound: u64,
    pub snapshot_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

/// One replica as far as its events went.
#[derive(Default)]
struct Track {
    lines: usize,
    stable: Seq,
    /// The stable checkpoint at the previous sample: the lowest it was during this interval.
    floor: Seq,
    /// Per view change (or restart, which may hide some), the stable checkpoint then and how
    /// many view changes it counts for; dropped once its window is below the floor.
    view_changes: Vec<(Seq, u64)>,
    made_view_change: bool,
    entered_new_view: bool,
    restarted: bool,
    peaks: Peaks,
}

impl Track {
    /// View changes whose window (W above the stable checkpoint then) reaches above `floor`.
    fn view_changes_above(&self, floor: Seq, window: u64) -> u64 {
        self.view_changes
            .iter()
            .filter(|(stable, _)| stable.0.saturating_add(window) > floor.0)
            .map(|(_, count)| count)
            .sum()
    }

    /// VIEW-CHANGE and NEW-VIEW records a truncation keeps (the latest of each).
    fn retained(&self) -> u64 {
        u64::from(self.made_view_change || self.restarted)
            + u64::from(self.entered_new_view || self.restarted)
    }
}

/// Judges every `resources` sample of the honest replicas fed to it against `ResourceBounds`.
pub struct BoundedResourcesOracle {
    bounds: ResourceBounds,
    /// The events' time of the run's start, so samples say when they were taken in the run.
    started_at_ns: u64,
    replicas: BTreeMap<ReplicaId, Track>,
    breaches: Vec<Breach>,
    breach_count: usize,
}

impl BoundedResourcesOracle {
    pub fn new(bounds: ResourceBounds, started_at_ns: u64) -> BoundedResourcesOracle {
        BoundedResourcesOracle {
            bounds,
            started_at_ns,
            replicas: BTreeMap::new(),
            breaches: Vec::new(),
            breach_count: 0,
        }
    }

    /// Feeds one event of `replica`'s stream; true when it is a sample over a bound.
    pub fn observe(&mut self, replica: ReplicaId, time_ns: u64, event: &ReplicaEvent) -> bool {
        let track = self.replicas.entry(replica).or_default();
        track.lines += 1;
        match event {
            ReplicaEvent::CheckpointStable { seq, .. } => track.stable = track.stable.max(*seq),
            ReplicaEvent::ViewChangeStarted { .. } => {
                track.made_view_change = true;
                track.view_changes.push((track.stable, 1));
            }
            ReplicaEvent::ViewChangeCompleted { .. } => {
                track.entered_new_view = true;
                track.view_changes.push((track.stable, 1));
            }
            ReplicaEvent::Recovered { stable_seq, .. } => {
                track.restarted = true;
                track.stable = track.stable.max(*stable_seq);
                let hidden = HIDDEN_VIEW_CHANGES_PER_RESTART;
                track.view_changes.push((track.stable, hidden));
            }
            ReplicaEvent::Resources {
                slots,
                wal_bytes,
                snapshot_bytes,
                stable_seq,
                rss_bytes,
            } => {
                let sample = Sample {
                    line: track.lines,
                    time_ns,
                    since_start_ms: time_ns.saturating_sub(self.started_at_ns) / 1_000_000,
                    slots: *slots,
                    wal_bytes: *wal_bytes,
                    snapshot_bytes: *snapshot_bytes,
                    stable_seq: *stable_seq,
                    rss_bytes: *rss_bytes,
                };
                return self.judge(replica, sample);
            }
            _ => {}
        }
        false
    }

    fn judge(&mut self, replica: ReplicaId, sample: Sample) -> bool {
        let bounds = &self.bounds;
        let Some(track) = self.replicas.get_mut(&replica) else {
            return false;
        };
        let view_changes = track.view_changes_above(track.floor, bounds.window);
        let retained = track.retained();
        let wal_bound = bounds.wal_bytes(view_changes, retained);
        let rss_bound = bounds.rss_bytes(wal_bound);
        let mut found = Vec::new();
        if sample.slots > bounds.slots {
            let derivation = format!(
                "the message log holds sequence numbers in (low, low + W] only: W = {} (watermark window)",
                bounds.window
            );
            found.push(("slots", sample.slots, bounds.slots, derivation));
        }
        if sample.wal_bytes > wal_bound {
            let derivation = bounds.wal_derivation(view_changes, retained);
            found.push(("wal-bytes", sample.wal_bytes, wal_bound, derivation));
        }
        if let Some(rss) = sample.rss_bytes.filter(|rss| *rss > rss_bound) {
            let derivation = format!(
                "{RSS_BASE_BYTES} B fixed base (runtime, queues, a test workload's state) + {RSS_LOG_COPIES} × the log bound {wal_bound} B (the protocol state a few times over)"
            );
            found.push(("rss-bytes", rss, rss_bound, derivation));
        }
        track.peaks.record(&sample, wal_bound);
        track.stable = track.stable.max(sample.stable_seq);
        track.floor = track.stable;
        let (floor, window) = (track.floor, bounds.window);
        track
            .view_changes
            .retain(|(stable, _)| stable.0.saturating_add(window) > floor.0);
        let broke = !found.is_empty();
        for (resource, measured, bound, derivation) in found {
            self.breach_count += 1;
            if self.breaches.len() < MAX_LISTED {
                self.breaches.push(Breach {
                    replica,
                    resource: resource.to_string(),
                    measured,
                    bound,
                    derivation,
                    sample: sample.clone(),
                });
            }
        }
        broke
    }

    /// Samples judged so far, over all replicas.
    pub fn samples(&self) -> u64 {
        self.replicas.values().map(|t| t.peaks.samples).sum()
    }

    pub fn finish(&self, honest: &[ReplicaId]) -> CheckResult {
        let samples = self.samples();
        let peaks: BTreeMap<ReplicaId, Peaks> = honest
            .iter()
            .map(|r| {
                let peaks = self.replicas.get(r).map(|t| t.peaks.clone());
                (*r, peaks.unwrap_or_default())
            })
            .collect();
        let unsampled: Vec<ReplicaId> = peaks
            .iter()
            .filter(|(_, p)| p.samples == 0)
            .map(|(r, _)| *r)
            .collect();
        let details = json!({
            "bounds": self.bounds,
            "derivation": self.bounds.wal_derivation(0, 0),
            "rss_base_bytes": RSS_BASE_BYTES,
            "rss_log_copies": RSS_LOG_COPIES,
            "samples": samples,
            "replicas": peaks,
            "unsampled": unsampled,
            "breaches": self.breaches,
            "breach_count": self.breach_count,
        });
        let (outcome, summary) = if let Some(first) = self.breaches.first() {
            let summary = format!(
                "{} over their bounds; first: {}",
                plural(self.breach_count, "sample"),
                first.describe()
            );
            (CheckOutcome::Violation, summary)
        } else if samples == 0 {
            let summary = "no honest replica wrote a resources sample (a run recorded before replicas sampled their resources, or one too short for a sample): nothing to judge".to_string();
            (CheckOutcome::Inconclusive, summary)
        } else {
            (CheckOutcome::Pass, self.pass_summary(&peaks, &unsampled))
        };
        CheckResult {
            name: NAME.into(),
            outcome,
            summary,
            details,
        }
    }

    fn pass_summary(&self, peaks: &BTreeMap<ReplicaId, Peaks>, unsampled: &[ReplicaId]) -> String {
        let most = |get: fn(&Peaks) -> u64| peaks.values().map(get).max().unwrap_or(0);
        let mut summary = format!(
            "{} from {} honest replicas within bounds: at most {} of {} slots, {} log bytes (bound {} without view changes)",
            plural(self.samples() as usize, "sample"),
            peaks.len() - unsampled.len(),
            most(|p| p.slots),
            self.bounds.slots,
            most(|p| p.wal_bytes),
            self.bounds.wal_bytes(0, 0),
        );
        if let Some(rss) = peaks.values().filter_map(|p| p.rss_bytes).max() {
            summary.push_str(&format!(", {} MiB resident", rss.div_ceil(1 << 20)));
        }
        if !unsampled.is_empty() {
            let names: Vec<String> = unsampled.iter().map(|r| format!("r{r}")).collect();
            summary.push_str(&format!("; no samples from {}", names.join(", ")));
        }
        summary
    }
}

impl Peaks {
    fn record(&mut self, sample: &Sample, wal_bound: u64) {
        self.samples += 1;
        self.slots = self.slots.max(sample.slots);
        if sample.wal_bytes >= self.wal_bytes {
            self.wal_bytes = sample.wal_bytes;
            self.wal_bound = wal_bound;
        }
        self.snapshot_bytes = self.snapshot_bytes.max(sample.snapshot_bytes);
        self.rss_bytes = self.rss_bytes.max(sample.rss_bytes);
    }
}

fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// Bounded resources over a run's event files (see `BoundedResourcesOracle`); `started_at_ns`
/// is the run's start on the events' clock.
pub fn bounded_resources(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
    config: &ClusterConfig,
    started_at_ns: u64,
) -> CheckResult {
    let mut oracle = BoundedResourcesOracle::new(ResourceBounds::new(config), started_at_ns);
    for replica in honest {
        for line in events.get(replica).map(Vec::as_slice).unwrap_or_default() {
            oracle.observe(*replica, line.time_ns, &line.event);
        }
    }
    oracle.finish(honest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::config::ReplicaEntry;

    /// The harness's default cluster: f = 1, K = 16, W = 64, the default frame cap.
    fn config(auth: AuthMode) -> ClusterConfig {
        let replicas = (0..4)
            .map(|id| ReplicaEntry {
                id: ReplicaId(id),
                address: format!("127.0.0.1:{}", 7000 + id).parse().expect("address"),
                public_key: String::new(),
            })
            .collect();
        ClusterConfig {
            checkpoint_interval: 16,
            watermark_window: 64,
            auth,
            ..ClusterConfig::with_defaults(1, replicas, Vec::new())
        }
    }

    fn sample(slots: u64, wal_bytes: u64, stable: u64, rss: Option<u64>) -> ReplicaEvent {
        ReplicaEvent::Resources {
            slots,
            wal_bytes,
            snapshot_bytes: 500,
            stable_seq: Seq(stable),
            rss_bytes: rss,
        }
    }

    fn stable(seq: u64) -> ReplicaEvent {
        ReplicaEvent::CheckpointStable {
            seq: Seq(seq),
            state_digest: "ab".into(),
        }
    }

    fn started(view: u64) -> ReplicaEvent {
        ReplicaEvent::ViewChangeStarted {
            from: View(view - 1),
            view: View(view),
        }
    }

    fn lines(events: Vec<ReplicaEvent>) -> Vec<EventLine> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| EventLine {
                time_ns: (i as u64 + 1) * 500_000_000,
                replica: ReplicaId(0),
                event,
            })
            .collect()
    }

    fn judge(streams: Vec<(u32, Vec<ReplicaEvent>)>) -> CheckResult {
        let honest: Vec<ReplicaId> = streams.iter().map(|(r, _)| ReplicaId(*r)).collect();
        let events = streams
            .into_iter()
            .map(|(r, events)| (ReplicaId(r), lines(events)))
            .collect();
        bounded_resources(&events, &honest, &config(AuthMode::Macs), 0)
    }

    #[test]
    fn the_bounds_follow_from_the_settings() {
        let macs = ResourceBounds::new(&config(AuthMode::Macs));
        assert_eq!(macs.slots, 64);
        // The batch share of a 16 MiB frame among (2f+2)(W+1) = 260 certified batches.
        let share = (16u64 << 20) / 260;
        assert!(macs.pre_prepare_record > share && macs.pre_prepare_record < share + 300);
        assert!(macs.prepare_record > 64 && macs.prepare_record < 200);
        // An authenticator of four 16-byte MACs is the wider COMMIT seal.
        assert!(macs.commit_record >= macs.prepare_record);
        assert_eq!(
            macs.slot_bytes,
            macs.pre_prepare_record + 3 * macs.prepare_record + 4 * macs.commit_record
        );
        assert_eq!(macs.checkpoint_bytes, 4 * 4 * macs.checkpoint_record);
        assert_eq!(
            macs.wal_bytes(0, 0),
            macs.checkpoint_bytes + 64 * macs.slot_bytes
        );
        // Each view change still above the stable checkpoint adds a window and a frame.
        assert_eq!(
            macs.wal_bytes(2, 1) - macs.wal_bytes(0, 0),
            2 * (64 * macs.slot_bytes + (16 << 20)) + (16 << 20)
        );
        let wider_window = ResourceBounds::new(&ClusterConfig {
            watermark_window: 128,
            ..config(AuthMode::Signatures)
        });
        assert_eq!(wider_window.slots, 128);
        assert!(wider_window.pre_prepare_record < macs.pre_prepare_record);
    }

    #[test]
    fn a_run_under_its_bounds_passes_and_reports_its_peaks() {
        let result = judge(vec![
            (
                0,
                vec![
                    sample(10, 30_000, 0, Some(20 << 20)),
                    stable(16),
                    sample(40, 90_000, 16, Some(22 << 20)),
                ],
            ),
            (1, vec![sample(64, 120_000, 0, None)]),
        ]);
        assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
        assert_eq!(result.name, "bounded-resources");
        assert_eq!(result.details["samples"], 3);
        assert_eq!(result.details["replicas"]["0"]["wal_bytes"], 90_000);
        assert_eq!(result.details["replicas"]["1"]["slots"], 64);
        assert!(
            result.summary.contains("at most 64 of 64 slots"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_replica_holding_more_slots_than_the_window_is_named_with_its_sample() {
        let result = judge(vec![
            (0, vec![sample(12, 1_000, 0, None)]),
            (
                2,
                vec![sample(30, 1_000, 0, None), sample(65, 1_000, 0, None)],
            ),
        ]);
        assert_eq!(result.outcome, CheckOutcome::Violation);
        let breach = &result.details["breaches"][0];
        assert_eq!(breach["replica"], 2);
        assert_eq!(breach["resource"], "slots");
        assert_eq!(
            (breach["measured"].as_u64(), breach["bound"].as_u64()),
            (Some(65), Some(64))
        );
        assert_eq!(breach["sample"]["line"], 2);
        assert_eq!(breach["sample"]["time_ns"], 1_000_000_000u64);
        assert_eq!(breach["sample"]["since_start_ms"], 1_000);
        assert!(
            result
                .summary
                .contains("replica 2 held 65 slots at 1.000 s (events line 2)"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_log_that_grows_past_its_bound_is_a_violation_and_a_view_change_buys_one_more_window() {
        let bounds = ResourceBounds::new(&config(AuthMode::Macs));
        let steady = bounds.wal_bytes(0, 0);
        let result = judge(vec![(
            1,
            vec![sample(20, steady, 0, None), sample(20, steady + 1, 0, None)],
        )]);
        assert_eq!(result.outcome, CheckOutcome::Violation);
        let breach = &result.details["breaches"][0];
        assert_eq!(
            (breach["replica"].as_u64(), breach["resource"].as_str()),
            (Some(1), Some("wal-bytes"))
        );
        assert_eq!(breach["measured"].as_u64(), Some(steady + 1));
        assert_eq!(breach["bound"].as_u64(), Some(steady));
        assert_eq!(breach["sample"]["line"], 2);
        assert!(
            breach["derivation"]
                .as_str()
                .is_some_and(|d| d.contains("W = 64"))
        );

        // The same log after a view change is within what two views may keep...
        let after_view_change = bounds.wal_bytes(1, 1);
        let result = judge(vec![(
            1,
            vec![started(1), sample(20, after_view_change, 0, None)],
        )]);
        assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
        // ...until the stable checkpoint moves a whole window past the view change.
        let result = judge(vec![(
            1,
            vec![
                started(1),
                stable(64),
                sample(20, 1_000, 64, None),
                sample(20, after_view_change, 64, None),
            ],
        )]);
        assert_eq!(
            result.outcome,
            CheckOutcome::Violation,
            "{}",
            result.summary
        );
    }

    #[test]
    fn resident_memory_over_its_bound_is_a_violation_but_a_simulated_run_has_none_to_judge() {
        let bounds = ResourceBounds::new(&config(AuthMode::Macs));
        let rss_bound = bounds.rss_bytes(bounds.wal_bytes(0, 0));
        let result = judge(vec![(3, vec![sample(5, 1_000, 0, Some(rss_bound + 1))])]);
        assert_eq!(result.outcome, CheckOutcome::Violation);
        assert_eq!(result.details["breaches"][0]["resource"], "rss-bytes");
        assert_eq!(result.details["breaches"][0]["replica"], 3);
        let result = judge(vec![(3, vec![sample(5, 1_000, 0, None)])]);
        assert_eq!(result.outcome, CheckOutcome::Pass);
    }

    #[test]
    fn events_without_samples_are_inconclusive_not_a_pass() {
        let result = judge(vec![(0, vec![stable(16), started(1)]), (1, Vec::new())]);
        assert_eq!(result.outcome, CheckOutcome::Inconclusive);
        assert!(
            result.summary.contains("nothing to judge"),
            "{}",
            result.summary
        );
        // One replica without samples among sampled ones is named, not fatal.
        let result = judge(vec![(0, vec![sample(1, 1, 0, None)]), (1, Vec::new())]);
        assert_eq!(result.outcome, CheckOutcome::Pass);
        assert!(
            result.summary.contains("no samples from r1"),
            "{}",
            result.summary
        );
    }
}
