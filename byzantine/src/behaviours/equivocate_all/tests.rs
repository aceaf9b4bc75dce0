//! The interceptor on hand-built messages, under `auth: macs`, with a real `Core` behind its
//! context: who is told which digest, that each receiver accepts what it gets, and that a
//! retransmission repeats the same split.

use super::{EquivocateAll, Targets};
use ed25519_dalek::SigningKey;
use replica::auth::AuthMode;
use replica::config::{ClientEntry, ClusterConfig, ReplicaEntry};
use replica::core::{Core, CoreParams, Effect, Input};
use replica::crypto::{KeyStore, key_from_seed, public_key_hex};
use replica::digest::Digest;
use replica::ids::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};
use replica::kv::Operation;
use replica::message::{Commit, PrePrepare, Prepare, Request, Signed, WireMessage, batch_digest};
use replica::node::{InterceptContext, Interceptor};
use replica::verify::{Verified, verify};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SEED: u64 = 9;

struct Cluster {
    config: ClusterConfig,
    secrets: Vec<SigningKey>,
    /// Each replica's own key store, with its session keys.
    stores: Vec<Arc<KeyStore>>,
    client: SigningKey,
}

fn cluster() -> Cluster {
    let replica = |i| Principal::Replica(ReplicaId(i));
    let secrets: Vec<SigningKey> = (0..4).map(|i| key_from_seed(SEED, replica(i))).collect();
    let client = key_from_seed(SEED, Principal::Client(ClientId(0)));
    let addr = |i: u16| std::net::SocketAddr::from(([127, 0, 0, 1], 30_000 + i));
    let mut config = ClusterConfig::with_defaults(
        1,
        secrets
            .iter()
            .enumerate()
            .map(|(i, k)| ReplicaEntry {
                id: ReplicaId(i as u32),
                address: addr(i as u16),
                public_key: public_key_hex(&k.verifying_key()),
            })
            .collect(),
        vec![ClientEntry {
            id: ClientId(0),
            public_key: public_key_hex(&client.verifying_key()),
        }],
    );
    config.auth = AuthMode::Macs;
    let public = config.keys(Path::new("test")).expect("valid keys");
    let stores = secrets
        .iter()
        .enumerate()
        .map(|(i, k)| Arc::new(public.clone().with_sessions(replica(i as u32), k)))
        .collect();
    Cluster {
        config,
        secrets,
        stores,
        client,
    }
}

impl Cluster {
    fn core(&self, id: u32) -> Core {
        let i = id as usize;
        let params = CoreParams::from_config(&self.config, ReplicaId(id));
        Core::new(params, self.secrets[i].clone(), self.stores[i].clone())
    }

    fn ctx<'a>(&'a self, core: &'a Core, elapsed: Duration) -> InterceptContext<'a> {
        let i = core.id().0 as usize;
        InterceptContext {
            core,
            key: &self.secrets[i],
            keys: &self.stores[i],
            config: &self.config,
            elapsed,
        }
    }

    fn request(&self, timestamp: u64) -> Signed<Request> {
        let body = Request {
            client: ClientId(0),
            timestamp: Timestamp(timestamp),
            op: Operation::Put {
                key: format!("k{timestamp}"),
                value: "v".into(),
            },
        };
        Signed::sign(body, Principal::Client(ClientId(0)), &self.client)
    }

    fn signed<T: replica::message::Signable>(&self, body: T, by: u32) -> Signed<T> {
        Signed::sign(
            body,
            Principal::Replica(ReplicaId(by)),
            &self.secrets[by as usize],
        )
    }
}

/// (recipient, message) of every `Send` (the behaviour turns broadcasts into sends).
fn sends(out: Vec<(Duration, Effect)>) -> Vec<(ReplicaId, WireMessage)> {
    out.into_iter()
        .filter_map(|(_, e)| match e {
            Effect::Send { to, message } => Some((to, message)),
            _ => None,
        })
        .collect()
}

fn digest_of(message: &WireMessage) -> Option<Digest> {
    super::vote_of(message).map(|(_, d)| d)
}

