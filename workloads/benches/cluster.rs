//! Throughput and latency of a 4-replica local cluster (f = 1) through the real client.
//!
//! `cargo bench -p workloads --bench cluster` runs, for each authentication mode (signatures,
//! then MACs), 1 client, then 32 concurrent clients, each phase for `BENCH_SECONDS` (default 5)
//! after a short warm-up, and prints ops/s, p50/p99/max latency and CPU per operation, the
//! MACs/signatures ratios, and writes the figures to `results/bench/cluster.json`. The replicas are release builds (the bench profile is release), run
//! with fsync off like every LocalCluster unless `BENCH_FSYNC=1`.

use anyhow::Context as _;
use replica::auth::AuthMode;
use replica::ids::ClientId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use workloads::client::Client;
use workloads::generator::{Generator, Mix};
use workloads::testnet::{LocalCluster, LocalClusterOptions};

const SEED: u64 = 42;
const KEYS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(1);

/// CPU time (user + system) a process has used, from `/proc/PID/stat` (USER_HZ is 100).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time of this process (the clients) and of all replicas together.
fn cpu_times(cluster: &LocalCluster) -> (Duration, Duration) {
    let client = cpu_time("self").unwrap_or_default();
    let replicas = cluster
        .ids()
        .into_iter()
        .filter_map(|id| cluster.pid(id))
        .filter_map(|pid| cpu_time(&pid.to_string()))
        .sum();
    (client, replicas)
}

struct PhaseResult {
    clients: u32,
    /// CPU used per completed operation by the client process and by the replicas.
    client_cpu_per_op: Duration,
    replica_cpu_per_op: Duration,
    ops: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl PhaseResult {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[index]
    }

    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn row(&self) -> String {
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        format!(
            "{:>7} {:>9} {:>10.0} {:>8} {:>8} {:>8} {:>7} {:>13} {:>14}",
            self.clients,
            self.ops,
            self.ops_per_s(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
            self.client_cpu_per_op.as_micros(),
            self.replica_cpu_per_op.as_micros(),
        )
    }
}

/// One client's closed loop: the next operation as soon as the previous one completes.
async fn run_client(
    client: Client,
    mut generator: Generator,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    while !stop.load(Ordering::Relaxed) {
        let request = client.prepare(generator.next_op());
        let started = Instant::now();
        let outcome = client.submit(&request).await;
        if measuring.load(Ordering::Relaxed) {
            match outcome {
                Ok(_) => latencies.push(started.elapsed()),
                Err(_) => errors += 1,
            }
        }
    }
    (latencies, errors)
}

async fn phase(
    cluster: &LocalCluster,
    clients: u32,
    seconds: Duration,
) -> anyhow::Result<PhaseResult> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = cluster.client(ClientId(c))?;
        let generator = Generator::kv(SEED, ClientId(c), KEYS, Mix::default())?;
        tasks.push(tokio::spawn(run_client(
            client,
            generator,
            measuring.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(WARM_UP).await;
    let (client_cpu, replica_cpu) = cpu_times(cluster);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(seconds).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let (client_cpu_end, replica_cpu_end) = cpu_times(cluster);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut client_latencies, client_errors) = task.await?;
        latencies.append(&mut client_latencies);
        errors += client_errors;
    }
    latencies.sort_unstable();
    let per_op = |total: Duration| total / latencies.len().max(1) as u32;
    Ok(PhaseResult {
        clients,
        client_cpu_per_op: per_op(client_cpu_end.saturating_sub(client_cpu)),
        replica_cpu_per_op: per_op(replica_cpu_end.saturating_sub(replica_cpu)),
        ops: latencies.len(),
        errors,
        elapsed,
        latencies,
    })
}

fn main() -> anyhow::Result<()> {
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .context("BENCH_SECONDS must be a whole number")
        })
        .transpose()?
        .unwrap_or(5);
    let fsync = std::env::var("BENCH_FSYNC").is_ok_and(|v| v == "1");
    let pipeline_depth = std::env::var("BENCH_PIPELINE_DEPTH")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .context("BENCH_PIPELINE_DEPTH must be a whole number")
        })
        .transpose()?;
    let phases = [1u32, 32];
    // All clients on one thread, like the replicas' sockets: at these rates a second worker
    // thread costs more in cross-thread wake-ups than it adds.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results: Vec<(AuthMode, PhaseResult)> = Vec::new();
    for auth in AuthMode::ALL {
        let cluster = LocalCluster::start(LocalClusterOptions {
            clients: *phases.iter().max().unwrap_or(&1),
            fsync,
            pipeline_depth,
            auth,
            log_filter: Some("warn".into()),
            ..LocalClusterOptions::default()
        })
        .context("starting the local cluster")?;
        println!(
            "\nauth {auth}: 4 replicas (f=1), fsync {}, pipeline depth {}, max batch {}, {seconds} s per phase, kv mix over {KEYS} keys",
            if fsync { "on" } else { "off" },
            cluster.config().pipeline_depth,
            cluster.config().max_batch,
        );
        println!(
            "{:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>7} {:>13} {:>14}",
            "clients",
            "ops",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "client us/op",
            "replica us/op"
        );
        for clients in phases {
            let result =
                runtime.block_on(phase(&cluster, clients, Duration::from_secs(seconds)))?;
            println!("{}", result.row());
            results.push((auth, result));
        }
    }
    print_ratios(&results);
    write_json(&results)
}

fn find(results: &[(AuthMode, PhaseResult)], auth: AuthMode, clients: u32) -> Option<&PhaseResult> {
    results
        .iter()
        .find(|(a, r)| *a == auth && r.clients == clients)
        .map(|(_, r)| r)
}

/// MACs against signatures, measured in this run.
fn print_ratios(results: &[(AuthMode, PhaseResult)]) {
    let pair = |clients| {
        find(results, AuthMode::Macs, clients).zip(find(results, AuthMode::Signatures, clients))
    };
    if let Some((macs, signatures)) = pair(32) {
        println!(
            "\nmacs / signatures at 32 clients: {:.2}x ops/s",
            macs.ops_per_s() / signatures.ops_per_s()
        );
    }
    if let Some((macs, signatures)) = pair(1) {
        println!(
            "1-client p50: macs {:.3} ms, signatures {:.3} ms",
            macs.percentile(0.50).as_secs_f64() * 1000.0,
            signatures.percentile(0.50).as_secs_f64() * 1000.0
        );
    }
}

/// `results/bench/cluster.json`: one record per configuration, for CI to track over time.
fn write_json(results: &[(AuthMode, PhaseResult)]) -> anyhow::Result<()> {
    let records: Vec<serde_json::Value> = results
        .iter()
        .map(|(auth, r)| {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            serde_json::json!({
                "mode": auth.name(),
                "clients": r.clients,
                "ops_per_s": r.ops_per_s(),
                "p50_ms": ms(r.percentile(0.50)),
                "p99_ms": ms(r.percentile(0.99)),
                "cpu_us_per_op": (r.client_cpu_per_op + r.replica_cpu_per_op).as_micros() as u64,
                "replica_cpu_us_per_op": r.replica_cpu_per_op.as_micros() as u64,
                "client_cpu_us_per_op": r.client_cpu_per_op.as_micros() as u64,
            })
        })
        .collect();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/bench/cluster.json");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&records)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("figures written to {}", path.display());
    Ok(())
}
