use super::*;
use crate::scenario::LoadedScenario;
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

/// Every replica→replica link and every client→replica link of an n-replica cluster.
fn links(n: u32, clients: u32) -> Vec<LinkSpec> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    let mut links = Vec::new();
    let dialers = (0..n)
        .map(|r| Endpoint::Replica(ReplicaId(r)))
        .chain((0..clients).map(|c| Endpoint::Client(replica::ClientId(c))));
    for from in dialers {
        for to in 0..n {
            if from != Endpoint::Replica(ReplicaId(to)) {
                links.push(LinkSpec {
                    from,
                    to: ReplicaId(to),
                    listen: addr,
                    target: addr,
                });
            }
        }
    }
    links
}

fn spec(kinds: Vec<FaultKind>, rounds: RoundSpec) -> GenerateSpec {
    GenerateSpec {
        kinds,
        interval_ms: 1000,
        intensity: 0.5,
        start_ms: 1000,
        rounds: Some(rounds),
    }
}

fn byzzfuzz(c: u32, r: u64, views: u64, phases: bool) -> GenerateSpec {
    spec(
        vec![FaultKind::RoundPartition],
        RoundSpec {
            network_faults: c,
            within: r,
            views: Some(views),
            phases,
            ..RoundSpec::default()
        },
    )
}

fn run(spec: &GenerateSpec, links: &[LinkSpec], seed: u64) -> Vec<PlannedFault> {
    let ctx = RoundContext {
        n: 4,
        links,
        twins: None,
    };
    generate_rounds(spec, &ctx, &mut ChaCha20Rng::seed_from_u64(seed))
}

fn rules(fault: &PlannedFault) -> &[Rule] {
    match &fault.action {
        PlannedAction::LinkFault { rules } => rules,
        other => panic!("not a link fault: {other:?}"),
    }
}

#[test]
fn round_partitions_are_a_function_of_the_seed() {
    let links = links(4, 2);
    let s = byzzfuzz(3, 10, 2, true);
    assert_eq!(run(&s, &links, 5), run(&s, &links, 5));
    let differ = (0..20).filter(|seed| run(&s, &links, *seed) != run(&s, &links, 5));
    assert!(differ.count() >= 15);
}

#[test]
fn every_round_partition_rule_is_bound_to_one_round_among_the_first_r() {
    let links = links(4, 3);
    for seed in 0..100 {
        let faults = run(&byzzfuzz(3, 8, 2, seed % 2 == 0), &links, seed);
        assert_eq!(faults.len(), 3, "seed {seed}");
        let mut rounds = BTreeSet::new();
        for fault in &faults {
            assert_eq!((fault.start_ms, fault.end_ms), (0, None));
            assert!(!rules(fault).is_empty(), "a partition cuts something");
            let first = &rules(fault)[0].matcher;
            for rule in rules(fault) {
                let m = &rule.matcher;
                let [v0, v1] = m.views.expect("bound to a view");
                let [s0, s1] = m.seqs.expect("bound to seqs");
                assert!(v0 == v1 && v0 < 2 && s0 == s1 && (1..=8).contains(&s0));
                assert_eq!(
                    (m.views, m.seqs, &m.kinds),
                    (first.views, first.seqs, &first.kinds)
                );
                assert_eq!(rule.action, Action::Drop { probability: 1.0 });
                assert!(
                    !matches!(m.from.as_deref(), Some([Endpoint::Client(_)])),
                    "clients stay connected"
                );
            }
            rounds.insert((first.views, first.seqs));
        }
        assert_eq!(rounds.len(), 3, "distinct rounds, seed {seed}");
    }
}

