//! Faults bound to protocol rounds, drawn from the seed (`nemesis.generate.rounds`).
//!
//! * `round-partition` (ByzzFuzz, Winter et al., OOPSLA'23): `network_faults` distinct rounds
//!   among the first `within` of views `0..views`, each with a random partition of the replica
//!   processes into 2–3 groups, optionally hitting one phase only.
//! * `twins-round` (Twins): a partition of the replica processes, both twins of each twinned
//!   replica included, for every view `0..views`; with `quorum_bias` it is the twins' own split.
//!   The leader of a round is not drawn: PBFT fixes it (the primary of view v is v mod n).
//!   Clients join the groups too. REQUEST, CHECKPOINT, FETCH-STATE and STATE-TRANSFER name no
//!   view, so no round can select them: the first view's partition also cuts them between its
//!   groups until the heal, or a group cut off in a view would be fed state and served by the
//!   other and never need the next view.
//! * `round-crash`: the sender of a round's PRE-PREPARE, PREPARE or COMMIT is killed right after
//!   sending it and restarted; the crashes are chained, one after the other, so the over-f guard
//!   counts them as one replica.
//!
//! A partition is carried out as proxy drop rules whose matcher names the round (`views`,
//! `seqs`, `kinds`), installed when the workload starts and removed by the final heal: the
//! same rounds lose the same frames on real processes and in the simulator, whatever the
//! timing. For `round-partition`, frames that carry no round (client requests, checkpoints,
//! undecodable frames) are never cut, and clients are in no group.

use super::{PlannedAction, PlannedFault, PlannedTarget, PlannedTrigger, TriggerTarget};
use crate::proxy::{Action, Direction, Endpoint, LinkSpec, Matcher, Rule, endpoint_label};
use crate::scenario::{FaultAction, FaultKind, GenerateSpec, RoundSpec, SentKind};
use crate::twins::TwinsPlan;
use rand::RngExt;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha20Rng;
use replica::ReplicaId;
use replica::message::MessageKind;
use std::collections::BTreeMap;

/// What the round generators need to know of the cluster.
pub struct RoundContext<'a> {
    pub n: usize,
    pub links: &'a [LinkSpec],
    pub twins: Option<&'a TwinsPlan>,
}

impl RoundContext<'_> {
    /// Every replica process: the replicas, then each twin B.
    fn processes(&self) -> Vec<Endpoint> {
        match self.twins {
            Some(twins) => twins.processes(self.n),
            None => (0..self.n as u32)
                .map(|r| Endpoint::Replica(ReplicaId(r)))
                .collect(),
        }
    }

    /// Every client that dials a replica.
    fn clients(&self) -> Vec<Endpoint> {
        let mut clients: Vec<Endpoint> = self
            .links
            .iter()
            .map(|l| l.from)
            .filter(|e| matches!(e, Endpoint::Client(_)))
            .collect();
        clients.dedup();
        clients
    }

    /// The process a link's frames reach (a twinned replica's link reaches one twin).
    fn listener(&self, link: &LinkSpec) -> Endpoint {
        match self.twins {
            Some(twins) => twins.listener(link),
            None => Endpoint::Replica(link.to),
        }
    }
}

/// One protocol round: a view, and a window of sequence numbers (`None` = the whole view).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Round {
    view: u64,
    seqs: Option<[u64; 2]>,
}

