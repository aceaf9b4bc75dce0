//! Exactly-once execution of retransmitted and duplicated requests.

mod core_support;

use core_support::*;
use replica::events::ReplicaEvent;
use replica::kv::Operation;
use replica::message::{RequestId, WireMessage};
use replica::sim::{Endpoint, SimConfig, SimNetwork};
use replica::{ClientId, ReplicaId};

fn executions_of(net: &SimNetwork, replica: ReplicaId, id: RequestId) -> usize {
    count_events(
        net,
        replica,
        |e| matches!(e, ReplicaEvent::Execute { request, duplicate: false, .. } if *request == id),
    )
}

fn append(key: &str, value: &str) -> Operation {
    Operation::Append {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn a_request_replayed_after_it_completed_is_not_executed_again() {
    let mut net = network(SimConfig {
        seed: 5,
        clients: 1,
        ..SimConfig::default()
    });
    let client = ClientId(0);
    net.submit(client, append("log", "x")).expect("idle client");
    assert!(net.run_until(|n| n.completed().len() == 1, 10_000));
    let request = net.completed()[0].request.clone();
    for _ in 0..3 {
        for replica in net.replica_ids() {
            net.inject(replica, &WireMessage::Request(request.clone()))
                .expect("known replica");
        }
    }
    net.run_for(3_000);
    assert!(net.run_until(all_replicas_converged, 10_000));
    for replica in net.replica_ids() {
        assert_eq!(
            executions_of(&net, replica, request.id()),
            1,
            "replica {replica}"
        );
        let core = net.core(replica).expect("running");
        assert_eq!(core.service().kv.get("log"), Some("x"), "replica {replica}");
    }
}

#[test]
fn a_request_retransmitted_to_all_replicas_while_replies_are_lost_executes_once() {
    let mut net = network(SimConfig {
        seed: 6,
        clients: 1,
        ..SimConfig::default()
    });
    let client = ClientId(0);
    for replica in net.replica_ids() {
        net.block_link(Endpoint::Replica(replica), Endpoint::Client(client));
    }
    let id = net.submit(client, append("log", "y")).expect("idle client");
    // Several retransmissions to every replica, each relayed to the primary.
    let retries = 3 * net.config().timeouts.client_retry_ms;
    net.run_for(retries + 10);
    assert!(net.completed().is_empty(), "replies were blocked");
    net.heal();
    assert!(net.run_until(|n| n.completed().len() == 1, 10_000));
    assert_eq!(net.completed()[0].id(), id);
    assert!(net.run_until(all_replicas_converged, 10_000));
    for replica in net.replica_ids() {
        assert_eq!(executions_of(&net, replica, id), 1, "replica {replica}");
        let core = net.core(replica).expect("running");
        assert_eq!(core.service().kv.get("log"), Some("y"), "replica {replica}");
    }
}
