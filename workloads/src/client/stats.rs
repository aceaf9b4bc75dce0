//! Counters of what a client sent, received and refused.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! client_stats {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// Live counters, shared by the request loop and the link tasks.
        #[derive(Debug, Default)]
        pub struct StatCounters { $(pub $field: AtomicU64),* }

        /// A snapshot of a client's counters.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct ClientStats { $($(#[$doc])* pub $field: u64),* }

        impl StatCounters {
            pub fn snapshot(&self) -> ClientStats {
                ClientStats { $($field: self.$field.load(Ordering::Relaxed)),* }
            }
        }
    };
}

client_stats! {
    /// Requests submitted (a resubmission of the same request counts again).
    requests,
    /// Requests that completed with f+1 matching replies.
    completed,
    /// Requests that gave up at their deadline (outcome unknown).
    timeouts,
    /// Rounds in which the request was re-sent to every replica.
    broadcasts,
    /// Frames not queued because a replica's send queue was full.
    sends_dropped,
    /// Connections established (the first one to each replica included).
    connects,
    /// Replies counted towards a decision after their signature verified.
    replies_verified,
    /// Replies whose signature did not verify.
    replies_bad_signature,
    /// Replies signed by a replica other than the one on the connection.
    replies_wrong_signer,
    /// Replies for another client or for a request no longer awaited.
    stale_replies,
    /// Replies repeating a replica's vote, or beyond the per-request cap.
    redundant_replies,
    /// Frames that did not split or decode (the connection was dropped).
    malformed_frames,
    /// Well-formed messages that are not replies.
    unexpected_messages,
}
