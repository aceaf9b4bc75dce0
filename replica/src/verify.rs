//! Turning a decoded message into a `Verified` one: every signature it carries (nested ones
//! included) checked in one batch, every MAC meant for this holder checked, every signer of the right kind, every digest recomputed.
//! The core accepts only `Verified` messages; what it then checks is protocol logic.

use crate::crypto::{KeyStore, SignatureCheck, SignatureFailure, verify_all};
use crate::ids::Principal;
use crate::message::{
    CommittedProof, PrePrepare, PreparedProof, Request, Seal, Signable, Signed, ViewChange,
    WireMessage, batch_digest,
};
use crate::reply_tree;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an input was refused. The names are stable: events, counters and reports use them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Error,
)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    #[error("frame does not decode")]
    MalformedFrame,
    #[error("frame exceeds the size cap")]
    OversizedFrame,
    #[error("signer is not in the cluster file")]
    UnknownSender,
    #[error("signature does not verify")]
    BadSignature,
    #[error("signer is the wrong kind of principal for this message")]
    WrongSenderKind,
    #[error("digest does not match the content")]
    DigestMismatch,
    #[error("message is for a view this replica has left")]
    StaleView,
    #[error("message is for a view this replica has not entered")]
    FutureView,
    #[error("sequence number outside the watermarks")]
    OutsideWatermarks,
    #[error("pre-prepare not sent by the primary of its view")]
    NotFromPrimary,
    #[error("conflicts with a message already accepted")]
    Conflicting,
    #[error("certificate lacks a quorum of distinct matching signers")]
    InvalidCertificate,
    #[error("view change or new view fails validation")]
    InvalidViewChange,
    #[error("state transfer does not match its certificate")]
    InvalidStateTransfer,
    #[error("request timestamp older than the client's last executed one")]
    StaleRequest,
    #[error("message is not addressed to this kind of node")]
    Misdirected,
    #[error("batch exceeds the configured maximum")]
    OversizedBatch,
    #[error("MAC does not verify for this replica")]
    BadMac,
    #[error("message carries MACs where a third party must be able to check a signature")]
    Unsigned,
    #[error("request too large for any PRE-PREPARE to carry within the frame cap")]
    OversizedRequest,
}

impl RejectReason {
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

/// A message whose signatures and digests have all been checked. Only `verify` and the
/// recovery path (which reads the replica's own log) construct one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified(WireMessage);

impl Verified {
    pub fn message(&self) -> &WireMessage {
        &self.0
    }

    pub fn into_message(self) -> WireMessage {
        self.0
    }

    /// For messages read back from this replica's own write-ahead log, which were verified
    /// before they were written.
    pub fn from_own_log(message: WireMessage) -> Verified {
        Verified(message)
    }
}

pub fn verify(message: WireMessage, keys: &KeyStore) -> Result<Verified, RejectReason> {
    verify_counted(message, keys).result
}

/// `verify`'s answer on one message, with what the holder counts beyond it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub result: Result<Verified, RejectReason>,
    /// Seals carrying both a signature and an authenticator (requests proposed in a
    /// PRE-PREPARE: honest senders seal nothing else so) whose entry for this holder failed,
    /// so that their signatures were checked instead: Aardvark's "MAC attack", and its
    /// defence. Counted whether or not those signatures then verified, and only for a message
    /// whose seals were all read (one refused before its signatures were checked counts none).
    pub mac_fallbacks: u32,
}

/// `verify`, and how many of the message's MAC entries the signature had to stand in for.
pub fn verify_counted(message: WireMessage, keys: &KeyStore) -> Verdict {
    match seals_of(&message, keys) {
        Ok(seals) => Verdict {
            result: verify_all(keys, &seals.checks)
                .map(|()| Verified(message))
                .map_err(reason),
            mac_fallbacks: seals.mac_fallbacks,
        },
        Err(refused) => Verdict {
            result: Err(refused),
            mac_fallbacks: 0,
        },
    }
}

