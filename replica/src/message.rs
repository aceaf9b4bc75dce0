//! Protocol messages, their signed envelopes and the domain-separated signing encoding.

use crate::auth::{Mac, SessionKeys};
use crate::crypto::{self, SIGNATURE_LENGTH, SignatureCheck};
use crate::digest::Digest;
use crate::ids::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};
use crate::kv::{OpResult, Operation};
use crate::reply_tree::{self, PathStep};
use crate::service::ServiceState;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// Prefix of every signed encoding, so a Gauntlet signature never verifies in another protocol.
pub const SIGNING_DOMAIN: &str = "gauntlet-pbft-v1";

/// A message body that can be signed. `KIND` separates bodies of identical shape (a PREPARE
/// and a COMMIT carry the same fields) so a signature on one never verifies as the other.
pub trait Signable: Serialize + Sized {
    const KIND: MessageKind;

    /// The exact bytes a signature by `signer` on this body covers. By default the whole body.
    fn signing_bytes(&self, signer: Principal) -> Vec<u8> {
        encode_for_signing(Self::KIND, signer, self)
    }
}

/// postcard encodes a struct's fields in declaration order with no map keys: canonical.
fn encode_for_signing(kind: MessageKind, signer: Principal, content: &impl Serialize) -> Vec<u8> {
    postcard::to_stdvec(&(SIGNING_DOMAIN, kind, signer, content))
        .expect("postcard encoding into a Vec cannot fail")
}

/// What vouches for a message's sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seal {
    /// An ed25519 signature: convinces anyone.
    Signature(#[serde(with = "serde_bytes")] [u8; SIGNATURE_LENGTH]),
    /// One MAC per replica, by replica id (PBFT's authenticator): each replica can check only
    /// its own entry, so it is used only where no third party must be convinced (COMMIT).
    Authenticator(Vec<Mac>),
    /// A MAC for one principal (a reply, for its client).
    Mac(Mac),
    /// A request under `auth: macs`: the backups check their entry of the authenticator; the
    /// primary, and a backup whose entry fails, check the signature. So a client that spoils
    /// some entries (the "MAC attack") cannot stop honest backups from accepting a request
    /// an honest primary proposed.
    SignedAuthenticator {
        #[serde(with = "serde_bytes")]
        signature: [u8; SIGNATURE_LENGTH],
        macs: Vec<Mac>,
    },
}

impl Seal {
    /// The signature, where the seal carries one.
    pub fn signature(&self) -> Option<&[u8; SIGNATURE_LENGTH]> {
        match self {
            Seal::Signature(signature) | Seal::SignedAuthenticator { signature, .. } => {
                Some(signature)
            }
            Seal::Authenticator(_) | Seal::Mac(_) => None,
        }
    }

    /// The signature, mutably (attacks and tests that spoil one).
    pub fn signature_mut(&mut self) -> Option<&mut [u8; SIGNATURE_LENGTH]> {
        match self {
            Seal::Signature(signature) | Seal::SignedAuthenticator { signature, .. } => {
                Some(signature)
            }
            Seal::Authenticator(_) | Seal::Mac(_) => None,
        }
    }
}

/// A message body with its sender and what vouches for it (a signature, or MACs: see `Seal`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    pub signer: Principal,
    pub body: T,
    pub seal: Seal,
}

impl<T: Signable> Signed<T> {
    pub fn sign(body: T, signer: Principal, key: &SigningKey) -> Self {
        let bytes = body.signing_bytes(signer);
        let signature = crypto::sign(key, &bytes);
        Signed {
            signer,
            body,
            seal: Seal::Signature(signature),
        }
    }

    /// Sealed for every replica with the holder's session keys (an authenticator).
    pub fn authenticate(body: T, sessions: &SessionKeys) -> Self {
        let signer = sessions.me();
        let bytes = body.signing_bytes(signer);
        Signed {
            signer,
            body,
            seal: Seal::Authenticator(sessions.authenticator(&bytes)),
        }
    }

    /// Sealed for `recipient` alone; `None` if the holder shares no key with it.
    pub fn mac_for(body: T, sessions: &SessionKeys, recipient: Principal) -> Option<Self> {
        let signer = sessions.me();
        let mac = sessions.mac(recipient, &body.signing_bytes(signer))?;
        Some(Signed {
            signer,
            body,
            seal: Seal::Mac(mac),
        })
    }

