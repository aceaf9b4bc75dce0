//! `gauntlet`: run a scenario against a PBFT cluster (real processes, or the simulator in
//! virtual time) and judge it.
//!
//! Exit codes: 0 = the outcome is what the scenario expects, 1 = it is not, 2 = the run (or
//! the command) could not be carried out.

use clap::{Parser, Subcommand};
use harness::backend::Backend;
use harness::campaign::matrix::{Seeds, Shard, parse_budget};
use harness::campaign::reproduce::reproduce_on;
use harness::campaign::{CampaignOptions, run_campaign};
use harness::check::LinearizabilityOptions;
use harness::history::{self, Format, ModelKind, Overall};
use harness::layout::RunFolder;
use harness::orchestrator::{self, RunOptions};
use harness::processes::kill_all_registered;
use harness::scenario::{self, BUILTINS};
use harness::verdict;
use replica::auth::AuthMode;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gauntlet",
    version,
    about = "Attacks a PBFT cluster and judges what its clients saw"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (a built-in name or a YAML path).
    Run {
        #[arg(default_value = "default")]
        scenario: String,
        /// The run's seed; every random choice derives from it. Random when absent.
        #[arg(long)]
        seed: Option<u64>,
        /// Results go to OUT/<scenario>/<seed>-<time>/.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Write the run into exactly this folder instead (created if absent; refused if
        /// anything is in it). For callers that must know the folder before the run starts.
        #[arg(long, conflicts_with = "out")]
        run_dir: Option<PathBuf>,
        /// Override the workload's duration in seconds (short CI variants).
        #[arg(long)]
        duration: Option<f64>,
        /// Keep the replicas' write-ahead logs and snapshots in the run folder.
        #[arg(long)]
        keep_data: bool,
        /// Where the run happens: real processes, or the deterministic simulator.
        #[arg(long, value_enum, default_value_t = Backend::Real)]
        backend: Backend,
        /// Override the scenario's authentication: `signatures` or `macs`.
        #[arg(long)]
        auth: Option<AuthMode>,
    },
    /// List the built-in scenarios.
    List,
    /// Parse and check a scenario, and print the plan a seed resolves it to.
    Validate {
        scenario: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        duration: Option<f64>,
    },
    /// Re-run the checkers on a stored run and rewrite its verdict.json.
    Check { run_dir: PathBuf },
    /// Judge the linearizability of histories from any system (Jepsen EDN, porcupine logs,
    /// Gauntlet JSON lines). Exit 0: all linearizable; 1: one is not; 2: unknown or malformed.
    CheckHistory(CheckHistoryArgs),
    /// Run every scenario of a suite (or the named ones) for each seed, J at a time, within a
    /// budget; writes index.html, junit.xml and results/latest.
    Campaign(CampaignArgs),
    /// Re-run a stored run's scenario with its seed into a new folder and compare outcomes;
    /// a simulated run replayed in the simulator must reproduce every recorded file exactly.
    Reproduce {
        run_dir: PathBuf,
        /// Default: the backend of the stored run.
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Write the re-run into exactly this folder (new or empty).
        #[arg(long = "run-dir", value_name = "DIR")]
        into: Option<PathBuf>,
    },
    /// Rewrite a campaign's index.html from its campaign.json, linking what triage has added
    /// since (shrunk scenarios, their runs, their re-runs on real processes).
    Index { campaign_dir: PathBuf },
    /// Search, in simulation with the run's seed, for a smaller scenario that still fails
    /// the same oracle; writes shrunk.yaml, its run folder and report, and shrink.json.
    Shrink(ShrinkArgs),
    /// Plant each bug cargo-mutants generates in the protocol code, one at a time in a
    /// separate worktree, and judge each with a simulated --fail-fast campaign; writes
    /// mutants.md and mutants.json (scripts/mutation-score.sh installs cargo-mutants).
    Mutants(MutantsArgs),
}

#[derive(clap::Args)]
struct MutantsArgs {
    /// Files to mutate (globs, relative to the workspace); default: the protocol code.
    #[arg(long = "file")]
    files: Vec<String>,
    /// Only mutants whose names match this regular expression (repeatable).
    #[arg(long = "re")]
    names: Vec<String>,
    /// Judge a seeded sample of this many mutants instead of all.
    #[arg(long)]
    sample: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The suite each mutant is judged by.
    #[arg(long, default_value = "nightly")]
    suite: String,
    /// Judge by these scenarios instead of the suite (repeatable): to check that a new attack
    /// kills a survivor.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Campaign time per mutant (e.g. 5m).
    #[arg(long, default_value = "5m")]
    budget: String,
    /// Where the mutated worktree lives (kept, so builds are incremental).
    #[arg(long, default_value = "target/mutants-worktree")]
    worktree: PathBuf,
    #[arg(long, default_value = "results/mutants")]
    out: PathBuf,
    /// Do not check first that the unmutated tree meets every expectation.
    #[arg(long)]
    skip_baseline: bool,
}