/// Verifies many messages with one batch of signature checks; only when the batch fails is
/// each message checked on its own to find the bad ones. Each verdict is the one
/// `verify_counted` gives the message alone (see `crypto`), whatever else was in the batch.
pub fn verify_many(messages: Vec<WireMessage>, keys: &KeyStore) -> Vec<Verdict> {
    let mut collected: Vec<Result<(WireMessage, Seals), RejectReason>> = messages
        .into_iter()
        .map(|message| seals_of(&message, keys).map(|seals| (message, seals)))
        .collect();
    let all_checks: Vec<&SignatureCheck> = collected
        .iter()
        .flatten()
        .flat_map(|(_, seals)| &seals.checks)
        .collect();
    let batch_passes = verify_all(keys, all_checks).is_ok();
    collected
        .drain(..)
        .map(|entry| match entry {
            Ok((message, seals)) => {
                let signatures = if batch_passes {
                    Ok(())
                } else {
                    verify_all(keys, &seals.checks).map_err(reason)
                };
                Verdict {
                    result: signatures.map(|()| Verified(message)),
                    mac_fallbacks: seals.mac_fallbacks,
                }
            }
            Err(refused) => Verdict {
                result: Err(refused),
                mac_fallbacks: 0,
            },
        })
        .collect()
}

/// What reading a message's seals leaves to do and to count.
#[derive(Default)]
struct Seals {
    /// Signatures to check, in one batch.
    checks: Vec<SignatureCheck>,
    /// See `Verdict::mac_fallbacks`.
    mac_fallbacks: u32,
}

/// Reads every seal of `message`: MACs for this holder checked now, signatures collected.
/// Unknown signers are named here, so a failing batch of signatures fails only on bad ones.
fn seals_of(message: &WireMessage, keys: &KeyStore) -> Result<Seals, RejectReason> {
    let mut seals = Seals::default();
    collect(message, keys, &mut seals)?;
    if let Some(unknown) = seals.checks.iter().find(|c| !keys.knows(c.signer)) {
        return Err(reason(SignatureFailure::UnknownSigner(unknown.signer)));
    }
    Ok(seals)
}

fn reason(failure: SignatureFailure) -> RejectReason {
    match failure {
        SignatureFailure::UnknownSigner(_) => RejectReason::UnknownSender,
        SignatureFailure::BadSignature => RejectReason::BadSignature,
    }
}

/// What a message's seal must be where it appears.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// A signature: what a third party (or a later view) must be able to trust.
    Signature,
    /// A signature, or MACs of which this holder's own checks.
    AnySeal,
}

/// Checks `m`'s seal: a MAC for this holder at once (cheap), a signature into `seals` for
/// one batch later (also when it stands in for a spoiled MAC entry, which `seals` counts).
fn seal<T: Signable>(
    m: &Signed<T>,
    needs: Needs,
    keys: &KeyStore,
    seals: &mut Seals,
) -> Result<(), RejectReason> {
    let mac_checks = |check: &dyn Fn(&crate::auth::SessionKeys, &[u8]) -> bool| {
        keys.sessions()
            .is_some_and(|sessions| check(sessions, &m.signing_bytes()))
    };
    match (&m.seal, needs) {
        (Seal::Signature(_), _) | (Seal::SignedAuthenticator { .. }, Needs::Signature) => {}
        (Seal::Authenticator(_) | Seal::Mac(_), Needs::Signature) => {
            return Err(RejectReason::Unsigned);
        }
        (Seal::SignedAuthenticator { macs, .. }, Needs::AnySeal) => {
            // The signature is the fallback when this replica's own entry was spoiled.
            if mac_checks(&|s, bytes| s.check_entry(m.signer, bytes, macs)) {
                return Ok(());
            }
            // Counted only where there was an entry to check: a holder without session keys
            // (a cluster under signatures) reads the signature as it would anyway.
            if keys.sessions().is_some() {
                seals.mac_fallbacks = seals.mac_fallbacks.saturating_add(1);
            }
        }
        (Seal::Authenticator(macs), Needs::AnySeal) => {
            return mac_checks(&|s, bytes| s.check_entry(m.signer, bytes, macs))
                .then_some(())
                .ok_or(RejectReason::BadMac);
        }
        (Seal::Mac(mac), Needs::AnySeal) => {
            return mac_checks(&|s, bytes| s.check(m.signer, bytes, mac))
                .then_some(())
                .ok_or(RejectReason::BadMac);
        }
    }
    seals.checks.extend(m.signature_check());
    Ok(())
}

