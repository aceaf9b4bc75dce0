//! What handling messages costs in virtual time. A simulator where work is free explores a
//! different system: no batches form, no queue builds up, a timeout never races the work.

use crate::host::Transmit;
use std::time::Duration;

/// The virtual time one turn of a replica takes. While a replica is busy, what reaches it
/// queues and is handled together in its next turn, as the node batches the inputs that
/// queued while it worked; its messages leave when the turn is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CostModel {
    /// Fixed cost of a turn (decoding, the core's bookkeeping, the log write).
    pub turn: Duration,
    /// Checking one received message's signature (a MAC costs nothing beside a turn).
    pub verify: Duration,
    /// Making one signature: one per signed message sent, one per turn for all its signed
    /// replies (under `auth: macs`, COMMITs and replies carry MACs instead).
    pub sign: Duration,
}

impl CostModel {
    /// Work is free: every turn ends the instant it starts (the pinned-seed tests use this).
    pub const FREE: CostModel = CostModel {
        turn: Duration::ZERO,
        verify: Duration::ZERO,
        sign: Duration::ZERO,
    };

    /// What one replica's work costs, measured on the 2-core reference machine
    /// (`cargo bench -p replica --bench signatures`, and the node's turn profile): what the
    /// harness's simulated runs charge.
    pub const CALIBRATED: CostModel = CostModel {
        turn: Duration::from_micros(60),
        verify: Duration::from_micros(140),
        sign: Duration::from_micros(65),
    };

    pub fn is_free(&self) -> bool {
        *self == CostModel::FREE
    }

    /// Nanoseconds a turn takes that checked `verified` signed messages and sent `transmits`.
    pub(super) fn of_turn(&self, verified: u64, transmits: &[Transmit]) -> u64 {
        if self.is_free() {
            return 0;
        }
        let signed_messages = transmits
            .iter()
            .filter(|t| match t {
                Transmit::To { message, .. } | Transmit::Broadcast(message) => {
                    message.seal().signature().is_some()
                }
                Transmit::Reply { .. } => false,
            })
            .count() as u64;
        let reply_signature = u64::from(transmits.iter().any(
            |t| matches!(t, Transmit::Reply { reply, .. } if reply.seal.signature().is_some()),
        ));
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        ns(self.turn)
            .saturating_add(ns(self.verify).saturating_mul(verified))
            .saturating_add(ns(self.sign).saturating_mul(signed_messages + reply_signature))
    }
}