#[derive(clap::Args)]
struct ShrinkArgs {
    run_dir: PathBuf,
    /// Simulated runs the search may make.
    #[arg(long, default_value_t = 200)]
    budget_runs: usize,
    /// Wall seconds after which no new run starts.
    #[arg(long, default_value_t = 600)]
    budget_seconds: u64,
    /// The shrink folder (new or empty); default: RUN_DIR-shrink beside the run.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The check to keep failing; default: the first one the run violated.
    #[arg(long)]
    oracle: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A shrink makes dozens of runs: their progress lines would bury its own.
    let shrinking = matches!(cli.command, Command::Shrink(_));
    replica::logging::init(if shrinking {
        "error"
    } else {
        "warn,harness=info"
    });
    // Replicas must not outlive a panic: kill them before the default hook reports it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_all_registered();
        default_hook(info);
    }));
    let code = match cli.command {
        Command::List => {
            print_list();
            0
        }
        Command::Validate {
            scenario,
            seed,
            duration,
        } => validate(&scenario, seed, duration),
        Command::Check { run_dir } => match verdict::recheck(&run_dir) {
            Ok(verdict) => {
                write_report(&run_dir);
                print!("{}", verdict.summary());
                println!("run folder: {}", run_dir.display());
                verdict.exit_code()
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                2
            }
        },
        Command::CheckHistory(args) => check_history(args),
        Command::Campaign(args) => campaign(args),
        Command::Index { campaign_dir } => match harness::campaign::rewrite_index(&campaign_dir) {
            Ok(path) => {
                println!("{}", path.display());
                0
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                2
            }
        },
        Command::Reproduce {
            run_dir,
            backend,
            into,
        } => match reproduce_on(&run_dir, None, backend, into.as_deref()) {
            Ok(reproduction) => {
                print!("{}", reproduction.summary());
                reproduction.exit_code()
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                2
            }
        },
        Command::Shrink(args) => shrink(args),
        Command::Mutants(args) => mutants(args),
        Command::Run {
            scenario,
            seed,
            out,
            run_dir,
            duration,
            keep_data,
            backend,
            auth,
        } => run(
            &scenario,
            seed,
            auth,
            RunOptions {
                folder: run_dir.map_or(RunFolder::Under(out), RunFolder::Exactly),
                duration_override: duration,
                keep_data,
                backend,
            },
        ),
    };
    ExitCode::from(code as u8)
}

#[derive(clap::Args)]
struct CheckHistoryArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// `auto` detects each file's format from its content.
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    format: FormatChoice,
    /// Default: `kv` for Gauntlet and porcupine kv files, `cas-register` for Jepsen ones.
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// Search budget per key (e.g. 10s, 2m); a key that runs out is reported unknown.
    #[arg(long, default_value = "10s")]
    timeout_per_key: String,
    /// Keep searching every key after one is proven not linearizable.
    #[arg(long)]
    all_keys: bool,
    /// Write FILE.html (verdict per key, linearization view, timeline) and FILE.json here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy)]
struct FormatChoice(Option<Format>);

fn parse_format(text: &str) -> Result<FormatChoice, String> {
    if text == "auto" {
        return Ok(FormatChoice(None));
    }
    <Format as clap::ValueEnum>::from_str(text, false)
        .map(|f| FormatChoice(Some(f)))
        .map_err(|_| {
            "expected auto, gauntlet, jepsen-edn, porcupine-kv or porcupine-jepsen-log".to_string()
        })
}

