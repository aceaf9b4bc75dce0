//! Rewriting frames in flight without the sender's key: honest receivers must reject them all.

use super::rules::RewriteMode;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use replica::Principal;
use replica::digest::Digest;
use replica::kv::{OpResult, Operation};
use replica::message::{Request, Signed, WireMessage};
use replica::wire::{LENGTH_PREFIX, encode_payload};

/// A rewritten frame (length prefix included) and what was changed, for the log.
pub struct Rewritten {
    pub frame: Vec<u8>,
    pub detail: String,
}

/// Rewrites one frame's `payload`. `decoded` is the payload as a message, if it decoded; a
/// field rewrite of a frame that did not decode flips bits instead.
pub fn rewrite(
    mode: RewriteMode,
    payload: &[u8],
    decoded: Option<&WireMessage>,
    rng: &mut ChaCha8Rng,
) -> Rewritten {
    match (mode, decoded) {
        (RewriteMode::Field, Some(message)) => {
            let mut message = message.clone();
            let detail = change_field(&mut message, rng);
            Rewritten {
                frame: framed(&encode_payload(&message)),
                detail,
            }
        }
        (RewriteMode::Field, None) => {
            let mut flipped = flip_bits(payload, rng);
            flipped.detail = format!("undecodable, so {}", flipped.detail);
            flipped
        }
        (RewriteMode::FlipBytes, _) => flip_bits(payload, rng),
        (RewriteMode::Truncate, _) => truncate(payload, rng),
    }
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(LENGTH_PREFIX + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn flip_bits(payload: &[u8], rng: &mut ChaCha8Rng) -> Rewritten {
    let mut bytes = payload.to_vec();
    let total_bits = bytes.len() * 8;
    let wanted = rng.random_range(1..=3usize).min(total_bits);
    let mut flipped: Vec<usize> = Vec::with_capacity(wanted);
    while flipped.len() < wanted {
        let bit = rng.random_range(0..total_bits);
        if !flipped.contains(&bit) {
            bytes[bit / 8] ^= 1 << (bit % 8);
            flipped.push(bit);
        }
    }
    flipped.sort_unstable();
    Rewritten {
        frame: framed(&bytes),
        detail: format!("flipped bits {flipped:?}"),
    }
}

/// Cuts the payload short and writes a length prefix that matches the cut, so the receiver
/// reads a complete frame that does not decode (any strict prefix of a postcard encoding ends
/// before the decoder does).
fn truncate(payload: &[u8], rng: &mut ChaCha8Rng) -> Rewritten {
    let kept = if payload.is_empty() {
        0
    } else {
        rng.random_range(0..payload.len())
    };
    Rewritten {
        frame: framed(&payload[..kept]),
        detail: format!("cut {} -> {kept} bytes", payload.len()),
    }
}

/// One step away from `value`, never wrapping around.
fn nudge(value: u64, rng: &mut ChaCha8Rng) -> u64 {
    if value == 0 || (value < u64::MAX && rng.random_bool(0.5)) {
        value + 1
    } else {
        value - 1
    }
}

fn nudge_field(name: &str, value: &mut u64, rng: &mut ChaCha8Rng) -> String {
    let before = *value;
    *value = nudge(before, rng);
    format!("{name} {before} -> {value}")
}

fn corrupt_digest(name: &str, digest: &mut Digest, rng: &mut ChaCha8Rng) -> String {
    let index = rng.random_range(0..digest.0.len());
    let mask = rng.random_range(1..=255u8);
    digest.0[index] ^= mask;
    format!("{name} byte {index} ^= {mask:#04x}")
}

fn corrupt_operand(request: &mut Signed<Request>) -> String {
    match &mut request.body.op {
        Operation::Put { value, .. }
        | Operation::Append { value, .. }
        | Operation::Cas { new: value, .. } => {
            value.push('~');
            format!(
                "operand of request {} now {value:?}",
                request.body.timestamp
            )
        }
        Operation::Get { key } => {
            key.push('~');
            format!("key of request {} now {key:?}", request.body.timestamp)
        }
    }
}

fn corrupt_result(result: &mut OpResult) -> String {
    let before = result.to_string();
    *result = match std::mem::replace(result, OpResult::Done) {
        OpResult::Done | OpResult::Value(None) => OpResult::Value(Some("forged".into())),
        OpResult::Value(Some(mut v)) => {
            v.push('~');
            OpResult::Value(Some(v))
        }
        OpResult::Swapped(b) => OpResult::Swapped(!b),
    };
    format!("result {before} -> {result}")
}

/// Changes one protocol field of `message`, chosen with `rng` among those its kind has,
/// leaving the signature as it was.
fn change_field(message: &mut WireMessage, rng: &mut ChaCha8Rng) -> String {
    match message {
        WireMessage::Request(m) => corrupt_operand(m),
        WireMessage::Reply(m) => {
            if rng.random_bool(0.5) {
                nudge_field("view", &mut m.body.view.0, rng)
            } else {
                corrupt_result(&mut m.body.result)
            }
        }
        WireMessage::PrePrepare(m) => {
            let choices = if m.body.batch.is_empty() { 3 } else { 4 };
            match rng.random_range(0..choices) {
                0 => nudge_field("view", &mut m.body.view.0, rng),
                1 => nudge_field("seq", &mut m.body.seq.0, rng),
                2 => corrupt_digest("digest", &mut m.body.digest, rng),
                _ => {
                    let index = rng.random_range(0..m.body.batch.len());
                    corrupt_operand(&mut m.body.batch[index])
                }
            }
        }
        WireMessage::Prepare(m) => match rng.random_range(0..3) {
            0 => nudge_field("view", &mut m.body.view.0, rng),
            1 => nudge_field("seq", &mut m.body.seq.0, rng),
            _ => corrupt_digest("digest", &mut m.body.digest, rng),
        },
        WireMessage::Commit(m) => match rng.random_range(0..3) {
            0 => nudge_field("view", &mut m.body.view.0, rng),
            1 => nudge_field("seq", &mut m.body.seq.0, rng),
            _ => corrupt_digest("digest", &mut m.body.digest, rng),
        },
        WireMessage::Checkpoint(m) => {
            if rng.random_bool(0.5) {
                nudge_field("seq", &mut m.body.seq.0, rng)
            } else {
                corrupt_digest("state digest", &mut m.body.state_digest, rng)
            }
        }
        WireMessage::ViewChange(m) => {
            if rng.random_bool(0.5) {
                nudge_field("new view", &mut m.body.new_view.0, rng)
            } else {
                nudge_field("stable seq", &mut m.body.stable_seq.0, rng)
            }
        }
        WireMessage::Suspect(m) => nudge_field("view", &mut m.body.view.0, rng),
        WireMessage::NewView(m) => nudge_field("view", &mut m.body.view.0, rng),
        WireMessage::FetchState(m) => nudge_field("have", &mut m.body.have.0, rng),
        // Nothing small to change in the body: claim another signer instead.
        WireMessage::StateTransfer(m) => {
            let before = m.signer;
            m.signer = match before {
                Principal::Replica(r) => Principal::Replica(replica::ReplicaId(r.0 ^ 1)),
                Principal::Client(c) => Principal::Client(replica::ClientId(c.0 ^ 1)),
            };
            format!("signer {before} -> {}", m.signer)
        }
    }
}
