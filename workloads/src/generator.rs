//! Seeded operation generators. The same seed and client give the same operations; every
//! value written is unique within a run (`c{client}-{n}`), which is what lets a checker tell
//! which write a read observed.

use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replica::ids::ClientId;
use replica::kv::Operation;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;

/// How many of a key's recent values a generator remembers as `cas` expectations.
const REMEMBERED_VALUES: usize = 4;

/// Relative weights of the operation kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    pub put: u32,
    pub get: u32,
    pub append: u32,
    pub cas: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            put: 3,
            get: 4,
            append: 2,
            cas: 1,
        }
    }
}

impl Mix {
    /// The register workload's mix: single-value reads, writes and compare-and-sets.
    pub fn register() -> Mix {
        Mix {
            put: 2,
            get: 2,
            append: 0,
            cas: 1,
        }
    }

    fn total(&self) -> u32 {
        self.put + self.get + self.append + self.cas
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// put/get/cas on a few keys, each key a register.
    Register,
    /// put/get/append/cas over N keys with given weights.
    Kv,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GeneratorError {
    #[error("a workload needs at least one key")]
    NoKeys,
    #[error("the operation mix has all weights zero")]
    EmptyMix,
    #[error("the register workload has no append (its weight must be 0)")]
    AppendInRegister,
}

/// Produces one client's operations.
#[derive(Clone, Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    client: ClientId,
    keys: Vec<String>,
    mix: Mix,
    written: u64,
    recent: HashMap<usize, Vec<String>>,
}

impl Generator {
    /// The register workload on `keys` keys named `r0`, `r1`, ...
    pub fn register(seed: u64, client: ClientId, keys: usize) -> Result<Generator, GeneratorError> {
        Self::build(seed, client, "r", keys, Mix::register())
    }

    /// The kv workload on `keys` keys named `k0`, `k1`, ... with the given mix.
    pub fn kv(
        seed: u64,
        client: ClientId,
        keys: usize,
        mix: Mix,
    ) -> Result<Generator, GeneratorError> {
        Self::build(seed, client, "k", keys, mix)
    }

    pub fn new(
        kind: WorkloadKind,
        seed: u64,
        client: ClientId,
        keys: usize,
        mix: Mix,
    ) -> Result<Generator, GeneratorError> {
        match kind {
            WorkloadKind::Register if mix.append > 0 => Err(GeneratorError::AppendInRegister),
            WorkloadKind::Register => Self::build(seed, client, "r", keys, mix),
            WorkloadKind::Kv => Self::build(seed, client, "k", keys, mix),
        }
    }

