//! The negative control: with f+1 = 2 of 4 replicas colluding on the same wrong replies,
//! PBFT's guarantee is void and a client accepts a wrong result. The oracle must see it.

mod support;

use replica::ReplicaId;
use replica::kv::OpResult;
use support::*;

#[test]
fn two_colluding_wrong_reply_replicas_make_a_client_accept_a_wrong_result() {
    let mut net = network(cluster(301));
    for liar in [ReplicaId(1), ReplicaId(2)] {
        install(&mut net, liar, "wrong-reply", &[], 301);
    }
    let mut driver = Driver::new(301);
    driver.reads_percent = 50;
    assert!(driver.run_ops(&mut net, 8, 60_000));
    let forged = OpResult::Value(Some("forged".into()));
    let fooled = net
        .completed()
        .iter()
        .filter(|op| op.result == forged)
        .count();
    assert!(fooled > 0, "no client accepted the colluders' result");
    // The oracle that passes with one liar flags this run: it can see f+1 faults.
    let (wrong, _) = sequential_oracle(&net, ReplicaId(0));
    assert!(
        wrong.iter().any(|w| w.accepted == "forged"),
        "the sequential-replay oracle missed the wrong results: {wrong:?}"
    );
}
