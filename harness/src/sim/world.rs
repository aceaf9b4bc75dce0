//! Building the simulated cluster from a plan, and reading its events back out.

use super::links::{HopLatency, SimProxy};
use crate::layout::cluster_config_for;
use crate::plan::Plan;
use crate::proxy::Endpoint;
use crate::scenario::Build;
use anyhow::Context;
use replica::crypto::key_from_seed;
use replica::events::EventLine;
use replica::node::StatsSnapshot;
use replica::sim::{CostModel, SimEvent, SimNetwork, SimWorld};
use replica::{Principal, ReplicaId};
use std::time::Duration;

/// The wall-clock time a simulated run's replica events count from (ns since the Unix
/// epoch): fixed, so event files are identical from run to run.
pub const SIM_EPOCH_NS: u64 = 1_000_000_000;

/// What one replica's work costs (`CostModel::CALIBRATED`).
pub fn calibrated_costs() -> CostModel {
    CostModel::CALIBRATED
}

/// One hop over loopback TCP through the proxy.
pub fn hop_latency() -> HopLatency {
    HopLatency {
        base: Duration::from_micros(120),
        jitter: Duration::from_micros(80),
    }
}

/// The plan's cluster in the simulator: its settings and keys, each replica's build, the
/// proxy's rule engine on every link.
pub fn build(plan: &Plan, proxy: &SimProxy) -> anyhow::Result<SimNetwork> {
    let config = cluster_config_for(plan, Endpoint::Replica(ReplicaId(0)))?;
    let replica_keys = plan
        .replicas
        .iter()
        .map(|r| key_from_seed(plan.key_seed, Principal::Replica(r.id)))
        .collect();
    let client_keys = plan
        .clients
        .iter()
        .map(|c| key_from_seed(plan.key_seed, Principal::Client(c.id)))
        .collect();
    let world = SimWorld {
        config,
        replica_keys,
        client_keys,
        costs: calibrated_costs(),
    };
    let mut net = SimNetwork::with_links(world, proxy.links())
        .context("cannot build the simulated cluster")?;
    for r in plan.replicas.iter().filter(|r| r.build == Build::Twin) {
        net.add_twin(r.id)
            .with_context(|| format!("cannot add the twin of replica {}", r.id))?;
    }
    for r in plan.replicas.iter().filter(|r| r.build == Build::Byzantine) {
        let behaviour = r
            .behaviour
            .as_ref()
            .with_context(|| format!("replica {} is byzantine but has no behaviour", r.id))?;
        let interceptor = byzantine::build(behaviour, r.behaviour_seed.unwrap_or(0));
        net.set_interceptor(r.id, interceptor)
            .with_context(|| format!("cannot install the behaviour of replica {}", r.id))?;
    }
    Ok(net)
}

/// One process's events as `events.jsonl` lines of `replica`, timed from `SIM_EPOCH_NS`.
pub fn event_lines(events: &[SimEvent], replica: ReplicaId) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let line = EventLine {
                time_ns: SIM_EPOCH_NS + e.at_ns,
                replica,
                event: e.event.clone(),
            };
            serde_json::to_string(&line).ok()
        })
        .collect()
}

/// One process's `stats.json`, its clock fields in virtual time.
pub fn stats_of(net: &SimNetwork, process: replica::sim::Endpoint) -> Option<StatsSnapshot> {
    let stats = net.process_stats(process)?;
    Some(StatsSnapshot {
        time_ns: SIM_EPOCH_NS + net.now_ns(),
        uptime_ms: net.now_ms(),
        ..stats
    })
}

/// One line on what the simulator did, for the log.
pub fn summary(net: &SimNetwork, actions: u64) -> String {
    let stats = net.stats();
    format!(
        "{actions} actions over {} ms of virtual time; {} frames sent, {} delivered, {} lost on links, {} lost to crashes",
        net.now_ms(),
        stats.sent,
        stats.delivered,
        stats.dropped_randomly + stats.dropped_by_fault,
        stats.lost_to_crash
    )
}
