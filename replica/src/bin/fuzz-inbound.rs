//! `fuzz-inbound --seed S --frames N`: the seeded mutation fuzzer of the replica's inbound
//! path (see `replica::fuzz`). Prints the report; exits 1 if anything crashed.

use clap::Parser;
use replica::auth::AuthMode;
use replica::fuzz::{FuzzConfig, Progress, run};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fuzz-inbound",
    version,
    about = "Seeded structure-aware mutation fuzzing of the replica's inbound path"
)]
struct Cli {
    /// Every choice (corpus, keys, mutations, turns, time) derives from this seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Inputs to feed; a crash at frame i reproduces with the same seed and i+1 frames.
    #[arg(long, default_value_t = 1_000_000)]
    frames: u64,
    /// Every this many turns the primary instance gets the turn's messages too.
    #[arg(long, default_value_t = FuzzConfig::default().primary_every)]
    primary_every: u64,
    /// Frames between crash-restarts of the fuzzed cores.
    #[arg(long, default_value_t = FuzzConfig::default().epoch_frames)]
    epoch_frames: u64,
    /// Progress line on stderr every this many frames (0: none).
    #[arg(long, default_value_t = 1_000_000)]
    progress: u64,
    /// Sign mutated messages only as the one Byzantine replica or as clients (at most f
    /// faulty replicas), never as several replicas at once (by default every other epoch
    /// may).
    #[arg(long)]
    no_collusion: bool,
    /// The cluster's authentication (`signatures` or `macs`): the corpus is captured and the
    /// frames checked under it.
    #[arg(long, default_value_t = AuthMode::Signatures)]
    auth: AuthMode,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = FuzzConfig {
        seed: cli.seed,
        frames: cli.frames,
        primary_every: cli.primary_every,
        epoch_frames: cli.epoch_frames,
        progress_every: cli.progress,
        collusion: !cli.no_collusion,
        auth: cli.auth,
        ..FuzzConfig::default()
    };
    let show = |p: &Progress| {
        eprintln!(
            "{:>12} frames  {:>7.1} s  {:>8.0} frames/s  {} crashes  rss {:.1} MiB",
            p.frames,
            p.seconds,
            p.frames as f64 / p.seconds.max(1e-9),
            p.crashes,
            p.rss as f64 / (1024.0 * 1024.0)
        )
    };
    match run(&config, show) {
        Ok(report) => {
            print!("{report}");
            if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: cannot build the corpus: {error}");
            ExitCode::from(2)
        }
    }
}
