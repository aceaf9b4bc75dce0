//! `kv`: one operation against the PBFT KV service, from the command line.
//!
//! Exit codes: 0 = the cluster answered (the result is printed), 1 = no answer before the
//! timeout (outcome unknown), 2 = bad arguments, cluster file or key file.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use replica::config::{ClusterConfig, client_key_path, load_secret_key};
use replica::ids::ClientId;
use replica::kv::Operation;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use workloads::client::{Client, ClientError, ClientOptions};

#[derive(Debug, Parser)]
#[command(
    name = "kv",
    about = "Run one operation against the PBFT key-value service"
)]
struct Args {
    /// The cluster file written by `replica testnet`.
    #[arg(long)]
    config: PathBuf,
    /// This client's id (its public key must be in the cluster file).
    #[arg(long)]
    client: u32,
    /// Secret key file; defaults to `client-C.key` next to the cluster file.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Give up after this many milliseconds (the outcome is then unknown).
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    op: OpArgs,
}

#[derive(Debug, Subcommand)]
enum OpArgs {
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Print KEY's value, or `null` if it was never written.
    Get { key: String },
    /// Append VALUE to KEY's value (an absent key counts as empty).
    Append { key: String, value: String },
    /// Set KEY to NEW if its value is EXPECTED (`-` or `null`: if KEY is absent); prints
    /// `true` or `false`.
    Cas {
        key: String,
        expected: String,
        new: String,
    },
}

impl OpArgs {
    fn into_operation(self) -> Operation {
        match self {
            OpArgs::Put { key, value } => Operation::Put { key, value },
            OpArgs::Get { key } => Operation::Get { key },
            OpArgs::Append { key, value } => Operation::Append { key, value },
            OpArgs::Cas { key, expected, new } => Operation::Cas {
                key,
                expected: match expected.as_str() {
                    "-" | "null" => None,
                    _ => Some(expected),
                },
                new,
            },
        }
    }
}

/// Failures before the request is sent: the user's input is wrong (exit 2).
fn setup(args: &Args) -> anyhow::Result<(ClusterConfig, ClientId, ed25519_dalek::SigningKey)> {
    let config = ClusterConfig::load(&args.config)?;
    let client = ClientId(args.client);
    let key_path = match &args.key {
        Some(path) => path.clone(),
        None => client_key_path(args.config.parent().unwrap_or(Path::new(".")), client),
    };
    let key = load_secret_key(&key_path)?;
    Ok((config, client, key))
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let (config, client, key) = match setup(&args) {
        Ok(parts) => parts,
        Err(error) => {
            eprintln!("kv: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kv: {error:#}");
            return ExitCode::from(2);
        }
    };
    let mut options = ClientOptions::from_config(&config);
    options.deadline = Duration::from_millis(args.timeout_ms);
    let operation = args.op.into_operation();
    let outcome = runtime.block_on(async {
        let client = Client::with_options(&config, client, key, options)?;
        client.execute(operation).await
    });
    match outcome {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(error @ (ClientError::Timeout { .. } | ClientError::Closed)) => {
            eprintln!("kv: {error}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("kv: {}: {error}", args.config.display());
            ExitCode::from(2)
        }
    }
}
