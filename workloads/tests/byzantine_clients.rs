//! Each Byzantine client behaviour produces what it claims: the timestamps, sizes, rates and
//! recipients of its frames, the same for the same seed; `never-read` never reads; and
//! `mac-attack`'s authenticators fail for exactly the backups it chose, checked with the
//! replicas' own session keys.

use replica::ids::{ClientId, Principal, ReplicaId};
use replica::kv::Operation;
use replica::message::{Request, Signed, WireMessage};
use replica::wire::{DEFAULT_MAX_FRAME, FrameError, LENGTH_PREFIX, decode_payload, split_frame};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use workloads::byzc::{Attack, AttackConfig, Outgoing, SendClass, Target, validate};

const CLIENT: ClientId = ClientId(3);

fn attack(behaviour: &str, params: &[(&str, &str)], seed: u64, max_frame: usize) -> Attack {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let spec = validate(behaviour, &params).expect("valid behaviour");
    Attack::new(
        spec,
        AttackConfig {
            client: CLIENT,
            key: replica::crypto::key_from_seed(9, Principal::Client(CLIENT)),
            sessions: None,
            replicas: 4,
            max_frame,
            seed,
            unpaced_gap: Duration::from_micros(50),
        },
    )
}

/// Every frame due within the first `ms` milliseconds.
fn frames_until(attack: &mut Attack, ms: u64) -> Vec<Outgoing> {
    attack.poll_all(Duration::from_millis(ms) - Duration::from_nanos(1))
}

fn request(out: &Outgoing, max_frame: usize) -> Signed<Request> {
    let (payload, used) = split_frame(&out.frame, max_frame)
        .expect("frame splits")
        .expect("frame complete");
    assert_eq!(used, out.frame.len());
    match decode_payload(payload, max_frame).expect("frame decodes") {
        WireMessage::Request(request) => request,
        other => panic!("not a request: {:?}", other.kind()),
    }
}

#[test]
fn replay_timestamps_replays_executed_and_old_requests_and_reuses_and_lowers_timestamps() {
    let mut attack = attack("replay-timestamps", &[("interval_ms", "20")], 5, 1 << 20);
    let frames = frames_until(&mut attack, 2000);
    // 100 rounds: one fresh request (or an out-of-order pair) and three more frames each.
    let fresh: Vec<&Outgoing> = frames
        .iter()
        .filter(|o| o.class == SendClass::Fresh)
        .collect();
    assert_eq!(fresh.len(), 100);
    assert!(fresh.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    let mut classes = BTreeSet::new();
    let mut latest: Option<&Outgoing> = None;
    let mut earlier: Vec<&Outgoing> = Vec::new();
    let mut previous: Option<&Outgoing> = None;
    for out in &frames {
        classes.insert(out.class);
        assert_eq!(out.to, Target::All, "{:?} goes to every replica", out.class);
        let signed = request(out, 1 << 20);
        assert_eq!(signed.body.client, CLIENT);
        assert_eq!(signed.body.timestamp.0, out.timestamp);
        match out.class {
            SendClass::Fresh => {
                if let Some(latest) = latest {
                    earlier.push(latest);
                }
                latest = Some(out);
            }
            SendClass::ReplayExecuted => {
                let latest = latest.expect("a fresh request first");
                assert_eq!(
                    out.frame, latest.frame,
                    "byte for byte the latest fresh request"
                );
            }
            SendClass::ReplayOld => {
                let latest = latest.expect("a fresh request first");
                assert!(earlier.iter().any(|e| e.frame == out.frame));
                assert!(out.timestamp < latest.timestamp);
            }
            SendClass::DuplicateTimestamp => {
                let latest = latest.expect("a fresh request first");
                assert_eq!(out.timestamp, latest.timestamp);
                assert_ne!(signed.body.op, request(latest, 1 << 20).body.op);
            }
            SendClass::OlderTimestamp => {
                let latest = latest.expect("a fresh request first");
                assert!(out.timestamp < latest.timestamp);
                assert!(fresh.iter().all(|f| f.timestamp != out.timestamp));
            }
            SendClass::OutOfOrder => {
                let previous = previous.expect("sent right after a fresh request");
                assert_eq!(previous.class, SendClass::Fresh);
                assert!(out.timestamp < previous.timestamp);
            }
            other => panic!("replay-timestamps sent {other:?}"),
        }
        // Only the client's own keys are written.
        if !matches!(signed.body.op, Operation::Get { .. }) {
            assert!(signed.body.op.key().starts_with("byzc-3-"));
        }
        previous = Some(out);
    }
    let expected: BTreeSet<SendClass> = [
        SendClass::Fresh,
        SendClass::ReplayExecuted,
        SendClass::ReplayOld,
        SendClass::DuplicateTimestamp,
        SendClass::OlderTimestamp,
        SendClass::OutOfOrder,
    ]
    .into();
    assert_eq!(classes, expected);
    // Replays come within the round, after its fresh request.
    for out in frames
        .iter()
        .filter(|o| o.class == SendClass::ReplayExecuted)
    {
        assert!(out.at.as_millis() % 20 > 0);
    }
}

#[test]
fn the_same_seed_gives_the_same_frames_and_another_seed_other_ones() {
    for behaviour in ["replay-timestamps", "flood", "never-read"] {
        let run = |seed| {
            let mut a = attack(behaviour, &[], seed, 1 << 20);
            frames_until(&mut a, 300)
                .into_iter()
                .map(|o| (o.at, o.class, o.to, o.frame))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1), "{behaviour}");
        assert_ne!(run(1), run(2), "{behaviour}");
    }
}

