//! A Byzantine replica's command line: [`Behaviour::args`] writes it (the harness's launcher)
//! and [`BehaviourArgs`] reads it (`byzantine-replica`), side by side so the two cannot drift.

use crate::behaviour::Behaviour;
use crate::params::BehaviourError;
use std::collections::BTreeMap;

/// `--behaviour NAME [--param key=value]... [--seed S]`.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct BehaviourArgs {
    /// One of `--list`.
    #[arg(long)]
    pub behaviour: String,
    /// A behaviour parameter, `key=value`; repeatable.
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Drives every random choice of the behaviour.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl BehaviourArgs {
    /// The behaviour these flags name, checked as a scenario's would be.
    pub fn parsed(&self) -> Result<Behaviour, BehaviourError> {
        let params: BTreeMap<String, String> = self.params.iter().cloned().collect();
        Behaviour::parse(&self.behaviour, &params)
    }
}

impl Behaviour {
    /// The flags that make `byzantine-replica` run this behaviour with `seed`.
    pub fn args(&self, seed: u64) -> Vec<String> {
        let mut args = vec!["--behaviour".to_string(), self.name().to_string()];
        for (key, value) in self.params() {
            args.push("--param".to_string());
            args.push(format!("{key}={value}"));
        }
        args.extend(["--seed".to_string(), seed.to_string()]);
        args
    }
}

/// `key=value`. The value is kept as written, spaces too, so a replica reads exactly the
/// value the simulator builds the same behaviour with.
fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("`{text}` is not key=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::tests::examples;
    use clap::Parser;

    /// `byzantine-replica`'s own flags, without the honest replica's.
    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: BehaviourArgs,
    }

    fn read(args: Vec<String>) -> Result<BehaviourArgs, clap::Error> {
        let argv = std::iter::once("byzantine-replica".to_string()).chain(args);
        Command::try_parse_from(argv).map(|command| command.args)
    }

    #[test]
    fn the_replica_reads_back_the_behaviour_and_seed_the_launcher_wrote() {
        for (name, params) in examples() {
            let behaviour = Behaviour::parse(name, &params).expect("a valid example");
            let seed = 0xdead_beef_u64 ^ params.len() as u64;
            let read = read(behaviour.args(seed)).expect("the flags parse");
            assert_eq!(read.seed, seed, "{name}");
            assert_eq!(read.parsed(), Ok(behaviour), "{name}");
        }
    }

    #[test]
    fn a_parameter_without_an_equals_sign_is_refused_by_the_flags() {
        let flags = ["--behaviour", "flood", "--param", "rate"].map(String::from);
        let error = read(flags.to_vec()).expect_err("refused");
        assert!(error.to_string().contains("key=value"), "{error}");
    }
}
