//! MAC authenticators, PBFT's cheap alternative to a signature on every message (`auth: macs`).
//!
//! Every two principals share a session key, derived without any exchange: each side computes
//! X25519 over its own ed25519 secret and the other's public key (the two keys are the same
//! point on birationally equivalent curves), then hashes the shared point with both names. A
//! third party, the proxy included, holds neither secret and cannot compute it, so a frame
//! rewritten in flight or a message claiming another sender fails its MAC. Reusing the signing
//! key this way is analysed in "On using the same key pair for Ed25519 and an X25519 based KEM"
//! (eprint 2021/509); it saves a second key file per principal and a handshake per connection.
//!
//! A MAC convinces only its recipient, so MACs go only where no third party must be convinced:
//! COMMITs (an authenticator, one MAC per replica), replies (one MAC for the client), and the
//! requests' authenticators the backups check. What travels inside a VIEW-CHANGE, a NEW-VIEW or
//! a state transfer's checkpoint certificate stays signed (see `message::Seal`).

use crate::crypto::KeyStore;
use crate::ids::{Principal, ReplicaId};
use ed25519_dalek::SigningKey;
use hmac::{Hmac, KeyInit, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;

/// HMAC-SHA-256 truncated to 128 bits, as RFC 2104 allows (at least half the output).
pub const MAC_LENGTH: usize = 16;
pub type Mac = [u8; MAC_LENGTH];

const SESSION_DOMAIN: &str = "gauntlet-session-v1";

/// How a cluster authenticates its normal-case messages: a cluster setting (`auth:` in
/// `cluster.yaml` and in a scenario's `cluster` section).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// An ed25519 signature on every message.
    Signatures,
    /// MACs on COMMITs, replies and requests (which the client also signs); signatures on the
    /// rest. The default: the cluster benchmark measures it about twice as fast, and every
    /// built-in scenario passes in both modes.
    #[default]
    Macs,
}

impl AuthMode {
    pub const ALL: [AuthMode; 2] = [AuthMode::Signatures, AuthMode::Macs];

    pub fn name(self) -> &'static str {
        match self {
            AuthMode::Signatures => "signatures",
            AuthMode::Macs => "macs",
        }
    }
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AuthMode {
    type Err = String;

    fn from_str(text: &str) -> Result<AuthMode, String> {
        AuthMode::ALL
            .into_iter()
            .find(|mode| mode.name() == text)
            .ok_or_else(|| format!("unknown auth mode `{text}` (signatures, macs)"))
    }
}

/// The session keys one principal shares with every other principal of the cluster.
#[derive(Clone)]
pub struct SessionKeys {
    me: Principal,
    replicas: usize,
    keys: HashMap<Principal, [u8; 32]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SessionKeys")
            .field("me", &self.me)
            .field("peers", &self.keys.len())
            .finish()
    }
}

impl SessionKeys {
    /// `me`'s keys with every principal `public` knows, itself included: a replica's own
    /// COMMIT comes back to it inside a peer's committed certificate, and it checks its own
    /// entry like any other.
    pub fn derive(me: Principal, secret: &SigningKey, public: &KeyStore) -> SessionKeys {
        let scalar = secret.to_scalar_bytes();
        let keys = public
            .principals()
            .filter_map(|peer| {
                let peer_key = public.key_of(peer)?;
                let shared = peer_key.to_montgomery().mul_clamped(scalar);
                Some((peer, session_key(me, peer, shared.as_bytes())))
            })
            .collect();
        SessionKeys {
            me,
            replicas: public.replica_count(),
            keys,
        }
    }

    pub fn me(&self) -> Principal {
        self.me
    }

    /// The MAC `peer` can check, or `None` for a principal outside the cluster.
    pub fn mac(&self, peer: Principal, bytes: &[u8]) -> Option<Mac> {
        let full = keyed(self.keys.get(&peer)?, bytes).finalize().into_bytes();
        let mut truncated = [0u8; MAC_LENGTH];
        truncated.copy_from_slice(&full[..MAC_LENGTH]);
        Some(truncated)
    }

