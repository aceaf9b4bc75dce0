//! [`Behaviour`]: one catalogued behaviour with its parameters parsed and checked, the value a
//! scenario, a plan, the launcher and the simulator all hold; [`build`] turns it into the
//! interceptor.

use crate::behaviours::equivocate_all::Targets;
use crate::behaviours::mutate::Scope;
use crate::params::{BehaviourError, Params, closest};
use crate::{BehaviourInfo, CATALOGUE};
use replica::ClientId;
use replica::message::MessageKind;
use replica::node::Interceptor;
use std::collections::BTreeMap;
use std::time::Duration;

/// `crash-later`: how long the replica is honest.
const CRASH_AFTER_MS: u64 = 3000;
/// `equivocate-all`: how long a conflicting message waits for its honest twin.
const HOLD_MS: u64 = 20;
/// `wrong-reply`: the fabricated result.
const WRONG_VALUE: &str = "forged";
/// `wrong-reply`: answer before executing.
const EARLY: bool = true;
/// `replay`: messages re-sent per 50 ms tick.
const REPLAY_BURST: u64 = 8;
/// `flood`: messages per second.
const FLOOD_RATE: u64 = 2000;
/// `mutate`: the chance that a message of a chosen round is mutated.
const MUTATE_PROBABILITY: f64 = 0.2;
/// `mutate`: the rounds it mutates, every protocol round a replica sends.
const MUTATE_KINDS: [MessageKind; 8] = [
    MessageKind::PrePrepare,
    MessageKind::Prepare,
    MessageKind::Commit,
    MessageKind::Checkpoint,
    MessageKind::Suspect,
    MessageKind::ViewChange,
    MessageKind::NewView,
    MessageKind::Reply,
];

/// A behaviour with its parameters checked and parsed: everything [`build`] needs but the
/// seed. A parameter left out is `None` and takes its default only when the behaviour is
/// built, so [`Behaviour::params`] gives back what the scenario said and `plan.json` keeps it.
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    Silent,
    CrashLater {
        after_ms: Option<u64>,
    },
    Equivocate,
    EquivocateAll {
        targets: Option<Targets>,
        hold_ms: Option<u64>,
    },
    WrongReply {
        value: Option<String>,
        early: Option<bool>,
    },
    Censor {
        clients: Option<Censored>,
    },
    /// `None` holds PRE-PREPAREs for 0.9 of the view-change timeout the replica runs with.
    SlowPrimary {
        delay_ms: Option<u64>,
    },
    BadViewChange,
    Replay {
        burst: Option<u64>,
    },
    ForgeSender,
    Flood {
        rate: Option<u64>,
    },
    CheckpointLie,
    AmnesiaProbe,
    StaleView,
    Mutate {
        /// In the order given (duplicates too), so the parameter reads back as written.
        kinds: Option<Vec<MessageKind>>,
        probability: Option<f64>,
        scope: Option<Scope>,
    },
}

/// The clients a censor never orders requests from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Censored {
    All,
    /// In the order given.
    Only(Vec<ClientId>),
}

impl Behaviour {
    /// The behaviour `name` with `params`, each key and value checked as the replica reads it.
    pub fn parse(
        name: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Behaviour, BehaviourError> {
        let info = catalogued(name)?;
        if let Some(plain) = without_params(info.name) {
            Params::new(info.name, params, &[])?;
            return Ok(plain);
        }
        with_params(info, params)
    }

    /// Its name in the catalogue.
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Silent => "silent",
            Behaviour::CrashLater { .. } => "crash-later",
            Behaviour::Equivocate => "equivocate",
            Behaviour::EquivocateAll { .. } => "equivocate-all",
            Behaviour::WrongReply { .. } => "wrong-reply",
            Behaviour::Censor { .. } => "censor",
            Behaviour::SlowPrimary { .. } => "slow-primary",
            Behaviour::BadViewChange => "bad-view-change",
            Behaviour::Replay { .. } => "replay",
            Behaviour::ForgeSender => "forge-sender",
            Behaviour::Flood { .. } => "flood",
            Behaviour::CheckpointLie => "checkpoint-lie",
            Behaviour::AmnesiaProbe => "amnesia-probe",
            Behaviour::StaleView => "stale-view",
            Behaviour::Mutate { .. } => "mutate",
        }
    }

    /// The parameters that were given, each in the form [`Behaviour::parse`] reads back to
    /// this same value.
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                params.insert(key.to_string(), value);
            }
        };
        match self {
            Behaviour::CrashLater { after_ms } => put("after_ms", after_ms.map(|v| v.to_string())),
            Behaviour::EquivocateAll { targets, hold_ms } => {
                put("targets", targets.map(|t| t.name().to_string()));
                put("hold_ms", hold_ms.map(|v| v.to_string()));
            }
            Behaviour::WrongReply { value, early } => {
                put("value", value.clone());
                put("early", early.map(|v| v.to_string()));
            }
            Behaviour::Censor { clients } => put("clients", clients.as_ref().map(Censored::text)),
            Behaviour::SlowPrimary { delay_ms } => put("delay_ms", delay_ms.map(|v| v.to_string())),
            Behaviour::Replay { burst } => put("burst", burst.map(|v| v.to_string())),
            Behaviour::Flood { rate } => put("rate", rate.map(|v| v.to_string())),
            Behaviour::Mutate {
                kinds,
                probability,
                scope,
            } => {
                put("kinds", kinds.as_ref().map(|k| kinds_text(k)));
                put("probability", probability.map(|p| p.to_string()));
                put("scope", scope.map(|s| s.name().to_string()));
            }
            Behaviour::Silent
            | Behaviour::Equivocate
            | Behaviour::BadViewChange
            | Behaviour::ForgeSender
            | Behaviour::CheckpointLie
            | Behaviour::AmnesiaProbe
            | Behaviour::StaleView => {}
        }
        params
    }
}