fn by_replica<T: Signable>(
    m: &Signed<T>,
    needs: Needs,
    keys: &KeyStore,
    seals: &mut Seals,
) -> Result<(), RejectReason> {
    if !matches!(m.signer, Principal::Replica(_)) {
        return Err(RejectReason::WrongSenderKind);
    }
    seal(m, needs, keys, seals)
}

fn by_client(
    m: &Signed<Request>,
    needs: Needs,
    keys: &KeyStore,
    seals: &mut Seals,
) -> Result<(), RejectReason> {
    if m.signer != Principal::Client(m.body.client) {
        return Err(RejectReason::WrongSenderKind);
    }
    seal(m, needs, keys, seals)
}

/// Which of a PRE-PREPARE's requests get their seals checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// A primary's proposal: each request must prove its client sent it.
    Proposed,
    /// Inside a prepared or committed certificate, or re-issued from one: 2f+1 replicas
    /// accepted the batch, so at least one honest replica checked each request when it was
    /// proposed, and the digest binds the content. Checking again would not make it truer, and
    /// under `auth: macs` would let a client that spoiled some MACs make replicas disagree
    /// about whether a VIEW-CHANGE is valid.
    Certified,
}

fn pre_prepare(
    m: &Signed<PrePrepare>,
    batch: Batch,
    keys: &KeyStore,
    seals: &mut Seals,
) -> Result<(), RejectReason> {
    by_replica(m, Needs::Signature, keys, seals)?;
    if batch_digest(&m.body.batch) != m.body.digest {
        return Err(RejectReason::DigestMismatch);
    }
    for request in &m.body.batch {
        match batch {
            Batch::Proposed => by_client(request, Needs::AnySeal, keys, seals)?,
            Batch::Certified if request.signer != Principal::Client(request.body.client) => {
                return Err(RejectReason::WrongSenderKind);
            }
            Batch::Certified => {}
        }
    }
    Ok(())
}

fn prepared(p: &PreparedProof, keys: &KeyStore, seals: &mut Seals) -> Result<(), RejectReason> {
    pre_prepare(&p.pre_prepare, Batch::Certified, keys, seals)?;
    p.prepares
        .iter()
        .try_for_each(|m| by_replica(m, Needs::Signature, keys, seals))
}

/// A committed certificate convinces only the replica it is sent to, which alone decides to
/// apply it: so its COMMITs may be authenticators, of which that replica checks its own entry.
fn committed(p: &CommittedProof, keys: &KeyStore, seals: &mut Seals) -> Result<(), RejectReason> {
    pre_prepare(&p.pre_prepare, Batch::Certified, keys, seals)?;
    p.commits
        .iter()
        .try_for_each(|m| by_replica(m, Needs::AnySeal, keys, seals))
}

fn view_change(
    m: &Signed<ViewChange>,
    keys: &KeyStore,
    seals: &mut Seals,
) -> Result<(), RejectReason> {
    by_replica(m, Needs::Signature, keys, seals)?;
    m.body
        .checkpoint_proof
        .iter()
        .try_for_each(|c| by_replica(c, Needs::Signature, keys, seals))?;
    m.body
        .prepared
        .iter()
        .try_for_each(|p| prepared(p, keys, seals))
}

