//! A client flooding the primary with fresh signed requests costs the simulated replicas what
//! it costs the node: one signature check per turn, like every other sender, with the
//! replicas' own traffic never stuck behind the flood (`sim::intake`, after `node::intake`).
//! Before the simulator modelled that, every flood request queued and was charged in full, the
//! replicas fell seconds behind, and views changed over and over.

use replica::ids::{Principal, Timestamp};
use replica::kv::Operation;
use replica::message::{Request, Signed, WireMessage};
use replica::sim::{CostModel, SimConfig, SimNetwork};
use replica::{ClientId, ReplicaId, View};

const FLOODER: ClientId = ClientId(3);
const PRIMARY: ReplicaId = ReplicaId(0);

fn flood_request(key: &ed25519_dalek::SigningKey, timestamp: u64) -> WireMessage {
    let request = Request {
        client: FLOODER,
        timestamp: Timestamp(timestamp),
        op: Operation::Put {
            key: format!("flood-{timestamp}"),
            value: "x".into(),
        },
    };
    WireMessage::Request(Signed::sign(request, Principal::Client(FLOODER), key))
}

#[test]
fn a_request_flood_at_the_primary_does_not_stall_agreement() {
    let mut net = SimNetwork::new(SimConfig {
        seed: 9,
        costs: CostModel::CALIBRATED,
        ..SimConfig::default()
    })
    .expect("valid simulated cluster");
    let key = net.client_key(FLOODER).expect("a client key").clone();
    let honest = [ClientId(0), ClientId(1), ClientId(2)];
    let mut timestamp = 0;
    let mut submitted = 0;
    // Two seconds of 20 flood requests per millisecond (20,000/s, over 100x what the
    // primary can check), with the honest clients in a closed loop.
    for _ in 0..2000 {
        for _ in 0..20 {
            timestamp += 1;
            net.inject(PRIMARY, &flood_request(&key, timestamp))
                .expect("the primary exists");
        }
        for client in honest {
            if net.outstanding(client).is_none() {
                net.submit(
                    client,
                    Operation::Put {
                        key: format!("k{}", client.0),
                        value: format!("{submitted}"),
                    },
                )
                .expect("idle client");
                submitted += 1;
            }
        }
        net.run_for(1);
    }
    let honest_done = net
        .completed()
        .iter()
        .filter(|op| honest.contains(&op.client))
        .count();
    for replica in net.replica_ids() {
        let view = net.core(replica).expect("running").view();
        assert_eq!(
            view,
            View(0),
            "replica {replica} changed view under the flood"
        );
    }
    // Unflooded, each honest client completes an operation every few milliseconds.
    assert!(
        honest_done >= 300,
        "the honest clients completed {honest_done} operations in 2 s under the flood"
    );
}
