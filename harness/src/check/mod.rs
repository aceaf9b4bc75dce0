//! Oracles that judge a run from its recorded files.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckOutcome {
    Pass,
    Violation,
    /// The checker could not decide (a timeout): never counted as a pass.
    Inconclusive,
    /// Not run (not asked for by the scenario).
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// `linearizability`, `agreement`, `state-agreement`, `no-amnesia`, `validity`,
    /// `integrity`, `liveness`, `window-liveness`, `view-stability`, `catch-up`,
    /// `bounded-resources`, `no-crash`, `budget`.
    pub name: String,
    pub outcome: CheckOutcome,
    /// One human sentence: what was checked and what was found.
    pub summary: String,
    /// Checker-specific details for the verdict and the report (the failing key and its
    /// operations, the conflicting sequence number and digests, ...).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// A time on the history's clock for a sentence: seconds with milliseconds.
pub(crate) fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

mod amnesia;
mod catch_up;
mod claims;
mod exits;
mod files;
mod linearizability;
mod liveness;
mod oracles;
mod resources;
mod starvation;
mod view_stability;
mod windows;

pub use amnesia::{NoAmnesiaOracle, no_amnesia};
pub use catch_up::{
    CatchUp, CatchUpDetails, Cause as CatchUpCause, NAME as CATCH_UP, catch_up, catch_up_bound,
};
pub use exits::{NAME as NO_CRASH, no_crash};
pub use files::{ReadError, parse_history, read_events, read_history};
pub use linearizability::{
    KeyHistory, KeyOutcome, KeyVerdict, LinearizabilityOptions, MalformedHistory, check_keys,
    histories_by_key, judge_keys, key_name, linearizability, summarize_keys,
};
pub use liveness::liveness;
pub use oracles::{
    AgreementOracle, StateAgreementOracle, agreement, integrity, state_agreement, validity,
    validity_with,
};
pub use resources::{
    BoundedResourcesOracle, Breach, NAME as BOUNDED_RESOURCES, Peaks, ResourceBounds, Sample,
    bounded_resources,
};
pub use starvation::{Starved, starved};
pub use view_stability::{
    NAME as VIEW_STABILITY, StableWindow, UncalledViewChange, ViewStabilityDetails, view_stability,
};
pub use windows::{
    NAME as WINDOW_LIVENESS, Stall, Window, WindowSpec, read_nemesis, stalls, window_liveness,
};
