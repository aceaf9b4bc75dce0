//! Executing committed batches in sequence order, replying to clients, taking checkpoints.

use super::{Core, Timer};
use crate::crypto;
use crate::events::ReplicaEvent;
use crate::ids::{ClientId, Principal, Timestamp};
use crate::kv::OpResult;
use crate::message::{Checkpoint, Reply, Seal, Signed, WireMessage, reply_root_signing_bytes};
use crate::reply_tree;
use crate::service::Execution;

impl Core {
    /// Executes every committed batch that is next in sequence order.
    pub(super) fn execute_ready(&mut self) {
        let mut executed_any = false;
        loop {
            let next = self.last_executed.next();
            let Some(batch) = self.log.get(next).and_then(|s| s.committed.clone()) else {
                break;
            };
            for request in &batch.body.batch {
                let client = request.client();
                let timestamp = request.body.timestamp;
                let outcome = self.service.execute(client, timestamp, &request.body.op);
                let (result, duplicate) = match outcome {
                    Execution::Executed(result) => (result, false),
                    Execution::AlreadyExecuted(result) => (result, true),
                    Execution::Superseded => {
                        self.proposed.remove(&request.id());
                        continue;
                    }
                };
                self.event(ReplicaEvent::Execute {
                    seq: next,
                    request: request.id(),
                    op: request.body.op.name().to_string(),
                    result: result.to_string(),
                    duplicate,
                });
                self.reply(client, timestamp, result);
                self.recent_clients.insert(client, next);
                self.proposed.remove(&request.id());
                if self
                    .pending
                    .get(&client)
                    .is_some_and(|p| p.body.timestamp <= timestamp)
                {
                    self.pending.remove(&client);
                }
            }
            self.last_executed = next;
            executed_any = true;
            if next.0.is_multiple_of(self.params.checkpoint_interval) {
                self.take_checkpoint();
            }
        }
        if executed_any {
            self.view_change_timeout_ms = self.params.timeouts.view_change_ms;
            self.rearm_if_guarded_executed();
            if let Some(target) = self.fetching
                && self.last_executed >= target
            {
                self.fetching = None;
                self.cancel_timer(Timer::StateTransfer);
            }
            self.try_propose();
        }
    }

    /// Queues a reply; `sign_replies` signs everything queued in this step at once.
    pub(super) fn reply(&mut self, client: ClientId, timestamp: Timestamp, result: OpResult) {
        if self.replaying {
            return;
        }
        self.unsigned_replies
            .push(Reply::new(self.view, client, timestamp, result));
    }

    /// One signature over the tree of this step's replies, then one effect per reply; under
    /// `auth: macs`, one MAC per reply for its client instead.
    pub(super) fn sign_replies(&mut self) {
        if self.unsigned_replies.is_empty() {
            return;
        }
        let mut replies = std::mem::take(&mut self.unsigned_replies);
        if let Some(sessions) = self.keys.sessions() {
            for body in replies {
                let client = body.client;
                // A client outside the cluster file gets no reply (it could not check one).
                if let Some(reply) = Signed::mac_for(body, sessions, Principal::Client(client)) {
                    self.out.push(super::Effect::Reply { client, reply });
                }
            }
            return;
        }
        let root = reply_tree::build(&mut replies);
        let signer = Principal::Replica(self.params.id);
        let signature = crypto::sign(&self.key, &reply_root_signing_bytes(&root, signer));
        for body in replies {
            let client = body.client;
            let reply = Signed {
                signer,
                body,
                seal: Seal::Signature(signature),
            };
            self.out.push(super::Effect::Reply { client, reply });
        }
    }

    fn take_checkpoint(&mut self) {
        let seq = self.last_executed;
        let state_digest = self.service.digest();
        self.event(ReplicaEvent::CheckpointTaken {
            seq,
            state_digest: state_digest.to_hex(),
        });
        self.checkpoint_states.insert(seq, self.service.clone());
        let checkpoint = self.sign(Checkpoint { seq, state_digest });
        self.broadcast(WireMessage::Checkpoint(checkpoint.clone()));
        self.on_checkpoint(checkpoint);
    }
}
