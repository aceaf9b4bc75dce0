//! A record of the signatures this thread made, so a simulation need not check them again
//! with curve arithmetic.
//!
//! Ed25519 verification is a pure function of (public key, message bytes, signature), and a
//! signature made by `crypto::sign` with a key verifies under that key's public half. So when
//! the exact triple was signed here, the check's answer is known: "valid". Anything else (a
//! forged, rewritten or re-signed frame whose triple was never signed here) is checked in full
//! and refused for the same reason as in a real run. Off unless a simulation turns it on for
//! its thread; the node never does.

use crate::digest::Digest;
use std::cell::RefCell;
use std::collections::HashSet;

/// Entries kept before the ledger starts over (about 100 MB at most); after that, signatures
/// made earlier are simply checked in full again.
const MAX_ENTRIES: usize = 2_000_000;

thread_local! {
    static LEDGER: RefCell<Option<HashSet<Digest>>> = const { RefCell::new(None) };
}

/// Keeps the ledger on for this thread while it lives.
pub struct LedgerGuard(());

impl Drop for LedgerGuard {
    fn drop(&mut self) {
        LEDGER.with(|ledger| *ledger.borrow_mut() = None);
    }
}

/// Turns the ledger on for this thread (empty) until the guard is dropped.
pub fn enable() -> LedgerGuard {
    LEDGER.with(|ledger| *ledger.borrow_mut() = Some(HashSet::new()));
    LedgerGuard(())
}

fn entry(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Digest {
    Digest::of_parts([&public_key[..], signature, message])
}

/// Notes that `signature` over `message` was made with the key whose public half is
/// `public_key` (a no-op while the ledger is off).
pub(crate) fn record(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) {
    LEDGER.with(|ledger| {
        if let Some(signed) = ledger.borrow_mut().as_mut() {
            if signed.len() >= MAX_ENTRIES {
                signed.clear();
            }
            signed.insert(entry(public_key, message, signature));
        }
    });
}

/// Whether this exact triple was signed on this thread while the ledger was on.
pub(crate) fn signed_here(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    LEDGER.with(|ledger| {
        ledger
            .borrow()
            .as_ref()
            .is_some_and(|signed| signed.contains(&entry(public_key, message, signature)))
    })
}

/// Whether the ledger is on for this thread.
pub(crate) fn is_enabled() -> bool {
    LEDGER.with(|ledger| ledger.borrow().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{
        KeyStore, SignatureCheck, SignatureFailure, key_from_seed, sign, verify_all,
    };
    use crate::ids::{Principal, ReplicaId};

    fn keys() -> (ed25519_dalek::SigningKey, KeyStore) {
        let key = key_from_seed(1, Principal::Replica(ReplicaId(0)));
        let store = KeyStore::new(vec![key.verifying_key()], Default::default());
        (key, store)
    }

    fn check(bytes: &[u8], signature: [u8; 64]) -> SignatureCheck {
        SignatureCheck {
            bytes: bytes.to_vec(),
            signature,
            signer: Principal::Replica(ReplicaId(0)),
        }
    }

    #[test]
    fn a_signature_made_here_is_known_and_a_tampered_one_is_still_refused() {
        let (key, store) = keys();
        let _guard = enable();
        let signature = sign(&key, b"pre-prepare v1 n7");
        let public = key.verifying_key().to_bytes();
        assert!(signed_here(&public, b"pre-prepare v1 n7", &signature));
        assert!(verify_all(&store, &[check(b"pre-prepare v1 n7", signature)]).is_ok());
        assert!(!signed_here(&public, b"pre-prepare v1 n8", &signature));
        assert_eq!(
            verify_all(&store, &[check(b"pre-prepare v1 n8", signature)]),
            Err(SignatureFailure::BadSignature)
        );
        let mut flipped = signature;
        flipped[3] ^= 1;
        assert_eq!(
            verify_all(&store, &[check(b"pre-prepare v1 n7", flipped)]),
            Err(SignatureFailure::BadSignature)
        );
    }

    #[test]
    fn nothing_is_recorded_while_the_ledger_is_off_or_after_its_guard_is_dropped() {
        let (key, _) = keys();
        let public = key.verifying_key().to_bytes();
        let before = sign(&key, b"commit");
        {
            let _guard = enable();
            assert!(!signed_here(&public, b"commit", &before));
        }
        assert!(!is_enabled());
        let after = sign(&key, b"commit");
        assert!(!signed_here(&public, b"commit", &after));
    }
}
