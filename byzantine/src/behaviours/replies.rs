//! `wrong-reply`: lies to clients. Every reply's result is replaced by a fabricated one and
//! re-signed with the replica's own key; with `early`, reads are answered the moment the
//! request is seen (in a REQUEST or a PRE-PREPARE), before any honest replica has executed it.
//!
//! The fabrication is a pure function of the operation and the true result, so several
//! replicas running this behaviour collude: they tell the same lie (the negative control).

use crate::rewrite::{MEMORY_CAP, me, now, pass, sign_as};
use replica::core::{Effect, Input};
use replica::kv::{OpResult, Operation};
use replica::message::{Reply, Request, RequestId, Signed, WireMessage};
use replica::node::{InterceptContext, Interceptor};
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

pub(crate) struct WrongReply {
    value: String,
    early: bool,
    /// Reads seen in this step, answered with the next effect that leaves.
    to_answer: Vec<Signed<Request>>,
    answered: BTreeSet<RequestId>,
    answered_order: VecDeque<RequestId>,
}

impl WrongReply {
    pub(crate) fn new(value: String, early: bool) -> WrongReply {
        WrongReply {
            value,
            early,
            to_answer: Vec::new(),
            answered: BTreeSet::new(),
            answered_order: VecDeque::new(),
        }
    }

    /// A result that differs from `truth` (same shape where the type allows it).
    fn fabricate(&self, truth: &OpResult) -> OpResult {
        let lie = Some(self.value.clone());
        match truth {
            OpResult::Value(v) if *v == lie => OpResult::Value(None),
            OpResult::Value(_) | OpResult::Done => OpResult::Value(lie),
            OpResult::Swapped(b) => OpResult::Swapped(!b),
        }
    }

    fn remember_early(&mut self, request: &Signed<Request>) {
        if !self.early
            || !matches!(request.body.op, Operation::Get { .. })
            || self.answered.contains(&request.id())
        {
            return;
        }
        if self.answered_order.len() >= MEMORY_CAP
            && let Some(oldest) = self.answered_order.pop_front()
        {
            self.answered.remove(&oldest);
        }
        self.answered.insert(request.id());
        self.answered_order.push_back(request.id());
        self.to_answer.push(request.clone());
    }
}

impl Interceptor for WrongReply {
    fn inbound(&mut self, input: Input, _ctx: &InterceptContext<'_>) -> Vec<Input> {
        if let Input::Message(verified) = &input {
            match verified.message() {
                WireMessage::Request(request) => self.remember_early(request),
                WireMessage::PrePrepare(pp) => {
                    for request in &pp.body.batch {
                        self.remember_early(request);
                    }
                }
                _ => {}
            }
        }
        vec![input]
    }

    fn outbound(&mut self, effect: Effect, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let mut out = self.answer_early(ctx);
        match effect {
            Effect::Reply { client, reply } => {
                let body = Reply {
                    result: self.fabricate(&reply.body.result),
                    ..reply.body
                };
                out.push(now(Effect::Reply {
                    client,
                    reply: sign_as(body, me(ctx), ctx.key),
                }));
            }
            other => out.extend(pass(other)),
        }
        out
    }

    /// In case a step that saw a read produced nothing to ride along with.
    fn tick(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        self.answer_early(ctx)
    }
}

impl WrongReply {
    fn answer_early(&mut self, ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        std::mem::take(&mut self.to_answer)
            .into_iter()
            .map(|request| {
                let body = Reply::new(
                    ctx.core.view(),
                    request.body.client,
                    request.body.timestamp,
                    OpResult::Value(Some(self.value.clone())),
                );
                now(Effect::Reply {
                    client: request.body.client,
                    reply: sign_as(body, me(ctx), ctx.key),
                })
            })
            .collect()
    }
}