    /// Signed, and sealed for every replica too (a request under `auth: macs`).
    pub fn sign_and_authenticate(body: T, key: &SigningKey, sessions: &SessionKeys) -> Self {
        let signer = sessions.me();
        let bytes = body.signing_bytes(signer);
        Signed {
            signer,
            seal: Seal::SignedAuthenticator {
                signature: crypto::sign(key, &bytes),
                macs: sessions.authenticator(&bytes),
            },
            body,
        }
    }

    /// Replaces the seal with a fresh signature by `key` over the current body and signer
    /// (attacks and fuzzing that rewrite a message as its sender).
    pub fn resign(&mut self, key: &SigningKey) {
        self.seal = Seal::Signature(crypto::sign(key, &self.signing_bytes()));
    }

    /// The exact bytes the signature or MACs cover.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.body.signing_bytes(self.signer)
    }

    /// The signature to check, if the seal carries one.
    pub fn signature_check(&self) -> Option<SignatureCheck> {
        self.seal.signature().map(|signature| SignatureCheck {
            bytes: self.signing_bytes(),
            signature: *signature,
            signer: self.signer,
        })
    }

    /// The replica that signed this, if a replica did.
    pub fn replica(&self) -> Option<ReplicaId> {
        match self.signer {
            Principal::Replica(r) => Some(r),
            Principal::Client(_) => None,
        }
    }
}

/// A client's request. Verification checks that the envelope's signer is this client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Request {
    pub client: ClientId,
    pub timestamp: Timestamp,
    pub op: Operation,
}

impl Signed<Request> {
    pub fn client(&self) -> ClientId {
        self.body.client
    }

    /// Identity of a request across retransmissions.
    pub fn id(&self) -> RequestId {
        RequestId {
            client: self.client(),
            timestamp: self.body.timestamp,
        }
    }
}

/// A request is named by its client and timestamp everywhere (events, histories, oracles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId {
    pub client: ClientId,
    pub timestamp: Timestamp,
}

/// A replica's answer to one request. The signature covers the root of the tree of every
/// reply the replica produced in the same step (`reply_tree`), so one signature serves a whole
/// batch; `path` leads from this reply to that root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub view: View,
    pub client: ClientId,
    pub timestamp: Timestamp,
    pub result: OpResult,
    pub path: Vec<PathStep>,
}

impl Reply {
    /// A reply outside any tree yet (`reply_tree::build` fills in the path).
    pub fn new(view: View, client: ClientId, timestamp: Timestamp, result: OpResult) -> Reply {
        Reply {
            view,
            client,
            timestamp,
            result,
            path: Vec::new(),
        }
    }
}

/// Signed content of a reply: the root of the tree it belongs to.
fn reply_signing_bytes(reply: &Reply, signer: Principal) -> Vec<u8> {
    reply_root_signing_bytes(&reply_tree::root(reply), signer)
}

/// What a replica signs for a whole tree of replies, given the tree's root.
pub(crate) fn reply_root_signing_bytes(root: &Digest, signer: Principal) -> Vec<u8> {
    encode_for_signing(MessageKind::Reply, signer, root)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePrepare {
    pub view: View,
    pub seq: Seq,
    /// `batch_digest(&batch)`; an empty batch is the null request that fills a gap.
    pub digest: Digest,
    pub batch: Vec<Signed<Request>>,
}

/// Digest of a batch: over each request's signed encoding, so it names the exact requests.
pub fn batch_digest(batch: &[Signed<Request>]) -> Digest {
    let encoded: Vec<Vec<u8>> = batch.iter().map(|r| r.signing_bytes()).collect();
    Digest::of_parts(encoded.iter().map(Vec::as_slice))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Prepare {
    pub view: View,
    pub seq: Seq,
    pub digest: Digest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Commit {
    pub view: View,
    pub seq: Seq,
    pub digest: Digest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: Seq,
    pub state_digest: Digest,
}

/// A pre-prepare with 2f matching prepares from distinct backups: the batch was prepared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedProof {
    pub pre_prepare: Signed<PrePrepare>,
    pub prepares: Vec<Signed<Prepare>>,
}

/// A pre-prepare with 2f+1 matching commits: the batch was committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedProof {
    pub pre_prepare: Signed<PrePrepare>,
    pub commits: Vec<Signed<Commit>>,
}

/// The sender's view-change timer expired in `view`: it suspects that view's primary, while
/// the requests in `waiting_for` wait at the sender (the one its timer guarded first). A
/// suspicion promises nothing (the sender keeps working in `view`); only f+1 of them, so at least
/// one from an honest replica, make a replica leave the view with a VIEW-CHANGE. A replica cut
/// off on its own therefore stays in the view the others are in, and votes again once it hears
/// them (Zyzzyva's I-HATE-THE-PRIMARY, BFT-SMaRt's STOP). A receiver counts a suspicion only
/// while one of its requests waits at the receiver too: not once they executed (the sender was
/// behind, or the primary has served them since), nor for requests it never received.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Suspect {
    pub view: View,
    pub waiting_for: Vec<RequestId>,
}

