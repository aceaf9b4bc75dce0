//! Partition rules cut exactly the links between groups, and only those.

mod proxy_support;

use harness::proxy::{Direction, Endpoint, LinkSpec, partition_rules};
use proxy_support::*;
use replica::wire::encode_payload;
use replica::{ClientId, ReplicaId};
use std::collections::BTreeSet;
use std::net::SocketAddr;

fn r(id: u32) -> Endpoint {
    Endpoint::Replica(ReplicaId(id))
}

/// Every directed replica link of a 4-replica cluster, plus one client link per replica.
fn cluster_links() -> Vec<LinkSpec> {
    let anywhere: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let mut links = Vec::new();
    for from in 0..4 {
        for to in 0..4 {
            if from != to {
                links.push(link(r(from), to, anywhere));
            }
        }
        links.push(link(Endpoint::Client(ClientId(1)), from, anywhere));
    }
    links
}

/// `(from, to, direction)` of every rule, checking each rule is a certain drop of one link.
fn cuts(groups: &[Vec<Endpoint>], one_way: bool) -> BTreeSet<(String, u32, String)> {
    partition_rules("p", groups, one_way, &cluster_links())
        .into_iter()
        .map(|rule| {
            assert!(rule.id.starts_with("p:"), "{}", rule.id);
            assert_eq!(
                rule.action,
                harness::proxy::Action::Drop { probability: 1.0 }
            );
            let from = rule.matcher.from.as_deref().expect("one link");
            let to = rule.matcher.to.as_deref().expect("one link");
            assert_eq!((from.len(), to.len()), (1, 1));
            let direction = format!("{:?}", rule.matcher.direction);
            (harness::proxy::endpoint_label(from[0]), to[0].0, direction)
        })
        .collect()
}

fn both(pairs: &[(u32, u32)]) -> BTreeSet<(String, u32, String)> {
    pairs
        .iter()
        .map(|&(from, to)| (format!("r{from}"), to, "Both".to_string()))
        .collect()
}

#[test]
fn halves_cut_every_link_across_and_none_within_or_to_clients() {
    let groups = vec![vec![r(0), r(1)], vec![r(2), r(3)]];
    let expected = both(&[
        (0, 2),
        (0, 3),
        (1, 2),
        (1, 3),
        (2, 0),
        (2, 1),
        (3, 0),
        (3, 1),
    ]);
    assert_eq!(cuts(&groups, false), expected);
}

#[test]
fn isolating_one_replica_cuts_its_links_both_ways() {
    let groups = vec![vec![r(2)], vec![r(0), r(1), r(3)]];
    let expected = both(&[(2, 0), (2, 1), (2, 3), (0, 2), (1, 2), (3, 2)]);
    assert_eq!(cuts(&groups, false), expected);
}

#[test]
fn a_bridge_node_in_both_groups_keeps_its_links() {
    let groups = vec![vec![r(0), r(1), r(2)], vec![r(2), r(3)]];
    assert_eq!(
        cuts(&groups, false),
        both(&[(0, 3), (1, 3), (3, 0), (3, 1)])
    );
}

#[test]
fn a_ring_cuts_only_the_non_neighbours() {
    let groups = vec![
        vec![r(0), r(1)],
        vec![r(1), r(2)],
        vec![r(2), r(3)],
        vec![r(3), r(0)],
    ];
    assert_eq!(
        cuts(&groups, false),
        both(&[(0, 2), (2, 0), (1, 3), (3, 1)])
    );
}

#[test]
fn a_one_way_partition_cuts_only_traffic_from_the_earlier_group() {
    let groups = vec![vec![r(0)], vec![r(1), r(2), r(3)]];
    let cut = cuts(&groups, true);
    let expected: BTreeSet<(String, u32, String)> = [
        ("r0", 1, "Forward"),
        ("r0", 2, "Forward"),
        ("r0", 3, "Forward"),
        ("r1", 0, "Backward"),
        ("r2", 0, "Backward"),
        ("r3", 0, "Backward"),
    ]
    .into_iter()
    .map(|(f, t, d)| (f.to_string(), t, d.to_string()))
    .collect();
    assert_eq!(cut, expected);
    assert!(
        partition_rules("p", &groups, true, &cluster_links())
            .iter()
            .all(|rule| rule.matcher.direction != Direction::Both)
    );
}

#[tokio::test]
async fn applied_partition_blocks_links_across_and_heals_by_prefix() {
    let mut within = Target::start(false).await;
    let mut across = Target::start(false).await;
    let running = start_proxy(
        vec![link(r(0), 1, within.addr), link(r(0), 2, across.addr)],
        1,
    )
    .await;
    let links = vec![link(r(0), 1, within.addr), link(r(0), 2, across.addr)];
    let rules = partition_rules(
        "halves",
        &[vec![r(0), r(1)], vec![r(2), r(3)]],
        false,
        &links,
    );
    assert_eq!(rules.len(), 1);
    running.proxy.set_rules(rules);
    let mut to_1 = FramedConn::dial(running.proxy.listen_addrs()[0]).await;
    let mut to_2 = FramedConn::dial(running.proxy.listen_addrs()[1]).await;
    to_1.send(&commit(1)).await;
    to_2.send(&commit(1)).await;
    assert_eq!(within.next_payload().await, encode_payload(&commit(1)));
    wait_until_received(&running.proxy, 2).await;
    running.proxy.handle().remove_rules_with_prefix("halves");
    to_2.send(&commit(2)).await;
    assert_eq!(
        across.next_payload().await,
        encode_payload(&commit(2)),
        "commit 1 was cut, commit 2 got through after healing"
    );
    let log = running.finish().await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["rule"], "halves:r0->r2");
}