#[test]
fn max_size_requests_are_just_under_exactly_at_and_just_over_the_cap() {
    let cap = 64 * 1024;
    let mut attack = attack("max-size-requests", &[("interval_ms", "100")], 7, cap);
    let frames = frames_until(&mut attack, 1000);
    assert_eq!(frames.len(), 30, "three sizes per round, ten rounds");
    for (round, chunk) in frames.chunks(3).enumerate() {
        let classes: Vec<SendClass> = chunk.iter().map(|o| o.class).collect();
        assert_eq!(
            classes,
            [SendClass::UnderCap, SendClass::AtCap, SendClass::OverCap]
        );
        assert_eq!(chunk[0].at, Duration::from_millis(100 * round as u64));
        for out in chunk {
            assert_eq!(out.to, Target::All);
            assert_eq!(out.payload_len() + LENGTH_PREFIX, out.frame.len());
        }
        let under = chunk[0].payload_len();
        assert!((cap - 4096..cap).contains(&under), "{under}");
        assert_eq!(chunk[1].payload_len(), cap);
        let over = chunk[2].payload_len();
        assert!((cap + 1..=cap + 1024).contains(&over), "{over}");
        // What a replica with this cap does with them: reads the first two, refuses the third
        // on its length prefix alone.
        for out in &chunk[..2] {
            let signed = request(out, cap);
            assert_eq!(signed.body.timestamp.0, out.timestamp);
            assert!(matches!(
                signed.body.op,
                Operation::Get { .. } | Operation::Cas { .. }
            ));
        }
        assert!(matches!(
            split_frame(&chunk[2].frame, cap),
            Err(FrameError::Oversized { .. })
        ));
        assert!(chunk.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    }
}

#[test]
fn an_at_cap_request_fills_the_default_frame_cap_exactly() {
    let mut attack = attack(
        "max-size-requests",
        &[("sizes", "at")],
        1,
        DEFAULT_MAX_FRAME,
    );
    let frames = frames_until(&mut attack, 1);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].payload_len(), DEFAULT_MAX_FRAME);
    assert_eq!(frames[0].class, SendClass::AtCap);
    request(&frames[0], DEFAULT_MAX_FRAME);
}

