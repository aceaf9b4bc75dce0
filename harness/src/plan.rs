//! The plan: everything a run will do, resolved from the scenario and ONE seed before anything
//! starts. Each concern draws from its own named substream (seeded with sha256(seed, name)), so
//! adding a draw to one concern never shifts another's choices.

use crate::backend::Backend;
use crate::nemesis::{self, PlannedFault};
use crate::proxy::{Endpoint, LinkSpec};
use crate::scenario::{Build, LoadedScenario, Scenario, ScenarioError, locate_field};
use crate::twins::{Side, TwinsPlan};
use byzantine::Behaviour;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use replica::digest::Digest;
use replica::{ClientId, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use thiserror::Error;

/// Ports are drawn below Linux's ephemeral range (32768+), so the kernel never hands one of
/// ours to an outgoing connection between planning and binding.
const PORT_RANGE: std::ops::Range<u16> = 12_000..32_000;
const PORT_ATTEMPTS: usize = 64;

#[derive(Debug, Error)]
pub enum PlanError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("no block of {0} free ports found on 127.0.0.1 after {PORT_ATTEMPTS} seeded attempts")]
    NoFreePorts(usize),
}

/// A named, independent random stream of the run's seed.
pub fn substream(seed: u64, name: &str) -> ChaCha20Rng {
    let digest = Digest::of_parts([&seed.to_be_bytes()[..], name.as_bytes()]);
    ChaCha20Rng::from_seed(digest.0)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ReplicaPlanFields", into = "ReplicaPlanFields")]
pub struct ReplicaPlan {
    pub id: ReplicaId,
    /// Where the replica really listens (only the proxy dials it there).
    pub address: SocketAddr,
    pub build: Build,
    /// `Some` exactly for a byzantine build.
    pub behaviour: Option<Behaviour>,
    /// Drives the random choices of a non-honest build (`byzantine-replica --seed`).
    pub behaviour_seed: Option<u64>,
    /// A twinned replica's second process (twin B) listens here.
    pub twin_address: Option<SocketAddr>,
}

/// A replica's plan as `plan.json` spells it: the behaviour as its name and its parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(expecting = "struct ReplicaPlan")]
struct ReplicaPlanFields {
    id: ReplicaId,
    address: SocketAddr,
    build: Build,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    behaviour: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    behaviour_seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    twin_address: Option<SocketAddr>,
}

impl From<ReplicaPlan> for ReplicaPlanFields {
    fn from(plan: ReplicaPlan) -> ReplicaPlanFields {
        ReplicaPlanFields {
            id: plan.id,
            address: plan.address,
            build: plan.build,
            params: plan
                .behaviour
                .as_ref()
                .map(Behaviour::params)
                .unwrap_or_default(),
            behaviour: plan.behaviour.map(|b| b.name().to_string()),
            behaviour_seed: plan.behaviour_seed,
            twin_address: plan.twin_address,
        }
    }
}

impl TryFrom<ReplicaPlanFields> for ReplicaPlan {
    type Error = String;

    fn try_from(fields: ReplicaPlanFields) -> Result<ReplicaPlan, String> {
        let behaviour = match fields.behaviour {
            Some(name) => Some(Behaviour::parse(&name, &fields.params).map_err(|e| e.to_string())?),
            None if fields.params.is_empty() => None,
            None => return Err("`params` without a `behaviour`".to_string()),
        };
        Ok(ReplicaPlan {
            id: fields.id,
            address: fields.address,
            build: fields.build,
            behaviour,
            behaviour_seed: fields.behaviour_seed,
            twin_address: fields.twin_address,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientPlan {
    pub id: ClientId,
    /// Seed of this client's operation generator.
    pub op_seed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The built-in name or path the scenario came from (used in the reproduce command).
    pub source: String,
    pub seed: u64,
    pub scenario: Scenario,
    /// Secret keys are `key_from_seed(key_seed, principal)`.
    pub key_seed: u64,
    /// Seed of the proxy's per-link decision streams.
    pub proxy_seed: u64,
    pub replicas: Vec<ReplicaPlan>,
    pub clients: Vec<ClientPlan>,
    /// Every directed link through the proxy: replica → replica, then client → replica.
    pub links: Vec<LinkSpec>,
    pub nemesis: Vec<PlannedFault>,
    /// The twinned replicas, how they split the world, and the rules that keep them apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twins: Option<TwinsPlan>,
}

impl Plan {
    pub fn n(&self) -> usize {
        self.replicas.len()
    }

    pub fn duration_ms(&self) -> u64 {
        self.scenario.workload.duration_ms()
    }

    pub fn honest(&self) -> Vec<ReplicaId> {
        self.replicas
            .iter()
            .filter(|r| r.build == Build::Honest)
            .map(|r| r.id)
            .collect()
    }

    /// Replicas that do not run the honest build, with how they misbehave, for reports.
    pub fn faulty(&self) -> Vec<&ReplicaPlan> {
        self.replicas
            .iter()
            .filter(|r| r.build != Build::Honest)
            .collect()
    }

    /// Proxy rules that are part of the attack, not of the network: in force all run long.
    pub fn standing_rules(&self) -> Vec<crate::proxy::Rule> {
        self.twins
            .as_ref()
            .map(|t| t.rules.clone())
            .unwrap_or_default()
    }

    pub fn client_ids(&self) -> Vec<ClientId> {
        self.clients.iter().map(|c| c.id).collect()
    }

    /// The proxy port `from` must dial to reach `to`.
    pub fn link_address(&self, from: Endpoint, to: ReplicaId) -> Option<SocketAddr> {
        self.links
            .iter()
            .find(|l| l.from == from && l.to == to)
            .map(|l| l.listen)
    }

    pub fn to_json(&self) -> String {
        // A plan holds only plain data (no maps with non-string keys), so this cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// `gauntlet run <source> --seed S`, plus the overrides that changed the run. Real is the
    /// default backend and signatures the default authentication, so commands of such runs
    /// read as they always have; any other mode is named, whether the file or `--auth` chose it.
    pub fn reproduce_command(&self, duration_override: Option<f64>, backend: Backend) -> String {
        let mut command = format!("gauntlet run {} --seed {}", self.source, self.seed);
        if let Some(d) = duration_override {
            command.push_str(&format!(" --duration {d}"));
        }
        let auth = self.scenario.cluster.auth;
        if auth != replica::auth::AuthMode::default() {
            command.push_str(&format!(" --auth {auth}"));
        }
        if backend != Backend::Real {
            command.push_str(&format!(" --backend {backend}"));
        }
        command
    }
}

/// Resolves `loaded` with `seed`, on a seeded block of ports that is free right now.
pub fn resolve(loaded: &LoadedScenario, seed: u64) -> Result<Plan, PlanError> {
    let scenario = &loaded.scenario;
    let base = free_port_block(seed, &scenario.name, ports_needed(scenario))?;
    resolve_at(loaded, seed, base)
}

/// One port per replica process, per directed replica link (twins included) and per client
/// link.
fn ports_needed(scenario: &Scenario) -> usize {
    let n = scenario.cluster.n();
    let twins = TwinsPlan::of(scenario).map_or(0, |t| t.twinned.len());
    n + twins + (n + twins) * (n - 1) + scenario.workload.clients as usize * n
}

/// Resolves `loaded` with `seed`, its ports from `base` on. Everything but the base is a
/// function of the scenario and the seed alone.
fn resolve_at(loaded: &LoadedScenario, seed: u64, base: u16) -> Result<Plan, PlanError> {
    let scenario = &loaded.scenario;
    let n = scenario.cluster.n();
    let clients = scenario.workload.clients as usize;

    let mut keys = substream(seed, "keys");
    let key_seed: u64 = keys.random();
    let proxy_seed: u64 = substream(seed, "proxy").random();

    let twins = TwinsPlan::of(scenario);
    let twin_count = twins.as_ref().map_or(0, |t| t.twinned.len());
    let port_count = ports_needed(scenario);
    let mut next_port = base;
    let mut take_port = || {
        let port = next_port;
        next_port += 1;
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    };

    let mut replicas: Vec<ReplicaPlan> = (0..n as u32)
        .map(|i| {
            let spec = scenario.replicas.get(&i);
            ReplicaPlan {
                id: ReplicaId(i),
                address: take_port(),
                build: spec.map_or(Build::Honest, |s| s.build),
                behaviour: spec.and_then(|s| s.behaviour.clone()),
                behaviour_seed: spec
                    .filter(|s| s.build == Build::Byzantine)
                    .map(|_| substream(seed, &format!("behaviour/replica-{i}")).random()),
                twin_address: None,
            }
        })
        .collect();
    for r in &mut replicas {
        if twins.as_ref().is_some_and(|t| t.is_twinned(r.id)) {
            r.twin_address = Some(take_port());
        }
    }
    // A link to a twinned replica reaches the twin on the dialer's side.
    let target = |from: Endpoint, to: &ReplicaPlan| match (&twins, to.twin_address) {
        (Some(t), Some(twin_b)) if t.route(from) == Side::B => twin_b,
        _ => to.address,
    };
    let mut dialers: Vec<(Endpoint, ReplicaId)> = replicas
        .iter()
        .map(|r| (Endpoint::Replica(r.id), r.id))
        .collect();
    if let Some(t) = &twins {
        dialers.extend(t.twinned.iter().map(|r| (Endpoint::Twin(*r), *r)));
    }
    let mut links = Vec::with_capacity(port_count - n - twin_count);
    for (from, from_id) in dialers {
        for to in &replicas {
            if from_id != to.id {
                links.push(LinkSpec {
                    from,
                    to: to.id,
                    listen: take_port(),
                    target: target(from, to),
                });
            }
        }
    }
    let mut workload = substream(seed, "workload");
    let client_plans: Vec<ClientPlan> = (0..clients as u32)
        .map(|c| ClientPlan {
            id: ClientId(c),
            op_seed: workload.random(),
        })
        .collect();
    for client in &client_plans {
        for to in &replicas {
            let from = Endpoint::Client(client.id);
            links.push(LinkSpec {
                from,
                to: to.id,
                listen: take_port(),
                target: target(from, to),
            });
        }
    }
    let twins = twins.map(|t| TwinsPlan {
        rules: t.separation_rules(&links),
        ..t
    });

    let faults = plan_nemesis(loaded, seed, &links, twins.as_ref())?;

    Ok(Plan {
        source: loaded.source.clone(),
        seed,
        scenario: scenario.clone(),
        key_seed,
        proxy_seed,
        replicas,
        clients: client_plans,
        links,
        nemesis: faults,
        twins,
    })
}

/// The nemesis schedule: generated (timed and round-bound faults) or written out, refused
/// when it takes down more than f replicas at once unless the scenario allows it.
fn plan_nemesis(
    loaded: &LoadedScenario,
    seed: u64,
    links: &[LinkSpec],
    twins: Option<&TwinsPlan>,
) -> Result<Vec<PlannedFault>, PlanError> {
    let scenario = &loaded.scenario;
    let n = scenario.cluster.n();
    let mut nemesis_rng = substream(seed, "nemesis");
    let faults = match &scenario.nemesis.generate {
        Some(spec) => {
            // Round-bound faults draw from a stream of their own, so adding them to a
            // scenario leaves its timed faults as they were.
            let context = nemesis::RoundContext { n, links, twins };
            let mut rounds_rng = substream(seed, "nemesis/rounds");
            let mut faults = nemesis::generate_rounds(spec, &context, &mut rounds_rng);
            let duration_ms = scenario.workload.duration_ms();
            faults.extend(nemesis::generate(spec, n, duration_ms, &mut nemesis_rng));
            faults
        }
        None => nemesis::resolve_schedule(&scenario.nemesis.schedule, n, &mut nemesis_rng),
    };
    let down = nemesis::max_down(&faults);
    if down > scenario.cluster.f && !scenario.nemesis.allow_over_f {
        let section = match scenario.nemesis.generate {
            Some(_) => "generate",
            None => "schedule",
        };
        return Err(PlanError::Scenario(locate_field(
            loaded,
            &["nemesis", section],
            format!(
                "up to {down} replicas are down or paused at once, more than f = {}; \
                 set `nemesis.allow_over_f: true` if this is a negative control",
                scenario.cluster.f
            ),
        )));
    }

    Ok(faults)
}

/// A seeded base port such that `count` consecutive ports are free right now. Deterministic
/// for a seed as long as the same ports are free. The scenario's name is mixed in so that
/// different scenarios run with one seed at the same time (a campaign) do not collide.
fn free_port_block(seed: u64, scenario: &str, count: usize) -> Result<u16, PlanError> {
    let mut rng = substream(seed, &format!("ports/{scenario}"));
    let span = PORT_RANGE.end - PORT_RANGE.start;
    let count16 = u16::try_from(count).map_err(|_| PlanError::NoFreePorts(count))?;
    if count16 >= span {
        return Err(PlanError::NoFreePorts(count));
    }
    for _ in 0..PORT_ATTEMPTS {
        let base = PORT_RANGE.start + rng.random_range(0..span - count16);
        let all_free = (base..base + count16)
            .all(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    Err(PlanError::NoFreePorts(count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    #[test]
    fn same_scenario_and_seed_give_a_byte_identical_plan() {
        for name in ["default", "partition-halves", "too-many-crashes"] {
            let loaded = scenario::load(name).expect("built-in");
            // On a fixed port block: which ports are free depends on the machine, and on
            // the other tests binding ports at the same time.
            let a = resolve_at(&loaded, 42, 20_000).expect("plan").to_json();
            let b = resolve_at(&loaded, 42, 20_000).expect("plan").to_json();
            assert_eq!(a, b, "{name}");
        }
    }

    #[test]
    fn a_plan_writes_each_behaviour_as_name_and_params_and_reads_it_back_typed() {
        let loaded = scenario::load("byz-censor").expect("built-in");
        let plan = resolve(&loaded, 7).expect("plan");
        let json = plan.to_json();
        assert!(
            json.contains(
                "\"behaviour\": \"censor\",\n      \"params\": {\n        \"clients\": \"0,2\"\n      },"
            ),
            "{json}"
        );
        let back: Plan = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, plan);
        assert_eq!(back.to_json(), json);
        let broken = json.replacen("\"0,2\"", "\"0,x\"", 2);
        let error = serde_json::from_str::<Plan>(&broken).expect_err("a bad parameter");
        assert!(error.to_string().contains("clients=0,x"), "{error}");
    }

    #[test]
    fn different_seeds_give_different_plans() {
        let loaded = scenario::load("default").expect("built-in");
        let a = resolve(&loaded, 1).expect("plan");
        let b = resolve(&loaded, 2).expect("plan");
        assert_ne!(a.key_seed, b.key_seed);
        assert_ne!(a.nemesis, b.nemesis);
    }

    #[test]
    fn substreams_are_independent_by_name() {
        let a: u64 = substream(9, "keys").random();
        let b: u64 = substream(9, "ports").random();
        let again: u64 = substream(9, "keys").random();
        assert_ne!(a, b);
        assert_eq!(a, again);
    }

    #[test]
    fn every_directed_link_has_its_own_loopback_port() {
        let loaded = scenario::load("default").expect("built-in");
        let plan = resolve(&loaded, 5).expect("plan");
        let n = plan.n();
        assert_eq!(plan.links.len(), n * (n - 1) + plan.clients.len() * n);
        let mut ports: Vec<u16> = plan.links.iter().map(|l| l.listen.port()).collect();
        ports.extend(plan.replicas.iter().map(|r| r.address.port()));
        let count = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), count, "ports must be distinct");
        assert!(plan.links.iter().all(|l| l.listen.ip().is_loopback()));
    }

    #[test]
    fn reproduce_command_names_the_sim_backend_and_leaves_real_commands_unchanged() {
        let plan = resolve(&scenario::load("smoke").expect("built-in"), 7).expect("plan");
        assert_eq!(
            plan.reproduce_command(None, Backend::Real),
            "gauntlet run smoke --seed 7"
        );
        assert_eq!(
            plan.reproduce_command(Some(2.5), Backend::Real),
            "gauntlet run smoke --seed 7 --duration 2.5"
        );
        assert_eq!(
            plan.reproduce_command(Some(2.5), Backend::Sim),
            "gauntlet run smoke --seed 7 --duration 2.5 --backend sim"
        );
    }

    #[test]
    fn over_f_schedule_is_refused_unless_allowed() {
        let text = "\
name: t
workload:
  kind: kv
  duration_s: 5
nemesis:
  schedule:
    - at_ms: 100
      action: kill
      target: 1
    - at_ms: 100
      action: kill
      target: 2
";
        let loaded =
            LoadedScenario::from_text(text, std::path::Path::new("t.yaml")).expect("parses");
        let error = resolve(&loaded, 1).expect_err("two kills with f = 1");
        assert!(error.to_string().contains("t.yaml:6"), "{error}");
        let allowed = text.replace("nemesis:\n", "nemesis:\n  allow_over_f: true\n");
        let loaded =
            LoadedScenario::from_text(&allowed, std::path::Path::new("t.yaml")).expect("parses");
        assert!(resolve(&loaded, 1).is_ok());
    }
}
