//! Keys, signatures and the key store every replica and client loads from the cluster file.
//!
//! Every honest replica must reach the same verdict on the same message. All checks use the
//! cofactored ed25519 equation (`cofactored`), whose verdict on a signature does not depend on
//! what it was batched with, so a node may verify every signature that arrived together in one
//! batch. Weak public keys are refused when keys are loaded: a small-order key would let one
//! signature verify for every message under the cofactored equation.

use crate::auth::SessionKeys;
use crate::cofactored;
use crate::ids::{ClientId, Principal, ReplicaId};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::collections::HashMap;
use std::sync::Arc;
use thiserror::Error;

pub const SIGNATURE_LENGTH: usize = 64;
const MAX_BATCH: usize = 24;

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
    let signature = key.sign(bytes).to_bytes();
    crate::signature_ledger::record(key.verifying_key().as_bytes(), bytes, &signature);
    signature
}

/// Public keys of every principal in the cluster.
///
/// In `auth: macs` a holder's store also carries its session keys (`with_sessions`): then it
/// seals COMMITs, replies and requests with MACs and can check the MACs made for it.
#[derive(Clone, Debug, Default)]
pub struct KeyStore {
    replicas: Vec<VerifyingKey>,
    clients: HashMap<ClientId, VerifyingKey>,
    sessions: Option<Arc<SessionKeys>>,
}

impl KeyStore {
    pub fn new(replicas: Vec<VerifyingKey>, clients: HashMap<ClientId, VerifyingKey>) -> Self {
        KeyStore {
            replicas,
            clients,
            sessions: None,
        }
    }

    /// This store for `me`, with the session keys `me` shares with every other principal.
    pub fn with_sessions(mut self, me: Principal, secret: &SigningKey) -> KeyStore {
        self.sessions = Some(Arc::new(SessionKeys::derive(me, secret, &self)));
        self
    }

    /// The holder's session keys: present exactly when the cluster authenticates with MACs.
    pub fn sessions(&self) -> Option<&SessionKeys> {
        self.sessions.as_deref()
    }

    /// Every principal with a key, replicas first, clients in id order.
    pub fn principals(&self) -> impl Iterator<Item = Principal> + '_ {
        let mut clients: Vec<ClientId> = self.clients.keys().copied().collect();
        clients.sort_unstable();
        (0..self.replicas.len() as u32)
            .map(|i| Principal::Replica(ReplicaId(i)))
            .chain(clients.into_iter().map(Principal::Client))
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

/// Checks signatures together, of one message or of many: the verdict is the same as checking
/// each alone (see `cofactored`), so callers may batch whatever is at hand.
pub fn verify_all<'a>(
    keys: &KeyStore,
    checks: impl IntoIterator<Item = &'a SignatureCheck>,
) -> Result<(), SignatureFailure> {
    let checks = checks.into_iter();
    let mut items = Vec::with_capacity(checks.size_hint().0);
    let ledger = crate::signature_ledger::is_enabled();
    for check in checks {
        let key = keys
            .key_of(check.signer)
            .ok_or(SignatureFailure::UnknownSigner(check.signer))?;
        if ledger
            && crate::signature_ledger::signed_here(key.as_bytes(), &check.bytes, &check.signature)
        {
            continue;
        }
        items.push(cofactored::Item {
            key,
            message: &check.bytes,
            signature: &check.signature,
        });
    }
    // Past a few dozen signatures a batch gets slower per signature again (see the
    // `signatures` bench), so large ones are checked in parts.
    if items.chunks(MAX_BATCH).all(cofactored::verify) {
        Ok(())
    } else {
        Err(SignatureFailure::BadSignature)
    }
}