#[test]
fn flood_sends_its_rate_with_a_new_timestamp_each_to_the_primary_and_to_all() {
    let mut attack = attack("flood", &[("rate", "1000")], 3, 1 << 20);
    let frames = frames_until(&mut attack, 1000);
    assert_eq!(frames.len(), 1000, "1000 per second");
    assert!(frames.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    let to_primary = frames
        .iter()
        .filter(|o| o.class == SendClass::FloodPrimary)
        .count();
    assert!((400..600).contains(&to_primary), "{to_primary} of 1000");
    for out in &frames {
        let expected = match out.class {
            SendClass::FloodPrimary => Target::Replica(ReplicaId(0)),
            SendClass::FloodAll => Target::All,
            other => panic!("flood sent {other:?}"),
        };
        assert_eq!(out.to, expected);
    }
    // The primary it aims at follows the views its replies show.
    attack.observe_view(6);
    let later = attack.poll_all(Duration::from_millis(2000));
    assert!(
        later
            .iter()
            .filter(|o| o.class == SendClass::FloodPrimary)
            .all(|o| o.to == Target::Replica(ReplicaId(2)))
    );
    // `max`: paced only by the simulator's gap (50 us here), or by nothing at all.
    let mut unpaced = attack_with_gap(Duration::from_micros(50));
    assert_eq!(frames_until(&mut unpaced, 100).len(), 2000);
    let mut unpaced = attack_with_gap(Duration::ZERO);
    let burst: Vec<Outgoing> = (0..5000)
        .map_while(|_| unpaced.poll(Duration::ZERO))
        .collect();
    assert_eq!(burst.len(), 5000, "due at once, as fast as it can be taken");
    let timestamps: BTreeSet<u64> = burst.iter().map(|o| o.timestamp).collect();
    assert_eq!(timestamps.len(), 5000, "many distinct timestamps");
}

fn attack_with_gap(gap: Duration) -> Attack {
    let spec = validate("flood", &BTreeMap::new()).expect("valid");
    Attack::new(
        spec,
        AttackConfig {
            client: CLIENT,
            key: replica::crypto::key_from_seed(9, Principal::Client(CLIENT)),
            sessions: None,
            replicas: 4,
            max_frame: 1 << 20,
            seed: 4,
            unpaced_gap: gap,
        },
    )
}

#[test]
fn never_read_writes_a_large_value_then_reads_it_again_and_again() {
    let mut attack = attack("never-read", &[("value_bytes", "20000")], 2, 1 << 20);
    let frames = frames_until(&mut attack, 2000);
    assert_eq!(
        frames.len(),
        400 - 9 * 2,
        "200 per second, less the gap after each write"
    );
    let writes: Vec<&Outgoing> = frames
        .iter()
        .filter(|o| o.class == SendClass::LargeValue)
        .collect();
    assert_eq!(writes.len(), 2, "one write of the value a second");
    for write in &writes {
        match request(write, 1 << 20).body.op {
            Operation::Put { key, value } => {
                assert_eq!(key, "byzc-3-large");
                assert_eq!(value.len(), 20_000);
            }
            other => panic!("{other:?}"),
        }
    }
    let reads: Vec<&Outgoing> = frames
        .iter()
        .filter(|o| o.class == SendClass::LargeRead)
        .collect();
    let distinct: BTreeSet<u64> = reads.iter().map(|o| o.timestamp).collect();
    assert_eq!(
        distinct.len(),
        2,
        "one new read a second, the rest its copies"
    );
    assert!(reads.iter().all(|o| o.to == Target::All));
}

/// A fake replica that answers every request with a large frame: it can write only as long
/// as its client reads. The `never-read` client keeps sending and never reads, so the fake
/// replica's writes stop while the requests keep arriving.
#[test]
fn a_never_read_client_keeps_sending_and_lets_its_replies_pile_up() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let address = listener.local_addr().expect("address");
        let received = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let stuck = Arc::new(AtomicBool::new(false));
        let server = {
            let (received, written, stuck) = (received.clone(), written.clone(), stuck.clone());
            tokio::spawn(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                let (mut reader, mut writer) = stream.into_split();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = reader.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
                let reply = vec![7u8; 64 * 1024];
                loop {
                    let write = writer.write_all(&reply);
                    match tokio::time::timeout(Duration::from_millis(500), write).await {
                        Ok(Ok(())) => {
                            written.fetch_add(reply.len() as u64, Ordering::Relaxed);
                        }
                        Ok(Err(_)) => return,
                        Err(_) => {
                            stuck.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            })
        };
        let attack = attack(
            "never-read",
            &[("rate", "500"), ("value_bytes", "100")],
            1,
            1 << 20,
        );
        let options = workloads::byzc::net::NetOptions {
            addresses: vec![address],
            max_frame: 1 << 20,
        };
        let client = tokio::spawn(workloads::byzc::net::run(
            attack,
            options,
            Duration::from_secs(2),
        ));
        server.await.expect("server task");
        assert!(
            stuck.load(Ordering::Relaxed),
            "the fake replica's writes block"
        );
        let before = received.load(Ordering::Relaxed);
        let tally = client.await.expect("client task");
        let after = received.load(Ordering::Relaxed);
        assert!(
            after > before,
            "requests keep coming after the replies stopped moving"
        );
        assert_eq!(tally.replies, 0);
        assert!(tally.total_frames() > 500, "{tally:?}");
        assert!(
            written.load(Ordering::Relaxed) < 64 << 20,
            "only the socket buffers' worth went out"
        );
    });
}

