//! Shared tools of the behaviours: re-signing, splitting broadcasts, recognising own messages.

use ed25519_dalek::SigningKey;
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use replica::core::Effect;
use replica::digest::Digest;
use replica::ids::{Principal, ReplicaId};
use replica::message::{Request, Seal, Signable, Signed, WireMessage};
use replica::node::InterceptContext;
use std::collections::BTreeSet;
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

/// Seals a rewritten `body` as this replica, the way `like` (the original's seal) was sealed,
/// so the rewrite travels exactly as the honest message would: an authenticator stays an
/// authenticator (every replica's entry made afresh, so it still checks wherever it is
/// forwarded), a MAC is made for `to`, and a signature (or a cluster without session keys)
/// gets a fresh signature.
pub(crate) fn reseal<T: Signable + Clone>(
    body: T,
    like: &Seal,
    to: ReplicaId,
    ctx: &InterceptContext<'_>,
) -> Signed<T> {
    let sessions = ctx.keys.sessions().filter(|s| s.me() == me(ctx));
    match (like, sessions) {
        (Seal::Authenticator(_), Some(sessions)) => Signed::authenticate(body, sessions),
        (Seal::SignedAuthenticator { .. }, Some(sessions)) => {
            Signed::sign_and_authenticate(body, ctx.key, sessions)
        }
        // No key shared with `to` (not in the cluster): a signature convinces it anyway.
        (Seal::Mac(_), Some(sessions)) => {
            Signed::mac_for(body.clone(), sessions, Principal::Replica(to))
                .unwrap_or_else(|| sign_as(body, me(ctx), ctx.key))
        }
        _ => sign_as(body, me(ctx), ctx.key),
    }
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
        Suspect,
        ViewChange,
        NewView,
        FetchState,
        StateTransfer
    )
}

/// The seeded side of a split: a non-empty proper subset of `peers` (all of a lone peer).
pub(crate) fn deceived_part(
    mut peers: Vec<ReplicaId>,
    rng: &mut ChaCha8Rng,
) -> BTreeSet<ReplicaId> {
    peers.shuffle(rng);
    let count = match peers.len() {
        0 | 1 => peers.len(),
        n => rng.random_range(1..n),
    };
    peers.into_iter().take(count).collect()
}

/// Another batch for the same sequence number: the requests reordered, or one dropped (a lone
/// request leaves the null batch). Empty stays empty: there is nothing to change.
pub(crate) fn conflicting_batch(
    batch: &[Signed<Request>],
    rng: &mut ChaCha8Rng,
) -> Vec<Signed<Request>> {
    let mut batch = batch.to_vec();
    if batch.len() >= 2 && rng.random_bool(0.5) {
        let by = rng.random_range(1..batch.len());
        batch.rotate_left(by);
    } else if !batch.is_empty() {
        let drop = rng.random_range(0..batch.len());
        batch.remove(drop);
    }
    batch
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
