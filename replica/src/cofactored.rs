//! Cofactored ed25519 verification, for one signature or many at once with one verdict rule.
//!
//! Why not `ed25519_dalek::verify_batch`: it checks the cofactorless equation with random
//! weights, so a signature whose R carries a small-order component passes or fails depending on
//! the weights, that is, on which other signatures shared its batch. Replicas batch whatever
//! arrived together, so two honest replicas could then disagree on the same message. Here every
//! check, of one signature or of a thousand, is the cofactored equation
//! `[8]([s]B - R - [k]A) = 0`: a batch passes exactly when each signature would pass alone
//! (up to the 2^-128 chance that random weights hide a failure), whatever it was grouped with.
//! The weights come from a hash of every input, so they are deterministic and unknown to
//! whoever chose the signatures.
//!
//! Public keys are trusted to be valid and of large order (weak keys are refused when loaded).

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha512};

/// One signature to check.
pub struct Item<'a> {
    pub key: &'a VerifyingKey,
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

/// A signature's parts, decoded: `None` if R is not a curve point or s is not reduced.
struct Decoded {
    r: EdwardsPoint,
    s: Scalar,
    /// k = SHA-512(R || A || M) mod l
    k: Scalar,
    a: EdwardsPoint,
}

fn decode(item: &Item<'_>) -> Option<Decoded> {
    let r_bytes: [u8; 32] = item.signature[..32].try_into().ok()?;
    let s_bytes: [u8; 32] = item.signature[32..].try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(item.key.as_bytes());
    hash.update(item.message);
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    Some(Decoded {
        r,
        s,
        k,
        a: item.key.to_edwards(),
    })
}

/// Whether every signature verifies. An empty list verifies.
pub fn verify(items: &[Item<'_>]) -> bool {
    let Some(decoded) = items.iter().map(decode).collect::<Option<Vec<_>>>() else {
        return false;
    };
    match decoded.as_slice() {
        [] => true,
        [one] => {
            // [k](-A) + [s]B - R, with the basepoint table: as fast as a plain verification.
            let sb_minus_ka =
                EdwardsPoint::vartime_double_scalar_mul_basepoint(&one.k, &-one.a, &one.s);
            (sb_minus_ka - one.r).mul_by_cofactor().is_identity()
        }
        many => {
            let weights = weights(items, many);
            let b_coefficient: Scalar = many.iter().zip(&weights).map(|(d, z)| d.s * z).sum();
            let scalars = std::iter::once(b_coefficient)
                .chain(weights.iter().map(|z| -z))
                .chain(many.iter().zip(&weights).map(|(d, z)| -(d.k * z)));
            let points = std::iter::once(curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
                .chain(many.iter().map(|d| d.r))
                .chain(many.iter().map(|d| d.a));
            EdwardsPoint::vartime_multiscalar_mul(scalars, points)
                .mul_by_cofactor()
                .is_identity()
        }
    }
}

/// 128-bit weights from a hash of every signature, key and message digest in the batch.
fn weights(items: &[Item<'_>], decoded: &[Decoded]) -> Vec<Scalar> {
    let mut seed = Sha512::new();
    seed.update(b"gauntlet cofactored batch v1");
    for (item, d) in items.iter().zip(decoded) {
        seed.update(item.signature);
        seed.update(d.k.as_bytes());
    }
    let seed = seed.finalize();
    (0..decoded.len() as u64)
        .map(|i| {
            let mut hash = Sha512::new();
            hash.update(seed);
            hash.update(i.to_le_bytes());
            let mut weight = [0u8; 32];
            weight[..16].copy_from_slice(&hash.finalize()[..16]);
            Scalar::from_bytes_mod_order(weight)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn signed(i: u8, message: &[u8]) -> (VerifyingKey, Vec<u8>, [u8; 64]) {
        let k = key(i);
        (
            k.verifying_key(),
            message.to_vec(),
            k.sign(message).to_bytes(),
        )
    }

    fn items(signed: &[(VerifyingKey, Vec<u8>, [u8; 64])]) -> Vec<Item<'_>> {
        signed
            .iter()
            .map(|(key, message, signature)| Item {
                key,
                message,
                signature,
            })
            .collect()
    }

    #[test]
    fn honest_signatures_verify_alone_and_together() {
        let all: Vec<_> = (1..=9).map(|i| signed(i, &[i, 7, 7])).collect();
        for one in &all {
            assert!(verify(&items(std::slice::from_ref(one))));
            let (key, message, signature) = one;
            assert!(
                key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
                    .is_ok()
            );
        }
        assert!(verify(&items(&all)));
        assert!(verify(&[]));
    }

    #[test]
    fn one_bad_signature_fails_the_batch_and_itself() {
        let mut all: Vec<_> = (1..=9).map(|i| signed(i, &[i])).collect();
        all[4].1 = b"other message".to_vec();
        assert!(!verify(&items(&all)));
        assert!(!verify(&items(&all[4..5])));
        assert!(verify(&items(&all[5..])));
        let mut flipped = signed(3, b"m");
        flipped.2[40] ^= 1;
        assert!(!verify(&items(&[flipped])));
    }

    /// A signature whose R carries a small-order component: `verify_strict` refuses it, the
    /// cofactored equation accepts it, and it gets that one verdict in every batch, while
    /// `ed25519_dalek::verify_batch` (cofactorless, weighted) flips with its companions.
    #[test]
    fn a_torsioned_signature_gets_one_verdict_alone_and_in_every_batch() {
        let secret = Scalar::from_bytes_mod_order([42; 32]);
        let public = EdwardsPoint::mul_base(&secret);
        let key = VerifyingKey::from_bytes(&public.compress().to_bytes()).expect("a valid point");
        let message = b"torsion".to_vec();
        let nonce = Scalar::from_bytes_mod_order([9; 32]);
        let r = (EdwardsPoint::mul_base(&nonce) + EIGHT_TORSION[1]).compress();
        let mut hash = Sha512::new();
        hash.update(r.as_bytes());
        hash.update(key.as_bytes());
        hash.update(&message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let s = nonce + k * secret;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(r.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        let odd = (key, message, signature);

        let dalek_signature = ed25519_dalek::Signature::from_bytes(&signature);
        assert!(key.verify_strict(&odd.1, &dalek_signature).is_err());
        assert!(verify(&items(std::slice::from_ref(&odd))));
        let mut dalek_verdicts = std::collections::BTreeSet::new();
        for companion in 1..=40u8 {
            let batch = vec![odd.clone(), signed(companion, &[companion])];
            assert!(verify(&items(&batch)), "companion {companion}");
            let messages: Vec<&[u8]> = batch.iter().map(|b| b.1.as_slice()).collect();
            let signatures: Vec<_> = batch
                .iter()
                .map(|b| ed25519_dalek::Signature::from_bytes(&b.2))
                .collect();
            let keys: Vec<_> = batch.iter().map(|b| b.0).collect();
            dalek_verdicts
                .insert(ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok());
        }
        assert_eq!(
            dalek_verdicts.len(),
            2,
            "the grouping-dependent verdict this module avoids"
        );
    }
}
