//! One `(view, seq)` as the equivocator plays it: what its own core backs, the conflicting
//! digest, which peer is told which, and the core's messages still waiting for that choice.

use crate::rewrite::reseal;
use replica::digest::Digest;
use replica::ids::{ReplicaId, Seq, View};
use replica::message::{Commit, MessageKind, PrePrepare, Prepare, Seal, Signed, WireMessage};
use replica::node::InterceptContext;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub(super) struct Round {
    pub view: View,
    pub seq: Seq,
    /// What this replica's own core backs.
    pub mine: Digest,
    /// The other side's digest: the proposer's alternate batch, a digest another replica was
    /// seen to back, or (until one is seen) a made-up one, which withholds the vote.
    pub alt: Digest,
    /// Whether `alt` is held by someone, rather than made up.
    pub alt_real: bool,
    /// As the proposer: the alternate batch's PRE-PREPARE, signed with its own key.
    pub alternate: Option<Signed<PrePrepare>>,
    /// Whether this replica is the primary of `view` (it proposes; it sends no PREPARE).
    pub proposer: bool,
    /// The seeded side told `alt` when no peer is seen to hold another digest.
    pub deceived: BTreeSet<ReplicaId>,
    /// Fixed at the first message to each peer, so retransmissions repeat the same lie.
    pub given: BTreeMap<ReplicaId, Digest>,
    /// The core's messages to peers whose digest is not chosen yet.
    pub held: Vec<(ReplicaId, WireMessage)>,
    /// When the round opened, on the replica's clock: a backup waits at most `hold` from here.
    pub opened: Duration,
}

impl Round {
    /// Another replica backs `digest` for this round: the first that differs from ours is the
    /// other side, so votes lent to it are worth something.
    pub fn learn(&mut self, digest: Digest) {
        if !self.alt_real && digest != self.mine {
            self.alt = digest;
            self.alt_real = true;
        }
    }

    /// The digest `peer` is told (and whether this is the first choice for it), or `None`
    /// while a backup still waits (`!wait_over`) to see which side `peer` is on. `holds` is
    /// what `peer` was seen to back. A peer on the other side gets a vote for its own digest (the vote it
    /// needs to commit there); with no other side in sight the seeded split decides, the
    /// deceived part getting `alt`.
    pub fn decide(
        &mut self,
        peer: ReplicaId,
        holds: Option<Digest>,
        wait_over: bool,
    ) -> Option<(Digest, bool)> {
        if let Some(given) = self.given.get(&peer) {
            return Some((*given, false));
        }
        let digest = match holds {
            Some(theirs) if theirs != self.mine => theirs,
            Some(_) if self.alt_real => self.mine,
            _ if self.proposer || wait_over => {
                if self.deceived.contains(&peer) {
                    self.alt
                } else {
                    self.mine
                }
            }
            _ => return None,
        };
        self.given.insert(peer, digest);
        Some((digest, true))
    }

    /// The core's `message` as `to` is told it: for `digest`, sealed as the original was.
    pub fn as_told(
        &self,
        message: WireMessage,
        digest: Digest,
        to: ReplicaId,
        ctx: &InterceptContext<'_>,
    ) -> WireMessage {
        match message {
            WireMessage::PrePrepare(pp) if pp.body.digest != digest => {
                // Only the alternate batch can back another digest validly; a peer on a side
                // this replica has no batch for gets the real one.
                match self.alternate.as_ref().filter(|a| a.body.digest == digest) {
                    Some(alternate) => WireMessage::PrePrepare(alternate.clone()),
                    None => WireMessage::PrePrepare(pp),
                }
            }
            WireMessage::Prepare(p) if p.body.digest != digest => {
                let body = Prepare { digest, ..p.body };
                WireMessage::Prepare(reseal(body, &p.seal, to, ctx))
            }
            WireMessage::Commit(c) if c.body.digest != digest => {
                let body = Commit { digest, ..c.body };
                WireMessage::Commit(reseal(body, &c.seal, to, ctx))
            }
            other => other,
        }
    }

    /// The rest of this replica's votes for `digest`, sent to `to` at once with the first
    /// message it gets: a faulty replica need not wait for its core to prepare before it
    /// commits, and the side it lends its vote to may need the COMMIT before the core would
    /// ever send one (its own side may never prepare).
    pub fn votes(
        &self,
        to: ReplicaId,
        digest: Digest,
        already: MessageKind,
        ctx: &InterceptContext<'_>,
    ) -> Vec<WireMessage> {
        let (view, seq) = (self.view, self.seq);
        let mut votes = Vec::new();
        if !self.proposer && already != MessageKind::Prepare {
            let body = Prepare { view, seq, digest };
            votes.push(WireMessage::Prepare(reseal(body, &SIGNED, to, ctx)));
        }
        if already != MessageKind::Commit {
            // Sealed as the core seals its COMMITs: an authenticator when it has session keys.
            let like = if ctx.keys.sessions().is_some() {
                Seal::Authenticator(Vec::new())
            } else {
                SIGNED
            };
            let body = Commit { view, seq, digest };
            votes.push(WireMessage::Commit(reseal(body, &like, to, ctx)));
        }
        votes
    }
}

/// Stands for "signed" where `reseal` is asked to seal like a signature.
const SIGNED: Seal = Seal::Signature([0; replica::crypto::SIGNATURE_LENGTH]);
