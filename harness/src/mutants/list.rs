//! The mutants, as `cargo mutants --list --json --diff` generates them.

use anyhow::Context as _;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use std::path::Path;
use std::process::Command;

/// One mutant: its name, the file it changes, and the patch that plants it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Mutant {
    /// `file:line:column: replace X with Y in function`, cargo-mutants' own name for it.
    pub name: String,
    pub file: String,
    /// A unified diff of `file` (its `+++` line names the mutation, not a file).
    pub diff: String,
}

/// Asks cargo-mutants for every mutant of `files` (paths relative to `root`) whose name
/// matches one of `names` (regular expressions; all when empty).
pub fn list(root: &Path, files: &[String], names: &[String]) -> anyhow::Result<Vec<Mutant>> {
    let mut command = Command::new("cargo");
    command
        .args(["mutants", "--list", "--json", "--diff"])
        .current_dir(root);
    for file in files {
        command.args(["--file", file]);
    }
    for name in names {
        command.args(["--re", name]);
    }
    let output = command
        .output()
        .context("running `cargo mutants --list`; is cargo-mutants installed (scripts/mutation-score.sh installs it)?")?;
    anyhow::ensure!(
        output.status.success(),
        "`cargo mutants --list` failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    parse(&output.stdout)
}

pub fn parse(json: &[u8]) -> anyhow::Result<Vec<Mutant>> {
    serde_json::from_slice(json).context("reading the mutant list cargo-mutants printed")
}

/// A seeded sample of `count` mutants (all of them when `count` is `None`), in file order so a
/// table reads top to bottom.
pub fn sample(mut mutants: Vec<Mutant>, count: Option<usize>, seed: u64) -> Vec<Mutant> {
    let Some(count) = count else {
        return mutants;
    };
    let mut indices: Vec<usize> = (0..mutants.len()).collect();
    indices.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    indices.truncate(count);
    indices.sort_unstable();
    let mut kept = Vec::with_capacity(indices.len());
    for (i, mutant) in mutants.drain(..).enumerate() {
        if indices.binary_search(&i).is_ok() {
            kept.push(mutant);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape cargo-mutants 27 prints (fields the score does not use are ignored).
    const LISTED: &str = r#"[
      {"name": "src/a.rs:3:9: replace == with != in f", "file": "src/a.rs", "package": "p",
       "genre": "BinaryOperator", "replacement": "!=",
       "span": {"start": {"line": 3, "column": 9}, "end": {"line": 3, "column": 11}},
       "function": {"function_name": "f", "return_type": "-> bool"},
       "diff": "--- src/a.rs\n+++ replace == with != in f\n@@ -1,3 +1,3 @@\n fn f() -> bool {\n-    1 == 1\n+    1 != 1\n }\n"},
      {"name": "src/a.rs:2:5: replace f -> bool with true", "file": "src/a.rs",
       "diff": "--- src/a.rs\n+++ x\n"}
    ]"#;

    #[test]
    fn reads_the_list_cargo_mutants_prints() {
        let mutants = parse(LISTED.as_bytes()).expect("parses");
        assert_eq!(mutants.len(), 2);
        assert_eq!(mutants[0].name, "src/a.rs:3:9: replace == with != in f");
        assert_eq!(mutants[0].file, "src/a.rs");
        assert!(mutants[0].diff.contains("+    1 != 1"));
    }

    #[test]
    fn a_list_that_is_not_json_is_an_error_not_an_empty_score() {
        assert!(parse(b"warning: something\n").is_err());
    }

    #[test]
    fn a_sample_is_seeded_and_keeps_file_order() {
        let mutants: Vec<Mutant> = (0..50)
            .map(|i| Mutant {
                name: format!("m{i:02}"),
                file: "f".into(),
                diff: String::new(),
            })
            .collect();
        let first = sample(mutants.clone(), Some(10), 7);
        assert_eq!(first, sample(mutants.clone(), Some(10), 7));
        assert_ne!(first, sample(mutants.clone(), Some(10), 8));
        assert_eq!(first.len(), 10);
        assert!(first.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(sample(mutants.clone(), None, 7), mutants);
    }
}