/// A cluster of four replicas and client 3 under `auth: macs`: each replica's key store with
/// its session keys, and the client's session keys.
struct MacCluster {
    replicas: Vec<replica::crypto::KeyStore>,
    client: std::sync::Arc<replica::auth::SessionKeys>,
}

fn mac_cluster() -> MacCluster {
    use replica::crypto::{KeyStore, key_from_seed};
    let public = KeyStore::new(
        (0..4)
            .map(|i| key_from_seed(9, Principal::Replica(ReplicaId(i))).verifying_key())
            .collect(),
        [(
            CLIENT,
            key_from_seed(9, Principal::Client(CLIENT)).verifying_key(),
        )]
        .into(),
    );
    let replicas = (0..4)
        .map(|i| {
            let me = Principal::Replica(ReplicaId(i));
            public.clone().with_sessions(me, &key_from_seed(9, me))
        })
        .collect();
    let me = Principal::Client(CLIENT);
    let client = public.clone().with_sessions(me, &key_from_seed(9, me));
    MacCluster {
        replicas,
        client: std::sync::Arc::new(client.sessions().expect("macs").clone()),
    }
}

fn mac_attack(params: &[(&str, &str)], seed: u64, cluster: &MacCluster) -> Attack {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Attack::new(
        validate("mac-attack", &params).expect("valid"),
        AttackConfig {
            client: CLIENT,
            key: replica::crypto::key_from_seed(9, Principal::Client(CLIENT)),
            sessions: Some(cluster.client.clone()),
            replicas: 4,
            max_frame: 1 << 20,
            seed,
            unpaced_gap: Duration::from_micros(50),
        },
    )
}

/// What each replica makes of one `mac-attack` request: whether its own authenticator entry
/// checks, and whether the signature verifies.
fn entries_that_check(request: &Signed<Request>, cluster: &MacCluster) -> Vec<ReplicaId> {
    let replica::message::Seal::SignedAuthenticator { macs, .. } = &request.seal else {
        panic!("a request under macs carries a signature and an authenticator");
    };
    assert_eq!(macs.len(), 4, "one entry per replica");
    let bytes = request.signing_bytes();
    (0..4u32)
        .map(ReplicaId)
        .filter(|r| {
            cluster.replicas[r.0 as usize]
                .sessions()
                .expect("macs")
                .check_entry(Principal::Client(CLIENT), &bytes, macs)
        })
        .collect()
}

fn signature_verifies(request: &Signed<Request>, cluster: &MacCluster) -> bool {
    let check = request.signature_check().expect("signed");
    replica::crypto::verify_all(&cluster.replicas[0], [&check]).is_ok()
}

/// A backup's verdict on a PRE-PREPARE from `primary` that proposes `request`: what the
/// defence decides (its own entry, else the signature).
fn backup_accepts(
    request: &Signed<Request>,
    primary: ReplicaId,
    backup: ReplicaId,
    cluster: &MacCluster,
) -> Result<(), replica::verify::RejectReason> {
    use replica::message::{PrePrepare, batch_digest};
    let batch = vec![request.clone()];
    let signer = Principal::Replica(primary);
    let pre_prepare = Signed::sign(
        PrePrepare {
            view: replica::ids::View(primary.0 as u64),
            seq: replica::ids::Seq(1),
            digest: batch_digest(&batch),
            batch,
        },
        signer,
        &replica::crypto::key_from_seed(9, signer),
    );
    replica::verify::verify(
        WireMessage::PrePrepare(pre_prepare),
        &cluster.replicas[backup.0 as usize],
    )
    .map(|_| ())
}

