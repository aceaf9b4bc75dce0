//! Byzantine replica behaviours.
//!
//! A behaviour is a [`replica::node::Interceptor`]: it sits between the honest core and the
//! network of one faulty replica and withholds, delays, duplicates, rewrites or invents what
//! that replica sends (and sees). The protocol code is never forked: the honest core stays the
//! single source of truth, and the attacker only owns the replica's key, which it uses to
//! re-sign what it rewrites (except `forge-sender`, which claims other identities).
//!
//! [`catalogue`] lists the behaviours; [`build`] makes one from its name, parameters and seed,
//! and [`validate`] checks a name and parameters exactly as `build` does, without building.
//! Every random choice comes from that seed (ChaCha8), so a run reproduces.

mod behaviours;
mod params;
mod rewrite;

pub use params::{BehaviourError, closest};

use behaviours::equivocate_all::Targets;
use behaviours::mutate::Scope;
use params::Params;
use replica::ClientId;
use replica::message::MessageKind;
use replica::node::Interceptor;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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

/// Checks that `name` is an in-process behaviour and that it accepts `params` (each key, and
/// each value as it will be parsed), without building it: what [`build`] refuses, this refuses
/// with the same error, so a scenario can be checked when it is loaded rather than when the
/// replica starts.
pub fn validate(name: &str, params: &BTreeMap<String, String>) -> Result<(), BehaviourError> {
    configure(name, params).map(drop)
}

/// Builds the behaviour `name` with its parameters; `seed` drives every random choice it makes.
pub fn build(
    name: &str,
    params: &BTreeMap<String, String>,
    seed: u64,
) -> Result<Box<dyn Interceptor>, BehaviourError> {
    use behaviours::*;
    Ok(match configure(name, params)? {
        Config::Silent => Box::new(silence::Silent),
        Config::CrashLater { after_ms } => Box::new(silence::CrashLater::new(after_ms)),
        Config::Equivocate => Box::new(equivocate::Equivocate::new(seed)),
        Config::EquivocateAll { targets, hold_ms } => Box::new(equivocate_all::EquivocateAll::new(
            seed,
            targets,
            Duration::from_millis(hold_ms),
        )),
        Config::WrongReply { value, early } => Box::new(replies::WrongReply::new(value, early)),
        Config::Censor { clients } => Box::new(primary::Censor::new(clients)),
        Config::SlowPrimary { delay_ms } => Box::new(primary::SlowPrimary::new(delay_ms)),
        Config::BadViewChange => Box::new(view_change::BadViewChange::new(seed)),
        Config::Replay { burst } => Box::new(noise::Replay::new(seed, burst)),
        Config::ForgeSender => Box::new(noise::ForgeSender::new(seed)),
        Config::Flood { rate } => Box::new(noise::Flood::new(seed, rate)),
        Config::CheckpointLie => Box::new(checkpoint::CheckpointLie::new(seed)),
        Config::StaleView => Box::new(noise::StaleView::new(seed)),
        Config::Mutate {
            kinds,
            probability,
            scope,
        } => Box::new(mutate::Mutate::new(seed, kinds, probability, scope)),
    })
}

/// A behaviour with its parameters checked and parsed: everything [`build`] needs but the seed.
enum Config {
    Silent,
    CrashLater {
        after_ms: u64,
    },
    Equivocate,
    EquivocateAll {
        targets: Targets,
        hold_ms: u64,
    },
    WrongReply {
        value: String,
        early: bool,
    },
    Censor {
        clients: Option<BTreeSet<ClientId>>,
    },
    SlowPrimary {
        delay_ms: Option<u64>,
    },
    BadViewChange,
    Replay {
        burst: u64,
    },
    ForgeSender,
    Flood {
        rate: u64,
    },
    CheckpointLie,
    StaleView,
    Mutate {
        kinds: BTreeSet<MessageKind>,
        probability: f64,
        scope: Scope,
    },
}

/// The one place that knows each behaviour's parameters, their defaults and how they parse.
fn configure(name: &str, params: &BTreeMap<String, String>) -> Result<Config, BehaviourError> {
    let Some(info) = CATALOGUE.iter().find(|b| b.name == name) else {
        return Err(BehaviourError::Unknown {
            name: name.to_string(),
            known: CATALOGUE
                .iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
                .join(", "),
            closest: params::closest(name, CATALOGUE.iter().map(|b| b.name)),
        });
    };
    let name = info.name;
    Ok(match name {
        "silent" => {
            Params::new(name, params, &[])?;
            Config::Silent
        }
        "crash-later" => {
            let p = Params::new(name, params, &["after_ms"])?;
            Config::CrashLater {
                after_ms: p.u64("after_ms")?.unwrap_or(3000),
            }
        }
        "equivocate" => {
            Params::new(name, params, &[])?;
            Config::Equivocate
        }
        "equivocate-all" => {
            let p = Params::new(name, params, &["targets", "hold_ms"])?;
            Config::EquivocateAll {
                targets: p.targets("targets")?,
                hold_ms: p.u64("hold_ms")?.unwrap_or(20),
            }
        }
        "wrong-reply" => {
            let p = Params::new(name, params, &["value", "early"])?;
            Config::WrongReply {
                value: p.string("value").unwrap_or("forged").to_string(),
                early: p.bool("early")?.unwrap_or(true),
            }
        }
        "censor" => {
            let p = Params::new(name, params, &["clients"])?;
            Config::Censor {
                clients: p.clients("clients")?,
            }
        }
        "slow-primary" => {
            let p = Params::new(name, params, &["delay_ms"])?;
            Config::SlowPrimary {
                delay_ms: p.u64("delay_ms")?,
            }
        }
        "bad-view-change" => {
            Params::new(name, params, &[])?;
            Config::BadViewChange
        }
        "replay" => {
            let p = Params::new(name, params, &["burst"])?;
            Config::Replay {
                burst: p.u64("burst")?.unwrap_or(8),
            }
        }
        "forge-sender" => {
            Params::new(name, params, &[])?;
            Config::ForgeSender
        }
        "flood" => {
            let p = Params::new(name, params, &["rate"])?;
            Config::Flood {
                rate: p.u64("rate")?.unwrap_or(2000),
            }
        }
        "checkpoint-lie" => {
            Params::new(name, params, &[])?;
            Config::CheckpointLie
        }
        "stale-view" => {
            Params::new(name, params, &[])?;
            Config::StaleView
        }
        "mutate" => {
            let p = Params::new(name, params, &["kinds", "probability", "scope"])?;
            Config::Mutate {
                kinds: p.kinds("kinds")?,
                probability: p.probability("probability")?.unwrap_or(0.2),
                scope: p.scope("scope")?,
            }
        }
        other => {
            return Err(BehaviourError::NotInProcess {
                name: other.to_string(),
                why: info.summary,
            });
        }
    })
}
