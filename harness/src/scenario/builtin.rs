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
        name: "partition-halves",
        yaml: include_str!("../../scenarios/partition-halves.yaml"),
    },
    Builtin {
        name: "primary-crash",
        yaml: include_str!("../../scenarios/primary-crash.yaml"),
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
];

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
