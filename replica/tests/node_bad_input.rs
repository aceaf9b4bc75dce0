//! Bad input on the wire is refused and counted; the process keeps serving.

mod node_support;

use node_support::*;
use replica::crypto::key_from_seed;
use replica::ids::{ClientId, Principal};
use replica::message::WireMessage;

#[test]
fn garbage_truncated_oversized_forged_and_unknown_frames_are_counted_and_the_node_keeps_serving() {
    let testnet = Testnet::new(20);
    let mut replica = testnet.start(1);
    let address = testnet.address(1);
    let client_key = testnet.client_key(0);

    // Garbage with a plausible length: does not decode, the connection is closed.
    let mut stream = connect(address);
    send(&mut stream, &[0, 0, 0, 10]);
    send(&mut stream, &[0xff; 10]);
    assert!(
        closed_by_server(&mut stream),
        "an undecodable frame ends its connection"
    );

    // Not our protocol at all: "GET " read as a length is far beyond the cap.
    let mut stream = connect(address);
    send(&mut stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed_by_server(&mut stream));

    // An oversized length prefix, refused before any payload is read.
    let mut stream = connect(address);
    send(&mut stream, &u32::MAX.to_be_bytes());
    assert!(closed_by_server(&mut stream));

    // A truncated frame: the sender gives up half-way.
    let whole = frame(&WireMessage::Request(signed_request(
        &client_key,
        0,
        1,
        put("a", "b"),
    )));
    let mut stream = connect(address);
    send(&mut stream, &whole[..whole.len() / 2]);
    drop(stream);

    // A forged signature and an unknown client on one connection, then a valid request on
    // the same connection: a refused message does not end a well-framed stream.
    let mut forged = signed_request(&client_key, 0, 2, put("a", "c"));
    forged.body.op = put("a", "forged");
    let stranger_key = key_from_seed(99, Principal::Client(ClientId(99)));
    let stranger = signed_request(&stranger_key, 99, 1, put("a", "d"));
    let mut stream = connect(address);
    send(&mut stream, &frame(&WireMessage::Request(forged)));
    send(&mut stream, &frame(&WireMessage::Request(stranger)));
    send(
        &mut stream,
        &frame(&WireMessage::Request(signed_request(
            &client_key,
            0,
            3,
            put("a", "e"),
        ))),
    );

    let stats = testnet.wait_for_stats(1, "every rejection and the valid request", |s| {
        s.rejected.get("unknown-sender") == Some(&1)
            && s.rejected.get("malformed-frame") == Some(&2)
            && s.messages_in.get("request") == Some(&1)
    });
    assert_eq!(
        stats.rejected.get("oversized-frame"),
        Some(&2),
        "{stats:#?}"
    );
    assert_eq!(stats.rejected.get("bad-signature"), Some(&1), "{stats:#?}");
    assert!(replica.is_running());

    // Still accepting connections afterwards.
    let mut fresh = connect(address);
    send(
        &mut fresh,
        &frame(&WireMessage::Request(signed_request(
            &client_key,
            0,
            4,
            put("z", "1"),
        ))),
    );
    testnet.wait_for_stats(1, "the request on a fresh connection", |s| {
        s.messages_in.get("request") == Some(&2)
    });
    assert!(replica.is_running(), "{}", testnet.stderr(1));
}

#[test]
fn a_flood_of_forged_messages_is_counted_in_full_but_logged_at_a_bounded_rate() {
    let testnet = Testnet::new(21);
    let mut replica = testnet.start(2);
    let client_key = testnet.client_key(1);
    let mut stream = connect(testnet.address(2));
    let mut burst = Vec::new();
    for timestamp in 1..=2000 {
        let mut request = signed_request(&client_key, 1, timestamp, put("k", "v"));
        if let Some(signature) = request.seal.signature_mut() {
            signature[5] ^= 0x10;
        }
        burst.extend(frame(&WireMessage::Request(request)));
    }
    send(&mut stream, &burst);
    testnet.wait_for_stats(2, "2000 bad signatures", |s| {
        s.rejected.get("bad-signature") == Some(&2000)
    });
    replica.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(replica.wait_exit().success());
    let events =
        std::fs::read_to_string(testnet.data_dir(2).join("events.jsonl")).expect("events.jsonl");
    let logged = events
        .lines()
        .filter(|l| l.contains("bad-signature"))
        .count();
    assert!(logged >= 1, "rejections are logged");
    assert!(
        logged < 2000,
        "but not every one of a flood: {logged} lines"
    );
}
