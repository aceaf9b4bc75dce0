//! The message log: per sequence number, the pre-prepare and the votes of the view it is in,
//! and whether the slot prepared and committed.

use crate::digest::Digest;
use crate::ids::{ReplicaId, Seq, View};
use crate::message::{Commit, CommittedProof, PrePrepare, Prepare, PreparedProof, Signed};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub(super) struct Slot {
    /// The view the pre-prepare and votes below belong to.
    pub view: View,
    pub pre_prepare: Option<Signed<PrePrepare>>,
    pub prepares: BTreeMap<ReplicaId, Signed<Prepare>>,
    pub commits: BTreeMap<ReplicaId, Signed<Commit>>,
    pub prepared: bool,
    /// The batch that committed here. A decided fact: it survives view changes.
    pub committed: Option<Signed<PrePrepare>>,
}

impl Slot {
    /// Moves the slot to a newer view: votes of an older view no longer count.
    pub fn enter_view(&mut self, view: View) {
        if self.view < view {
            self.view = view;
            self.pre_prepare = None;
            self.prepares.clear();
            self.commits.clear();
            self.prepared = false;
        }
    }

    pub fn digest(&self) -> Option<Digest> {
        self.pre_prepare.as_ref().map(|p| p.body.digest)
    }

    pub fn matching_prepares(&self, digest: Digest) -> Vec<Signed<Prepare>> {
        self.prepares
            .values()
            .filter(|p| p.body.digest == digest && p.body.view == self.view)
            .cloned()
            .collect()
    }

    pub fn matching_commits(&self, digest: Digest) -> Vec<Signed<Commit>> {
        self.commits
            .values()
            .filter(|c| c.body.digest == digest && c.body.view == self.view)
            .cloned()
            .collect()
    }

    pub fn prepared_proof(&self, quorum_minus_one: usize) -> Option<PreparedProof> {
        let pre_prepare = self.pre_prepare.clone()?;
        let prepares = self.matching_prepares(pre_prepare.body.digest);
        (prepares.len() >= quorum_minus_one).then(|| PreparedProof {
            pre_prepare,
            prepares: prepares.into_iter().take(quorum_minus_one).collect(),
        })
    }

    /// The proof that the committed batch committed, if the votes are still held.
    pub fn committed_proof(&self, quorum: usize) -> Option<CommittedProof> {
        let committed = self.committed.as_ref()?;
        let pre_prepare = self
            .pre_prepare
            .as_ref()
            .filter(|p| p.body.digest == committed.body.digest)?;
        let commits = self.matching_commits(pre_prepare.body.digest);
        (commits.len() >= quorum).then(|| CommittedProof {
            pre_prepare: pre_prepare.clone(),
            commits: commits.into_iter().take(quorum).collect(),
        })
    }
}

#[derive(Debug, Default)]
pub(super) struct MessageLog {
    slots: BTreeMap<Seq, Slot>,
}

impl MessageLog {
    pub fn get(&self, seq: Seq) -> Option<&Slot> {
        self.slots.get(&seq)
    }

    pub fn get_mut(&mut self, seq: Seq) -> Option<&mut Slot> {
        self.slots.get_mut(&seq)
    }

    /// The slot for `seq`, created (and moved to `view`) if needed.
    pub fn slot(&mut self, seq: Seq, view: View) -> &mut Slot {
        let slot = self.slots.entry(seq).or_insert_with(|| Slot {
            view,
            ..Slot::default()
        });
        slot.enter_view(view);
        slot
    }

    /// Drops everything at or below `seq` (garbage collection at a stable checkpoint).
    pub fn truncate_through(&mut self, seq: Seq) {
        self.slots = self.slots.split_off(&seq.next());
    }

    /// Drops slots above `seq` that never committed (a new view re-proposes what matters).
    pub fn drop_uncommitted_above(&mut self, seq: Seq) {
        self.slots
            .retain(|s, slot| *s <= seq || slot.committed.is_some());
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Seq, &Slot)> {
        self.slots.iter()
    }
}
