//! The message-aware proxy that sits on every link.
//!
//! One listening socket per directed link. When the link's `from` connects, the proxy dials
//! the real `to` and relays both directions, re-framing and decoding every frame so rules can
//! select it by link, direction, message kind, view and sequence number. Frames that do not
//! decode are relayed as bytes (the receiver must reject them) and match only rules without
//! kind, view or seq conditions. Every action taken is logged to `proxy.jsonl`; frames relayed
//! untouched are only counted.

mod fate;
mod log;
mod matching;
mod mutate;
mod partition;
mod relay;
mod rules;
mod stats;

pub use fate::{Copy, Fate, Taken, decide};
pub(crate) use log::{LogEntry, LogWriter, ProxyLog, open as open_log};
pub use matching::{FrameInfo, endpoint_label};
pub use mutate::{Rewritten, rewrite};
pub use partition::partition_rules;
pub use relay::MAX_HELD_FRAMES;
pub use rules::{Action, Direction, Endpoint, LinkSpec, Matcher, RewriteMode, Rule};
pub(crate) use stats::StatsTable;
pub use stats::{FrameCounts, LinkConnections, ProxyStats, StatsRow};

/// The proxy's random stream for one direction of one link (`link` indexes the plan's links):
/// each direction draws alone, so one link's traffic never shifts another's choices.
pub fn link_rng(seed: u64, link: usize, direction: Direction) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(link as u64 * 2 + u64::from(direction == Direction::Backward));
    rng
}

use anyhow::{Context, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long the proxy waits for the real target to accept before giving up on a connection
/// (the dialer reconnects on its own).
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The run's seed: each link direction draws from its own ChaCha8 stream of it.
    pub seed: u64,
    /// Frame size cap, as the replicas use it.
    pub max_frame: usize,
    /// Where `proxy.jsonl` goes.
    pub log_path: PathBuf,
    /// Log times are nanoseconds since this instant.
    pub run_start: std::time::Instant,
}

/// State every relay shares.
pub(crate) struct Shared {
    links: Vec<LinkSpec>,
    max_frame: usize,
    run_start: std::time::Instant,
    rules: RwLock<Arc<Vec<Rule>>>,
    /// Per link: the forward and the backward stream.
    rngs: Vec<[Mutex<ChaCha8Rng>; 2]>,
    stats: Mutex<stats::StatsTable>,
    log: log::ProxyLog,
}

