//! The oracles that can judge a run while it happens, fed every honest replica's events as
//! the simulator records them: the same code the offline check runs over the files, so a
//! run stopped at its first violation gets the verdict the files give.

use crate::check::{
    AgreementOracle, BoundedResourcesOracle, CheckResult, NoAmnesiaOracle, ResourceBounds,
    StateAgreementOracle,
};
use crate::scenario::Oracle;
use crate::verdict::EarlyStop;
use replica::ReplicaId;
use replica::sim::SimNetwork;

/// `BoundedResourcesOracle` too, which judges the resources samples (the simulator's have no
/// memory figure).
pub struct OnlineOracles {
    honest: Vec<ReplicaId>,
    /// The scenario's `checks.oracles` among those that can run online.
    agreement_asked: bool,
    state_agreement_asked: bool,
    no_amnesia_asked: bool,
    /// Built at the first observation, from the simulated cluster's settings; `None` while
    /// not asked for.
    resources: Option<BoundedResourcesOracle>,
    resources_asked: bool,
    /// Per honest replica, how many of its events were already observed.
    seen: Vec<usize>,
    agreement: AgreementOracle,
    state_agreement: StateAgreementOracle,
    no_amnesia: NoAmnesiaOracle,
}

impl OnlineOracles {
    pub fn new(honest: Vec<ReplicaId>, asked: &[Oracle]) -> OnlineOracles {
        let seen = vec![0; honest.len()];
        OnlineOracles {
            honest,
            agreement_asked: asked.contains(&Oracle::Agreement),
            state_agreement_asked: asked.contains(&Oracle::StateAgreement),
            no_amnesia_asked: asked.contains(&Oracle::NoAmnesia),
            resources: None,
            resources_asked: asked.contains(&Oracle::BoundedResources),
            seen,
            agreement: AgreementOracle::default(),
            state_agreement: StateAgreementOracle::default(),
            no_amnesia: NoAmnesiaOracle::default(),
        }
    }

    /// Observes the events recorded since the last call; the first violation stops the run.
    pub fn observe(&mut self, net: &SimNetwork) -> Result<(), EarlyStop> {
        if self.resources_asked && self.resources.is_none() {
            let bounds = ResourceBounds::new(net.config());
            // The events files time lines from `SIM_EPOCH_NS`, the history's zero.
            let started_at_ns = super::SIM_EPOCH_NS;
            self.resources = Some(BoundedResourcesOracle::new(bounds, started_at_ns));
        }
        for (index, replica) in self.honest.iter().enumerate() {
            let events = net.events(*replica);
            for event in &events[self.seen[index].min(events.len())..] {
                let violated: Option<CheckResult> = if self.agreement_asked
                    && self.agreement.observe(*replica, &event.event)
                {
                    Some(self.agreement.finish(&self.honest))
                } else if self.state_agreement_asked
                    && self.state_agreement.observe(*replica, &event.event)
                {
                    Some(self.state_agreement.finish())
                } else if self.no_amnesia_asked && self.no_amnesia.observe(*replica, &event.event) {
                    Some(self.no_amnesia.finish())
                } else if let Some(resources) = self.resources.as_mut()
                    && resources.observe(*replica, super::SIM_EPOCH_NS + event.at_ns, &event.event)
                {
                    Some(resources.finish(&self.honest))
                } else {
                    None
                };
                if let Some(verdict) = violated {
                    return Err(EarlyStop::Violation {
                        oracle: verdict.name,
                        at_ns: event.at_ns,
                        summary: verdict.summary,
                    });
                }
            }
            self.seen[index] = events.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{self, CheckOutcome};
    use replica::events::EventLine;
    use replica::kv::Operation;
    use replica::sim::{Endpoint, SimConfig};
    use std::collections::BTreeMap;

    /// The primary of view 0 crashes after some traffic and restarts: from its log (a crash
    /// the fault model allows), or with its log wiped (`SimNetwork::wipe_disk`, beyond the
    /// fault model), while its peers cannot reach it to bring it up to date. Every replica is
    /// judged as honest, online after every simulator step; returns the network and the
    /// online verdict.
    fn primary_restarts(wipe: bool) -> (SimNetwork, Result<(), EarlyStop>) {
        let mut net = SimNetwork::new(SimConfig {
            seed: 7,
            ..SimConfig::default()
        })
        .expect("the default simulated cluster is valid");
        let honest: Vec<ReplicaId> = net.replica_ids().collect();
        let mut online = OnlineOracles::new(honest, &Oracle::ALL);
        let mut verdict = Ok(());
        let mut count = 0u64;
        let mut next_op = |_| {
            count += 1;
            Operation::Put {
                key: format!("k{}", count % 3),
                value: format!("v{count}"),
            }
        };
        let mut observe = |net: &SimNetwork| {
            if verdict.is_ok() {
                verdict = online.observe(net);
            }
        };
        net.run_workload(5, 30_000, 100_000, &mut next_op, &mut observe)
            .expect("warm-up");
        let primary = ReplicaId(0);
        net.crash(primary).expect("running");
        if wipe {
            net.wipe_disk(primary).expect("crashed");
        }
        for peer in net.replica_ids().filter(|r| *r != primary) {
            net.block_link(Endpoint::Replica(peer), Endpoint::Replica(primary));
        }
        net.restart(primary).expect("crashed");
        for client in net.idle_clients() {
            net.submit(client, next_op(client)).expect("idle");
        }
        let deadline = net.now_ms() + 500;
        while net.now_ms() < deadline && net.step_once() {
            observe(&net);
        }
        (net, verdict)
    }

    fn event_files(net: &SimNetwork) -> BTreeMap<ReplicaId, Vec<EventLine>> {
        net.replica_ids()
            .map(|r| {
                let lines = net.events(r).iter().map(|e| EventLine {
                    time_ns: e.at_ns,
                    replica: r,
                    event: e.event.clone(),
                });
                (r, lines.collect())
            })
            .collect()
    }

    #[test]
    fn a_primary_restarted_from_its_log_passes_and_one_whose_log_was_wiped_is_stopped() {
        let (net, verdict) = primary_restarts(false);
        assert_eq!(verdict, Ok(()));
        let honest: Vec<ReplicaId> = net.replica_ids().collect();
        let offline = check::no_amnesia(&event_files(&net), &honest);
        assert_eq!(offline.outcome, CheckOutcome::Pass, "{}", offline.summary);
        assert_eq!(offline.details["counts"]["restarts"], 1);

        let (net, verdict) = primary_restarts(true);
        let Err(EarlyStop::Violation {
            oracle, summary, ..
        }) = verdict
        else {
            panic!("amnesia not caught online: {verdict:?}");
        };
        assert_eq!(oracle, "no-amnesia");
        eprintln!("stopped: {summary}");
        assert!(
            summary.contains("replica 0 sent pre-prepare view 0 seq"),
            "{summary}"
        );
        // The files say the same: a new batch where the primary had proposed another before.
        let offline = check::no_amnesia(&event_files(&net), &honest);
        assert_eq!(offline.outcome, CheckOutcome::Violation);
        let conflict = &offline.details["conflicts"][0];
        assert_eq!(conflict["replica"], 0);
        assert_eq!(conflict["rule"], "vote-digest");
        assert_eq!(conflict["before"]["incarnation"], 0);
        assert_eq!(conflict["after"]["incarnation"], 1);
        assert_ne!(conflict["before"]["digest"], conflict["after"]["digest"]);
        assert!(
            conflict["before"]["line"].as_u64() < conflict["after"]["line"].as_u64(),
            "{conflict}"
        );
    }
}
