//! `silent` and `crash-later`: a replica that stops talking (a crash it survives as a reader).

use crate::rewrite::{pass, transmits};
use replica::core::Effect;
use replica::node::{InterceptContext, Interceptor};
use std::time::Duration;

/// Keeps running its core (so it stays up to date) but never puts anything on the wire.
pub(crate) struct Silent;

impl Interceptor for Silent {
    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        if transmits(&effect) {
            Vec::new()
        } else {
            pass(effect)
        }
    }
}

/// Honest until `after` has passed since the replica started, then silent.
pub(crate) struct CrashLater {
    after: Duration,
}

impl CrashLater {
    pub(crate) fn new(after_ms: u64) -> CrashLater {
        CrashLater {
            after: Duration::from_millis(after_ms),
        }
    }
}

impl Interceptor for CrashLater {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        if ctx.elapsed >= self.after {
            Silent.outbound(effect, ctx)
        } else {
            pass(effect)
        }
    }
}
