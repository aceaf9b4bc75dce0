//! What a Byzantine client sent, by kind, and what came back.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one request frame is, as the behaviour meant it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendClass {
    /// A request with a new, higher timestamp.
    Fresh,
    /// The latest fresh request again, byte for byte: answered from the reply cache.
    ReplayExecuted,
    /// An earlier request again, byte for byte: below the latest timestamp, never executed.
    ReplayOld,
    /// A new operation under the latest fresh request's timestamp: must not execute.
    DuplicateTimestamp,
    /// A new operation under an unused timestamp below the latest one: must not execute.
    OlderTimestamp,
    /// Sent right after a request with a higher timestamp.
    OutOfOrder,
    /// A frame a little under the cap.
    UnderCap,
    /// A frame of exactly the cap.
    AtCap,
    /// A frame a little over the cap: the replica refuses it and closes the connection.
    OverCap,
    /// A flood request to the primary only.
    FloodPrimary,
    /// A flood request to every replica.
    FloodAll,
    /// `never-read`: the large value its reads return.
    LargeValue,
    /// `never-read`: a read of the large value (a new one, or the cached one again).
    LargeRead,
    /// `mac-attack`: a validly signed request to the primary whose authenticator is spoiled
    /// for some backups.
    SpoiledMacs,
    /// `mac-attack` with `signature: invalid`: the same, but the signature does not verify
    /// either, so the primary must refuse it.
    BadSignature,
    /// `mac-attack` in a cluster under `signatures` (only through an `--auth` override: a
    /// scenario cannot ask for it): no authenticator to spoil, a validly signed request.
    SignedOnly,
}

impl SendClass {
    /// Over the frame cap: sent on a connection of its own, which the replica closes.
    pub fn over_cap(self) -> bool {
        self == SendClass::OverCap
    }

    /// The kebab-case name `byzantine-clients.json` uses.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    /// What a request of this class says about the whole attack, for the tally's readers.
    fn caveat(self) -> Option<&'static str> {
        (self == SendClass::SignedOnly).then_some(
            "mac-attack under auth: signatures (an --auth override): no authenticator to \
             spoil, every request was only signed; the MAC attack was not mounted",
        )
    }
}

/// Counters of one Byzantine client over its run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Requests the behaviour produced, by kind (one per request, whatever its recipients).
    pub requests: BTreeMap<SendClass, u64>,
    /// Frames written to a replica, by kind (one per recipient).
    pub frames: BTreeMap<SendClass, u64>,
    pub bytes: u64,
    /// Frames that could not be written (connection lost, or the run ended first).
    pub unsent: u64,
    /// Replies read (zero for a client that never reads).
    pub replies: u64,
    pub reply_bytes: u64,
    /// Connections opened, and those the replica (or the proxy in front of it) closed.
    pub connects: u64,
    pub closed_by_peer: u64,
    /// Set when what was sent is not the attack the behaviour names (see
    /// `SendClass::caveat`), so that a run which tested nothing does not read as if it had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

impl Tally {
    pub fn produced(&mut self, class: SendClass) {
        *self.requests.entry(class).or_default() += 1;
        if self.caveat.is_none() {
            self.caveat = class.caveat().map(String::from);
        }
    }

    pub fn wrote(&mut self, class: SendClass, bytes: usize) {
        *self.frames.entry(class).or_default() += 1;
        self.bytes += bytes as u64;
    }

    pub fn total_frames(&self) -> u64 {
        self.frames.values().sum()
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signed-only request marks the whole tally, so `byzantine-clients.json` says the MAC
    /// attack was not mounted; the attack's own classes leave no caveat.
    #[test]
    fn a_signed_only_request_leaves_a_caveat_in_the_tally() {
        let mut tally = Tally::default();
        tally.produced(SendClass::SpoiledMacs);
        assert_eq!(tally.caveat, None);
        let json = serde_json::to_string(&tally).expect("serializes");
        assert!(!json.contains("caveat"), "{json}");
        tally.produced(SendClass::SignedOnly);
        tally.produced(SendClass::SignedOnly);
        let json = serde_json::to_string(&tally).expect("serializes");
        assert!(
            json.contains("\"caveat\":\"mac-attack under auth: signatures"),
            "{json}"
        );
        assert_eq!(SendClass::SignedOnly.name(), "signed-only");
    }
}