fn collect(message: &WireMessage, keys: &KeyStore, seals: &mut Seals) -> Result<(), RejectReason> {
    use Needs::{AnySeal, Signature};
    match message {
        // The primary proposes only requests whose signature it checked, so a backup whose
        // MAC entry a client spoiled can fall back on the signature.
        WireMessage::Request(m) => by_client(m, Signature, keys, seals)?,
        WireMessage::Reply(m) => {
            if m.body.path.len() > reply_tree::MAX_PATH_LENGTH {
                return Err(RejectReason::MalformedFrame);
            }
            by_replica(m, AnySeal, keys, seals)?
        }
        WireMessage::PrePrepare(m) => pre_prepare(m, Batch::Proposed, keys, seals)?,
        WireMessage::Prepare(m) => by_replica(m, Signature, keys, seals)?,
        WireMessage::Commit(m) => by_replica(m, AnySeal, keys, seals)?,
        WireMessage::Checkpoint(m) => by_replica(m, Signature, keys, seals)?,
        WireMessage::Suspect(m) => {
            if m.body.waiting_for.len() > crate::message::MAX_SUSPECT_REQUESTS {
                return Err(RejectReason::MalformedFrame);
            }
            by_replica(m, AnySeal, keys, seals)?
        }
        WireMessage::FetchState(m) => by_replica(m, Signature, keys, seals)?,
        WireMessage::ViewChange(m) => view_change(m, keys, seals)?,
        WireMessage::NewView(m) => {
            by_replica(m, Signature, keys, seals)?;
            m.body
                .view_changes
                .iter()
                .try_for_each(|vc| view_change(vc, keys, seals))?;
            // Each must match the batch certified in the VIEW-CHANGEs (the core checks that).
            m.body
                .pre_prepares
                .iter()
                .try_for_each(|p| pre_prepare(p, Batch::Certified, keys, seals))?;
        }
        WireMessage::StateTransfer(m) => {
            by_replica(m, Signature, keys, seals)?;
            m.body
                .checkpoint_proof
                .iter()
                .try_for_each(|c| by_replica(c, Signature, keys, seals))?;
            m.body
                .committed
                .iter()
                .try_for_each(|p| committed(p, keys, seals))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::key_from_seed;
    use crate::digest::Digest;
    use crate::ids::{ClientId, ReplicaId, Seq, View};
    use crate::message::{Commit, Prepare};

    fn keys() -> KeyStore {
        let replicas = (0..4)
            .map(|i| key_from_seed(3, Principal::Replica(ReplicaId(i))).verifying_key())
            .collect();
        KeyStore::new(
            replicas,
            [(
                ClientId(0),
                key_from_seed(3, Principal::Client(ClientId(0))).verifying_key(),
            )]
            .into(),
        )
    }

    fn prepare(from: u32, seq: u64) -> WireMessage {
        let signer = Principal::Replica(ReplicaId(from));
        WireMessage::Prepare(Signed::sign(
            Prepare {
                view: View(0),
                seq: Seq(seq),
                digest: Digest::of(b"batch"),
            },
            signer,
            &key_from_seed(3, signer),
        ))
    }

    #[test]
    fn a_batch_of_messages_gets_each_message_its_own_verdict_in_order() {
        let keys = keys();
        let mut forged = prepare(1, 2);
        if let WireMessage::Prepare(m) = &mut forged {
            m.body.seq = Seq(99);
        }
        let mut unknown = prepare(2, 3);
        if let WireMessage::Prepare(m) = &mut unknown {
            m.signer = Principal::Replica(ReplicaId(9));
        }
        let client_signed_commit = {
            let signer = Principal::Client(ClientId(0));
            WireMessage::Commit(Signed::sign(
                Commit {
                    view: View(0),
                    seq: Seq(1),
                    digest: Digest::of(b"batch"),
                },
                signer,
                &key_from_seed(3, signer),
            ))
        };
        let messages = vec![
            prepare(1, 1),
            forged,
            unknown,
            client_signed_commit,
            prepare(3, 4),
        ];
        let verdicts: Vec<Result<u64, RejectReason>> = verify_many(messages, &keys)
            .into_iter()
            .map(|v| v.result.map(|m| m.message().seq().map_or(0, |s| s.0)))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                Ok(1),
                Err(RejectReason::BadSignature),
                Err(RejectReason::UnknownSender),
                Err(RejectReason::WrongSenderKind),
                Ok(4),
            ]
        );
        let good: Vec<_> = (0..4).map(|i| prepare(i, 10 + i as u64)).collect();
        assert!(verify_many(good, &keys).iter().all(|v| v.result.is_ok()));
    }
}
