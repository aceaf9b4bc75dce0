//! Throughput and latency of a 4-replica local cluster (f = 1) through the real client.
//!
//! `cargo bench -p harness --bench cluster` runs the unreplicated baseline server
//! (`kv-unreplicated`), then a 4-replica cluster under each authentication mode (signatures, then
//! MACs), then MACs again with every link (replica to replica, client to replica) through the
//! harness's proxy with no rules, as a `gauntlet run` has it. Each configuration runs 1 client,
//! then 32 concurrent clients, each phase for `BENCH_SECONDS` (default 5) after a short warm-up.
//! It prints ops/s, p50/p99/max latency and CPU per operation, the ratios between them, and
//! writes the figures to `results/bench/cluster.json`. The replicas are release builds (the
//! bench profile is release), run with fsync off like every LocalCluster unless `BENCH_FSYNC=1`.
//! The bench lives in `harness` because the proxy does.

use anyhow::Context as _;
use harness::proxy::{Endpoint, LinkSpec, Proxy, ProxyConfig};
use replica::auth::AuthMode;
use replica::config::ClusterConfig;
use replica::ids::{ClientId, ReplicaId};
use std::net::SocketAddr;
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

/// What a phase runs against: the four replicas of a cluster, or the unreplicated server.
struct Target<'a> {
    /// The service's processes, whose CPU time is measured.
    pids: Vec<u32>,
    client: Box<dyn Fn(ClientId) -> anyhow::Result<Client> + 'a>,
}

impl Target<'_> {
    fn cluster(cluster: &LocalCluster) -> Target<'_> {
        Target {
            pids: cluster
                .ids()
                .into_iter()
                .filter_map(|id| cluster.pid(id))
                .collect(),
            client: Box::new(|id| Ok(cluster.client(id)?)),
        }
    }

    /// CPU time of this process (the clients) and of the service's processes together.
    fn cpu_times(&self) -> (Duration, Duration) {
        let client = cpu_time("self").unwrap_or_default();
        let service = self
            .pids
            .iter()
            .filter_map(|pid| cpu_time(&pid.to_string()))
            .sum();
        (client, service)
    }
}

/// The unreplicated server process, killed when dropped.
struct Baseline {
    child: std::process::Child,
    config: replica::config::ClusterConfig,
}

impl Baseline {
    fn start(clients: u32) -> anyhow::Result<Baseline> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let binary = workloads::testnet::binary::workspace_binary("kv-unreplicated", "workloads")?;
        let child = std::process::Command::new(binary)
            .args(["--port", &port.to_string(), "--seed", &SEED.to_string()])
            .args(["--clients", &clients.to_string()])
            .spawn()
            .context("starting kv-unreplicated")?;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let baseline = Baseline {
            child,
            config: workloads::baseline::cluster_config(address, SEED, clients),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(address).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "kv-unreplicated never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(baseline)
    }