/// The round-bound faults of `spec`, one kind after the other in the order of `kinds`.
pub fn generate_rounds(
    spec: &GenerateSpec,
    ctx: &RoundContext,
    rng: &mut ChaCha20Rng,
) -> Vec<PlannedFault> {
    let rounds = spec.rounds.clone().unwrap_or_default();
    let restart_ms = ((spec.interval_ms as f64 * spec.intensity) as u64).clamp(200, 5000);
    let mut kinds: Vec<FaultKind> = Vec::new();
    for kind in spec.kinds.iter().copied().filter(|k| k.is_round_bound()) {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let mut faults = Vec::new();
    for kind in kinds {
        match kind {
            FaultKind::RoundPartition => faults.extend(round_partitions(&rounds, ctx, rng)),
            FaultKind::TwinsRound => faults.extend(twins_rounds(&rounds, ctx, rng)),
            FaultKind::RoundCrash => faults.extend(round_crashes(&rounds, restart_ms, rng)),
            _ => {}
        }
    }
    faults
}

/// `count` distinct rounds among the first `within` windows of views `0..views`, in
/// protocol order.
fn pick_rounds(spec: &RoundSpec, kind: FaultKind, count: u32, rng: &mut ChaCha20Rng) -> Vec<Round> {
    let within = spec.within.max(1);
    let total = within.saturating_mul(spec.views_for(kind).max(1));
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let count = (count as usize).min(total);
    let mut picked: Vec<Round> = rand::seq::index::sample(rng, total, count)
        .into_iter()
        .map(|index| {
            let index = index as u64;
            let (view, k) = (index / within, index % within);
            let span = spec.span.max(1);
            Round {
                view,
                seqs: Some([k * span + 1, (k + 1) * span]),
            }
        })
        .collect();
    picked.sort();
    picked
}

/// A random partition of `processes` into between `low` and `high` non-empty groups.
fn random_partition(
    processes: &[Endpoint],
    [low, high]: [usize; 2],
    rng: &mut ChaCha20Rng,
) -> Vec<Vec<Endpoint>> {
    let high = high.min(processes.len()).max(1);
    let count = rng.random_range(low.clamp(1, high)..=high);
    let mut order = processes.to_vec();
    order.shuffle(rng);
    let mut groups: Vec<Vec<Endpoint>> = vec![Vec::new(); count];
    for (i, process) in order.into_iter().enumerate() {
        // The first `count` processes seed one group each, so no group is empty.
        let g = if i < count {
            i
        } else {
            rng.random_range(0..count)
        };
        groups[g].push(process);
    }
    for group in &mut groups {
        group.sort();
    }
    groups.sort();
    groups
}

/// Drop rules that cut, for the frames of `round` (and of `kinds`, if given), every link
/// whose dialer and listener processes are in different groups: one rule per dialer. A
/// process in no group (a client) is never cut.
fn round_rules(
    groups: &[Vec<Endpoint>],
    round: Round,
    kinds: Option<Vec<MessageKind>>,
    ctx: &RoundContext,
) -> Vec<Rule> {
    let group_of: BTreeMap<Endpoint, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, members)| members.iter().map(move |m| (*m, g)))
        .collect();
    let mut cut: BTreeMap<Endpoint, Vec<ReplicaId>> = BTreeMap::new();
    for link in ctx.links {
        let (Some(a), Some(b)) = (group_of.get(&link.from), group_of.get(&ctx.listener(link)))
        else {
            continue;
        };
        if a != b {
            let to = cut.entry(link.from).or_default();
            if !to.contains(&link.to) {
                to.push(link.to);
            }
        }
    }
    cut.into_iter()
        .map(|(from, to)| Rule {
            id: endpoint_label(from),
            matcher: Matcher {
                from: Some(vec![from]),
                to: Some(to),
                direction: Direction::Both,
                kinds: kinds.clone(),
                views: Some([round.view, round.view]),
                seqs: round.seqs,
            },
            action: Action::Drop { probability: 1.0 },
        })
        .collect()
}

/// Messages that name no view, so no round rule can select them: client requests and
/// catch-up traffic between replicas.
pub const VIEWLESS: [MessageKind; 4] = [
    MessageKind::Request,
    MessageKind::Checkpoint,
    MessageKind::FetchState,
    MessageKind::StateTransfer,
];

/// Drop rules for the view-less messages (`VIEWLESS`) between `groups`, for the whole run.
/// Without them a group cut off in a view is fed stable checkpoints and state by the other
/// group, and its clients are served by the other group, so it never needs the next view
/// and the next view's partition would never matter.
fn catch_up_rules(groups: &[Vec<Endpoint>], ctx: &RoundContext) -> Vec<Rule> {
    let whole_run = Round {
        view: 0,
        seqs: None,
    };
    round_rules(groups, whole_run, Some(VIEWLESS.to_vec()), ctx)
        .into_iter()
        .map(|rule| Rule {
            id: format!("{}~catch-up", rule.id),
            matcher: Matcher {
                views: None,
                ..rule.matcher
            },
            ..rule
        })
        .collect()
}