    /// Whether `mac` is the one `peer` made for `bytes` for this principal (constant time).
    pub fn check(&self, peer: Principal, bytes: &[u8], mac: &Mac) -> bool {
        self.keys
            .get(&peer)
            .is_some_and(|key| keyed(key, bytes).verify_truncated_left(mac).is_ok())
    }

    /// One MAC per replica, by replica id: what every replica of a multicast can check.
    pub fn authenticator(&self, bytes: &[u8]) -> Vec<Mac> {
        (0..self.replicas as u32)
            .map(|i| {
                self.mac(Principal::Replica(ReplicaId(i)), bytes)
                    .unwrap_or([0; MAC_LENGTH])
            })
            .collect()
    }

    /// Whether this principal's entry of `authenticator`, made by `peer`, checks.
    pub fn check_entry(&self, peer: Principal, bytes: &[u8], authenticator: &[Mac]) -> bool {
        let Principal::Replica(ReplicaId(mine)) = self.me else {
            return false;
        };
        authenticator
            .get(mine as usize)
            .is_some_and(|mac| self.check(peer, bytes, mac))
    }
}

/// HMAC-SHA-256 of `bytes` under `key`, before finalizing.
fn keyed(key: &[u8; 32], bytes: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(bytes);
    mac
}

/// Both ends derive the same key: the names go in a fixed order.
fn session_key(a: Principal, b: Principal, shared: &[u8; 32]) -> [u8; 32] {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let names = postcard::to_stdvec(&(SESSION_DOMAIN, low, high))
        .expect("postcard encoding into a Vec cannot fail");
    let mut hasher = Sha256::new();
    hasher.update(&names);
    hasher.update(shared);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::key_from_seed;
    use crate::ids::ClientId;

    fn cluster() -> (Vec<(Principal, SigningKey)>, KeyStore) {
        let principals: Vec<Principal> = (0..4)
            .map(|i| Principal::Replica(ReplicaId(i)))
            .chain([Principal::Client(ClientId(0))])
            .collect();
        let secrets: Vec<(Principal, SigningKey)> = principals
            .iter()
            .map(|p| (*p, key_from_seed(5, *p)))
            .collect();
        let replicas = secrets[..4]
            .iter()
            .map(|(_, k)| k.verifying_key())
            .collect();
        let clients = [(ClientId(0), secrets[4].1.verifying_key())].into();
        (secrets, KeyStore::new(replicas, clients))
    }

    #[test]
    fn both_ends_derive_the_same_key_and_a_third_cannot_check() {
        let (secrets, public) = cluster();
        let sessions: Vec<SessionKeys> = secrets
            .iter()
            .map(|(p, k)| SessionKeys::derive(*p, k, &public))
            .collect();
        let (client, replica0, replica1) = (&sessions[4], &sessions[0], &sessions[1]);
        let mac = client
            .mac(replica0.me(), b"request")
            .expect("replica 0 is known");
        assert!(replica0.check(client.me(), b"request", &mac));
        assert!(!replica0.check(client.me(), b"requesT", &mac));
        // Replica 1 shares a different key with the client, and cannot pass for it to replica 0.
        assert!(!replica1.check(client.me(), b"request", &mac));
        let forged = replica1.mac(replica0.me(), b"request").expect("known");
        assert!(!replica0.check(client.me(), b"request", &forged));
    }

    #[test]
    fn each_replica_checks_only_its_own_entry_of_an_authenticator() {
        let (secrets, public) = cluster();
        let sessions: Vec<SessionKeys> = secrets
            .iter()
            .map(|(p, k)| SessionKeys::derive(*p, k, &public))
            .collect();
        let mut authenticator = sessions[4].authenticator(b"commit");
        assert_eq!(authenticator.len(), 4);
        authenticator[2][0] ^= 1;
        let verdicts: Vec<bool> = sessions[..4]
            .iter()
            .map(|s| s.check_entry(sessions[4].me(), b"commit", &authenticator))
            .collect();
        assert_eq!(verdicts, vec![true, true, false, true]);
        // A client has no entry of its own.
        assert!(!sessions[4].check_entry(sessions[0].me(), b"commit", &authenticator));
    }
}
