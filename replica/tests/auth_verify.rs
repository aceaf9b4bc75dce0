//! What the receive path accepts under `auth: macs`, message by message: a MAC convinces only
//! the principal it was made for, a rewritten or re-attributed message fails its MAC, a client
//! that spoils some backups' MACs cannot make honest replicas disagree (the Aardvark "MAC
//! attack"), and whatever a third party must trust still needs a signature.

use replica::auth::{AuthMode, SessionKeys};
use replica::crypto::{KeyStore, key_from_seed};
use replica::digest::Digest;
use replica::kv::Operation;
use replica::message::{
    Commit, PrePrepare, Prepare, PreparedProof, Reply, Request, Seal, Signed, ViewChange,
    WireMessage, batch_digest,
};
use replica::verify::{RejectReason, verify, verify_counted, verify_many};
use replica::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};

const SEED: u64 = 21;

fn replica(i: u32) -> Principal {
    Principal::Replica(ReplicaId(i))
}

const CLIENT: Principal = Principal::Client(ClientId(0));

fn public() -> KeyStore {
    let replicas = (0..4)
        .map(|i| key_from_seed(SEED, replica(i)).verifying_key())
        .collect();
    let clients = [(ClientId(0), key_from_seed(SEED, CLIENT).verifying_key())].into();
    KeyStore::new(replicas, clients)
}

/// `who`'s key store under `auth: macs`.
fn keys_of(who: Principal) -> KeyStore {
    public().with_sessions(who, &key_from_seed(SEED, who))
}

fn sessions(who: Principal) -> SessionKeys {
    keys_of(who)
        .sessions()
        .expect("with_sessions derives them")
        .clone()
}

fn request() -> Signed<Request> {
    request_at(7)
}

fn request_at(timestamp: u64) -> Signed<Request> {
    let body = Request {
        client: ClientId(0),
        timestamp: Timestamp(timestamp),
        op: Operation::Put {
            key: "k".into(),
            value: "v".into(),
        },
    };
    Signed::sign_and_authenticate(body, &key_from_seed(SEED, CLIENT), &sessions(CLIENT))
}

fn spoil_entry(request: &mut Signed<Request>, of: u32) {
    let Seal::SignedAuthenticator { macs, .. } = &mut request.seal else {
        panic!("a request under MACs is signed and authenticated");
    };
    macs[of as usize][0] ^= 1;
}

fn spoil_signature<T>(message: &mut Signed<T>) {
    message.seal.signature_mut().expect("signed")[3] ^= 1;
}

fn pre_prepare(batch: Vec<Signed<Request>>) -> Signed<PrePrepare> {
    let body = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: batch_digest(&batch),
        batch,
    };
    Signed::sign(body, replica(0), &key_from_seed(SEED, replica(0)))
}

fn verdict_at(receiver: u32, message: WireMessage) -> Result<(), RejectReason> {
    verify(message, &keys_of(replica(receiver))).map(|_| ())
}

#[test]
fn a_backup_whose_mac_entry_a_client_spoiled_accepts_the_request_on_its_signature() {
    let mut spoiled = request();
    spoil_entry(&mut spoiled, 2);
    let proposal = WireMessage::PrePrepare(pre_prepare(vec![spoiled.clone()]));
    assert_eq!(verdict_at(1, proposal.clone()), Ok(()));
    assert_eq!(
        verdict_at(2, proposal),
        Ok(()),
        "the signature is the fallback"
    );

    // A request the client did not sign at all convinces only the replicas whose entry checks:
    // an honest primary never proposes it, since it checks the signature of what it receives.
    spoil_signature(&mut spoiled);
    let proposal = WireMessage::PrePrepare(pre_prepare(vec![spoiled.clone()]));
    assert_eq!(verdict_at(1, proposal.clone()), Ok(()));
    assert_eq!(
        verdict_at(2, proposal),
        Err(RejectReason::BadSignature),
        "neither its entry nor the signature checks"
    );
    assert_eq!(
        verdict_at(0, WireMessage::Request(spoiled)),
        Err(RejectReason::BadSignature),
        "a request received directly is judged by its signature alone"
    );
}