impl Censored {
    fn text(&self) -> String {
        match self {
            Censored::All => "all".to_string(),
            Censored::Only(ids) => ids
                .iter()
                .map(|id| id.0.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

fn kinds_text(kinds: &[MessageKind]) -> String {
    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

/// The catalogue entry of `name`, if it is an in-process behaviour.
fn catalogued(name: &str) -> Result<&'static BehaviourInfo, BehaviourError> {
    let names = || CATALOGUE.iter().map(|b| b.name);
    let Some(info) = CATALOGUE.iter().find(|b| b.name == name) else {
        return Err(BehaviourError::Unknown {
            name: name.to_string(),
            known: names().collect::<Vec<_>>().join(", "),
            closest: closest(name, names()),
        });
    };
    if !info.in_process {
        return Err(BehaviourError::NotInProcess {
            name: info.name.to_string(),
            why: info.summary,
        });
    }
    Ok(info)
}

/// The behaviours that take no parameter.
fn without_params(name: &str) -> Option<Behaviour> {
    Some(match name {
        "silent" => Behaviour::Silent,
        "equivocate" => Behaviour::Equivocate,
        "bad-view-change" => Behaviour::BadViewChange,
        "forge-sender" => Behaviour::ForgeSender,
        "checkpoint-lie" => Behaviour::CheckpointLie,
        "amnesia-probe" => Behaviour::AmnesiaProbe,
        "stale-view" => Behaviour::StaleView,
        _ => return None,
    })
}

/// The one place that knows which parameters each behaviour takes and how they parse.
fn with_params(
    info: &'static BehaviourInfo,
    params: &BTreeMap<String, String>,
) -> Result<Behaviour, BehaviourError> {
    let name = info.name;
    let accepting = |keys: &[&'static str]| Params::new(name, params, keys);
    Ok(match name {
        "crash-later" => Behaviour::CrashLater {
            after_ms: accepting(&["after_ms"])?.u64("after_ms")?,
        },
        "equivocate-all" => {
            let p = accepting(&["targets", "hold_ms"])?;
            Behaviour::EquivocateAll {
                targets: p.targets("targets")?,
                hold_ms: p.u64("hold_ms")?,
            }
        }
        "wrong-reply" => {
            let p = accepting(&["value", "early"])?;
            Behaviour::WrongReply {
                value: p.string("value").map(str::to_string),
                early: p.bool("early")?,
            }
        }
        "censor" => Behaviour::Censor {
            clients: accepting(&["clients"])?.clients("clients")?,
        },
        "slow-primary" => Behaviour::SlowPrimary {
            delay_ms: accepting(&["delay_ms"])?.u64("delay_ms")?,
        },
        "replay" => Behaviour::Replay {
            burst: accepting(&["burst"])?.u64("burst")?,
        },
        "flood" => Behaviour::Flood {
            rate: accepting(&["rate"])?.u64("rate")?,
        },
        "mutate" => {
            let p = accepting(&["kinds", "probability", "scope"])?;
            Behaviour::Mutate {
                kinds: p.kinds("kinds")?,
                probability: p.probability("probability")?,
                scope: p.scope("scope")?,
            }
        }
        // A catalogued in-process behaviour this function does not know is a bug here, but
        // refusing it is kinder than a panic.
        other => {
            return Err(BehaviourError::NotInProcess {
                name: other.to_string(),
                why: info.summary,
            });
        }
    })
}

/// Builds `behaviour`; `seed` drives every random choice it makes.
pub fn build(behaviour: &Behaviour, seed: u64) -> Box<dyn Interceptor> {
    use crate::behaviours::*;
    match behaviour {
        Behaviour::Silent => Box::new(silence::Silent),
        Behaviour::CrashLater { after_ms } => {
            Box::new(silence::CrashLater::new(after_ms.unwrap_or(CRASH_AFTER_MS)))
        }
        Behaviour::Equivocate => Box::new(equivocate::Equivocate::new(seed)),
        Behaviour::EquivocateAll { targets, hold_ms } => {
            Box::new(equivocate_all::EquivocateAll::new(
                seed,
                targets.unwrap_or(Targets::Both),
                Duration::from_millis(hold_ms.unwrap_or(HOLD_MS)),
            ))
        }
        Behaviour::WrongReply { value, early } => Box::new(replies::WrongReply::new(
            value.clone().unwrap_or_else(|| WRONG_VALUE.to_string()),
            early.unwrap_or(EARLY),
        )),
        Behaviour::Censor { clients } => Box::new(primary::Censor::new(match clients {
            None | Some(Censored::All) => None,
            Some(Censored::Only(ids)) => Some(ids.iter().copied().collect()),
        })),
        Behaviour::SlowPrimary { delay_ms } => Box::new(primary::SlowPrimary::new(*delay_ms)),
        Behaviour::BadViewChange => Box::new(view_change::BadViewChange::new(seed)),
        Behaviour::Replay { burst } => {
            Box::new(noise::Replay::new(seed, burst.unwrap_or(REPLAY_BURST)))
        }
        Behaviour::ForgeSender => Box::new(noise::ForgeSender::new(seed)),
        Behaviour::Flood { rate } => Box::new(noise::Flood::new(seed, rate.unwrap_or(FLOOD_RATE))),
        Behaviour::CheckpointLie => Box::new(checkpoint::CheckpointLie::new(seed)),
        Behaviour::AmnesiaProbe => Box::new(reproposal::AmnesiaProbe::new(seed)),
        Behaviour::StaleView => Box::new(noise::StaleView::new(seed)),
        Behaviour::Mutate {
            kinds,
            probability,
            scope,
        } => Box::new(mutate::Mutate::new(
            seed,
            kinds
                .as_deref()
                .unwrap_or(&MUTATE_KINDS)
                .iter()
                .copied()
                .collect(),
            probability.unwrap_or(MUTATE_PROBABILITY),
            scope.unwrap_or(Scope::Small),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalogue;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Every in-process behaviour, each with every parameter it takes set away from its
    /// default, in canonical form.
    pub(crate) fn examples() -> Vec<(&'static str, BTreeMap<String, String>)> {
        vec![
            ("silent", params(&[])),
            ("crash-later", params(&[("after_ms", "750")])),
            ("equivocate", params(&[])),
            (
                "equivocate-all",
                params(&[("targets", "backup"), ("hold_ms", "5")]),
            ),
            (
                "wrong-reply",
                params(&[("value", " lie = 2 "), ("early", "false")]),
            ),
            ("censor", params(&[("clients", "2,0,2")])),
            ("slow-primary", params(&[("delay_ms", "450")])),
            ("bad-view-change", params(&[])),
            ("replay", params(&[("burst", "3")])),
            ("forge-sender", params(&[])),
            ("flood", params(&[("rate", "1000")])),
            ("checkpoint-lie", params(&[])),
            ("amnesia-probe", params(&[])),
            ("stale-view", params(&[])),
            (
                "mutate",
                params(&[
                    ("kinds", "reply,pre-prepare"),
                    ("probability", "0.1"),
                    ("scope", "any"),
                ]),
            ),
        ]
    }

    #[test]
    fn the_examples_cover_every_in_process_behaviour() {
        let named: Vec<&str> = examples().iter().map(|(name, _)| *name).collect();
        let in_process: Vec<&str> = catalogue()
            .iter()
            .filter(|b| b.in_process)
            .map(|b| b.name)
            .collect();
        assert_eq!(named, in_process);
    }

    #[test]
    fn every_behaviour_gives_back_its_name_and_parameters_and_parses_from_them_again() {
        for (name, given) in examples() {
            let behaviour = Behaviour::parse(name, &given).expect("a valid example");
            assert_eq!(behaviour.name(), name);
            assert_eq!(behaviour.params(), given, "{name}");
            assert_eq!(
                Behaviour::parse(behaviour.name(), &behaviour.params()).as_ref(),
                Ok(&behaviour),
                "{name}"
            );
        }
    }

    #[test]
    fn a_parameter_left_out_stays_out_and_one_given_its_default_stays_in() {
        for info in catalogue().iter().filter(|b| b.in_process) {
            let behaviour = Behaviour::parse(info.name, &BTreeMap::new()).expect("defaults");
            assert!(behaviour.params().is_empty(), "{}", info.name);
        }
        let explicit = params(&[("after_ms", "3000")]);
        let behaviour = Behaviour::parse("crash-later", &explicit).expect("valid");
        assert_eq!(behaviour.params(), explicit);
        let all = params(&[("clients", "all")]);
        assert_eq!(
            Behaviour::parse("censor", &all).map(|b| b.params()),
            Ok(all)
        );
    }

    #[test]
    fn values_read_back_in_canonical_form() {
        let cases = [
            ("crash-later", "after_ms", " 0042 ", "42"),
            ("wrong-reply", "early", "yes", "true"),
            ("censor", "clients", "0, 2", "0,2"),
            ("mutate", "probability", "1e-1", "0.1"),
            ("mutate", "kinds", " commit , prepare", "commit,prepare"),
            ("equivocate-all", "targets", " primary", "primary"),
        ];
        for (name, key, written, canonical) in cases {
            let behaviour = Behaviour::parse(name, &params(&[(key, written)])).expect("valid");
            assert_eq!(behaviour.params()[key], canonical, "{name} {key}={written}");
            let again = Behaviour::parse(name, &behaviour.params()).expect("canonical parses");
            assert_eq!(again, behaviour);
        }
    }
}
