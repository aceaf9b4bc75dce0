//! Attacks of a faulty primary on liveness: `censor` and `slow-primary`.

use crate::rewrite::{me, pass, sign_as};
use replica::core::{Effect, Input};
use replica::ids::ClientId;
use replica::message::{PrePrepare, WireMessage, batch_digest};
use replica::node::{InterceptContext, Interceptor};
use std::collections::BTreeSet;
use std::time::Duration;

/// While primary, never orders requests of the chosen clients (all clients when `None`).
/// Their requests never reach its core; should its core still propose one (it learnt of it as
/// a backup and became primary later), the request is cut from the PRE-PREPARE it sends.
pub(crate) struct Censor {
    clients: Option<BTreeSet<ClientId>>,
}

impl Censor {
    pub(crate) fn new(clients: Option<BTreeSet<ClientId>>) -> Censor {
        Censor { clients }
    }

    fn censored(&self, client: ClientId) -> bool {
        self.clients.as_ref().is_none_or(|c| c.contains(&client))
    }

    fn filter(&self, message: WireMessage, ctx: &InterceptContext<'_>) -> Option<WireMessage> {
        let WireMessage::PrePrepare(pp) = &message else {
            return Some(message);
        };
        if pp.signer != me(ctx) || !pp.body.batch.iter().any(|r| self.censored(r.client())) {
            return Some(message);
        }
        let batch: Vec<_> = pp
            .body
            .batch
            .iter()
            .filter(|r| !self.censored(r.client()))
            .cloned()
            .collect();
        if batch.is_empty() {
            return None;
        }
        let body = PrePrepare {
            digest: batch_digest(&batch),
            batch,
            ..pp.body.clone()
        };
        Some(WireMessage::PrePrepare(sign_as(body, me(ctx), ctx.key)))
    }
}

impl Interceptor for Censor {
    fn inbound(&mut self, input: Input, ctx: &InterceptContext<'_>) -> Vec<Input> {
        let in_charge = ctx.core.is_primary() && !ctx.core.in_view_change();
        match &input {
            Input::Message(verified) if in_charge => match verified.message() {
                WireMessage::Request(r) if self.censored(r.client()) => Vec::new(),
                _ => vec![input],
            },
            _ => vec![input],
        }
    }

    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match effect {
            Effect::Broadcast(message) => self
                .filter(message, ctx)
                .map(|m| pass(Effect::Broadcast(m)))
                .unwrap_or_default(),
            Effect::Send { to, message } => self
                .filter(message, ctx)
                .map(|message| pass(Effect::Send { to, message }))
                .unwrap_or_default(),
            other => pass(other),
        }
    }
}

/// Holds every PRE-PREPARE it proposes for `delay` (default: 90% of the view-change timeout),
/// so backups never quite lose patience while throughput collapses.
pub(crate) struct SlowPrimary {
    delay: Option<Duration>,
}

impl SlowPrimary {
    pub(crate) fn new(delay_ms: Option<u64>) -> SlowPrimary {
        SlowPrimary {
            delay: delay_ms.map(Duration::from_millis),
        }
    }
}

impl Interceptor for SlowPrimary {
    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let proposal = matches!(
            &effect,
            Effect::Send { message: WireMessage::PrePrepare(pp), .. }
                | Effect::Broadcast(WireMessage::PrePrepare(pp)) if pp.signer == me(ctx)
        );
        if !proposal {
            return pass(effect);
        }
        let delay = self.delay.unwrap_or_else(|| {
            Duration::from_millis(ctx.config.timeouts.view_change_ms.saturating_mul(9) / 10)
        });
        vec![(delay, effect)]
    }
}
