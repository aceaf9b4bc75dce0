//! Driving the simulated clients: each completes a number of operations, one at a time.

use super::SimNetwork;
use crate::ids::ClientId;
use crate::kv::Operation;
use std::collections::BTreeMap;

/// Why `run_workload` stopped before every client finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadStop {
    /// Virtual time ran past the deadline (or nothing was left to happen).
    Deadline,
    /// More frames were sent than the caller allowed: messages multiply.
    Flood { frames: u64 },
}

impl SimNetwork {
    /// Each client completes `per_client` more operations drawn from `next_op`, one at a time,
    /// within `max_ms` of virtual time and `max_frames` frames; `observe` sees the network
    /// after every step.
    pub fn run_workload(
        &mut self,
        per_client: u64,
        max_ms: u64,
        max_frames: u64,
        mut next_op: impl FnMut(ClientId) -> Operation,
        mut observe: impl FnMut(&SimNetwork),
    ) -> Result<(), WorkloadStop> {
        let deadline = self.now_ns() + max_ms * 1_000_000;
        let flood_at = self.stats().sent.saturating_add(max_frames);
        let mut submitted: BTreeMap<ClientId, u64> = self.client_ids().map(|c| (c, 0)).collect();
        loop {
            let idle = self.idle_clients();
            for client in &idle {
                let count = submitted.entry(*client).or_default();
                if *count < per_client {
                    // An idle client always accepts a request.
                    if self.submit(*client, next_op(*client)).is_ok() {
                        *count += 1;
                    }
                }
            }
            let all_submitted = submitted.values().all(|c| *c >= per_client);
            if all_submitted && self.idle_clients().len() == submitted.len() {
                return Ok(());
            }
            if self.stats().sent > flood_at {
                return Err(WorkloadStop::Flood { frames: max_frames });
            }
            match self.next_action_ns() {
                Some(at) if at <= deadline => {
                    self.step_once();
                    observe(self);
                }
                _ => return Err(WorkloadStop::Deadline),
            }
        }
    }
}