/// What `verify_counted` says at `receiver`: the verdict, and the MAC entries the signature
/// stood in for.
fn counted_at(receiver: u32, message: WireMessage) -> (Result<(), RejectReason>, u32) {
    let verdict = verify_counted(message, &keys_of(replica(receiver)));
    (verdict.result.map(|_| ()), verdict.mac_fallbacks)
}

/// The MAC attack made visible: a backup counts each request whose entry for it was spoiled
/// and which it accepted on the signature instead, and counts nothing for a valid entry.
#[test]
fn a_backup_counts_each_spoiled_entry_its_signature_rescued() {
    let mut spoiled = request();
    spoil_entry(&mut spoiled, 2);
    let mut other = request_at(8);
    spoil_entry(&mut other, 2);
    let batch = vec![spoiled.clone(), other, request_at(9)];
    let proposal = WireMessage::PrePrepare(pre_prepare(batch));
    assert_eq!(
        counted_at(1, proposal.clone()),
        (Ok(()), 0),
        "its entry is valid"
    );
    assert_eq!(
        counted_at(2, proposal.clone()),
        (Ok(()), 2),
        "two of the three requests rescued by their signatures"
    );
    // The node's verifier batches: the same verdict and count, whatever else is in the batch.
    let many = verify_many(
        vec![
            proposal.clone(),
            WireMessage::PrePrepare(pre_prepare(vec![request()])),
        ],
        &keys_of(replica(2)),
    );
    let counts: Vec<(bool, u32)> = many
        .iter()
        .map(|v| (v.result.is_ok(), v.mac_fallbacks))
        .collect();
    assert_eq!(counts, vec![(true, 2), (true, 0)]);
    // The primary judges a request it receives directly by its signature alone: no fallback.
    assert_eq!(counted_at(0, WireMessage::Request(spoiled)), (Ok(()), 0));
    // Under signatures there is no entry to spoil, so nothing to count.
    let at_public = verify_counted(proposal, &public());
    assert_eq!(
        (at_public.result.is_ok(), at_public.mac_fallbacks),
        (true, 0)
    );
}

/// A spoiled entry and a bad signature: still refused, and counted, since the backup had to
/// check the signature because its entry failed (only a faulty primary proposes such a request).
#[test]
fn a_spoiled_entry_with_a_bad_signature_is_refused_and_counted() {
    let mut spoiled = request();
    spoil_entry(&mut spoiled, 3);
    spoil_signature(&mut spoiled);
    let proposal = WireMessage::PrePrepare(pre_prepare(vec![spoiled]));
    assert_eq!(
        counted_at(3, proposal.clone()),
        (Err(RejectReason::BadSignature), 1)
    );
    let batched = verify_many(
        vec![
            WireMessage::PrePrepare(pre_prepare(vec![request()])),
            proposal.clone(),
        ],
        &keys_of(replica(3)),
    );
    assert_eq!(batched[0].result.as_ref().map(|_| ()), Ok(()));
    assert_eq!(
        batched[1].result.as_ref().map(|_| ()),
        Err(&RejectReason::BadSignature)
    );
    assert_eq!(batched[1].mac_fallbacks, 1);
    assert_eq!(
        counted_at(1, proposal),
        (Ok(()), 0),
        "a backup whose entry checks"
    );
}

#[test]
fn a_request_received_directly_must_be_signed() {
    let mut unsigned = request();
    let Seal::SignedAuthenticator { macs, .. } = unsigned.seal.clone() else {
        panic!("signed and authenticated");
    };
    unsigned.seal = Seal::Authenticator(macs);
    assert_eq!(
        verdict_at(0, WireMessage::Request(unsigned)),
        Err(RejectReason::Unsigned)
    );
}