/// Checks each file in turn. The exit code is 1 if any file is not linearizable (a finding
/// outranks everything else), else 2 if any was unknown or could not be read, else 0.
fn check_history(args: CheckHistoryArgs) -> i32 {
    let timeout_per_key = match parse_budget(&args.timeout_per_key) {
        Ok(timeout) => timeout,
        Err(error) => {
            eprintln!("error: --timeout-per-key: {error}");
            return 2;
        }
    };
    let opts = LinearizabilityOptions {
        timeout_per_key,
        all_keys: args.all_keys,
        ..LinearizabilityOptions::default()
    };
    if let Some(out) = &args.out
        && let Err(error) = std::fs::create_dir_all(out)
    {
        eprintln!("error: cannot create {}: {error}", out.display());
        return 2;
    }
    let (mut invalid, mut undecided) = (false, false);
    for file in &args.files {
        let judged = history::import(file, args.format.0, args.model).and_then(|imported| {
            history::check_history(file.clone(), &imported, &opts).map(|v| (v, imported))
        });
        match judged {
            Ok((verdict, imported)) => {
                print!("{}", verdict.summary());
                invalid |= verdict.overall == Overall::NotLinearizable;
                undecided |= verdict.overall == Overall::Unknown;
                match &args.out {
                    Some(out) => write_history_files(out, &verdict, &imported.events),
                    None if verdict.overall == Overall::NotLinearizable => {
                        println!("  (--out DIR writes the linearization view and the timeline)");
                    }
                    None => {}
                }
            }
            Err(error) => {
                eprintln!("error: {error}");
                undecided = true;
            }
        }
    }
    if invalid {
        1
    } else if undecided {
        2
    } else {
        0
    }
}

fn write_history_files(
    out: &std::path::Path,
    verdict: &history::HistoryVerdict,
    events: &[workloads::history::HistoryEvent],
) {
    let name = verdict
        .file
        .file_name()
        .map_or_else(|| "history".into(), |n| n.to_string_lossy().into_owned());
    let page = out.join(format!("{name}.html"));
    let json = out.join(format!("{name}.json"));
    let written = std::fs::write(&page, harness::report::render_history_page(verdict, events))
        .and_then(|()| {
            let text = serde_json::to_string_pretty(verdict).map_err(std::io::Error::other)?;
            std::fs::write(&json, text + "\n")
        });
    match written {
        Ok(()) => println!("  page: {}", page.display()),
        Err(error) => eprintln!("warning: cannot write {}: {error}", page.display()),
    }
}

#[derive(clap::Args)]
struct CampaignArgs {
    /// Built-in names or YAML paths; when empty, `--suite` decides.
    scenarios: Vec<String>,
    /// `smoke` or `nightly`.
    #[arg(long)]
    suite: Option<String>,
    /// How many seeds per scenario.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The first seed; the others follow it.
    #[arg(long, default_value_t = 1)]
    seed_from: u64,
    /// Stop starting runs after this long (e.g. 30m, 90s, 1h).
    #[arg(long)]
    budget: Option<String>,
    /// Runs at a time. A simulated run keeps one core busy: on N cores, `--jobs N`.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Start no run after one ended unexpected or in error; the rest are listed as skipped.
    #[arg(long)]
    fail_fast: bool,
    /// Only this shard of the scenario x seed matrix, K/N (1-based).
    #[arg(long, default_value = "1/1")]
    shard: String,
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Override every scenario's workload duration in seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Where every run happens; scenarios the simulator cannot run are skipped, with why.
    #[arg(long, value_enum, default_value_t = Backend::Real)]
    backend: Backend,
    /// Override every scenario's authentication: `signatures` or `macs`.
    #[arg(long)]
    auth: Option<AuthMode>,
}

fn campaign(args: CampaignArgs) -> i32 {
    let parsed = (|| -> anyhow::Result<CampaignOptions> {
        let budget = args.budget.as_deref().map(parse_budget).transpose()?;
        let shard: Shard = args.shard.parse()?;
        if args.scenarios.is_empty() && args.suite.is_none() {
            anyhow::bail!("name scenarios or a --suite (smoke, nightly)");
        }
        Ok(CampaignOptions {
            suite: args.suite,
            scenarios: args.scenarios,
            seeds: Seeds {
                first: args.seed_from,
                count: args.seeds,
            },
            budget,
            jobs: args.jobs.max(1),
            shard,
            out: args.out,
            run_args: args
                .duration
                .map(|d| vec!["--duration".to_string(), d.to_string()])
                .into_iter()
                .chain(args.auth.map(|a| vec!["--auth".to_string(), a.to_string()]))
                .flatten()
                .collect(),
            backend: args.backend,
            fail_fast: args.fail_fast,
            ..CampaignOptions::default()
        })
    })();
    let options = match parsed {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error:#}");
            return 2;
        }
    };
    match run_campaign(&options) {
        Ok(summary) => {
            print!("{}", summary.table());
            summary.exit_code()
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            2
        }
    }
}

fn shrink(args: ShrinkArgs) -> i32 {
    let options = harness::shrink::ShrinkOptions {
        budget_runs: args.budget_runs,
        budget: std::time::Duration::from_secs(args.budget_seconds),
        out: args.out,
        oracle: args.oracle,
    };
    match harness::shrink::shrink(&args.run_dir, &options, &mut std::io::stdout()) {
        Ok(outcome) if outcome.summary.confirmed => 0,
        Ok(_) => 1,
        Err(error) => {
            eprintln!("error: {error:#}");
            2
        }
    }
}

