//! Byzantine clients: clients that break the protocol's rules on purpose. PBFT admits any
//! number of faulty clients; these behaviours check that the honest clients' service goes on
//! and that the replicas' exactly-once reply cache, frame cap and per-client queues hold.
//!
//! * `replay-timestamps`: re-sends requests that were already executed, old requests, requests
//!   that reuse an executed timestamp with another operation, requests below the latest
//!   timestamp and requests sent out of timestamp order, to every replica;
//! * `max-size-requests`: requests whose frame is just under, exactly at and just over the
//!   replicas' frame cap;
//! * `flood`: fresh requests (each with a new timestamp) as fast as the connections take
//!   them, or at a set rate, to the primary and to every replica, never waiting for a reply;
//! * `never-read`: requests whose replies are large, on connections it never reads, so that
//!   every buffer between the replicas and it fills up;
//! * `mac-attack` (Aardvark's "MAC attack", under `auth: macs`): requests to the primary,
//!   validly signed (or not, on demand), whose authenticator is valid for the primary and
//!   spoiled for a seeded choice of backups.
//!
//! A behaviour is a sans-IO [`Attack`]: from its [`Spec`], the client's key and a seed it
//! produces the frames to send and when, and nothing else; [`net::run`] sends them over TCP (a
//! real run) and the harness's simulated clients inject them into the simulator. Each
//! operation touches only the client's own keys (`byzc-<id>-...`) or reads, so the honest
//! clients' history stays judgeable. Nothing of a Byzantine client enters that history.

mod attack;
pub mod net;
mod report;
mod sizes;

pub use attack::{Attack, AttackConfig, Outgoing, Target};
pub use report::{SendClass, Tally};
pub use sizes::{request_payload_len, request_with_payload};

use replica::auth::AuthMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// What a Byzantine client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    ReplayTimestamps,
    MaxSizeRequests,
    Flood,
    NeverRead,
    MacAttack,
}

/// One parameter a behaviour takes.
pub struct ParamInfo {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// One behaviour of the catalogue.
pub struct BehaviourInfo {
    pub behaviour: Behaviour,
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamInfo],
}

/// Every Byzantine client behaviour, with its parameters and their defaults.
pub const CATALOGUE: &[BehaviourInfo] = &[
    BehaviourInfo {
        behaviour: Behaviour::ReplayTimestamps,
        name: "replay-timestamps",
        summary: "re-sends executed and old requests, reuses executed timestamps with other \
                  operations, sends lower and out-of-order timestamps, to every replica",
        params: &[
            ParamInfo {
                name: "interval_ms",
                default: "20",
                help: "one fresh request per interval",
            },
            ParamInfo {
                name: "replays",
                default: "3",
                help: "replayed or reused-timestamp requests after each fresh one",
            },
            ParamInfo {
                name: "depth",
                default: "32",
                help: "how many earlier requests a replay may reach back",
            },
        ],
    },
    BehaviourInfo {
        behaviour: Behaviour::MaxSizeRequests,
        name: "max-size-requests",
        summary: "requests whose frame is just under, exactly at and just over the frame cap",
        params: &[
            ParamInfo {
                name: "interval_ms",
                default: "1000",
                help: "one round of sizes per interval",
            },
            ParamInfo {
                name: "sizes",
                default: "under,at,over",
                help: "which sizes a round sends, in order: under, at, over",
            },
        ],
    },
    BehaviourInfo {
        behaviour: Behaviour::Flood,
        name: "flood",
        summary: "fresh requests as fast as the connections take them (or at `rate`), to the \
                  primary and to every replica, never waiting for a reply",
        params: &[
            ParamInfo {
                name: "rate",
                default: "max",
                help: "requests per second, or `max`",
            },
            ParamInfo {
                name: "targets",
                default: "mixed",
                help: "primary, all, or mixed (a seeded choice per request)",
            },
        ],
    },
    BehaviourInfo {
        behaviour: Behaviour::NeverRead,
        name: "never-read",
        summary: "asks for large replies on connections it never reads",
        params: &[
            ParamInfo {
                name: "rate",
                default: "200",
                help: "requests per second",
            },
            ParamInfo {
                name: "value_bytes",
                default: "16384",
                help: "size of the value every read returns",
            },
        ],
    },
    BehaviourInfo {
        behaviour: Behaviour::MacAttack,
        name: "mac-attack",
        summary: "requests to the primary, signed, whose authenticator (auth: macs) is valid \
                  for the primary and spoiled for a seeded choice of backups (Aardvark)",
        params: &[
            ParamInfo {
                name: "rate",
                default: "200",
                help: "requests per second",
            },
            ParamInfo {
                name: "spoil",
                default: "all",
                help: "how many backups' MAC entries each request spoils (a seeded choice), \
                       or `all` (every replica but the primary of the view)",
            },
            ParamInfo {
                name: "signature",
                default: "valid",
                help: "valid, or invalid (the primary must refuse every request)",
            },
        ],
    },
];

