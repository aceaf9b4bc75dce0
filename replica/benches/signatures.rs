//! Cost per signature of the checks replicas and clients make, against ed25519-dalek's own.
//!
//! `cargo bench -p replica --bench signatures` prints microseconds per signature for a single
//! check and for batches of 2 to 64, for `replica::cofactored` and for ed25519-dalek's
//! `verify` / `verify_batch` (the baseline), plus the cost of one signature.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use replica::cofactored::{self, Item};
use std::hint::black_box;
use std::time::{Duration, Instant};

const MEASURE: Duration = Duration::from_millis(400);

/// Microseconds per call of `f`, each call covering `per_call` signatures.
fn per_signature(per_call: usize, mut f: impl FnMut() -> bool) -> f64 {
    for _ in 0..8 {
        assert!(f());
    }
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < MEASURE {
        assert!(black_box(f()));
        calls += 1;
    }
    started.elapsed().as_secs_f64() * 1e6 / (calls as f64 * per_call as f64)
}

fn main() {
    let keys: Vec<SigningKey> = (0..64u8)
        .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
        .collect();
    let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 120]).collect();
    let signatures: Vec<[u8; 64]> = keys
        .iter()
        .zip(&messages)
        .map(|(k, m)| k.sign(m).to_bytes())
        .collect();
    let public: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();

    let sign = per_signature(1, || {
        black_box(keys[0].sign(&messages[0]));
        true
    });
    println!("sign: {sign:.1} us");
    println!(
        "{:>6} {:>16} {:>16} {:>8}",
        "batch", "cofactored us", "dalek us", "ratio"
    );
    for n in [1usize, 2, 4, 8, 16, 32, 64] {
        let items: Vec<Item<'_>> = (0..n)
            .map(|i| Item {
                key: &public[i],
                message: &messages[i],
                signature: &signatures[i],
            })
            .collect();
        let ours = per_signature(n, || cofactored::verify(black_box(&items)));
        let dalek_signatures: Vec<Signature> =
            signatures[..n].iter().map(Signature::from_bytes).collect();
        let dalek_messages: Vec<&[u8]> = messages[..n].iter().map(Vec::as_slice).collect();
        let theirs = if n == 1 {
            per_signature(1, || {
                public[0]
                    .verify_strict(&messages[0], &dalek_signatures[0])
                    .is_ok()
            })
        } else {
            per_signature(n, || {
                ed25519_dalek::verify_batch(&dalek_messages, &dalek_signatures, &public[..n])
                    .is_ok()
            })
        };
        println!("{n:>6} {ours:>16.1} {theirs:>16.1} {:>8.2}", ours / theirs);
    }
}