/// Recipient -> digests it was told, each message checked at its receiver first.
fn told(
    cluster: &Cluster,
    sent: &[(ReplicaId, WireMessage)],
) -> BTreeMap<ReplicaId, BTreeSet<Digest>> {
    let mut told: BTreeMap<ReplicaId, BTreeSet<Digest>> = BTreeMap::new();
    for (to, message) in sent {
        let keys = &cluster.stores[to.0 as usize];
        assert!(
            verify(message.clone(), keys).is_ok(),
            "{:?} to {to}",
            message.kind()
        );
        if let Some(digest) = digest_of(message) {
            told.entry(*to).or_default().insert(digest);
        }
    }
    told
}

#[test]
fn a_primary_tells_two_groups_two_batches_with_commits_that_check_and_repeats_itself() {
    let cluster = cluster();
    let core = cluster.core(0);
    let ctx = cluster.ctx(&core, Duration::ZERO);
    let mut liar = EquivocateAll::new(SEED, Targets::Both, Duration::from_millis(20));
    let batch = vec![cluster.request(1), cluster.request(2)];
    let body = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: batch_digest(&batch),
        batch,
    };
    let mine = body.digest;
    let real = WireMessage::PrePrepare(cluster.signed(body, 0));
    let first = sends(liar.outbound(Effect::Broadcast(real.clone()), &ctx));
    let told_first = told(&cluster, &first);
    // Each backup: one PRE-PREPARE and its COMMIT, for one digest.
    assert_eq!(told_first.len(), 3);
    assert!(told_first.values().all(|d| d.len() == 1), "{told_first:?}");
    let groups: BTreeSet<&BTreeSet<Digest>> = told_first.values().collect();
    assert_eq!(groups.len(), 2, "not two groups: {told_first:?}");
    for (to, message) in &first {
        if let WireMessage::Commit(c) = message {
            assert!(
                matches!(c.seal, replica::message::Seal::Authenticator(_)),
                "COMMIT to {to} not sealed as the core seals it"
            );
        }
    }
    // The core sends the PRE-PREPARE again, and its COMMIT: the same lie to the same peers.
    let again = sends(liar.outbound(Effect::Broadcast(real), &ctx));
    let commit = Commit {
        view: View(0),
        seq: Seq(1),
        digest: mine,
    };
    let own_commit = Signed::authenticate(commit, cluster.stores[0].sessions().expect("macs"));
    let commits = sends(liar.outbound(Effect::Broadcast(WireMessage::Commit(own_commit)), &ctx));
    let mut later = again;
    later.extend(commits);
    assert_eq!(told(&cluster, &later), told_first);
}

#[test]
fn a_backup_waits_to_see_each_side_then_votes_each_peer_its_own_digest() {
    let cluster = cluster();
    let core = cluster.core(1);
    let mut liar = EquivocateAll::new(SEED, Targets::Both, Duration::from_millis(20));
    let (a, b) = (Digest([1; 32]), Digest([2; 32]));
    let prepare = |digest, by| {
        let body = Prepare {
            view: View(0),
            seq: Seq(1),
            digest,
        };
        WireMessage::Prepare(cluster.signed(body, by))
    };
    let at = |ms| cluster.ctx(&core, Duration::from_millis(ms));
    // Its own PREPARE (for a): nobody's side is known yet, so everything waits.
    let own = Effect::Broadcast(prepare(a, 1));
    assert!(sends(liar.outbound(own.clone(), &at(0))).is_empty());
    // r2 backs a, r3 backs b (the primary split them): each peer gets its own side's votes.
    for (digest, by) in [(a, 2), (b, 3)] {
        let input = Input::Message(Verified::from_own_log(prepare(digest, by)));
        liar.inbound(input, &at(1));
    }
    let released = sends(liar.tick(&at(2)));
    let told_now = told(&cluster, &released);
    assert_eq!(told_now.get(&ReplicaId(2)), Some(&BTreeSet::from([a])));
    assert_eq!(told_now.get(&ReplicaId(3)), Some(&BTreeSet::from([b])));
    // The primary's side is not known (no PRE-PREPARE seen): it waits out the hold, then
    // the seeded split decides; a retransmission repeats every choice.
    let after_hold = sends(liar.tick(&at(25)));
    assert!(after_hold.iter().all(|(to, _)| *to == ReplicaId(0)));
    assert!(!after_hold.is_empty());
    let mut all = released;
    all.extend(after_hold);
    let first = told(&cluster, &all);
    let again = sends(liar.outbound(own, &at(30)));
    assert_eq!(told(&cluster, &again), first);
}