fn mutants(args: MutantsArgs) -> i32 {
    let run = || -> anyhow::Result<harness::mutants::Score> {
        let root = std::env::current_dir()?;
        let stamp = harness::layout::timestamp_label();
        let files = if args.files.is_empty() {
            harness::mutants::DEFAULT_FILES
                .iter()
                .map(ToString::to_string)
                .collect()
        } else {
            args.files
        };
        let options = harness::mutants::MutantsOptions {
            worktree: root.join(args.worktree),
            out: root.join(args.out).join(stamp),
            root,
            files,
            names: args.names,
            sample: args.sample,
            seed: args.seed,
            scenarios: args.scenarios,
            suite: args.suite,
            seeds: args.seeds,
            jobs: args.jobs.max(1),
            budget: parse_budget(&args.budget)?,
            skip_baseline: args.skip_baseline,
        };
        println!("writing {}", options.out.display());
        harness::mutants::score(&options, &mut std::io::stdout())
    };
    match run() {
        Ok(score) if score.missed == 0 => 0,
        Ok(_) => 1,
        Err(error) => {
            eprintln!("error: {error:#}");
            2
        }
    }
}

fn load(
    name: &str,
    duration: Option<f64>,
    auth: Option<AuthMode>,
) -> anyhow::Result<scenario::LoadedScenario> {
    let mut loaded = scenario::load(name)?;
    if let Some(auth) = auth {
        loaded = loaded.with_auth(auth);
    }
    Ok(match duration {
        Some(d) => loaded.with_duration(d)?,
        None => loaded,
    })
}

fn validate(name: &str, seed: u64, duration: Option<f64>) -> i32 {
    let plan = load(name, duration, None).and_then(|l| Ok(harness::plan::resolve(&l, seed)?));
    match plan {
        Ok(plan) => {
            println!("{}", plan.to_json());
            0
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            2
        }
    }
}

fn run(name: &str, seed: Option<u64>, auth: Option<AuthMode>, options: RunOptions) -> i32 {
    let seed = seed.unwrap_or_else(rand::random);
    println!("seed: {seed}");
    let loaded = match load(name, options.duration_override, auth) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error:#}");
            return 2;
        }
    };
    let (plan, dir) = match orchestrator::prepare(&loaded, seed, &options) {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("error: {error:#}");
            return 2;
        }
    };
    println!("run folder: {}", dir.root.display());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return 2;
        }
    };
    let root = dir.root.clone();
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = orchestrator::execute(plan, dir, &options) => Some(outcome),
            _ = interrupted() => None,
        }
    });
    match outcome {
        Some(outcome) => {
            write_report(&outcome.dir);
            print!("{}", outcome.verdict.summary());
            println!(
                "took {:.1} s ({:.1} s of workload)",
                outcome.total.as_secs_f64(),
                outcome.workload.as_secs_f64()
            );
            println!("run folder: {}", outcome.dir.display());
            outcome.verdict.exit_code()
        }
        None => {
            kill_all_registered();
            eprintln!(
                "interrupted; replicas stopped; partial results in {}",
                root.display()
            );
            2
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The report comes after the verdict: a report that cannot be drawn never costs the verdict.
fn write_report(run_dir: &std::path::Path) {
    match harness::report::write_report(run_dir) {
        Ok(path) => println!("report: {}", path.display()),
        Err(error) => eprintln!("warning: report.html not written: {error:#}"),
    }
}

/// The built-in scenarios, a blank line, then the Byzantine behaviours. Written at once and a
/// closed pipe ignored: `gauntlet list | head` reads what it needs and stops.
fn print_list() {
    use std::fmt::Write as _;
    let mut out = String::new();
    for b in BUILTINS {
        let description = scenario::load(b.name)
            .map(|l| l.scenario.description)
            .unwrap_or_else(|e| format!("(does not parse: {e})"));
        let _ = writeln!(out, "{:<20} {description}", b.name);
    }
    let _ = writeln!(
        out,
        "\nByzantine behaviours (replicas: {{N: {{build: byzantine, behaviour: NAME, params: {{..}}}}}}):"
    );
    for info in byzantine::catalogue() {
        let params = if info.params.is_empty() {
            String::new()
        } else {
            format!(" [{}]", info.params)
        };
        let _ = writeln!(out, "  {:<18} {}{params}", info.name, info.summary);
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
}