impl Behaviour {
    pub fn info(self) -> &'static BehaviourInfo {
        CATALOGUE
            .iter()
            .find(|b| b.behaviour == self)
            .unwrap_or(&CATALOGUE[0])
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A size relative to the frame cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizeClass {
    /// A payload a seeded 1 to 4096 bytes under the cap: accepted by the frame layer.
    Under,
    /// A payload of exactly the cap: the largest frame a replica reads.
    At,
    /// A payload a seeded 1 to 1024 bytes over the cap: refused (`oversized-frame`).
    Over,
}

/// How fast a flood goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// As fast as the connections take frames (the simulator: one per `unpaced_gap`).
    Max,
    PerSecond(f64),
}

/// Where a flood's requests go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    Primary,
    All,
    /// A seeded choice per request.
    Mixed,
}

/// Which backups' MAC entries a `mac-attack` request spoils.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spoil {
    /// Every replica but the primary of the current view.
    All,
    /// A seeded choice of this many backups per request (at most every backup).
    Backups(usize),
}

/// A behaviour with its parameters, checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    ReplayTimestamps {
        interval: Duration,
        replays: u32,
        depth: usize,
    },
    MaxSizeRequests {
        interval: Duration,
        sizes: Vec<SizeClass>,
    },
    Flood {
        rate: Rate,
        targets: Targets,
    },
    NeverRead {
        rate: f64,
        value_bytes: usize,
    },
    MacAttack {
        rate: f64,
        spoil: Spoil,
        /// Whether the request's signature verifies (`signature: valid`).
        valid_signature: bool,
    },
}

impl Spec {
    pub fn behaviour(&self) -> Behaviour {
        match self {
            Spec::ReplayTimestamps { .. } => Behaviour::ReplayTimestamps,
            Spec::MaxSizeRequests { .. } => Behaviour::MaxSizeRequests,
            Spec::Flood { .. } => Behaviour::Flood,
            Spec::NeverRead { .. } => Behaviour::NeverRead,
            Spec::MacAttack { .. } => Behaviour::MacAttack,
        }
    }

    /// Whether the behaviour works only in a cluster of that authentication mode:
    /// `mac-attack` spoils authenticators, which a cluster under `signatures` has none of.
    pub fn needs_auth(&self) -> Option<AuthMode> {
        matches!(self, Spec::MacAttack { .. }).then_some(AuthMode::Macs)
    }

    /// Whether the client reads its replies (to learn the view, and to count them).
    pub fn reads_replies(&self) -> bool {
        !matches!(self, Spec::NeverRead { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SpecError {
    #[error("unknown Byzantine client behaviour `{name}`{} (known: {known})", did_you_mean(.closest))]
    UnknownBehaviour {
        name: String,
        known: String,
        closest: Option<&'static str>,
    },
    #[error(
        "behaviour `{behaviour}` has no parameter `{param}`{} (it takes: {allowed})",
        did_you_mean(.closest)
    )]
    UnknownParam {
        behaviour: &'static str,
        param: String,
        allowed: String,
        closest: Option<&'static str>,
    },
    #[error("behaviour `{behaviour}`, parameter `{param}={value}`: {reason}")]
    BadParam {
        behaviour: &'static str,
        param: &'static str,
        value: String,
        reason: String,
    },
}

impl SpecError {
    /// The parameter the error is about, if it is about one.
    pub fn param(&self) -> Option<&str> {
        match self {
            SpecError::UnknownParam { param, .. } => Some(param),
            SpecError::BadParam { param, .. } => Some(param),
            SpecError::UnknownBehaviour { .. } => None,
        }
    }
}

fn did_you_mean(closest: &Option<&'static str>) -> String {
    closest.map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

/// Checks a behaviour's name and parameters (as a scenario gives them) and resolves the
/// defaults.
pub fn validate(name: &str, params: &BTreeMap<String, String>) -> Result<Spec, SpecError> {
    let Some(info) = CATALOGUE.iter().find(|b| b.name == name) else {
        return Err(SpecError::UnknownBehaviour {
            name: name.to_string(),
            known: CATALOGUE
                .iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
                .join(", "),
            closest: byzantine::closest(name, CATALOGUE.iter().map(|b| b.name)),
        });
    };
    if let Some(param) = params
        .keys()
        .find(|k| !info.params.iter().any(|p| p.name == k.as_str()))
    {
        return Err(SpecError::UnknownParam {
            behaviour: info.name,
            param: param.clone(),
            allowed: info
                .params
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
            closest: byzantine::closest(param, info.params.iter().map(|p| p.name)),
        });
    }
    let p = Params { info, map: params };
    Ok(match info.behaviour {
        Behaviour::ReplayTimestamps => Spec::ReplayTimestamps {
            interval: Duration::from_millis(p.whole("interval_ms", 1, 60_000)?),
            replays: p.whole("replays", 0, 64)? as u32,
            depth: p.whole("depth", 1, 4096)? as usize,
        },
        Behaviour::MaxSizeRequests => Spec::MaxSizeRequests {
            interval: Duration::from_millis(p.whole("interval_ms", 10, 600_000)?),
            sizes: p.sizes("sizes")?,
        },
        Behaviour::Flood => Spec::Flood {
            rate: match p.text("rate").trim() {
                "max" => Rate::Max,
                _ => Rate::PerSecond(p.rate("rate")?),
            },
            targets: match p.text("targets").trim() {
                "primary" => Targets::Primary,
                "all" => Targets::All,
                "mixed" => Targets::Mixed,
                _ => return Err(p.bad("targets", "expected primary, all or mixed")),
            },
        },
        Behaviour::NeverRead => Spec::NeverRead {
            rate: p.rate("rate")?,
            value_bytes: p.whole("value_bytes", 1, 1 << 20)? as usize,
        },
        Behaviour::MacAttack => Spec::MacAttack {
            rate: p.rate("rate")?,
            spoil: match p.text("spoil").trim() {
                "all" => Spoil::All,
                _ => Spoil::Backups(p.whole("spoil", 1, MAX_SPOIL)? as usize),
            },
            valid_signature: match p.text("signature").trim() {
                "valid" => true,
                "invalid" => false,
                _ => return Err(p.bad("signature", "expected valid or invalid")),
            },
        },
    })
}

/// The most backups `spoil` may name here; a scenario checks it against its own cluster.
pub const MAX_SPOIL: u64 = 99;

struct Params<'a> {
    info: &'static BehaviourInfo,
    map: &'a BTreeMap<String, String>,
}

impl Params<'_> {
    fn param(&self, name: &str) -> &'static ParamInfo {
        self.info
            .params
            .iter()
            .find(|p| p.name == name)
            .unwrap_or(&self.info.params[0])
    }

