//! The behaviours, grouped by what they attack.

pub(crate) mod checkpoint;
pub(crate) mod equivocate;
pub(crate) mod equivocate_all;
pub(crate) mod mutate;
pub(crate) mod noise;
pub(crate) mod primary;
pub(crate) mod replies;
pub(crate) mod reproposal;
pub(crate) mod silence;
pub(crate) mod view_change;
