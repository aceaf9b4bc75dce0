//! The oracles that can judge a run while it happens, fed every honest replica's events as
//! the simulator records them: the same code the offline check runs over the files, so a
//! run stopped at its first violation gets the verdict the files give.

use crate::check::{AgreementOracle, CheckResult, StateAgreementOracle};
use crate::scenario::Oracle;
use crate::verdict::EarlyStop;
use replica::ReplicaId;
use replica::sim::SimNetwork;

pub struct OnlineOracles {
    honest: Vec<ReplicaId>,
    /// The scenario's `checks.oracles` among those that can run online.
    agreement_asked: bool,
    state_agreement_asked: bool,
    /// Per honest replica, how many of its events were already observed.
    seen: Vec<usize>,
    agreement: AgreementOracle,
    state_agreement: StateAgreementOracle,
}

impl OnlineOracles {
    pub fn new(honest: Vec<ReplicaId>, asked: &[Oracle]) -> OnlineOracles {
        let seen = vec![0; honest.len()];
        OnlineOracles {
            honest,
            agreement_asked: asked.contains(&Oracle::Agreement),
            state_agreement_asked: asked.contains(&Oracle::StateAgreement),
            seen,
            agreement: AgreementOracle::default(),
            state_agreement: StateAgreementOracle::default(),
        }
    }

    /// Observes the events recorded since the last call; the first violation stops the run.
    pub fn observe(&mut self, net: &SimNetwork) -> Result<(), EarlyStop> {
        for (index, replica) in self.honest.iter().enumerate() {
            let events = net.events(*replica);
            for event in &events[self.seen[index].min(events.len())..] {
                let violated: Option<CheckResult> =
                    if self.agreement_asked && self.agreement.observe(*replica, &event.event) {
                        Some(self.agreement.finish(&self.honest))
                    } else if self.state_agreement_asked
                        && self.state_agreement.observe(*replica, &event.event)
                    {
                        Some(self.state_agreement.finish())
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
