//! `--param key=value` pairs, checked against what each behaviour accepts.

use crate::behaviour::Censored;
use crate::behaviours::equivocate_all::Targets;
use crate::behaviours::mutate::Scope;
use replica::ClientId;
use replica::message::MessageKind;
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BehaviourError {
    #[error("unknown behaviour `{name}`{} (known: {known})", did_you_mean(*.closest))]
    Unknown {
        name: String,
        known: String,
        /// The known name nearest to `name`, when one is near enough to be a typo of it.
        closest: Option<&'static str>,
    },
    #[error("`{name}` is not an in-process behaviour: {why}")]
    NotInProcess { name: String, why: &'static str },
    #[error(
        "behaviour `{behaviour}` has no parameter `{param}`{} (it takes: {allowed})",
        did_you_mean(*.closest)
    )]
    UnknownParam {
        behaviour: &'static str,
        param: String,
        allowed: String,
        /// The accepted parameter nearest to `param`, when one is near enough.
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

/// `; did you mean `x`?`, or nothing.
fn did_you_mean(closest: Option<&str>) -> String {
    closest.map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

/// How alike two names must be (Jaro-Winkler, 0 to 1) for one to be offered for the other.
const SIMILAR_ENOUGH: f64 = 0.8;

/// The candidate nearest to `word` (ignoring case, `_` and `-`), when it is near enough to be
/// a typo of it: the "did you mean" of every catalogue of behaviours.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let normal = |s: &str| s.to_lowercase().replace('_', "-");
    let word = normal(word);
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word, &normal(c)), c))
        .filter(|(score, _)| *score >= SIMILAR_ENOUGH)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

pub(crate) struct Params<'a> {
    behaviour: &'static str,
    map: &'a BTreeMap<String, String>,
}

impl<'a> Params<'a> {
    /// Refuses any key the behaviour does not take.
    pub(crate) fn new(
        behaviour: &'static str,
        map: &'a BTreeMap<String, String>,
        allowed: &[&'static str],
    ) -> Result<Params<'a>, BehaviourError> {
        if let Some(param) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(BehaviourError::UnknownParam {
                behaviour,
                param: param.clone(),
                allowed: if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                },
                closest: closest(param, allowed.iter().copied()),
            });
        }
        Ok(Params { behaviour, map })
    }

    fn bad(&self, param: &'static str, reason: impl Into<String>) -> BehaviourError {
        BehaviourError::BadParam {
            behaviour: self.behaviour,
            param,
            value: self.map.get(param).cloned().unwrap_or_default(),
            reason: reason.into(),
        }
    }

    pub(crate) fn string(&self, param: &'static str) -> Option<&'a str> {
        self.map.get(param).map(|v| v.as_str())
    }

    pub(crate) fn u64(&self, param: &'static str) -> Result<Option<u64>, BehaviourError> {
        self.string(param)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| self.bad(param, "expected a whole number"))
            })
            .transpose()
    }

    pub(crate) fn bool(&self, param: &'static str) -> Result<Option<bool>, BehaviourError> {
        self.string(param)
            .map(|v| match v.trim() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" => Ok(false),
                _ => Err(self.bad(param, "expected true or false")),
            })
            .transpose()
    }

    pub(crate) fn probability(&self, param: &'static str) -> Result<Option<f64>, BehaviourError> {
        self.string(param)
            .map(|v| match v.trim().parse::<f64>() {
                Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                _ => Err(self.bad(param, "expected a probability between 0 and 1")),
            })
            .transpose()
    }

    /// A comma-separated list of client ids, or `all`.
    pub(crate) fn clients(&self, param: &'static str) -> Result<Option<Censored>, BehaviourError> {
        let Some(list) = self.string(param).map(str::trim) else {
            return Ok(None);
        };
        if list == "all" {
            return Ok(Some(Censored::All));
        }
        list.split(',')
            .map(|id| {
                id.trim()
                    .parse::<u32>()
                    .map(ClientId)
                    .map_err(|_| self.bad(param, format!("`{id}` is not a client id")))
            })
            .collect::<Result<_, _>>()
            .map(|ids| Some(Censored::Only(ids)))
    }

    /// A comma-separated list of message kinds (`pre-prepare,commit`), in the order given.
    pub(crate) fn kinds(
        &self,
        param: &'static str,
    ) -> Result<Option<Vec<MessageKind>>, BehaviourError> {
        let Some(list) = self.string(param) else {
            return Ok(None);
        };
        list.split(',')
            .map(|name| {
                MessageKind::from_name(name.trim()).ok_or_else(|| {
                    let known: Vec<&str> = MessageKind::ALL.iter().map(|k| k.name()).collect();
                    self.bad(
                        param,
                        format!("`{name}` is not a message kind ({})", known.join(", ")),
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    pub(crate) fn scope(&self, param: &'static str) -> Result<Option<Scope>, BehaviourError> {
        self.string(param)
            .map(|v| match v.trim() {
                "small" => Ok(Scope::Small),
                "any" => Ok(Scope::Any),
                _ => Err(self.bad(param, "expected `small` or `any`")),
            })
            .transpose()
    }

    /// Which rounds an equivocator lies in: as `primary`, as `backup`, or `both`.
    pub(crate) fn targets(&self, param: &'static str) -> Result<Option<Targets>, BehaviourError> {
        self.string(param)
            .map(|v| match v.trim() {
                "both" => Ok(Targets::Both),
                "primary" => Ok(Targets::Primary),
                "backup" => Ok(Targets::Backup),
                _ => Err(self.bad(param, "expected `primary`, `backup` or `both`")),
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn closest_ignores_case_and_separators_and_offers_nothing_far_off() {
        let names = ["crash-later", "equivocate", "slow-primary", "after_ms"];
        assert_eq!(closest("equivocat", names), Some("equivocate"));
        assert_eq!(closest("SLOW_PRIMARY", names), Some("slow-primary"));
        assert_eq!(closest("after-ms", names), Some("after_ms"));
        assert_eq!(closest("after", names), Some("after_ms"));
        assert_eq!(closest("teleport", names), None);
        assert_eq!(closest("x", names), None);
        assert_eq!(closest("anything", []), None);
    }
}
