//! Scenarios compiled into the binary, so `gauntlet run NAME` works from any directory.

pub struct Builtin {
    pub name: &'static str,
    pub yaml: &'static str,
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "default",
        yaml: include_str!("../../scenarios/default.yaml"),
    },
    Builtin {
        name: "smoke",
        yaml: include_str!("../../scenarios/smoke.yaml"),
    },
    Builtin {
        name: "soak-quiet-windows",
        yaml: include_str!("../../scenarios/soak-quiet-windows.yaml"),
    },
    Builtin {
        name: "partition-halves",
        yaml: include_str!("../../scenarios/partition-halves.yaml"),
    },
    Builtin {
        name: "fault-after-commit",
        yaml: include_str!("../../scenarios/fault-after-commit.yaml"),
    },
    Builtin {
        name: "two-faulty-primaries",
        yaml: include_str!("../../scenarios/two-faulty-primaries.yaml"),
    },
    Builtin {
        name: "primary-crash",
        yaml: include_str!("../../scenarios/primary-crash.yaml"),
    },
    Builtin {
        name: "primary-crash-idle",
        yaml: include_str!("../../scenarios/primary-crash-idle.yaml"),
    },
    Builtin {
        name: "pause-primary",
        yaml: include_str!("../../scenarios/pause-primary.yaml"),
    },
    Builtin {
        name: "lossy-network",
        yaml: include_str!("../../scenarios/lossy-network.yaml"),
    },
    Builtin {
        name: "rewrite-in-flight",
        yaml: include_str!("../../scenarios/rewrite-in-flight.yaml"),
    },
    Builtin {
        name: "too-many-crashes",
        yaml: include_str!("../../scenarios/too-many-crashes.yaml"),
    },
    Builtin {
        name: "too-many-triggered-crashes",
        yaml: include_str!("../../scenarios/too-many-triggered-crashes.yaml"),
    },
    Builtin {
        name: "byz-byzzfuzz",
        yaml: include_str!("../../scenarios/byz-byzzfuzz.yaml"),
    },
    Builtin {
        name: "twins-rounds",
        yaml: include_str!("../../scenarios/twins-rounds.yaml"),
    },
    Builtin {
        name: "neg-twins-rounds-f1",
        yaml: include_str!("../../scenarios/neg-twins-rounds-f1.yaml"),
    },
    Builtin {
        name: "byz-silent",
        yaml: include_str!("../../scenarios/byz-silent.yaml"),
    },
    Builtin {
        name: "byz-crash-later",
        yaml: include_str!("../../scenarios/byz-crash-later.yaml"),
    },
    Builtin {
        name: "byz-equivocate",
        yaml: include_str!("../../scenarios/byz-equivocate.yaml"),
    },
    Builtin {
        name: "byz-equivocate-all",
        yaml: include_str!("../../scenarios/byz-equivocate-all.yaml"),
    },
    Builtin {
        name: "byz-equivocate-all-backup",
        yaml: include_str!("../../scenarios/byz-equivocate-all-backup.yaml"),
    },
    Builtin {
        name: "byz-wrong-reply",
        yaml: include_str!("../../scenarios/byz-wrong-reply.yaml"),
    },
    Builtin {
        name: "byz-censor",
        yaml: include_str!("../../scenarios/byz-censor.yaml"),
    },
    Builtin {
        name: "byz-censor-quiet",
        yaml: include_str!("../../scenarios/byz-censor-quiet.yaml"),
    },
    Builtin {
        name: "byz-slow-primary",
        yaml: include_str!("../../scenarios/byz-slow-primary.yaml"),
    },
    Builtin {
        name: "byz-bad-view-change",
        yaml: include_str!("../../scenarios/byz-bad-view-change.yaml"),
    },
    Builtin {
        name: "byz-replay",
        yaml: include_str!("../../scenarios/byz-replay.yaml"),
    },
    Builtin {
        name: "byz-forge-sender",
        yaml: include_str!("../../scenarios/byz-forge-sender.yaml"),
    },
    Builtin {
        name: "byz-flood",
        yaml: include_str!("../../scenarios/byz-flood.yaml"),
    },
    Builtin {
        name: "byz-checkpoint-lie",
        yaml: include_str!("../../scenarios/byz-checkpoint-lie.yaml"),
    },
    Builtin {
        name: "byz-checkpoint-lie-alone",
        yaml: include_str!("../../scenarios/byz-checkpoint-lie-alone.yaml"),
    },
    Builtin {
        name: "byz-amnesia-probe",
        yaml: include_str!("../../scenarios/byz-amnesia-probe.yaml"),
    },
    Builtin {
        name: "byz-stale-view",
        yaml: include_str!("../../scenarios/byz-stale-view.yaml"),
    },
    Builtin {
        name: "byz-mutate",
        yaml: include_str!("../../scenarios/byz-mutate.yaml"),
    },
    Builtin {
        name: "byz-mutate-any",
        yaml: include_str!("../../scenarios/byz-mutate-any.yaml"),
    },
    Builtin {
        name: "byz-twin",
        yaml: include_str!("../../scenarios/byz-twin.yaml"),
    },
    Builtin {
        name: "byz-f2-mixed",
        yaml: include_str!("../../scenarios/byz-f2-mixed.yaml"),
    },
    Builtin {
        name: "byzc-replay-timestamps",
        yaml: include_str!("../../scenarios/byzc-replay-timestamps.yaml"),
    },
    Builtin {
        name: "byzc-max-size-requests",
        yaml: include_str!("../../scenarios/byzc-max-size-requests.yaml"),
    },
    Builtin {
        name: "byzc-flood",
        yaml: include_str!("../../scenarios/byzc-flood.yaml"),
    },
    Builtin {
        name: "byzc-never-read",
        yaml: include_str!("../../scenarios/byzc-never-read.yaml"),
    },
    Builtin {
        name: "byzc-mac-attack",
        yaml: include_str!("../../scenarios/byzc-mac-attack.yaml"),
    },
    Builtin {
        name: "neg-twins-f1",
        yaml: include_str!("../../scenarios/neg-twins-f1.yaml"),
    },
    Builtin {
        name: "neg-wrong-reply-f1",
        yaml: include_str!("../../scenarios/neg-wrong-reply-f1.yaml"),
    },
    Builtin {
        name: "neg-equivocate-all-f1",
        yaml: include_str!("../../scenarios/neg-equivocate-all-f1.yaml"),
    },
    Builtin {
        name: "neg-silent-f1",
        yaml: include_str!("../../scenarios/neg-silent-f1.yaml"),
    },
];

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Build, Expectation, load};

    /// Every behaviour of the catalogue (`twin` is in it, though the harness runs it itself).
    fn behaviours() -> Vec<&'static str> {
        byzantine::catalogue().iter().map(|b| b.name).collect()
    }

    #[test]
    fn every_builtin_parses_names_itself_and_has_a_description() {
        for b in BUILTINS {
            let loaded = load(b.name).unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert_eq!(loaded.scenario.name, b.name);
            assert!(!loaded.scenario.description.is_empty(), "{}", b.name);
            crate::plan::resolve(&loaded, 1).unwrap_or_else(|e| panic!("{}: {e}", b.name));
        }
    }

    #[test]
    fn every_behaviour_has_a_byz_scenario_with_one_faulty_replica_expecting_pass() {
        for behaviour in &behaviours() {
            let name = format!("byz-{behaviour}");
            let loaded = load(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let s = &loaded.scenario;
            assert_eq!(s.expect, Expectation::Pass, "{name}");
            let faulty: Vec<_> = s
                .replicas
                .values()
                .filter(|r| r.build != Build::Honest)
                .collect();
            assert_eq!(faulty.len(), 1, "{name}");
            let runs = match faulty[0].build {
                Build::Twin => "twin",
                _ => faulty[0].behaviour.as_ref().map_or("", |b| b.name()),
            };
            assert_eq!(runs, *behaviour, "{name}");
        }
    }

    #[test]
    fn every_client_behaviour_has_a_byzc_scenario_with_one_byzantine_client_expecting_pass() {
        for info in workloads::byzc::CATALOGUE {
            let name = format!("byzc-{}", info.name);
            let s = load(&name)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .scenario;
            assert_eq!(s.expect, Expectation::Pass, "{name}");
            assert_eq!(s.clients.len(), 1, "{name}");
            assert!(
                s.clients.values().all(|c| c.behaviour == info.name),
                "{name}"
            );
            assert!(s.replicas.is_empty(), "{name}: the replicas are honest");
        }
    }

    #[test]
    fn negative_controls_have_more_than_f_faulty_replicas_and_expect_a_violation() {
        for b in BUILTINS.iter().filter(|b| b.name.starts_with("neg-")) {
            let s = load(b.name).expect("built-in").scenario;
            assert_eq!(s.expect, Expectation::Violation, "{}", b.name);
            let faulty = s
                .replicas
                .values()
                .filter(|r| r.build != Build::Honest)
                .count();
            assert!(faulty > s.cluster.f, "{}", b.name);
        }
    }
}