impl Shared {
    fn rules(&self) -> Arc<Vec<Rule>> {
        Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn update_rules(&self, change: impl FnOnce(&mut Vec<Rule>)) {
        let mut guard = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let mut rules = guard.as_ref().clone();
        change(&mut rules);
        *guard = Arc::new(rules);
    }

    fn rng(&self, link: usize, direction: Direction) -> MutexGuard<'_, ChaCha8Rng> {
        let index = usize::from(direction == Direction::Backward);
        self.rngs[link][index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_stats(&self) -> MutexGuard<'_, stats::StatsTable> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.run_start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Controls a running proxy; cheap to clone and hand to the nemesis.
#[derive(Clone)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

impl ProxyHandle {
    /// Replaces all rules at once; the next frame on every link sees the new set.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.shared.update_rules(|current| *current = rules);
    }

    /// Appends `rule`, or replaces the rule with the same id in place.
    pub fn add_rule(&self, rule: Rule) {
        self.shared
            .update_rules(|rules| match rules.iter_mut().find(|r| r.id == rule.id) {
                Some(existing) => *existing = rule,
                None => rules.push(rule),
            });
    }

    pub fn remove_rule(&self, id: &str) {
        self.shared
            .update_rules(|rules| rules.retain(|r| r.id != id));
    }

    /// Removes every rule whose id starts with `prefix` (a partition's rules share one).
    pub fn remove_rules_with_prefix(&self, prefix: &str) {
        self.shared
            .update_rules(|rules| rules.retain(|r| !r.id.starts_with(prefix)));
    }

    /// Heals everything.
    pub fn clear_rules(&self) {
        self.shared.update_rules(Vec::clear);
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.shared.rules().as_ref().clone()
    }

    pub fn stats(&self) -> ProxyStats {
        self.shared.lock_stats().snapshot(&self.shared.links)
    }
}

pub struct Proxy {
    handle: ProxyHandle,
    listen_addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    accept_loops: JoinSet<()>,
    log_writer: log::LogWriter,
}

fn require_loopback(what: &str, addr: SocketAddr) -> anyhow::Result<()> {
    if addr.ip() != Ipv4Addr::LOCALHOST {
        bail!("{what} {addr} is not on 127.0.0.1; the proxy only listens and dials there");
    }
    Ok(())
}

impl Proxy {
    /// Binds every link's listening socket (port 0 picks a free one, see `listen_addrs`) and
    /// starts relaying.
    pub async fn start(links: Vec<LinkSpec>, config: ProxyConfig) -> anyhow::Result<Proxy> {
        for link in &links {
            require_loopback("listen address", link.listen)?;
            require_loopback("target address", link.target)?;
        }
        let mut listeners = Vec::with_capacity(links.len());
        for link in &links {
            let listener = TcpListener::bind(link.listen).await.with_context(|| {
                format!(
                    "proxy cannot listen on {} for the link {} -> r{}",
                    link.listen,
                    endpoint_label(link.from),
                    link.to
                )
            })?;
            listeners.push(listener);
        }
        let listen_addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<Vec<_>, _>>()
            .context("proxy cannot read its listening addresses")?;
        let (log, log_writer) = log::open(&config.log_path)
            .with_context(|| format!("cannot create {}", config.log_path.display()))?;
        let stream = |link: usize, direction| Mutex::new(link_rng(config.seed, link, direction));
        let shared = Arc::new(Shared {
            rngs: (0..links.len())
                .map(|i| {
                    [
                        stream(i, Direction::Forward),
                        stream(i, Direction::Backward),
                    ]
                })
                .collect(),
            links,
            max_frame: config.max_frame,
            run_start: config.run_start,
            rules: RwLock::new(Arc::new(Vec::new())),
            stats: Mutex::new(stats::StatsTable::default()),
            log,
        });
        let (stop, stopped) = watch::channel(false);
        let mut accept_loops = JoinSet::new();
        for (link, listener) in listeners.into_iter().enumerate() {
            accept_loops.spawn(accept_loop(
                Arc::clone(&shared),
                link,
                listener,
                stopped.clone(),
            ));
        }
        Ok(Proxy {
            handle: ProxyHandle { shared },
            listen_addrs,
            stop,
            accept_loops,
            log_writer,
        })
    }

    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }

    /// The bound address of each link, in the order of the links given to `start`.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen_addrs
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.handle.set_rules(rules);
    }

    pub fn add_rule(&self, rule: Rule) {
        self.handle.add_rule(rule);
    }

    pub fn remove_rule(&self, id: &str) {
        self.handle.remove_rule(id);
    }

    pub fn clear_rules(&self) {
        self.handle.clear_rules();
    }

    pub fn stats(&self) -> ProxyStats {
        self.handle.stats()
    }

    /// Stops listening, closes every relayed connection and flushes `proxy.jsonl`.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.accept_loops.join_next().await.is_some() {}
        let log = self.handle.shared.log.clone();
        let writer = self.log_writer;
        let _ = tokio::task::spawn_blocking(move || writer.close(&log)).await;
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    link: usize,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => {
                    *shared.lock_stats().accepted.entry(link).or_default() += 1;
                    connections.spawn(relay_connection(Arc::clone(&shared), link, inbound));
                }
                Err(error) => {
                    tracing::warn!(%error, link, "proxy accept failed");
                    // Out of descriptors, typically: do not spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn relay_connection(shared: Arc<Shared>, link: usize, inbound: TcpStream) {
    let target = shared.links[link].target;
    let outbound = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, %target, "proxy cannot reach the target; closing the link");
            *shared.lock_stats().dial_failures.entry(link).or_default() += 1;
            return;
        }
        Err(_) => {
            tracing::debug!(%target, "proxy timed out dialing the target; closing the link");
            *shared.lock_stats().dial_failures.entry(link).or_default() += 1;
            return;
        }
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (inbound_read, inbound_write) = inbound.into_split();
    let (outbound_read, outbound_write) = outbound.into_split();
    let forward = relay::Relay::new(Arc::clone(&shared), link, Direction::Forward)
        .run(inbound_read, outbound_write);
    let backward =
        relay::Relay::new(shared, link, Direction::Backward).run(outbound_read, inbound_write);
    tokio::pin!(forward, backward);
    // A clean end of one direction is a half-close: the other may still carry frames. An
    // error on either ends the connection.
    tokio::select! {
        done = &mut forward => if done.is_ok() { let _ = backward.await; },
        done = &mut backward => if done.is_ok() { let _ = forward.await; },
    }
}
