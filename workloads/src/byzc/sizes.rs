//! Requests of an exact frame size: a read of a long key nobody writes, so executing one
//! changes nothing but the reply cache.

use replica::ids::{ClientId, Timestamp};
use replica::kv::Operation;
use replica::message::{Request, Signed, WireMessage};
use replica::wire::encode_payload;

/// The length of the payload (the frame without its length prefix) that carries `request`.
pub fn request_payload_len(request: &Signed<Request>) -> usize {
    encode_payload(&WireMessage::Request(request.clone())).len()
}

/// postcard's varint length of `n`.
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

/// A request of `client` at `timestamp`, sealed by `seal` (signed, and under `auth: macs`
/// authenticated too), whose payload is exactly `payload` bytes: a `get` of a key that starts
/// with `prefix` (or, where no key length lands exactly there, a `cas` that cannot swap).
/// `None` when `payload` is smaller than the smallest such request.
pub fn request_with_payload(
    client: ClientId,
    seal: &dyn Fn(Request) -> Signed<Request>,
    timestamp: u64,
    payload: usize,
    prefix: &str,
) -> Option<Signed<Request>> {
    let signed = |op: Operation| {
        seal(Request {
            client,
            timestamp: Timestamp(timestamp),
            op,
        })
    };
    // A string is its varint length and its bytes: measure the rest once with a short key,
    // then solve for the key length. The op shapes differ in their fixed part, so one of them
    // lands on any length a single varint boundary makes unreachable for the other.
    let shapes: [fn(String) -> Operation; 2] = [
        |key| Operation::Get { key },
        |pad| Operation::Cas {
            key: String::new(),
            expected: Some(pad),
            new: String::new(),
        },
    ];
    for shape in shapes {
        let probe = signed(shape(prefix.to_string()));
        let fixed = request_payload_len(&probe) - prefix.len() - varint_len(prefix.len());
        let Some(room) = payload.checked_sub(fixed) else {
            continue;
        };
        let Some(length) = (1..=5)
            .filter_map(|v: usize| room.checked_sub(v))
            .find(|length| *length >= prefix.len() && room == length + varint_len(*length))
        else {
            continue;
        };
        let mut text = String::with_capacity(length);
        text.push_str(prefix);
        text.extend(std::iter::repeat_n('x', length - prefix.len()));
        let request = signed(shape(text));
        if request_payload_len(&request) == payload {
            return Some(request);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::ids::Principal;

    fn signed(client: ClientId, timestamp: u64, op: Operation) -> Signed<Request> {
        let key = replica::crypto::key_from_seed(1, Principal::Client(client));
        let body = Request {
            client,
            timestamp: Timestamp(timestamp),
            op,
        };
        Signed::sign(body, Principal::Client(client), &key)
    }

    #[test]
    fn varint_lengths_match_postcard() {
        // The payload grows by the string's bytes plus the growth of its varint length.
        let len_of = |n: usize| {
            let op = Operation::Get { key: "y".repeat(n) };
            request_payload_len(&signed(ClientId(0), 1, op))
        };
        let empty = len_of(0);
        for n in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
            assert_eq!(len_of(n) - empty - n + 1, varint_len(n), "{n}");
        }
    }

    #[test]
    fn every_payload_length_around_varint_boundaries_is_reachable() {
        let client = ClientId(2);
        let key = replica::crypto::key_from_seed(3, Principal::Client(client));
        let seal = |body: Request| Signed::sign(body, Principal::Client(client), &key);
        for payload in (100..400).chain(16_300..16_500) {
            let request = request_with_payload(client, &seal, 7, payload, "byzc-2-size-")
                .unwrap_or_else(|| panic!("no request of {payload} bytes"));
            assert_eq!(request_payload_len(&request), payload);
        }
    }
}
