//! Shared tools of the behaviours: re-signing, splitting broadcasts, recognising own messages.

use ed25519_dalek::SigningKey;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::digest::Digest;
use replica::ids::{Principal, ReplicaId};
use replica::message::{Signed, WireMessage};
use replica::node::InterceptContext;
use std::time::Duration;

/// Carried out now, in order.
pub(crate) fn now(effect: Effect) -> (Duration, Effect) {
    (Duration::ZERO, effect)
}

pub(crate) fn pass(effect: Effect) -> Vec<(Duration, Effect)> {
    vec![now(effect)]
}

/// The faulty replica's own identity.
pub(crate) fn me(ctx: &InterceptContext<'_>) -> Principal {
    Principal::Replica(ctx.core.id())
}

/// Every other replica of the cluster.
pub(crate) fn peers(ctx: &InterceptContext<'_>) -> Vec<ReplicaId> {
    let me = ctx.core.id();
    ctx.config.replica_ids().filter(|r| *r != me).collect()
}

/// Whether an effect puts something on the wire (a peer message or a client reply).
pub(crate) fn transmits(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::Send { .. } | Effect::Broadcast(_) | Effect::Reply { .. }
    )
}

/// The message a `Send` or `Broadcast` carries.
pub(crate) fn message_of(effect: &Effect) -> Option<&WireMessage> {
    match effect {
        Effect::Send { message, .. } | Effect::Broadcast(message) => Some(message),
        _ => None,
    }
}

/// A `Send` or `Broadcast` as one `(recipient, message)` per peer; `None` for other effects.
pub(crate) fn per_recipient(
    effect: &Effect,
    ctx: &InterceptContext<'_>,
) -> Option<Vec<(ReplicaId, WireMessage)>> {
    match effect {
        Effect::Send { to, message } => Some(vec![(*to, message.clone())]),
        Effect::Broadcast(message) => Some(
            peers(ctx)
                .into_iter()
                .map(|to| (to, message.clone()))
                .collect(),
        ),
        _ => None,
    }
}

/// Signs `body` claiming `signer` with `key`: valid when `key` is the signer's own.
pub(crate) fn sign_as<T: replica::message::Signable>(
    body: T,
    signer: Principal,
    key: &SigningKey,
) -> Signed<T> {
    Signed::sign(body, signer, key)
}

/// Re-signs a message after its body was rewritten, claiming `signer`.
pub(crate) fn resign(message: WireMessage, signer: Principal, key: &SigningKey) -> WireMessage {
    macro_rules! again {
        ($($variant:ident),*) => {
            match message {
                $(WireMessage::$variant(m) => WireMessage::$variant(sign_as(m.body, signer, key)),)*
            }
        };
    }
    again!(
        Request,
        Reply,
        PrePrepare,
        Prepare,
        Commit,
        Checkpoint,
        ViewChange,
        NewView,
        FetchState,
        StateTransfer
    )
}

pub(crate) fn random_digest(rng: &mut ChaCha8Rng) -> Digest {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes[..]);
    Digest(bytes)
}

/// The same digest with one seeded bit flipped: a near miss, not noise.
pub(crate) fn near_digest(digest: Digest, rng: &mut ChaCha8Rng) -> Digest {
    let mut bytes = digest.0;
    let bit = rng.random_range(0..256usize);
    bytes[bit / 8] ^= 1 << (bit % 8);
    Digest(bytes)
}

/// Cap of the per-behaviour memories, so a long run cannot grow them without bound.
pub(crate) const MEMORY_CAP: usize = 1024;