#[test]
fn random_partitions_cover_every_process_once_in_two_to_three_groups() {
    let processes: Vec<Endpoint> = (0..4)
        .map(|r| Endpoint::Replica(ReplicaId(r)))
        .chain([Endpoint::Twin(ReplicaId(0))])
        .collect();
    let mut sizes = BTreeSet::new();
    for seed in 0..200 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let groups = random_partition(&processes, [2, 3], &mut rng);
        sizes.insert(groups.len());
        assert!(groups.iter().all(|g| !g.is_empty()), "{groups:?}");
        let mut all: Vec<Endpoint> = groups.concat();
        all.sort();
        assert_eq!(all, processes, "seed {seed}");
    }
    assert_eq!(sizes, BTreeSet::from([2, 3]));
}

#[test]
fn round_rules_cut_exactly_the_links_between_groups() {
    let links = links(4, 1);
    let ctx = RoundContext {
        n: 4,
        links: &links,
        twins: None,
    };
    let r = |i: u32| Endpoint::Replica(ReplicaId(i));
    let groups = vec![vec![r(0), r(1)], vec![r(2)], vec![r(3)]];
    let round = Round {
        view: 1,
        seqs: Some([4, 5]),
    };
    let rules = round_rules(&groups, round, Some(vec![MessageKind::Commit]), &ctx);
    let cut: BTreeMap<Endpoint, Vec<ReplicaId>> = rules
        .iter()
        .map(|rule| {
            let from = rule.matcher.from.as_deref().expect("from")[0];
            (from, rule.matcher.to.clone().expect("to"))
        })
        .collect();
    let ids = |v: &[u32]| v.iter().map(|i| ReplicaId(*i)).collect::<Vec<_>>();
    assert_eq!(cut[&r(0)], ids(&[2, 3]));
    assert_eq!(cut[&r(1)], ids(&[2, 3]));
    assert_eq!(cut[&r(2)], ids(&[0, 1, 3]));
    assert_eq!(cut[&r(3)], ids(&[0, 1, 2]));
    assert_eq!(cut.len(), 4);
    assert!(rules.iter().all(|rule| rule.matcher.views == Some([1, 1])
        && rule.matcher.seqs == Some([4, 5])
        && rule.matcher.kinds == Some(vec![MessageKind::Commit])));
}

fn twins_plan(text: &str, seed: u64) -> crate::plan::Plan {
    let loaded = LoadedScenario::from_text(text, Path::new("t.yaml")).expect("parses");
    crate::plan::resolve(&loaded, seed).expect("plan")
}

const TWINS: &str = "name: t\nworkload:\n  kind: kv\n  clients: 2\n  duration_s: 3\nreplicas:\n  0: { build: twin }\nnemesis:\n  generate:\n    kinds: [twins-round]\n    rounds: { views: 4, quorum_bias: 0.0 }\n";

#[test]
fn twins_rounds_partition_each_view_over_all_five_processes_without_standing_rules() {
    for seed in 0..30 {
        let plan = twins_plan(TWINS, seed);
        let twins = plan.twins.as_ref().expect("twins");
        assert!(twins.per_round && twins.rules.is_empty());
        assert!(plan.standing_rules().is_empty());
        assert_eq!(plan.nemesis.len(), 4, "one partition per view");
        for (view, fault) in plan.nemesis.iter().enumerate() {
            let view = view as u64;
            for rule in rules(fault) {
                assert_eq!(rule.matcher.seqs, None, "a twins round is a whole view");
                if rule.matcher.kinds == Some(VIEWLESS.to_vec()) {
                    // Catch-up traffic names no view: only the first view's partition cuts it.
                    assert_eq!((view, rule.matcher.views), (0, None));
                    assert!(rule.id.ends_with("~catch-up"));
                } else {
                    assert_eq!(rule.matcher.views, Some([view, view]));
                    assert_eq!(rule.matcher.kinds, None);
                }
            }
        }
        assert_eq!(crate::nemesis::max_down(&plan.nemesis), 0);
    }
    // Over the seeds, the twin B process is partitioned too, not only the replicas.
    let twin_b_cut = (0..30).any(|seed| {
        twins_plan(TWINS, seed).nemesis.iter().any(|f| {
            rules(f)
                .iter()
                .any(|r| r.matcher.from == Some(vec![Endpoint::Twin(ReplicaId(0))]))
        })
    });
    assert!(twin_b_cut);
}