#[test]
fn mac_attack_spoils_exactly_the_chosen_backups_entries_and_keeps_the_primarys_and_the_signature() {
    let cluster = mac_cluster();
    let mut attack = mac_attack(&[("rate", "100")], 7, &cluster);
    let frames = frames_until(&mut attack, 1000);
    assert_eq!(frames.len(), 100, "100 per second");
    assert!(frames.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    for out in &frames {
        assert_eq!(out.class, SendClass::SpoiledMacs);
        assert_eq!(
            out.to,
            Target::Replica(ReplicaId(0)),
            "to the primary of view 0"
        );
        assert_eq!(out.spoiled, vec![ReplicaId(1), ReplicaId(2), ReplicaId(3)]);
        let request = request(out, 1 << 20);
        assert_eq!(request.body.timestamp.0, out.timestamp);
        match &request.body.op {
            Operation::Get { key } | Operation::Put { key, .. } | Operation::Append { key, .. } => {
                assert!(key.starts_with("byzc-3-"), "{key}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(entries_that_check(&request, &cluster), vec![ReplicaId(0)]);
        assert!(signature_verifies(&request, &cluster));
        // The defence: the primary checked the signature; each backup's entry fails and it
        // falls back on the signature, so it accepts what the primary proposes.
        for backup in 1..4 {
            assert_eq!(
                backup_accepts(&request, ReplicaId(0), ReplicaId(backup), &cluster),
                Ok(())
            );
        }
    }

    // `spoil: 2` in view 5 (primary 1): a seeded choice of two of the backups 0, 2, 3 per
    // request; every other entry checks.
    let mut attack = mac_attack(&[("rate", "100"), ("spoil", "2")], 7, &cluster);
    attack.observe_view(5);
    let frames = frames_until(&mut attack, 1000);
    let mut choices = BTreeSet::new();
    for out in &frames {
        assert_eq!(out.to, Target::Replica(ReplicaId(1)));
        assert_eq!(out.spoiled.len(), 2);
        assert!(!out.spoiled.contains(&ReplicaId(1)), "never the primary");
        let checks = entries_that_check(&request(out, 1 << 20), &cluster);
        let expected: Vec<ReplicaId> = (0..4)
            .map(ReplicaId)
            .filter(|r| !out.spoiled.contains(r))
            .collect();
        assert_eq!(checks, expected, "exactly the chosen backups' entries fail");
        choices.insert(out.spoiled.clone());
    }
    assert_eq!(
        choices.len(),
        3,
        "every pair of backups is chosen: {choices:?}"
    );

    // The same seed, the same frames; another seed, other choices.
    let mut again_view5 = mac_attack(&[("rate", "100"), ("spoil", "2")], 7, &cluster);
    again_view5.observe_view(5);
    let same = frames_until(&mut again_view5, 1000);
    assert!(
        frames
            .iter()
            .zip(&same)
            .all(|(a, b)| a.frame == b.frame && a.spoiled == b.spoiled && a.to == b.to)
    );
    assert_eq!(frames.len(), same.len());
    let mut other = mac_attack(&[("rate", "100"), ("spoil", "2")], 8, &cluster);
    other.observe_view(5);
    let other = frames_until(&mut other, 1000);
    assert!(
        frames
            .iter()
            .zip(&other)
            .any(|(a, b)| a.spoiled != b.spoiled)
    );
}

#[test]
fn mac_attack_with_an_invalid_signature_is_refused_by_the_primary_and_by_every_backup() {
    let cluster = mac_cluster();
    let mut attack = mac_attack(&[("rate", "50"), ("signature", "invalid")], 3, &cluster);
    let frames = frames_until(&mut attack, 1000);
    assert_eq!(frames.len(), 50);
    for out in &frames {
        assert_eq!(out.class, SendClass::BadSignature);
        let request = request(out, 1 << 20);
        assert!(!signature_verifies(&request, &cluster));
        assert_eq!(entries_that_check(&request, &cluster), vec![ReplicaId(0)]);
        // The primary checks the signature of a request it receives directly.
        assert_eq!(
            replica::verify::verify(WireMessage::Request(request.clone()), &cluster.replicas[0])
                .map(|_| ()),
            Err(replica::verify::RejectReason::BadSignature)
        );
        // Even proposed by a primary, neither the spoiled entry nor the signature checks.
        for backup in 1..4 {
            assert_eq!(
                backup_accepts(&request, ReplicaId(0), ReplicaId(backup), &cluster),
                Err(replica::verify::RejectReason::BadSignature)
            );
        }
    }
}

/// Under `signatures` (an `--auth` override; a scenario cannot ask for it) there is no
/// authenticator: the requests are only signed, and say so.
#[test]
fn mac_attack_without_session_keys_sends_signed_requests_and_says_so() {
    let mut attack = attack("mac-attack", &[("rate", "10")], 1, 1 << 20);
    let frames = frames_until(&mut attack, 1000);
    assert_eq!(frames.len(), 10);
    for out in &frames {
        assert_eq!(out.class, SendClass::SignedOnly);
        assert!(out.spoiled.is_empty());
        assert!(matches!(
            request(out, 1 << 20).seal,
            replica::message::Seal::Signature(_)
        ));
    }
}
