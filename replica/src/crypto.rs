//! Keys, signatures and the key store every replica and client loads from the cluster file.
//!
//! Every honest replica must reach the same verdict on the same message, so the verdict is a
//! pure function of the message: a message carrying one signature is checked with `verify`,
//! a message carrying several is checked with one deterministic batch verification over all
//! of them. Weak public keys are refused when keys are loaded, because batch verification
//! does not reject them. `verify_strict` would only add a rejection of malleated signatures,
//! which matters to protocols that name things by their signature; this one names requests
//! by (client, timestamp) and batches by the digest of the signed bytes, so it pays for
//! nothing here and costs a point decompression on every message.

use crate::ids::{ClientId, Principal, ReplicaId};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::collections::HashMap;
use thiserror::Error;

pub const SIGNATURE_LENGTH: usize = 64;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("public key is not valid hex of 32 bytes")]
    BadPublicKeyEncoding,
    #[error("public key is not a valid curve point")]
    InvalidPublicKey,
    #[error("public key is weak (small order); refused")]
    WeakPublicKey,
    #[error("secret key is not valid hex of 32 bytes")]
    BadSecretKeyEncoding,
}

pub fn parse_public_key(hex_text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(KeyError::BadPublicKeyEncoding)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)?;
    if key.is_weak() {
        return Err(KeyError::WeakPublicKey);
    }
    Ok(key)
}

pub fn parse_secret_key(hex_text: &str) -> Result<SigningKey, KeyError> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(KeyError::BadSecretKeyEncoding)?;
    Ok(SigningKey::from_bytes(&bytes))
}

pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

pub fn secret_key_hex(key: &SigningKey) -> String {
    hex::encode(key.as_bytes())
}

/// A deterministic key derived from a seed, for testnets and simulations (never for production
/// key material, which `replica testnet` draws from the OS).
pub fn key_from_seed(seed: u64, principal: Principal) -> SigningKey {
    let label = match principal {
        Principal::Replica(r) => format!("replica-{r}"),
        Principal::Client(c) => format!("client-{c}"),
    };
    let digest = crate::digest::Digest::of_parts([&seed.to_be_bytes()[..], label.as_bytes()]);
    SigningKey::from_bytes(&digest.0)
}

pub fn sign(key: &SigningKey, bytes: &[u8]) -> [u8; SIGNATURE_LENGTH] {
    key.sign(bytes).to_bytes()
}

/// Public keys of every principal in the cluster.
#[derive(Clone, Debug, Default)]
pub struct KeyStore {
    replicas: Vec<VerifyingKey>,
    clients: HashMap<ClientId, VerifyingKey>,
}

impl KeyStore {
    pub fn new(replicas: Vec<VerifyingKey>, clients: HashMap<ClientId, VerifyingKey>) -> Self {
        KeyStore { replicas, clients }
    }

    pub fn key_of(&self, principal: Principal) -> Option<&VerifyingKey> {
        match principal {
            Principal::Replica(ReplicaId(i)) => self.replicas.get(i as usize),
            Principal::Client(c) => self.clients.get(&c),
        }
    }

    pub fn replica_count(&self) -> usize {
        self.replicas.len()
    }

    pub fn knows(&self, principal: Principal) -> bool {
        self.key_of(principal).is_some()
    }
}

/// One signature to check: the signed bytes, the signature, and who claims to have signed.
pub struct SignatureCheck {
    pub bytes: Vec<u8>,
    pub signature: [u8; SIGNATURE_LENGTH],
    pub signer: Principal,
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    #[error("signer {0} is not in the cluster file")]
    UnknownSigner(Principal),
    #[error("signature does not verify")]
    BadSignature,
}

/// Checks all signatures of one message together (see the module comment for why).
pub fn verify_all(keys: &KeyStore, checks: &[SignatureCheck]) -> Result<(), SignatureFailure> {
    let mut verifying_keys = Vec::with_capacity(checks.len());
    for check in checks {
        let key = keys
            .key_of(check.signer)
            .ok_or(SignatureFailure::UnknownSigner(check.signer))?;
        verifying_keys.push(*key);
    }
    match checks {
        [] => Ok(()),
        [one] => verifying_keys[0]
            .verify(&one.bytes, &Signature::from_bytes(&one.signature))
            .map_err(|_| SignatureFailure::BadSignature),
        many => {
            let messages: Vec<&[u8]> = many.iter().map(|c| c.bytes.as_slice()).collect();
            let signatures: Vec<Signature> = many
                .iter()
                .map(|c| Signature::from_bytes(&c.signature))
                .collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &verifying_keys)
                .map_err(|_| SignatureFailure::BadSignature)
        }
    }
}