#[test]
fn a_full_quorum_bias_gives_every_view_the_twins_own_split() {
    let text = TWINS.replace("quorum_bias: 0.0", "quorum_bias: 1.0");
    let plan = twins_plan(&text, 3);
    let twins = plan.twins.as_ref().expect("twins");
    let sides = twin_sides(twins);
    let links = plan.links.clone();
    let ctx = RoundContext {
        n: 4,
        links: &links,
        twins: Some(twins),
    };
    for (view, fault) in plan.nemesis.iter().enumerate() {
        let round = Round {
            view: view as u64,
            seqs: None,
        };
        let mut expected = round_rules(&sides, round, None, &ctx);
        if view == 0 {
            expected.extend(catch_up_rules(&sides, &ctx));
        }
        assert_eq!(rules(fault), expected.as_slice());
    }
}

#[test]
fn round_crashes_are_chained_so_they_count_as_one_replica() {
    let s = spec(
        vec![FaultKind::RoundCrash, FaultKind::Loss],
        RoundSpec {
            process_faults: 3,
            within: 20,
            ..RoundSpec::default()
        },
    );
    let links = links(4, 1);
    for seed in 0..50 {
        let faults = run(&s, &links, seed);
        assert_eq!(faults.len(), 3);
        assert_eq!(crate::nemesis::max_down(&faults), 1, "seed {seed}");
        let seqs: Vec<Option<u64>> = faults
            .iter()
            .map(|f| f.trigger.as_ref().and_then(|t| t.seq))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "protocol order: {seqs:?}"
        );
        assert!(faults[1..].iter().zip(&faults).all(|(f, before)| {
            f.trigger.as_ref().and_then(|t| t.after_fault.as_deref()) == Some(before.id.as_str())
        }));
    }
}

#[test]
fn mixed_kinds_keep_the_timed_faults_of_the_plain_generator() {
    let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 10\nnemesis:\n  generate:\n    kinds: [loss, kill, partition]\n    interval_ms: 1500\n    intensity: 0.5\n";
    let mixed = text.replace(
        "[loss, kill, partition]",
        "[loss, round-partition, kill, partition]",
    );
    for seed in 0..10 {
        let plain = twins_plan(text, seed).nemesis;
        let both = twins_plan(&mixed, seed).nemesis;
        let timed: Vec<&PlannedFault> = both.iter().filter(|f| f.id.starts_with('g')).collect();
        assert_eq!(timed, plain.iter().collect::<Vec<_>>(), "seed {seed}");
        assert_eq!(
            both.len() - timed.len(),
            2,
            "two round partitions by default"
        );
        assert!(crate::nemesis::max_down(&both) <= 1);
    }
}

#[test]
fn the_over_f_guard_counts_round_crashes_with_timed_process_faults_but_not_partitions() {
    let text = |kinds: &str, f: u32| {
        format!(
            "name: t\ncluster:\n  f: {f}\nworkload:\n  kind: kv\n  duration_s: 10\nnemesis:\n  generate:\n    kinds: [{kinds}]\n"
        )
    };
    let resolve = |text: &str| {
        let loaded = LoadedScenario::from_text(text, Path::new("t.yaml")).expect("parses");
        crate::plan::resolve(&loaded, 4)
    };
    assert!(resolve(&text("round-partition, kill, pause, loss", 1)).is_ok());
    assert!(resolve(&text("round-partition, round-crash, loss", 1)).is_ok());
    let error = resolve(&text("kill, round-crash", 1)).expect_err("two down with f = 1");
    assert!(
        error
            .to_string()
            .starts_with("t.yaml:8: field `nemesis.generate`"),
        "{error}"
    );
    assert!(resolve(&text("kill, round-crash, round-partition", 2)).is_ok());
}
