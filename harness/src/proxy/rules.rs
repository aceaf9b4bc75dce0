//! What the proxy can be told to do: rules that match messages on a link and an action.
//! These types are also the `network` section of a scenario file, so they deserialize from YAML.

use replica::message::MessageKind;
use replica::{ClientId, ReplicaId};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// A replica's process; for a twinned replica, its first twin (twin A).
    Replica(ReplicaId),
    Client(ClientId),
    /// The second process of a twinned replica (twin B): same id and key, its own address.
    Twin(ReplicaId),
}

/// A directed link: `from` dials `to` through the proxy. Each link has its own listening port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    pub from: Endpoint,
    pub to: ReplicaId,
    /// Where the proxy listens for `from`'s connection (written into `from`'s cluster file).
    pub listen: SocketAddr,
    /// The real address of `to` (for a twin, the address of the twin that this link reaches).
    pub target: SocketAddr,
}

/// Which way along a link a frame travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// From the dialer to the listener (replica→replica traffic, client requests).
    Forward,
    /// From the listener back to the dialer (replies to clients).
    Backward,
    #[default]
    Both,
}

/// Selects frames. Every field left out matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Matcher {
    pub from: Option<Vec<Endpoint>>,
    pub to: Option<Vec<ReplicaId>>,
    pub direction: Direction,
    /// Message kinds by name: `pre-prepare`, `prepare`, `commit`, ... (see `MessageKind`).
    #[serde(with = "kind_names")]
    pub kinds: Option<Vec<MessageKind>>,
    /// Inclusive range `[low, high]` of the message's view, for messages that carry one.
    pub views: Option<[u64; 2]>,
    /// Inclusive range `[low, high]` of the message's sequence number.
    pub seqs: Option<[u64; 2]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewriteMode {
    /// Change one protocol field (view, seq, digest, result) without re-signing.
    Field,
    /// Flip a few random bits of the payload.
    FlipBytes,
    /// Cut the frame short (the receiver sees a malformed frame).
    Truncate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    Delay {
        fixed_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    Drop {
        #[serde(default = "always")]
        probability: f64,
    },
    Duplicate {
        #[serde(default = "always")]
        probability: f64,
    },
    /// Hold frames and release them in a shuffled order, `window` at a time (or after `max_hold_ms`).
    Reorder {
        window: usize,
        #[serde(default = "default_hold")]
        max_hold_ms: u64,
    },
    Rewrite {
        mode: RewriteMode,
        #[serde(default = "always")]
        probability: f64,
    },
}

fn always() -> f64 {
    1.0
}
fn default_hold() -> u64 {
    50
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Names the rule in logs and lets the nemesis remove it again.
    pub id: String,
    #[serde(default, rename = "match")]
    pub matcher: Matcher,
    pub action: Action,
}

/// Message kinds in scenario files go by their report names (`pre-prepare`), which
/// `MessageKind`'s own serde form (`PrePrepare`) is not; both are accepted on reading.
mod kind_names {
    use replica::message::MessageKind;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(
        kinds: &Option<Vec<MessageKind>>,
        out: S,
    ) -> Result<S::Ok, S::Error> {
        match kinds {
            None => out.serialize_none(),
            Some(kinds) => out.collect_seq(kinds.iter().map(|k| k.name())),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        input: D,
    ) -> Result<Option<Vec<MessageKind>>, D::Error> {
        let Some(names) = Option::<Vec<String>>::deserialize(input)? else {
            return Ok(None);
        };
        names
            .iter()
            .map(|name| {
                MessageKind::from_name(name)
                    .or_else(|| {
                        MessageKind::ALL
                            .iter()
                            .copied()
                            .find(|k| format!("{k:?}") == *name)
                    })
                    .ok_or_else(|| {
                        let known: Vec<&str> = MessageKind::ALL.iter().map(|k| k.name()).collect();
                        D::Error::custom(format!(
                            "unknown message kind `{name}` (known: {})",
                            known.join(", ")
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_message_kinds_by_their_report_names() {
        let yaml = "id: slow\nmatch:\n  kinds: [pre-prepare, Commit]\n  seqs: [1, 5]\naction: !delay { fixed_ms: 10 }\n";
        let rule: Rule = serde_yaml::from_str(yaml).expect("rule parses");
        assert_eq!(
            rule.matcher.kinds,
            Some(vec![MessageKind::PrePrepare, MessageKind::Commit])
        );
        let again: Rule = serde_yaml::from_str(&serde_yaml::to_string(&rule).expect("encodes"))
            .expect("round trip");
        assert_eq!(again, rule);
        let unknown =
            serde_yaml::from_str::<Rule>("id: x\nmatch: { kinds: [prepared] }\naction: !drop {}\n");
        assert!(unknown.is_err_and(|e| e.to_string().contains("unknown message kind `prepared`")));
    }
}
