//! Four replica processes on loopback: requests in, signed replies out on the client's own
//! connection, and a `kill -9` that the log turns into a benign crash.

mod node_support;

use node_support::*;
use replica::events::{EventLine, ReplicaEvent};
use replica::ids::{ClientId, Timestamp};
use replica::kv::OpResult;
use replica::message::WireMessage;
use std::net::TcpStream;

/// Sends one request to every replica (as a retrying client would) and returns the replies
/// that came back on those connections, one per replica that answered.
fn broadcast_and_collect(
    testnet: &Testnet,
    streams: &mut [TcpStream],
    timestamp: u64,
    value: &str,
) -> Vec<(u32, OpResult)> {
    let request = signed_request(&testnet.client_key(0), 0, timestamp, put("key", value));
    let bytes = frame(&WireMessage::Request(request));
    for stream in streams.iter_mut() {
        send(stream, &bytes);
    }
    let handles: Vec<_> = streams
        .iter()
        .map(|s| s.try_clone().expect("clone stream"))
        .enumerate()
        .map(|(i, mut stream)| {
            std::thread::spawn(move || {
                loop {
                    match read_message(&mut stream) {
                        Ok(WireMessage::Reply(reply))
                            if reply.body.timestamp == Timestamp(timestamp) =>
                        {
                            assert_eq!(reply.body.client, ClientId(0));
                            assert_eq!(reply.replica().map(|r| r.0), Some(i as u32));
                            return Some((i as u32, reply.body.result));
                        }
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
            })
        })
        .collect();
    handles
        .into_iter()
        .filter_map(|h| h.join().expect("reader thread"))
        .collect()
}

fn connect_all(testnet: &Testnet, ids: &[u32]) -> Vec<TcpStream> {
    ids.iter().map(|id| connect(testnet.address(*id))).collect()
}

#[test]
fn four_replicas_answer_requests_on_the_clients_connections_with_matching_replies() {
    let testnet = Testnet::new(30);
    let _replicas: Vec<_> = (0..4).map(|id| testnet.start(id)).collect();
    let mut streams = connect_all(&testnet, &[0, 1, 2, 3]);
    for timestamp in 1..=20 {
        let replies = broadcast_and_collect(&testnet, &mut streams, timestamp, "v");
        let done = replies.iter().filter(|(_, r)| *r == OpResult::Done).count();
        assert!(
            done >= 2,
            "request {timestamp}: f+1 = 2 matching replies needed, got {replies:?}\n{}",
            testnet.stderr(0)
        );
    }
    let stats = testnet.wait_for_stats(0, "execution of 20 requests", |s| {
        s.last_executed.0 >= 1 && s.messages_out.contains_key("reply")
    });
    assert!(stats.bytes_out > 0);
    assert!(stats.messages_in.contains_key("prepare") || stats.messages_in.contains_key("commit"));
}

#[test]
fn a_replica_killed_with_sigkill_recovers_from_its_log_and_rejoins() {
    let testnet = Testnet::new(31);
    let mut replicas: Vec<_> = (0..4).map(|id| testnet.start(id)).collect();
    let mut streams = connect_all(&testnet, &[0, 1, 2, 3]);
    for timestamp in 1..=10 {
        let replies = broadcast_and_collect(&testnet, &mut streams, timestamp, "before");
        assert!(replies.len() >= 2, "{replies:?}");
    }
    replicas[3].signal(nix::sys::signal::Signal::SIGKILL);
    replicas[3].wait_exit();
    let mut streams = connect_all(&testnet, &[0, 1, 2]);
    for timestamp in 11..=15 {
        let replies = broadcast_and_collect(&testnet, &mut streams, timestamp, "during");
        assert!(replies.len() >= 2, "with one replica down: {replies:?}");
    }
    replicas[3] = testnet.start(3);
    let events = testnet.data_dir(3).join("events.jsonl");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        let recovered = text
            .lines()
            .filter_map(|l| serde_json::from_str::<EventLine>(l).ok())
            .any(|l| matches!(l.event, ReplicaEvent::Recovered { .. }));
        if recovered {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica 3 never reported recovery\n{}",
            testnet.stderr(3)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut streams = connect_all(&testnet, &[0, 1, 2, 3]);
    for timestamp in 16..=20 {
        let replies = broadcast_and_collect(&testnet, &mut streams, timestamp, "after");
        assert!(replies.len() >= 2, "after restart: {replies:?}");
    }
}