/// A fault in force from the start of the workload until the final heal, whose rules match
/// only its round.
fn round_fault(id: String, rules: Vec<Rule>) -> PlannedFault {
    PlannedFault {
        id,
        start_ms: 0,
        end_ms: None,
        action: PlannedAction::LinkFault { rules },
        trigger: None,
    }
}

fn round_partitions(
    spec: &RoundSpec,
    ctx: &RoundContext,
    rng: &mut ChaCha20Rng,
) -> Vec<PlannedFault> {
    let processes = ctx.processes();
    let phases = [
        None,
        Some(vec![MessageKind::PrePrepare]),
        Some(vec![MessageKind::Prepare]),
        Some(vec![MessageKind::Commit]),
    ];
    let rounds = pick_rounds(spec, FaultKind::RoundPartition, spec.network_faults, rng);
    let mut faults = Vec::new();
    for (i, round) in rounds.into_iter().enumerate() {
        let groups = random_partition(&processes, spec.groups, rng);
        let kinds = if spec.phases {
            phases.choose(rng).cloned().flatten()
        } else {
            None
        };
        let rules = round_rules(&groups, round, kinds, ctx);
        faults.push(round_fault(format!("b{i:02}-round-partition"), rules));
    }
    faults
}

/// The twins' own split: each side's processes and clients (twin A with side A, twin B with
/// side B), as the twins section routes them.
fn twin_sides(twins: &TwinsPlan) -> Vec<Vec<Endpoint>> {
    twins
        .groups
        .iter()
        .map(|side| {
            let mut side = side.clone();
            side.sort();
            side
        })
        .collect()
}

fn twins_rounds(spec: &RoundSpec, ctx: &RoundContext, rng: &mut ChaCha20Rng) -> Vec<PlannedFault> {
    let Some(twins) = ctx.twins else {
        return Vec::new();
    };
    let processes = ctx.processes();
    let mut faults = Vec::new();
    // A twins' split drawn for a view is kept for the next one too: equivocation takes two
    // views cut alike, one for the side of the view's leader to commit and the next for the
    // other side's view change to elect a leader of its own (PBFT fixes it: view mod n).
    let mut carry_split = false;
    for view in 0..spec.views_for(FaultKind::TwinsRound) {
        let split = carry_split || rng.random_bool(spec.quorum_bias.clamp(0.0, 1.0));
        carry_split = split && !carry_split;
        let groups = if split {
            twin_sides(twins)
        } else {
            let mut groups = random_partition(&processes, spec.groups, rng);
            // Twins partitions every node: each client joins one group of the view.
            for client in ctx.clients() {
                let g = rng.random_range(0..groups.len());
                groups[g].push(client);
            }
            groups
        };
        let round = Round { view, seqs: None };
        let mut rules = round_rules(&groups, round, None, ctx);
        if view == 0 {
            rules.extend(catch_up_rules(&groups, ctx));
        }
        faults.push(round_fault(format!("t{view:02}-twins-round"), rules));
    }
    faults
}

fn round_crashes(spec: &RoundSpec, restart_ms: u64, rng: &mut ChaCha20Rng) -> Vec<PlannedFault> {
    let sent = [SentKind::PrePrepare, SentKind::Prepare, SentKind::Commit];
    let rounds = pick_rounds(spec, FaultKind::RoundCrash, spec.process_faults, rng);
    let mut faults: Vec<PlannedFault> = Vec::new();
    for (i, round) in rounds.into_iter().enumerate() {
        let after_fault = faults.last().map(|f| f.id.clone());
        faults.push(PlannedFault {
            id: format!("c{i:02}-round-crash"),
            start_ms: 0,
            end_ms: None,
            action: PlannedAction::Kill {
                target: PlannedTarget::Primary,
                permanent: false,
            },
            trigger: Some(PlannedTrigger {
                sent: sent.choose(rng).copied().unwrap_or(SentKind::Commit),
                by: None,
                view: Some(round.view),
                seq: round.seqs.map(|[low, _]| low),
                after_fault,
                target: TriggerTarget::Sender,
                after_ms: Some(restart_ms),
                action: FaultAction::Restart,
            }),
        });
    }
    faults
}

#[cfg(test)]
#[path = "rounds_tests.rs"]
mod tests;