    fn build(
        seed: u64,
        client: ClientId,
        prefix: &str,
        keys: usize,
        mix: Mix,
    ) -> Result<Generator, GeneratorError> {
        if keys == 0 {
            return Err(GeneratorError::NoKeys);
        }
        if mix.total() == 0 {
            return Err(GeneratorError::EmptyMix);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // One stream per client: clients of one run draw independent operations.
        rng.set_stream(u64::from(client.0));
        Ok(Generator {
            rng,
            client,
            keys: (0..keys).map(|i| format!("{prefix}{i}")).collect(),
            mix,
            written: 0,
            recent: HashMap::new(),
        })
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    fn fresh_value(&mut self, key: usize) -> String {
        self.written += 1;
        let value = format!("c{}-{}", self.client, self.written);
        let recent = self.recent.entry(key).or_default();
        if recent.len() == REMEMBERED_VALUES {
            recent.remove(0);
        }
        recent.push(value.clone());
        value
    }

    /// A value this generator wrote to `key` lately, or none (expects the key to be absent).
    fn expectation(&mut self, key: usize) -> Option<String> {
        let recent = self.recent.get(&key).map(Vec::as_slice).unwrap_or_default();
        let pick = self.rng.random_range(0..=recent.len());
        recent.get(pick).cloned()
    }

    pub fn next_op(&mut self) -> Operation {
        let index = self.rng.random_range(0..self.keys.len());
        let key = self.keys[index].clone();
        let mut roll = self.rng.random_range(0..self.mix.total());
        let mut take = |weight: u32| {
            let hit = roll < weight;
            roll = roll.saturating_sub(weight);
            hit
        };
        if take(self.mix.put) {
            let value = self.fresh_value(index);
            Operation::Put { key, value }
        } else if take(self.mix.get) {
            Operation::Get { key }
        } else if take(self.mix.append) {
            let value = self.fresh_value(index);
            Operation::Append { key, value }
        } else {
            let expected = self.expectation(index);
            let new = self.fresh_value(index);
            Operation::Cas { key, expected, new }
        }
    }
}

impl Iterator for Generator {
    type Item = Operation;

    fn next(&mut self) -> Option<Operation> {
        Some(self.next_op())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn written_value(op: &Operation) -> Option<&str> {
        match op {
            Operation::Put { value, .. } | Operation::Append { value, .. } => Some(value),
            Operation::Cas { new, .. } => Some(new),
            Operation::Get { .. } => None,
        }
    }

    #[test]
    fn the_same_seed_and_client_give_the_same_operations() {
        let a: Vec<_> = Generator::kv(7, ClientId(3), 5, Mix::default())
            .unwrap()
            .take(500)
            .collect();
        let b: Vec<_> = Generator::kv(7, ClientId(3), 5, Mix::default())
            .unwrap()
            .take(500)
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn different_seeds_or_clients_give_different_operations() {
        let base: Vec<_> = Generator::kv(7, ClientId(3), 5, Mix::default())
            .unwrap()
            .take(50)
            .collect();
        let other_seed: Vec<_> = Generator::kv(8, ClientId(3), 5, Mix::default())
            .unwrap()
            .take(50)
            .collect();
        let other_client: Vec<_> = Generator::kv(7, ClientId(4), 5, Mix::default())
            .unwrap()
            .take(50)
            .collect();
        assert_ne!(base, other_seed);
        assert_ne!(base, other_client);
    }

    #[test]
    fn written_values_are_unique_across_the_clients_of_a_run() {
        let mut seen = HashSet::new();
        for client in 0..4 {
            let ops = Generator::kv(1, ClientId(client), 3, Mix::default()).unwrap();
            for op in ops.take(1000) {
                if let Some(value) = written_value(&op) {
                    assert!(seen.insert(value.to_string()), "{value} written twice");
                }
            }
        }
        assert!(seen.len() > 2000);
    }

    #[test]
    fn the_register_workload_never_appends_and_stays_on_its_keys() {
        let generator = Generator::register(9, ClientId(0), 2).unwrap();
        let keys: HashSet<String> = generator.keys().iter().cloned().collect();
        let mut kinds = HashSet::new();
        for op in generator.take(1000) {
            assert!(keys.contains(op.key()));
            kinds.insert(op.name());
        }
        assert_eq!(kinds, HashSet::from(["put", "get", "cas"]));
    }

    #[test]
    fn the_mix_weights_shape_the_operation_counts() {
        let mix = Mix {
            put: 0,
            get: 9,
            append: 1,
            cas: 0,
        };
        let ops: Vec<_> = Generator::kv(2, ClientId(1), 4, mix)
            .unwrap()
            .take(10_000)
            .collect();
        let gets = ops.iter().filter(|op| op.name() == "get").count();
        let appends = ops.iter().filter(|op| op.name() == "append").count();
        assert_eq!(gets + appends, ops.len());
        assert!((8_500..9_500).contains(&gets), "{gets} gets of 10000");
    }

    #[test]
    fn cas_expects_absence_or_a_value_this_client_wrote_to_that_key() {
        let mut written: HashMap<String, HashSet<String>> = HashMap::new();
        let mut cas_with_value = 0;
        for op in Generator::register(5, ClientId(2), 3).unwrap().take(2000) {
            if let Operation::Cas {
                key,
                expected: Some(expected),
                ..
            } = &op
            {
                assert!(written.get(key).is_some_and(|w| w.contains(expected)));
                cas_with_value += 1;
            }
            if let Some(value) = written_value(&op) {
                written
                    .entry(op.key().to_string())
                    .or_default()
                    .insert(value.into());
            }
        }
        assert!(cas_with_value > 100);
    }

    #[test]
    fn invalid_workloads_are_refused() {
        assert_eq!(
            Generator::kv(1, ClientId(0), 0, Mix::default()).unwrap_err(),
            GeneratorError::NoKeys
        );
        let empty = Mix {
            put: 0,
            get: 0,
            append: 0,
            cas: 0,
        };
        assert_eq!(
            Generator::kv(1, ClientId(0), 1, empty).unwrap_err(),
            GeneratorError::EmptyMix
        );
        assert_eq!(
            Generator::new(WorkloadKind::Register, 1, ClientId(0), 1, Mix::default()).unwrap_err(),
            GeneratorError::AppendInRegister
        );
    }
}