    fn target(&self) -> Target<'_> {
        Target {
            pids: vec![self.child.id()],
            client: Box::new(|id| Ok(workloads::baseline::client(&self.config, SEED, id)?)),
        }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster whose every link runs through the harness's proxy, with no rules installed: what
/// a `gauntlet run` adds to a cluster before any fault. The proxy has its own multi-threaded
/// runtime, as in `gauntlet`, so its relays do not share the clients' thread.
struct Proxied {
    cluster: LocalCluster,
    /// Each replica's address as the clients dial it: the proxy's port for that client's link.
    client_configs: Vec<ClusterConfig>,
    proxy: Option<Proxy>,
    runtime: tokio::runtime::Runtime,
    _log_dir: tempfile::TempDir,
}

impl Proxied {
    fn start(mut cluster: LocalCluster, clients: u32) -> anyhow::Result<Proxied> {
        let replicas = cluster.ids();
        let real = |id: ReplicaId| cluster.config().address_of(id);
        let mut links = Vec::new();
        let mut endpoints = Vec::new();
        let dialers = replicas
            .iter()
            .map(|&id| Endpoint::Replica(id))
            .chain((0..clients).map(|c| Endpoint::Client(ClientId(c))));
        for from in dialers {
            for &to in &replicas {
                if from == Endpoint::Replica(to) {
                    continue;
                }
                let target = real(to).context("a replica without an address")?;
                let listen = SocketAddr::from(([127, 0, 0, 1], 0));
                links.push(LinkSpec {
                    from,
                    to,
                    listen,
                    target,
                });
                endpoints.push((from, to));
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let log_dir = tempfile::tempdir()?;
        let config = ProxyConfig {
            seed: SEED,
            max_frame: cluster.config().max_frame_bytes,
            log_path: log_dir.path().join("proxy.jsonl"),
            run_start: Instant::now(),
        };
        let proxy = runtime.block_on(Proxy::start(links, config))?;
        let listening = |from: Endpoint, to: ReplicaId| {
            endpoints
                .iter()
                .position(|&link| link == (from, to))
                .and_then(|i| proxy.listen_addrs().get(i).copied())
        };
        let mut missing = false;
        cluster.route_peers(|from, to| {
            listening(Endpoint::Replica(from), to).unwrap_or_else(|| {
                missing = true;
                SocketAddr::from(([127, 0, 0, 1], 0))
            })
        })?;
        anyhow::ensure!(!missing, "a replica link has no proxy port");
        let mut client_configs = Vec::new();
        for c in 0..clients {
            let mut config = cluster.config().clone();
            for entry in &mut config.replicas {
                entry.address = listening(Endpoint::Client(ClientId(c)), entry.id)
                    .context("a client link has no proxy port")?;
            }
            client_configs.push(config);
        }
        Ok(Proxied {
            cluster,
            client_configs,
            proxy: Some(proxy),
            runtime,
            _log_dir: log_dir,
        })
    }

    fn target(&self) -> Target<'_> {
        let mut target = Target::cluster(&self.cluster);
        target.client = Box::new(|id| {
            let config = self
                .client_configs
                .get(id.0 as usize)
                .context("more clients than the proxy has links for")?;
            Ok(Client::new(config, id, self.cluster.client_key(id)?)?)
        });
        target
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        if let Some(proxy) = self.proxy.take() {
            self.runtime.block_on(proxy.shutdown());
        }
    }
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
    target: &Target<'_>,
    clients: u32,
    seconds: Duration,
) -> anyhow::Result<PhaseResult> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = (target.client)(ClientId(c))?;
        let generator = Generator::kv(SEED, ClientId(c), KEYS, Mix::default())?;
        tasks.push(tokio::spawn(run_client(
            client,
            generator,
            measuring.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(WARM_UP).await;
    let (client_cpu, replica_cpu) = target.cpu_times();
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(seconds).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let (client_cpu_end, replica_cpu_end) = target.cpu_times();
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
    let max_clients = *phases.iter().max().unwrap_or(&1);
    // All clients on one thread, like the replicas' sockets: at these rates a second worker
    // thread costs more in cross-thread wake-ups than it adds.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let run_phases = |mode: &'static str,
                      target: &Target<'_>,
                      results: &mut Vec<(&'static str, PhaseResult)>|
     -> anyhow::Result<()> {
        println!("{HEADER}");
        for clients in phases {
            let result = runtime.block_on(phase(target, clients, Duration::from_secs(seconds)))?;
            println!("{}", result.row());
            results.push((mode, result));
        }
        Ok(())
    };
    let mut results = Vec::new();
    {
        let baseline = Baseline::start(max_clients)?;
        println!(
            "\nunreplicated: one kv-unreplicated process (MACs), {seconds} s per phase, kv mix over {KEYS} keys"
        );
        run_phases("unreplicated", &baseline.target(), &mut results)?;
    }
    let start_cluster = |auth: AuthMode| {
        let cluster = LocalCluster::start(LocalClusterOptions {
            clients: max_clients,
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
        anyhow::Ok(cluster)
    };
    for auth in AuthMode::ALL {
        let cluster = start_cluster(auth)?;
        run_phases(auth.name(), &Target::cluster(&cluster), &mut results)?;
    }
    let proxied = Proxied::start(start_cluster(AuthMode::Macs)?, max_clients)?;
    println!("every link through the harness's proxy, no rules (client us/op includes the proxy)");
    run_phases("macs-proxy", &proxied.target(), &mut results)?;
    drop(proxied);
    print_ratios(&results);
    write_json(&results)
}

const HEADER: &str =
    "clients       ops      ops/s   p50 ms   p99 ms   max ms  errors  client us/op  server us/op";

fn find<'a>(
    results: &'a [(&str, PhaseResult)],
    mode: &str,
    clients: u32,
) -> Option<&'a PhaseResult> {
    results
        .iter()
        .find(|(m, r)| *m == mode && r.clients == clients)
        .map(|(_, r)| r)
}

/// Every ratio the issue asks for, from this one run.
fn print_ratios(results: &[(&str, PhaseResult)]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    for clients in [1, 32] {
        let (Some(unreplicated), Some(signatures), Some(macs)) = (
            find(results, "unreplicated", clients),
            find(results, "signatures", clients),
            find(results, "macs", clients),
        ) else {
            continue;
        };
        println!(
            "{clients:>2} clients: macs/signatures {:.2}x ops/s, macs/unreplicated {:.2}x, signatures/unreplicated {:.2}x; p50 unreplicated {:.3} ms, signatures {:.3} ms, macs {:.3} ms",
            macs.ops_per_s() / signatures.ops_per_s(),
            macs.ops_per_s() / unreplicated.ops_per_s(),
            signatures.ops_per_s() / unreplicated.ops_per_s(),
            ms(unreplicated.percentile(0.50)),
            ms(signatures.percentile(0.50)),
            ms(macs.percentile(0.50)),
        );
        if let Some(proxied) = find(results, "macs-proxy", clients) {
            println!(
                "{clients:>2} clients: proxy/direct (macs) {:.2}x ops/s, p50 +{:.0} us",
                proxied.ops_per_s() / macs.ops_per_s(),
                (ms(proxied.percentile(0.50)) - ms(macs.percentile(0.50))) * 1000.0,
            );
        }
    }
}

/// `results/bench/cluster.json`: one record per configuration, for CI to track over time.
fn write_json(results: &[(&str, PhaseResult)]) -> anyhow::Result<()> {
    let records: Vec<serde_json::Value> = results
        .iter()
        .map(|(mode, r)| {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            serde_json::json!({
                "mode": mode,
                "clients": r.clients,
                "ops_per_s": r.ops_per_s(),
                "p50_ms": ms(r.percentile(0.50)),
                "p99_ms": ms(r.percentile(0.99)),
                "cpu_us_per_op": (r.client_cpu_per_op + r.replica_cpu_per_op).as_micros() as u64,
                "server_cpu_us_per_op": r.replica_cpu_per_op.as_micros() as u64,
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
