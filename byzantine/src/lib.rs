//! Byzantine replica behaviours.
//!
//! A behaviour is a [`replica::node::Interceptor`]: it sits between the honest core and the
//! network of one faulty replica and withholds, delays, duplicates, rewrites or invents what
//! that replica sends (and sees). The protocol code is never forked: the honest core stays the
//! single source of truth, and the attacker only owns the replica's key, which it uses to
//! re-sign what it rewrites (except `forge-sender`, which claims other identities).
//!
//! [`catalogue`] lists the behaviours. [`Behaviour::parse`] checks a name and its parameters
//! once, where a scenario is loaded; the typed [`Behaviour`] then travels through the plan to
//! the simulator, which [`build`]s it with a seed, and to the launcher, whose command line
//! [`Behaviour::args`] writes and `byzantine-replica` reads back with [`BehaviourArgs`].
//! Every random choice comes from that seed (ChaCha8), so a run reproduces.

mod behaviour;
mod behaviours;
mod command_line;
mod params;
mod rewrite;

pub use behaviour::{Behaviour, Censored, build};
pub use behaviours::equivocate_all::Targets;
pub use behaviours::mutate::Scope;
pub use command_line::BehaviourArgs;
pub use params::{BehaviourError, closest};

/// One entry of the catalogue, as `byzantine-replica --list` and `gauntlet list` show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BehaviourInfo {
    pub name: &'static str,
    /// One line: what the faulty replica does.
    pub summary: &'static str,
    /// Accepted `--param` keys with their defaults, or empty.
    pub params: &'static str,
    /// False for `twin`, which the harness builds from two honest processes.
    pub in_process: bool,
}

const CATALOGUE: &[BehaviourInfo] = &[
    BehaviourInfo {
        name: "silent",
        summary: "runs and reads everything, sends nothing",
        params: "",
        in_process: true,
    },
    BehaviourInfo {
        name: "crash-later",
        summary: "honest until after_ms after start, then silent",
        params: "after_ms=3000",
        in_process: true,
    },
    BehaviourInfo {
        name: "equivocate",
        summary: "as primary, sends conflicting PRE-PREPAREs for one sequence number: some backups get the real batch, the others a reordered or shrunk one, re-signed",
        params: "",
        in_process: true,
    },
    BehaviourInfo {
        name: "equivocate-all",
        summary: "as primary or backup, for every (view, seq) a seeded part of its peers gets the honest PRE-PREPARE/PREPARE/COMMIT and the rest a conflicting one (another batch, or the digest the other side holds), each correctly sealed; VIEW-CHANGEs split the same way",
        params: "targets=primary|backup|both (both), hold_ms=20",
        in_process: true,
    },
    BehaviourInfo {
        name: "wrong-reply",
        summary: "answers clients with fabricated results (gets answered early, before execution), signed with its own key",
        params: "value=forged, early=true",
        in_process: true,
    },
    BehaviourInfo {
        name: "censor",
        summary: "as primary, never orders requests from the chosen clients (forces a view change)",
        params: "clients=all (e.g. clients=0,2)",
        in_process: true,
    },
    BehaviourInfo {
        name: "slow-primary",
        summary: "as primary, delays every PRE-PREPARE to just under the backups' view-change timeout (Aardvark)",
        params: "delay_ms=0.9 x view_change_ms",
        in_process: true,
    },
    BehaviourInfo {
        name: "bad-view-change",
        summary: "VIEW-CHANGEs that omit prepared certificates or carry forged ones; as new primary, a NEW-VIEW that drops or reassigns prepared requests",
        params: "",
        in_process: true,
    },
    BehaviourInfo {
        name: "replay",
        summary: "re-sends old messages (its own and its peers', validly signed) from earlier views and sequence numbers",
        params: "burst=8 (messages per 50 ms tick)",
        in_process: true,
    },
    BehaviourInfo {
        name: "forge-sender",
        summary: "alongside its real traffic, sends messages and replies claiming another replica's (or a client's) identity",
        params: "",
        in_process: true,
    },
    BehaviourInfo {
        name: "flood",
        summary: "validly signed PREPAREs and COMMITs far outside the watermarks, at a high rate",
        params: "rate=2000 (messages per second)",
        in_process: true,
    },
    BehaviourInfo {
        name: "checkpoint-lie",
        summary: "CHECKPOINTs with wrong state digests and state-transfer answers with altered state or certificates, or a certificate it signed alone",
        params: "",
        in_process: true,
    },
    BehaviourInfo {
        name: "amnesia-probe",
        summary: "as primary, when a backup asks for state from below where it had voted (it restarted), sends it alone a conflicting, signed PRE-PREPARE for each of those sequence numbers: a backup that forgot its votes votes again, differently",
        params: "",
        in_process: true,
    },
    BehaviourInfo {
        name: "stale-view",
        summary: "alongside its real traffic, copies of its messages for old and future views",
        params: "",
        in_process: true,
    },
    BehaviourInfo {
        name: "mutate",
        summary: "ByzzFuzz-style seeded mutations of outgoing messages in chosen rounds: view +/-1, seq +/-1, digest, request operand, result +1, omission; scope=any sets random values",
        params: "kinds=pre-prepare,prepare,commit,checkpoint,view-change,new-view,reply, probability=0.2, scope=small|any",
        in_process: true,
    },
    BehaviourInfo {
        name: "twin",
        summary: "not in-process: the harness starts a second honest replica with the same id and key and partitions the twins (Twins)",
        params: "",
        in_process: false,
    },
];

/// Every behaviour, in a stable order.
pub fn catalogue() -> Vec<BehaviourInfo> {
    CATALOGUE.to_vec()
}
