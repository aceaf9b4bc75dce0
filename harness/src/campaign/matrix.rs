//! What a campaign runs: scenarios (named or from a suite) × seeds, in a fixed order, split
//! into shards so several CI runners can share one campaign without overlap.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MatrixError {
    #[error("unknown suite `{0}` (known: smoke, nightly)")]
    UnknownSuite(String),
    #[error("suite `{suite}` names `{scenario}`, which is not a built-in scenario")]
    SuiteScenarioMissing { suite: String, scenario: String },
    #[error("shard must be K/N with 1 <= K <= N, got `{0}`")]
    BadShard(String),
    #[error("budget must look like 90s, 30m, 2h or 1h30m, got `{0}`")]
    BadBudget(String),
    #[error("nothing to run: no scenario given and no suite chosen")]
    Empty,
}

/// The short scenarios that tell within minutes whether anything is badly broken: a mixed
/// fault run, a crashed primary, forged messages, and a negative control that must fail.
pub const SMOKE: &[&str] = &[
    "smoke",
    "primary-crash",
    "rewrite-in-flight",
    "too-many-crashes",
];

/// The scenarios of a built-in suite. `nightly` is every built-in scenario (Byzantine ones
/// and negative controls included, as they are added), so nothing is left out by oversight.
pub fn suite(name: &str, builtins: &[&str]) -> Result<Vec<String>, MatrixError> {
    match name {
        "smoke" => SMOKE
            .iter()
            .map(|s| {
                if builtins.contains(s) {
                    Ok(s.to_string())
                } else {
                    Err(MatrixError::SuiteScenarioMissing {
                        suite: name.into(),
                        scenario: s.to_string(),
                    })
                }
            })
            .collect(),
        "nightly" => Ok(builtins.iter().map(|s| s.to_string()).collect()),
        other => Err(MatrixError::UnknownSuite(other.into())),
    }
}

/// Seeds `first, first+1, ..., first+count-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeds {
    pub first: u64,
    pub count: u64,
}

impl Default for Seeds {
    fn default() -> Self {
        Seeds { first: 1, count: 1 }
    }
}

/// Shard `index` (1-based) of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 1, total: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = MatrixError;

    fn from_str(text: &str) -> Result<Shard, MatrixError> {
        let bad = || MatrixError::BadShard(text.to_string());
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let total: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || total == 0 || index > total {
            return Err(bad());
        }
        Ok(Shard { index, total })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// One run of the campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Position in the whole (unsharded) matrix.
    pub index: usize,
    pub scenario: String,
    pub seed: u64,
}

/// Seed-major order: every scenario runs with the first seed before any runs with the second,
/// so a campaign cut short by its budget still covers every scenario.
pub fn matrix(scenarios: &[String], seeds: Seeds) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(scenarios.len() * seeds.count as usize);
    for s in 0..seeds.count {
        for scenario in scenarios {
            cells.push(Cell {
                index: cells.len(),
                scenario: scenario.clone(),
                seed: seeds.first.wrapping_add(s),
            });
        }
    }
    cells
}

/// This shard's cells: round-robin by matrix position, so shards get similar mixes.
pub fn shard_cells(cells: Vec<Cell>, shard: Shard) -> Vec<Cell> {
    cells
        .into_iter()
        .filter(|c| c.index % shard.total as usize == (shard.index - 1) as usize)
        .collect()
}

/// `90s`, `30m`, `2h`, `1h30m`, or a bare number of seconds.
pub fn parse_budget(text: &str) -> Result<Duration, MatrixError> {
    let bad = || MatrixError::BadBudget(text.to_string());
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let value: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(value.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matrix_is_seed_major_and_indexed_in_order() {
        let cells = matrix(
            &names(&["a", "b"]),
            Seeds {
                first: 10,
                count: 2,
            },
        );
        let view: Vec<(usize, &str, u64)> = cells
            .iter()
            .map(|c| (c.index, c.scenario.as_str(), c.seed))
            .collect();
        assert_eq!(
            view,
            vec![(0, "a", 10), (1, "b", 10), (2, "a", 11), (3, "b", 11)]
        );
    }

    #[test]
    fn shards_one_and_two_of_two_cover_the_matrix_exactly_once() {
        let all = matrix(&names(&["a", "b", "c"]), Seeds { first: 1, count: 3 });
        let first = shard_cells(all.clone(), "1/2".parse().expect("shard"));
        let second = shard_cells(all.clone(), "2/2".parse().expect("shard"));
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        for cell in first.iter().chain(&second) {
            *seen.entry(cell.index).or_default() += 1;
        }
        assert_eq!(seen.len(), all.len());
        assert!(seen.values().all(|&times| times == 1));
        assert!(
            first.len().abs_diff(second.len()) <= 1,
            "shards are balanced"
        );
    }

    #[test]
    fn every_shard_count_partitions_the_matrix() {
        let all = matrix(
            &names(&["a", "b", "c", "d", "e"]),
            Seeds { first: 7, count: 4 },
        );
        for total in 1..=7u32 {
            let mut covered: Vec<usize> = (1..=total)
                .flat_map(|index| shard_cells(all.clone(), Shard { index, total }))
                .map(|c| c.index)
                .collect();
            covered.sort_unstable();
            assert_eq!(
                covered,
                (0..all.len()).collect::<Vec<_>>(),
                "{total} shards"
            );
        }
    }

    #[test]
    fn malformed_shards_are_refused() {
        for text in ["0/2", "3/2", "1/0", "1", "a/b", "1/2/3"] {
            assert!(text.parse::<Shard>().is_err(), "{text}");
        }
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, total: 3 }));
    }

    #[test]
    fn budgets_read_like_durations() {
        assert_eq!(parse_budget("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_budget("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_budget("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_budget("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "m", "10x", "5m3", "-1m"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn smoke_suite_needs_its_scenarios_and_nightly_takes_every_builtin() {
        let builtins = [
            "default",
            "smoke",
            "primary-crash",
            "rewrite-in-flight",
            "too-many-crashes",
            "byz-x",
        ];
        assert_eq!(suite("smoke", &builtins).expect("smoke").len(), SMOKE.len());
        assert_eq!(
            suite("nightly", &builtins).expect("nightly"),
            names(&builtins)
        );
        assert!(matches!(
            suite("smoke", &["smoke"]),
            Err(MatrixError::SuiteScenarioMissing { .. })
        ));
        assert!(matches!(
            suite("weekly", &builtins),
            Err(MatrixError::UnknownSuite(_))
        ));
    }
}
