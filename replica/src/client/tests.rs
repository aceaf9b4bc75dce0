use super::*;
use crate::crypto::key_from_seed;

const SEED: u64 = 3;
const CLIENT: ClientId = ClientId(0);
const MS: Duration = Duration::from_millis(1);

fn keys() -> Arc<KeyStore> {
    let replicas = (0..4)
        .map(|i| key_from_seed(SEED, Principal::Replica(ReplicaId(i))).verifying_key())
        .collect();
    let clients = [(
        CLIENT,
        key_from_seed(SEED, Principal::Client(CLIENT)).verifying_key(),
    )];
    Arc::new(KeyStore::new(replicas, clients.into_iter().collect()))
}

fn client(deadline: Option<Duration>) -> ClientCore {
    ClientCore::new(
        CLIENT,
        key_from_seed(SEED, Principal::Client(CLIENT)),
        keys(),
        Quorums { f: 1 },
        ClientTiming {
            retry: 100 * MS,
            deadline,
        },
    )
}

fn reply(to: &Signed<Request>, from: u32, view: u64, result: OpResult) -> Signed<Reply> {
    let body = Reply::new(View(view), CLIENT, to.body.timestamp, result);
    let replica = ReplicaId(from);
    Signed::sign(
        body,
        Principal::Replica(replica),
        &key_from_seed(SEED, Principal::Replica(replica)),
    )
}

fn get() -> Operation {
    Operation::Get { key: "k".into() }
}

#[test]
fn completes_on_f_plus_one_matching_results_and_follows_the_view_they_vouch_for() {
    let mut c = client(None);
    let request = c.prepare(get(), 0);
    c.submit(Duration::ZERO, request.clone());
    assert_eq!(
        c.take_transmits(),
        vec![ClientTransmit::To(ReplicaId(0), request.clone())]
    );
    let a = OpResult::Value(Some("a".into()));
    let b = OpResult::Value(Some("b".into()));
    assert_eq!(
        c.handle_reply(MS, ReplicaId(0), reply(&request, 0, 2, a.clone())),
        Ok(None)
    );
    assert_eq!(
        c.handle_reply(MS, ReplicaId(0), reply(&request, 0, 2, a.clone())),
        Ok(None),
        "the same replica twice is still one vote"
    );
    assert_eq!(
        c.handle_reply(MS, ReplicaId(1), reply(&request, 1, 2, b)),
        Ok(None),
        "a different result"
    );
    let Ok(Some(ClientOutcome::Completed(done))) =
        c.handle_reply(5 * MS, ReplicaId(3), reply(&request, 3, 1, a.clone()))
    else {
        panic!("two distinct replicas agree");
    };
    assert_eq!(done.result, a);
    assert_eq!(done.latency, 5 * MS);
    assert_eq!(done.answered, vec![ReplicaId(0), ReplicaId(3)]);
    assert!(c.outstanding().is_none());
    // Views 2 and 1 were vouched for: only view 1 is known to be reached by an honest one.
    assert_eq!(c.view(), View(1));
    assert_eq!(c.believed_primary(), ReplicaId(1));
}

#[test]
fn without_a_decision_it_resends_to_all_and_gives_up_at_the_deadline() {
    let mut c = client(Some(250 * MS));
    let request = c.prepare(get(), 0);
    c.submit(Duration::ZERO, request.clone());
    c.take_transmits();
    assert_eq!(c.poll_timeout(), Some(100 * MS));
    assert_eq!(c.handle_timeout(99 * MS), None);
    assert!(c.take_transmits().is_empty(), "not yet due");
    assert_eq!(c.handle_timeout(100 * MS), None);
    assert_eq!(
        c.take_transmits(),
        vec![ClientTransmit::ToAll(request.clone())]
    );
    assert_eq!(c.poll_timeout(), Some(200 * MS));
    c.handle_timeout(200 * MS);
    assert_eq!(
        c.poll_timeout(),
        Some(250 * MS),
        "the last wait is cut short"
    );
    let Some(ClientOutcome::TimedOut { waited, needed, .. }) = c.handle_timeout(250 * MS) else {
        panic!("gave up at the deadline");
    };
    assert_eq!((waited, needed), (250 * MS, 2));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn timestamps_strictly_increase_and_replies_to_another_request_are_refused() {
    let mut c = client(None);
    let first = c.prepare(get(), 0);
    c.submit(Duration::ZERO, first.clone());
    let stale = reply(&first, 0, 0, OpResult::Done);
    let second = c.prepare(get(), 0);
    assert_eq!(second.body.timestamp, Timestamp(first.body.timestamp.0 + 1));
    assert_eq!(c.prepare(get(), 1_000).body.timestamp, Timestamp(1_000));
    c.submit(MS, second);
    assert_eq!(
        c.handle_reply(MS, ReplicaId(0), stale),
        Err(ReplyDrop::NotForThisRequest)
    );
}
