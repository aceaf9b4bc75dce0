//! What the proxy knows about a frame, and which rules select it.

use super::rules::{Direction, Endpoint, Matcher};
use replica::message::{MessageKind, WireMessage};
use replica::{ReplicaId, Seq, View};

/// A frame in flight on one link, as far as rules can see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub from: Endpoint,
    pub to: ReplicaId,
    /// `Forward` or `Backward`, never `Both`.
    pub direction: Direction,
    /// `None` when the frame does not decode.
    pub kind: Option<MessageKind>,
    pub view: Option<View>,
    pub seq: Option<Seq>,
}

impl FrameInfo {
    pub fn new(
        from: Endpoint,
        to: ReplicaId,
        direction: Direction,
        decoded: Option<&WireMessage>,
    ) -> Self {
        FrameInfo {
            from,
            to,
            direction,
            kind: decoded.map(WireMessage::kind),
            view: decoded.and_then(WireMessage::view),
            seq: decoded.and_then(WireMessage::seq),
        }
    }

    /// The message kind's name, or `undecodable`.
    pub fn kind_label(&self) -> &'static str {
        self.kind.map_or("undecodable", MessageKind::name)
    }
}

impl Matcher {
    /// A frame that did not decode has no kind, view or seq, so it matches only matchers
    /// without conditions on them.
    pub fn matches(&self, frame: &FrameInfo) -> bool {
        let in_range = |range: Option<[u64; 2]>, value: Option<u64>| match range {
            None => true,
            Some([low, high]) => value.is_some_and(|v| low <= v && v <= high),
        };
        self.from
            .as_ref()
            .is_none_or(|from| from.contains(&frame.from))
            && self.to.as_ref().is_none_or(|to| to.contains(&frame.to))
            && (self.direction == Direction::Both || self.direction == frame.direction)
            && self
                .kinds
                .as_ref()
                .is_none_or(|kinds| frame.kind.is_some_and(|k| kinds.contains(&k)))
            && in_range(self.views, frame.view.map(|v| v.0))
            && in_range(self.seqs, frame.seq.map(|s| s.0))
    }
}

/// A short name for an endpoint in rule ids and logs: `r2`, `c7`, `r1-twin`.
pub fn endpoint_label(endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::Replica(r) => format!("r{r}"),
        Endpoint::Client(c) => format!("c{c}"),
        Endpoint::Twin(r) => format!("r{r}-twin"),
    }
}
