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
    Replica(ReplicaId),
    Client(ClientId),
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