/// At most this many requests in a SUSPECT: one per client in any cluster this harness runs,
/// and a bound on what a faulty replica can make others scan.
pub const MAX_SUSPECT_REQUESTS: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChange {
    pub new_view: View,
    /// The sender's last stable checkpoint and its 2f+1 signed CHECKPOINTs (empty at seq 0).
    pub stable_seq: Seq,
    pub checkpoint_proof: Vec<Signed<Checkpoint>>,
    /// For every sequence number above `stable_seq` that prepared at the sender, the proof from
    /// the highest view in which it prepared.
    pub prepared: Vec<PreparedProof>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewView {
    pub view: View,
    pub view_changes: Vec<Signed<ViewChange>>,
    /// Re-issued pre-prepares for every sequence number between the chosen stable checkpoint
    /// and the highest prepared one, signed by the new primary (empty batch for gaps).
    pub pre_prepares: Vec<Signed<PrePrepare>>,
}

/// Asks peers for the state of their latest stable checkpoint above `have`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchState {
    pub have: Seq,
}

/// A stable checkpoint's state with its certificate, and what committed after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTransfer {
    pub checkpoint_proof: Vec<Signed<Checkpoint>>,
    pub state: ServiceState,
    pub committed: Vec<CommittedProof>,
}

macro_rules! message_kinds {
    ($($variant:ident => $name:literal $(signed by $signing:path)?),* $(,)?) => {
        /// The type of a message, as named in events, proxy rules and reports.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum MessageKind { $($variant),* }

        impl MessageKind {
            pub const ALL: &'static [MessageKind] = &[$(MessageKind::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(MessageKind::$variant => $name),* }
            }

            pub fn from_name(name: &str) -> Option<MessageKind> {
                match name { $($name => Some(MessageKind::$variant),)* _ => None }
            }
        }

        $(impl Signable for $variant {
            const KIND: MessageKind = MessageKind::$variant;
            $(fn signing_bytes(&self, signer: Principal) -> Vec<u8> { $signing(self, signer) })?
        })*

        /// Everything that travels in a frame.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum WireMessage { $($variant(Signed<$variant>)),* }

        impl WireMessage {
            pub fn kind(&self) -> MessageKind {
                match self { $(WireMessage::$variant(_) => MessageKind::$variant),* }
            }

            pub fn signer(&self) -> Principal {
                match self { $(WireMessage::$variant(m) => m.signer),* }
            }

            pub fn seal(&self) -> &Seal {
                match self { $(WireMessage::$variant(m) => &m.seal),* }
            }
        }
    };
}

message_kinds! {
    Request => "request",
    Reply => "reply" signed by reply_signing_bytes,
    PrePrepare => "pre-prepare",
    Prepare => "prepare",
    Commit => "commit",
    Checkpoint => "checkpoint",
    Suspect => "suspect",
    ViewChange => "view-change",
    NewView => "new-view",
    FetchState => "fetch-state",
    StateTransfer => "state-transfer",
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl WireMessage {
    /// The view a message speaks for, where it has one (proxy rules match on it).
    pub fn view(&self) -> Option<View> {
        match self {
            WireMessage::Reply(m) => Some(m.body.view),
            WireMessage::PrePrepare(m) => Some(m.body.view),
            WireMessage::Prepare(m) => Some(m.body.view),
            WireMessage::Commit(m) => Some(m.body.view),
            WireMessage::Suspect(m) => Some(m.body.view),
            WireMessage::ViewChange(m) => Some(m.body.new_view),
            WireMessage::NewView(m) => Some(m.body.view),
            _ => None,
        }
    }

    /// The sequence number a message speaks for, where it has one.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            WireMessage::PrePrepare(m) => Some(m.body.seq),
            WireMessage::Prepare(m) => Some(m.body.seq),
            WireMessage::Commit(m) => Some(m.body.seq),
            WireMessage::Checkpoint(m) => Some(m.body.seq),
            WireMessage::ViewChange(m) => Some(m.body.stable_seq),
            WireMessage::FetchState(m) => Some(m.body.have),
            _ => None,
        }
    }
}