    /// The given value, or the default.
    fn text(&self, name: &str) -> &str {
        self.map
            .get(name)
            .map_or(self.param(name).default, String::as_str)
    }

    fn bad(&self, name: &str, reason: impl Into<String>) -> SpecError {
        SpecError::BadParam {
            behaviour: self.info.name,
            param: self.param(name).name,
            value: self.text(name).to_string(),
            reason: reason.into(),
        }
    }

    fn whole(&self, name: &str, min: u64, max: u64) -> Result<u64, SpecError> {
        let value = self
            .text(name)
            .trim()
            .parse::<u64>()
            .map_err(|_| self.bad(name, "expected a whole number"))?;
        if !(min..=max).contains(&value) {
            return Err(self.bad(name, format!("must be within {min}..={max}")));
        }
        Ok(value)
    }

    fn rate(&self, name: &str) -> Result<f64, SpecError> {
        let value = self
            .text(name)
            .trim()
            .parse::<f64>()
            .map_err(|_| self.bad(name, "expected a number of requests per second"))?;
        if !(value > 0.0 && value <= 1_000_000.0) {
            return Err(self.bad(name, "must be above 0 and at most 1000000 per second"));
        }
        Ok(value)
    }

    fn sizes(&self, name: &str) -> Result<Vec<SizeClass>, SpecError> {
        let sizes = self
            .text(name)
            .split(',')
            .map(|s| match s.trim() {
                "under" => Ok(SizeClass::Under),
                "at" => Ok(SizeClass::At),
                "over" => Ok(SizeClass::Over),
                other => Err(self.bad(
                    name,
                    format!("`{other}` is not a size: write under, at or over"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sizes.is_empty() {
            return Err(self.bad(name, "name at least one size"));
        }
        Ok(sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_resolve_for_every_behaviour() {
        for info in CATALOGUE {
            let spec = validate(info.name, &BTreeMap::new()).expect(info.name);
            assert_eq!(spec.behaviour(), info.behaviour);
            assert_eq!(info.behaviour.name(), info.name);
        }
    }

    #[test]
    fn misspelt_names_and_bad_values_are_refused_with_a_suggestion() {
        let error = validate("flod", &BTreeMap::new()).expect_err("typo");
        assert!(
            error.to_string().contains("did you mean `flood`"),
            "{error}"
        );
        let error = validate("flood", &params(&[("rat", "5")])).expect_err("typo");
        assert!(error.to_string().contains("did you mean `rate`"), "{error}");
        assert_eq!(error.param(), Some("rat"));
        let error = validate("flood", &params(&[("rate", "fast")])).expect_err("bad");
        assert_eq!(error.param(), Some("rate"));
        let error =
            validate("max-size-requests", &params(&[("sizes", "at,huge")])).expect_err("bad size");
        assert!(
            error.to_string().contains("`huge` is not a size"),
            "{error}"
        );
        let error = validate("mac-attack", &params(&[("spoil", "some")])).expect_err("bad");
        assert_eq!(error.param(), Some("spoil"));
        let error = validate("mac-attack", &params(&[("signature", "forged")])).expect_err("bad");
        assert!(error.to_string().contains("valid or invalid"), "{error}");
        assert_eq!(
            validate(
                "mac-attack",
                &params(&[("spoil", "2"), ("signature", "invalid")])
            ),
            Ok(Spec::MacAttack {
                rate: 200.0,
                spoil: Spoil::Backups(2),
                valid_signature: false,
            })
        );
        assert_eq!(
            validate("flood", &params(&[("rate", "250"), ("targets", "all")])),
            Ok(Spec::Flood {
                rate: Rate::PerSecond(250.0),
                targets: Targets::All
            })
        );
    }
}
