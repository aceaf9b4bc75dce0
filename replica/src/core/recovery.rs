//! Starting up, rebuilding from the write-ahead log, and retransmitting what peers may lack.

use super::{Core, CoreParams, Snapshot, Stable, Status, Timer, WalRecord};
use crate::crypto::KeyStore;
use crate::events::ReplicaEvent;
use crate::ids::Seq;
use crate::message::{FetchState, WireMessage};
use ed25519_dalek::SigningKey;
use std::sync::Arc;

impl Core {
    /// A replica rebuilt from its latest snapshot and the write-ahead log records after it.
    /// Reports `ReplicaEvent::Recovered` on its first `Input::Start`.
    pub fn recover(
        params: CoreParams,
        key: SigningKey,
        keys: Arc<KeyStore>,
        snapshot: Option<Snapshot>,
        records: Vec<WalRecord>,
    ) -> Core {
        let mut core = Core::new(params, key, keys);
        if let Some(snapshot) = snapshot {
            let digest = snapshot.state.digest();
            core.service = snapshot.state.clone();
            core.last_executed = snapshot.seq;
            core.view = snapshot.view;
            core.next_seq = snapshot.seq.next();
            core.stable = Stable {
                seq: snapshot.seq,
                digest,
                proof: snapshot.checkpoint_proof,
                state: snapshot.state,
            };
        }
        core.replaying = true;
        for record in &records {
            let WalRecord::Message(message) = record;
            core.on_message(message.clone());
        }
        core.replaying = false;
        // Replay sets no timer (`set_timer` is silent while replaying), so no flag may claim one
        // runs: `on_start` arms what the rebuilt state needs.
        core.view_change_timer_running = false;
        core.guarded = None;
        core.batch_timer_running = false;
        core.out.clear();
        core.wal_tail = records.clone();
        core.recovered = Some(ReplicaEvent::Recovered {
            view: core.view,
            stable_seq: core.stable.seq,
            last_executed: core.last_executed,
            records: records.len(),
        });
        core
    }

    pub(super) fn on_start(&mut self) {
        if let Some(event) = self.recovered.take() {
            self.event(event);
            // We may have missed a lot while down: ask whoever is ahead.
            self.broadcast(WireMessage::FetchState(self.sign(FetchState {
                have: self.last_executed,
            })));
        }
        self.set_timer(Timer::Retransmit, self.retransmit_ms);
        self.ensure_view_change_timer();
    }

    /// Re-sends this replica's part of unfinished work when nothing progressed since the last
    /// tick, backing off while nothing changes so an idle cluster stays quiet.
    pub(super) fn on_retransmit_timer(&mut self) {
        self.vote_resends.clear();
        self.new_view_forwarded.clear();
        self.fetches_answered.clear();
        let progressed = self.last_executed > self.executed_at_last_tick;
        self.executed_at_last_tick = self.last_executed;
        let base = super::base_retransmit_ms(&self.params.timeouts);
        if progressed {
            self.retransmit_ms = base;
        } else {
            let resent = self.retransmit_unfinished();
            self.retransmit_ms = if resent {
                (self.retransmit_ms * 2).min(super::MAX_RETRANSMIT_MS)
            } else {
                base
            };
        }
        self.set_timer(Timer::Retransmit, self.retransmit_ms);
    }

    fn retransmit_unfinished(&mut self) -> bool {
        let me = self.params.id;
        let mut messages = Vec::new();
        match self.status {
            Status::ViewChanging => {
                if let Some(vc) = self
                    .view_changes
                    .get(&me)
                    .filter(|vc| vc.body.new_view == self.view)
                {
                    messages.push(WireMessage::ViewChange(vc.clone()));
                }
            }
            Status::Normal => {
                let unfinished = self
                    .log
                    .iter()
                    .any(|(seq, slot)| *seq > self.last_executed || slot.committed.is_none());
                if unfinished {
                    for (_, slot) in self.log.iter().filter(|(_, slot)| slot.view == self.view) {
                        if let Some(pp) = slot
                            .pre_prepare
                            .as_ref()
                            .filter(|p| p.replica() == Some(me))
                        {
                            messages.push(WireMessage::PrePrepare(pp.clone()));
                        }
                        if let Some(p) = slot.prepares.get(&me) {
                            messages.push(WireMessage::Prepare(p.clone()));
                        }
                        if let Some(c) = slot.commits.get(&me) {
                            messages.push(WireMessage::Commit(c.clone()));
                        }
                    }
                }
                if !self.is_primary() {
                    let primary = self.primary();
                    let waiting: Vec<_> = self.pending.values().cloned().collect();
                    for request in waiting {
                        self.send(primary, WireMessage::Request(request));
                    }
                }
                let newest_unstable = self
                    .checkpoint_votes
                    .iter()
                    .next_back()
                    .and_then(|(_, votes)| votes.get(&me).cloned());
                if let Some(checkpoint) = newest_unstable {
                    messages.push(WireMessage::Checkpoint(checkpoint));
                }
            }
        }
        if self.log_has_work_above(self.last_executed) {
            // Peers that executed further answer with the committed certificates this replica
            // misses: a lost PRE-PREPARE or COMMIT near the end of the traffic is otherwise
            // never sent again (nobody else has unfinished work), and this replica would stay
            // behind, and time out into a view change alone, until the next checkpoint.
            messages.push(WireMessage::FetchState(self.sign(FetchState {
                have: self.last_executed,
            })));
        }
        let resent = !messages.is_empty();
        for message in messages {
            self.broadcast(message);
        }
        resent
    }

    /// Whether the log holds anything for a sequence number above `seq`.
    fn log_has_work_above(&self, seq: Seq) -> bool {
        self.log.iter().any(|(s, _)| *s > seq)
    }
}
