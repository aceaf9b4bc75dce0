//! Claims of one digest per sequence number, and the sequence numbers where replicas claim
//! two: what agreement (committed batches) and state agreement (checkpointed states) both
//! look for.

use replica::Seq;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub struct DigestClaims<W> {
    /// seq -> digest -> who claimed it (and how).
    by_seq: BTreeMap<Seq, BTreeMap<String, BTreeSet<W>>>,
    conflicting: BTreeSet<Seq>,
}

impl<W: Ord> Default for DigestClaims<W> {
    fn default() -> Self {
        DigestClaims {
            by_seq: BTreeMap::new(),
            conflicting: BTreeSet::new(),
        }
    }
}

impl<W: Ord> DigestClaims<W> {
    /// Records that `witness` claims `digest` at `seq`; true when this makes `seq` conflict
    /// for the first time.
    pub fn claim(&mut self, seq: Seq, digest: &str, witness: W) -> bool {
        let digests = self.by_seq.entry(seq).or_default();
        digests
            .entry(digest.to_string())
            .or_default()
            .insert(witness);
        digests.len() > 1 && self.conflicting.insert(seq)
    }

    /// How many sequence numbers have a claim.
    pub fn sequence_numbers(&self) -> usize {
        self.by_seq.len()
    }

    pub fn conflict_count(&self) -> usize {
        self.conflicting.len()
    }

    /// The first conflicting sequence number and how many digests were claimed there.
    pub fn first_conflict(&self) -> Option<(Seq, usize)> {
        let seq = *self.conflicting.first()?;
        Some((seq, self.by_seq[&seq].len()))
    }

    /// The first `limit` conflicts, each as `{"seq": .., field: [one entry per claim]}`.
    pub fn listed(
        &self,
        limit: usize,
        field: &str,
        describe: impl Fn(&str, &W) -> Value,
    ) -> Vec<Value> {
        self.conflicting
            .iter()
            .take(limit)
            .map(|seq| {
                let claims: Vec<Value> = self.by_seq[seq]
                    .iter()
                    .flat_map(|(digest, by)| by.iter().map(|w| describe(digest, w)))
                    .collect();
                let mut entry = json!({ "seq": seq });
                entry[field] = Value::Array(claims);
                entry
            })
            .collect()
    }
}