#[test]
fn a_commit_rewritten_in_flight_or_claiming_another_sender_fails_its_mac() {
    let commit = || {
        let body = Commit {
            view: View(0),
            seq: Seq(4),
            digest: Digest::of(b"batch"),
        };
        Signed::authenticate(body, &sessions(replica(1)))
    };
    assert!(matches!(commit().seal, Seal::Authenticator(ref macs) if macs.len() == 4));
    for receiver in [0, 2, 3] {
        assert_eq!(verdict_at(receiver, WireMessage::Commit(commit())), Ok(()));
    }
    let mut rewritten = commit();
    rewritten.body.seq = Seq(5);
    assert_eq!(
        verdict_at(2, WireMessage::Commit(rewritten)),
        Err(RejectReason::BadMac)
    );
    let mut forged = commit();
    forged.signer = replica(3);
    assert_eq!(
        verdict_at(2, WireMessage::Commit(forged)),
        Err(RejectReason::BadMac)
    );
    // A replica of a signatures cluster holds no session keys and cannot check a MAC.
    assert_eq!(
        verify(WireMessage::Commit(commit()), &public()).map(|_| ()),
        Err(RejectReason::BadMac)
    );
}

/// A state transfer carries the COMMITs of a committed certificate as the sender stored them,
/// the receiver's own among them: the receiver must be able to check its own authenticator.
#[test]
fn a_replica_accepts_its_own_commit_when_a_peer_forwards_it_in_a_certificate() {
    let body = Commit {
        view: View(0),
        seq: Seq(4),
        digest: Digest::of(b"batch"),
    };
    let own = Signed::authenticate(body, &sessions(replica(2)));
    assert_eq!(verdict_at(2, WireMessage::Commit(own)), Ok(()));
}

#[test]
fn a_prepare_must_be_signed_because_view_changes_carry_it() {
    let body = Prepare {
        view: View(0),
        seq: Seq(1),
        digest: Digest::of(b"batch"),
    };
    let prepare = Signed::authenticate(body, &sessions(replica(2)));
    assert_eq!(
        verdict_at(1, WireMessage::Prepare(prepare)),
        Err(RejectReason::Unsigned)
    );
}

#[test]
fn a_reply_mac_convinces_its_client_and_nobody_else() {
    let body = Reply::new(
        View(0),
        ClientId(0),
        Timestamp(7),
        replica::kv::OpResult::Done,
    );
    let reply = Signed::mac_for(body, &sessions(replica(1)), CLIENT).expect("client is known");
    let at_client = verify(WireMessage::Reply(reply.clone()), &keys_of(CLIENT));
    assert!(at_client.is_ok(), "{at_client:?}");
    assert_eq!(
        verdict_at(2, WireMessage::Reply(reply)),
        Err(RejectReason::BadMac)
    );
}

/// A prepared certificate vouches for its batch: every replica accepts a VIEW-CHANGE that
/// carries one, whatever the client did to the requests' MACs and signature, so a client cannot
/// split honest replicas on which VIEW-CHANGEs are valid.
#[test]
fn every_replica_reaches_the_same_verdict_on_a_view_change_whatever_the_client_spoiled() {
    let mut spoiled = request();
    spoil_entry(&mut spoiled, 3);
    spoil_signature(&mut spoiled);
    let pre_prepare = pre_prepare(vec![spoiled]);
    let prepares = [1, 2]
        .into_iter()
        .map(|i| {
            let body = Prepare {
                view: View(0),
                seq: Seq(1),
                digest: pre_prepare.body.digest,
            };
            Signed::sign(body, replica(i), &key_from_seed(SEED, replica(i)))
        })
        .collect();
    let body = ViewChange {
        new_view: View(1),
        stable_seq: Seq(0),
        checkpoint_proof: Vec::new(),
        prepared: vec![PreparedProof {
            pre_prepare,
            prepares,
        }],
    };
    let view_change = Signed::sign(body, replica(1), &key_from_seed(SEED, replica(1)));
    let verdicts: Vec<_> = (0..4)
        .map(|r| verdict_at(r, WireMessage::ViewChange(view_change.clone())))
        .collect();
    assert_eq!(verdicts, vec![Ok(()); 4]);
}

#[test]
fn auth_modes_parse_by_name() {
    assert_eq!("macs".parse::<AuthMode>(), Ok(AuthMode::Macs));
    assert_eq!("signatures".parse::<AuthMode>(), Ok(AuthMode::Signatures));
    assert!("hmac".parse::<AuthMode>().is_err());
}
