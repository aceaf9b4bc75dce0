//! Starvation, judged beside window liveness: in a window with at most f faulty replicas and
//! no network fault, one honest client waits at least the bound for an answer while others are
//! served. The cluster-wide stall search cannot see it (operations keep completing), yet PBFT
//! promises that every correct client's request executes: a primary that orders some clients'
//! requests and never others' must be replaced.

use super::windows::{Stall, WindowSpec, fault_free_windows, operations, stalls_in};
use replica::ClientId;
use serde::{Deserialize, Serialize};
use workloads::history::HistoryEvent;

/// One honest client's stall while the others completed operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Starved {
    pub client: ClientId,
    #[serde(flatten)]
    pub stall: Stall,
    /// Operations of other honest clients that completed during the stall.
    pub others_completed: u64,
}

/// Every honest client's stalls in the judged windows, during which someone else was served.
pub fn starved(spec: &WindowSpec, history: &[HistoryEvent]) -> Vec<Starved> {
    let (_, everyone) = operations(history, spec.clients);
    let windows = fault_free_windows(spec);
    let mut out = Vec::new();
    for client in spec.clients {
        let (ops, completions) = operations(history, std::slice::from_ref(client));
        for (window, before) in &windows {
            let stalls = stalls_in(spec, window, before, &ops, &completions).unwrap_or_default();
            for stall in stalls {
                // The client completed nothing in the stall, so every completion in it is another's.
                let others_completed = everyone
                    .iter()
                    .filter(|t| **t > stall.from_ns && **t < stall.to_ns)
                    .count() as u64;
                if others_completed > 0 {
                    out.push(Starved {
                        client: *client,
                        stall,
                        others_completed,
                    });
                }
            }
        }
    }
    out.sort_by_key(|s| (s.stall.from_ns, s.client));
    out
}

#[cfg(test)]
mod tests {
    use super::super::windows::test_event as event;
    use super::*;
    use std::collections::BTreeSet;
    use workloads::history::EventType;

    const S: u64 = 1_000_000_000;

    /// `client` completes an operation every 100 ms in [from, to) s.
    fn served(client: u32, from: u64, to: u64) -> Vec<HistoryEvent> {
        let mut h = Vec::new();
        let mut t = from * 1000;
        while t + 100 <= to * 1000 {
            h.push(event(client, EventType::Invoke, t));
            h.push(event(client, EventType::Ok, t + 50));
            t += 100;
        }
        h
    }

    fn spec(clients: &[ClientId]) -> WindowSpec<'_> {
        WindowSpec {
            faults: &[],
            byzantine: BTreeSet::new(),
            f: 1,
            standing_rules: 0,
            from_ns: 0,
            to_ns: 40 * S,
            heal_ns: 30 * S,
            bound_ns: 10 * S,
            grace_ns: 8 * S,
            clients,
        }
    }

    #[test]
    fn a_client_left_waiting_while_another_is_served_is_starved() {
        let clients = [ClientId(0), ClientId(1)];
        let mut history = served(0, 0, 40);
        // Client 1's operation is never answered; it gives up at 20 s and tries again.
        history.push(event(1, EventType::Invoke, 1_000));
        history.push(event(1, EventType::Info, 20_000));
        history.push(event(1, EventType::Invoke, 20_000));
        let found = starved(&spec(&clients), &history);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].client, ClientId(1));
        // The judged window ends at the heal (30 s).
        assert_eq!(
            (found[0].stall.from_ns, found[0].stall.to_ns),
            (8 * S, 30 * S)
        );
        assert!(found[0].others_completed > 200);
    }

    #[test]
    fn clients_answered_within_the_bound_or_stalled_together_are_not_starved() {
        let clients = [ClientId(0), ClientId(1)];
        // Both served, client 1 with one slow answer under the bound.
        let mut history = served(0, 0, 40);
        history.extend(served(1, 0, 20));
        history.push(event(1, EventType::Invoke, 20_000));
        history.push(event(1, EventType::Ok, 29_000));
        assert!(starved(&spec(&clients), &history).is_empty());
        // Nobody served from 15 s on: a stall of the cluster, not starvation.
        let mut history = served(0, 0, 15);
        history.extend(served(1, 0, 15));
        history.push(event(0, EventType::Invoke, 15_000));
        history.push(event(1, EventType::Invoke, 15_000));
        assert!(starved(&spec(&clients), &history).is_empty());
    }
}
