//! Scenario files: what cluster to start, what load to put on it, which faults to inject and
//! what the run is expected to show. Parsed from YAML with every unknown field refused; every
//! error names the file, the line and the field.

mod builtin;
mod clients;
mod locate;
mod rounds;
mod trigger;
mod twins;

pub use builtin::{BUILTINS, Builtin, builtin};
pub use clients::ClientSpec;
pub use rounds::RoundSpec;
pub use trigger::{SentKind, TriggerSpec};
pub use twins::{Member, TwinsSpec};

use crate::proxy::Rule;
use byzantine::{Behaviour, BehaviourError};
use replica::auth::AuthMode;
use replica::config::Timeouts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;
pub use workloads::generator::{Mix, WorkloadKind};

#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// A syntax or type error found while deserializing; the message names the field path.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value that parsed but makes no sense (found by `validate`).
    #[error("{file}:{line}: field `{field}`: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
    #[error(
        "unknown scenario `{0}`: neither a built-in (see `gauntlet list`) nor a readable YAML file"
    )]
    Unknown(String),
}

impl ScenarioError {
    /// The line the error points at, when it has one (tests and reports use it).
    pub fn line(&self) -> Option<usize> {
        match self {
            ScenarioError::Parse { line, .. } | ScenarioError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// A scenario with each replica's behaviour parsed and checked.
pub type Scenario = ScenarioOf<ReplicaSpec>;

/// A scenario, generic over how it holds a replica entry: as [`ReplicaSpec`] (a [`Scenario`])
/// or, only while `parse` reads a file, as the entry's words, so that a bad behaviour is
/// refused by the checks with its field and line, in the same order as every other problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "struct Scenario",
    bound(deserialize = "R: Deserialize<'de>")
)]
pub struct ScenarioOf<R> {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Replicas that do not run the honest build, by id. Every id left out is honest.
    #[serde(default)]
    pub replicas: BTreeMap<u32, R>,
    /// How twinned replicas (`build: twin`) split the other principals; absent = the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twins: Option<TwinsSpec>,
    /// Workload clients that run a Byzantine behaviour instead, by id (see `clients.rs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clients: BTreeMap<u32, ClientSpec>,
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub nemesis: NemesisSpec,
    #[serde(default)]
    pub checks: ChecksSpec,
    #[serde(default)]
    pub expect: Expectation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    pub f: usize,
    pub checkpoint_interval: u64,
    pub watermark_window: u64,
    pub max_batch: usize,
    pub pipeline_depth: u64,
    /// Off by default: runs are about protocol faults, and fsync on a shared CI disk dominates.
    pub fsync: bool,
    pub timeouts: Timeouts,
    /// How replicas and clients authenticate: `signatures` everywhere, or `macs` where no
    /// third party must be convinced (see `replica::auth`).
    pub auth: AuthMode,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            f: 1,
            checkpoint_interval: 16,
            watermark_window: 64,
            max_batch: 64,
            pipeline_depth: 4,
            fsync: false,
            timeouts: Timeouts {
                view_change_ms: 1000,
                client_retry_ms: 300,
                max_view_change_ms: 8000,
                state_transfer_retry_ms: 300,
                ..Timeouts::default()
            },
            auth: AuthMode::default(),
        }
    }
}

impl ClusterSpec {
    pub fn n(&self) -> usize {
        3 * self.f + 1
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Build {
    Honest,
    Byzantine,
    /// Two processes sharing one identity and key (equivocation by duplication).
    Twin,
}

/// One replica's build; in a file, `behaviour: NAME` and `params: {key: "value"}` beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ReplicaFields", into = "ReplicaFields")]
pub struct ReplicaSpec {
    pub build: Build,
    /// `Some` exactly for a byzantine build.
    pub behaviour: Option<Behaviour>,
}

impl ReplicaSpec {
    /// The behaviour's parameters as the scenario gave them; none for other builds.
    pub fn params(&self) -> BTreeMap<String, String> {
        self.behaviour
            .as_ref()
            .map(Behaviour::params)
            .unwrap_or_default()
    }
}

/// A replica entry as a scenario file spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct ReplicaSpec")]
struct ReplicaFields {
    build: Build,
    #[serde(default)]
    behaviour: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

impl From<ReplicaSpec> for ReplicaFields {
    fn from(spec: ReplicaSpec) -> ReplicaFields {
        ReplicaFields {
            build: spec.build,
            params: spec.params(),
            behaviour: spec.behaviour.map(|b| b.name().to_string()),
        }
    }
}

impl TryFrom<ReplicaFields> for ReplicaSpec {
    type Error = ReplicaRefusal;

    fn try_from(fields: ReplicaFields) -> Result<ReplicaSpec, ReplicaRefusal> {
        let written = fields.behaviour.is_some() || !fields.params.is_empty();
        if let Some(refusal) = build_refusal(fields.build, written) {
            return Err(refusal);
        }
        let behaviour = match &fields.behaviour {
            Some(name) => {
                Some(Behaviour::parse(name, &fields.params).map_err(ReplicaRefusal::Behaviour)?)
            }
            None => None,
        };
        Ok(ReplicaSpec {
            build: fields.build,
            behaviour,
        })
    }
}

/// Why a replica entry is not one.
#[derive(Debug)]
enum ReplicaRefusal {
    NoBehaviour,
    NotByzantine,
    Behaviour(BehaviourError),
}

/// A byzantine build without a behaviour, or another build with one (or with parameters).
fn build_refusal(build: Build, has_behaviour: bool) -> Option<ReplicaRefusal> {
    match build {
        Build::Byzantine if !has_behaviour => Some(ReplicaRefusal::NoBehaviour),
        Build::Twin | Build::Honest if has_behaviour => Some(ReplicaRefusal::NotByzantine),
        _ => None,
    }
}

impl ReplicaRefusal {
    /// The field under the replica's entry it is about (the entry itself, its `behaviour`, or
    /// the offending key under `params`) and what is wrong there.
    fn field_and_message(&self) -> (Vec<locate::Segment>, String) {
        use locate::Segment::Key;
        let error = match self {
            ReplicaRefusal::NoBehaviour => {
                return (
                    Vec::new(),
                    "a byzantine build needs a `behaviour` (see `byzantine-replica --list`)".into(),
                );
            }
            ReplicaRefusal::NotByzantine => {
                return (
                    Vec::new(),
                    "only a byzantine build takes a `behaviour` or `params` \
                     (a twin is two honest processes)"
                        .into(),
                );
            }
            ReplicaRefusal::Behaviour(error) => error,
        };
        match error {
            BehaviourError::UnknownParam { param, .. } => (
                vec![Key("params".into()), Key(param.clone())],
                error.to_string(),
            ),
            BehaviourError::BadParam { param, .. } => (
                vec![Key("params".into()), Key(param.to_string())],
                error.to_string(),
            ),
            BehaviourError::NotInProcess { name, .. } if name == "twin" => (
                vec![Key("behaviour".into())],
                "`twin` is not a behaviour of the byzantine build: write `build: twin` instead"
                    .into(),
            ),
            BehaviourError::Unknown { .. } | BehaviourError::NotInProcess { .. } => {
                (vec![Key("behaviour".into())], error.to_string())
            }
        }
    }

    /// The problem, pinned to its field under `replica`, the entry's path.
    fn at(&self, replica: Vec<locate::Segment>) -> Problem {
        let (field, message) = self.field_and_message();
        let mut path = replica;
        path.extend(field);
        problem(path, message)
    }
}

impl std::fmt::Display for ReplicaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.field_and_message().1)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// Each client is one sequential process (PBFT clients have one request in flight), so
    /// this is also the workload's concurrency.
    #[serde(default = "default_clients")]
    pub clients: u32,
    #[serde(default = "default_keys")]
    pub keys: u32,
    /// Total operations per second across all clients; absent = every client as fast as it can.
    #[serde(default)]
    pub rate: Option<f64>,
    pub duration_s: f64,
    /// Operation weights; absent = the kind's default mix.
    #[serde(default)]
    pub mix: Option<Mix>,
    /// How long one operation may take before it is recorded as `info` (outcome unknown).
    #[serde(default = "default_op_timeout")]
    pub op_timeout_ms: u64,
}

impl WorkloadSpec {
    /// The operation mix in force: the scenario's, or the kind's default.
    pub fn mix(&self) -> Mix {
        self.mix.unwrap_or(match self.kind {
            WorkloadKind::Register => Mix::register(),
            WorkloadKind::Kv => Mix::default(),
        })
    }

    pub fn duration_ms(&self) -> u64 {
        (self.duration_s * 1000.0) as u64
    }
}

fn default_clients() -> u32 {
    4
}
fn default_keys() -> u32 {
    8
}
fn default_op_timeout() -> u64 {
    4000
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Proxy rules in force from the start until the final heal.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    #[serde(default)]
    pub schedule: Vec<ScheduledFault>,
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    /// Negative controls only: lets more than f replicas be down or paused at once.
    #[serde(default)]
    pub allow_over_f: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    Partition,
    /// Proxy rules (delay, loss, duplication, reordering, rewrites) for a while.
    LinkFault,
    Kill,
    Restart,
    Pause,
    Resume,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionShape {
    Halves,
    IsolateOne,
    IsolatePrimary,
    Bridge,
    Ring,
}

/// Which replica a process fault or an isolation hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetSpec {
    Id(u32),
    Named(NamedTarget),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamedTarget {
    /// The primary at the moment the action starts (learned from the replicas' events).
    Primary,
    /// A replica drawn from the seed.
    Random,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    /// When the fault starts, in ms after the workload started; with `on`, when its trigger
    /// is armed (absent = at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// A fault at a protocol point: it starts right after a replica sends a message
    /// (`trigger.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<TriggerSpec>,
    pub action: FaultAction,
    /// Triggered faults only: the replica is restarted / resumed this long after the trigger
    /// fired; absent = at the final heal (`restart` alone: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// How long the fault lasts; absent = until the final heal (or for `permanent` kills, forever).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub target: Option<TargetSpec>,
    /// `partition` only.
    #[serde(default)]
    pub shape: Option<PartitionShape>,
    /// `partition` only: cut traffic from the isolated side only.
    #[serde(default)]
    pub one_way: bool,
    /// `link-fault` only: the proxy rules to install.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// `kill` only: the replica is not restarted by the final heal (negative controls).
    #[serde(default)]
    pub permanent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Delay,
    Loss,
    Duplicate,
    Reorder,
    Rewrite,
    Kill,
    Pause,
    /// A partition of the replica processes bound to one protocol round (view, seqs,
    /// optionally one phase), not to a time: ByzzFuzz's network faults (`rounds.rs`).
    RoundPartition,
    /// A partition of the replica processes, twins included, for each of the first views
    /// (Twins); replaces the twins' standing separation.
    TwinsRound,
    /// The sender of a round's message is killed right after sending it and restarted.
    RoundCrash,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    pub kinds: Vec<FaultKind>,
    /// One timed fault starts in every interval of this length.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// In (0, 1]: the share of an interval a fault lasts, and how hard link faults hit.
    #[serde(default = "default_intensity")]
    pub intensity: f64,
    /// No fault before this time, so the cluster gets going first.
    #[serde(default = "default_quiet_start")]
    pub start_ms: u64,
    /// How the round-bound kinds draw their rounds; absent = the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<RoundSpec>,
}

fn default_quiet_start() -> u64 {
    1000
}
fn default_interval() -> u64 {
    1000
}
fn default_intensity() -> f64 {
    0.5
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Oracle {
    Linearizability,
    Agreement,
    StateAgreement,
    /// A replica restarted from its log never contradicts what it sent before (`check::amnesia`).
    NoAmnesia,
    Validity,
    Integrity,
    Liveness,
    /// Each honest replica's log slots, log bytes and memory stay under bounds derived from
    /// the cluster settings (`check::resources`).
    BoundedResources,
}

impl Oracle {
    pub const ALL: [Oracle; 8] = [
        Oracle::Linearizability,
        Oracle::Agreement,
        Oracle::StateAgreement,
        Oracle::NoAmnesia,
        Oracle::Validity,
        Oracle::Integrity,
        Oracle::Liveness,
        Oracle::BoundedResources,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Oracle::Linearizability => "linearizability",
            Oracle::Agreement => "agreement",
            Oracle::StateAgreement => "state-agreement",
            Oracle::NoAmnesia => "no-amnesia",
            Oracle::Validity => "validity",
            Oracle::Integrity => "integrity",
            Oracle::Liveness => "liveness",
            Oracle::BoundedResources => "bounded-resources",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksSpec {
    pub oracles: Vec<Oracle>,
    /// After the heal, every client must complete an operation within this bound.
    pub liveness_bound_ms: u64,
    /// Quiet time between the heal and the liveness probe.
    pub settle_ms: u64,
    /// Operations each client runs in the liveness probe.
    pub probe_ops: u32,
    /// Per-key budget of the linearizability checker; running out makes the run inconclusive.
    pub linearizability_timeout_ms: u64,
}

impl Default for ChecksSpec {
    fn default() -> Self {
        ChecksSpec {
            oracles: Oracle::ALL.to_vec(),
            liveness_bound_ms: 10_000,
            settle_ms: 1000,
            probe_ops: 3,
            linearizability_timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    #[default]
    Pass,
    Violation,
}

/// A parsed scenario with where it came from (for the reproduce command and for errors).
#[derive(Clone, Debug)]
pub struct LoadedScenario {
    pub scenario: Scenario,
    /// The built-in name or the path the user gave.
    pub source: String,
    /// How errors name the file: the path, or `<built-in NAME>`.
    pub file: PathBuf,
    pub text: String,
}

impl LoadedScenario {
    /// Parses `text`; `file` names it in errors and in the reproduce command.
    pub fn from_text(text: &str, file: &Path) -> Result<LoadedScenario, ScenarioError> {
        Ok(LoadedScenario {
            scenario: parse(text, file)?,
            source: file.display().to_string(),
            file: file.to_path_buf(),
            text: text.to_string(),
        })
    }

    /// Replaces the cluster's authentication mode (`--auth`), so every scenario runs in both.
    pub fn with_auth(mut self, auth: AuthMode) -> LoadedScenario {
        self.scenario.cluster.auth = auth;
        self
    }

    /// Replaces the workload's duration (short CI variants) and checks the result again.
    pub fn with_duration(mut self, duration_s: f64) -> Result<LoadedScenario, ScenarioError> {
        self.scenario.workload.duration_s = duration_s;
        validate(&self.scenario).map_err(|problem| self.invalid(problem))?;
        Ok(self)
    }

    fn invalid(&self, problem: Problem) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.clone(),
            line: locate::line_of(&self.text, &problem.path),
            field: locate::display_path(&problem.path),
            message: problem.message,
        }
    }
}

/// An error about the field at `path` (keys only) of a loaded scenario, with its line.
pub fn locate_field(
    loaded: &LoadedScenario,
    path: &[&str],
    message: impl Into<String>,
) -> ScenarioError {
    loaded.invalid(problem(
        path.iter()
            .map(|k| locate::Segment::Key(k.to_string()))
            .collect(),
        message,
    ))
}

/// Resolves `name_or_path`: a built-in name first, otherwise a YAML file.
pub fn load(name_or_path: &str) -> Result<LoadedScenario, ScenarioError> {
    if let Some(found) = builtin(name_or_path) {
        let file = PathBuf::from(format!("<built-in {}>", found.name));
        let mut loaded = LoadedScenario::from_text(found.yaml, &file)?;
        loaded.source = found.name.to_string();
        return Ok(loaded);
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(ScenarioError::Unknown(name_or_path.to_string()));
    }
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    LoadedScenario::from_text(&text, path)
}

/// Parses and validates a scenario's text; `file` only names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
    let written: ScenarioOf<ReplicaFields> = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        ScenarioError::Parse {
            file: file.to_path_buf(),
            line,
            column,
            message: strip_location(&e.to_string()),
        }
    })?;
    let invalid = |problem: Problem| ScenarioError::Invalid {
        file: file.to_path_buf(),
        line: locate::line_of(text, &problem.path),
        field: locate::display_path(&problem.path),
        message: problem.message,
    };
    let scenario = typed(written).map_err(invalid)?;
    validate(&scenario).map_err(invalid)?;
    Ok(scenario)
}

impl<R> ScenarioOf<R> {
    /// The same scenario with each replica entry converted by `convert`, or its first error.
    fn try_map_replicas<S, E>(
        self,
        mut convert: impl FnMut(u32, R) -> Result<S, E>,
    ) -> Result<ScenarioOf<S>, E> {
        let ScenarioOf {
            name,
            description,
            cluster,
            replicas,
            twins,
            clients,
            workload,
            network,
            nemesis,
            checks,
            expect,
        } = self;
        let replicas = replicas
            .into_iter()
            .map(|(id, entry)| Ok((id, convert(id, entry)?)))
            .collect::<Result<_, E>>()?;
        Ok(ScenarioOf {
            name,
            description,
            cluster,
            replicas,
            twins,
            clients,
            workload,
            network,
            nemesis,
            checks,
            expect,
        })
    }
}

/// `written` with each replica's behaviour parsed. What `validate` checks before the
/// replicas is checked first here too, so a file with several problems is refused for the
/// same one whichever step finds it.
fn typed(written: ScenarioOf<ReplicaFields>) -> Result<Scenario, Problem> {
    validate_cluster(&written.cluster)?;
    let cluster = written.cluster.clone();
    written.try_map_replicas(|id, fields| {
        let path = replica_path(id);
        validate_replica_id(id, &cluster).map_err(|message| problem(path.clone(), message))?;
        ReplicaSpec::try_from(fields).map_err(|refusal| refusal.at(path))
    })
}

fn replica_path(id: u32) -> Vec<locate::Segment> {
    vec![
        locate::Segment::Key("replicas".into()),
        locate::Segment::Key(id.to_string()),
    ]
}

fn validate_replica_id(id: u32, cluster: &ClusterSpec) -> Result<(), String> {
    let n = cluster.n() as u32;
    if id >= n {
        return Err(format!(
            "replica {id} does not exist: f = {} means ids 0..{n}",
            cluster.f
        ));
    }
    Ok(())
}

/// yaml_serde appends " at line L column C"; the error prints the location itself.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// A semantic problem and the path of the field it is about.
struct Problem {
    path: Vec<locate::Segment>,
    message: String,
}

fn problem(path: Vec<locate::Segment>, message: impl Into<String>) -> Problem {
    Problem {
        path,
        message: message.into(),
    }
}

fn validate(s: &Scenario) -> Result<(), Problem> {
    use locate::Segment::{Index, Key};
    let key = |k: &str| Key(k.to_string());
    validate_cluster(&s.cluster)?;
    for (id, spec) in &s.replicas {
        let path = replica_path(*id);
        validate_replica_id(*id, &s.cluster).map_err(|message| problem(path.clone(), message))?;
        if let Some(refusal) = build_refusal(spec.build, spec.behaviour.is_some()) {
            return Err(refusal.at(path));
        }
    }
    let n = s.cluster.n() as u32;
    let w = &s.workload;
    twins::validate_twins(s)?;
    clients::validate_clients(s)?;
    if w.clients == 0 {
        return Err(problem(
            vec![key("workload"), key("clients")],
            "must be at least 1",
        ));
    }
    if w.keys == 0 {
        return Err(problem(
            vec![key("workload"), key("keys")],
            "must be at least 1",
        ));
    }
    if !(w.duration_s > 0.0 && w.duration_s <= 86_400.0) {
        return Err(problem(
            vec![key("workload"), key("duration_s")],
            "must be a positive number of seconds (at most a day)",
        ));
    }
    if let Some(rate) = w.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        return Err(problem(
            vec![key("workload"), key("rate")],
            "must be a positive number of operations per second",
        ));
    }
    let mix = w.mix();
    if mix.put + mix.get + mix.append + mix.cas == 0 {
        return Err(problem(
            vec![key("workload"), key("mix")],
            "at least one weight must be positive",
        ));
    }
    if w.kind == WorkloadKind::Register && mix.append > 0 {
        return Err(problem(
            vec![key("workload"), key("mix"), key("append")],
            "the register workload has no append (its weight must be 0)",
        ));
    }
    let duration_ms = (w.duration_s * 1000.0) as u64;
    let nemesis = &s.nemesis;
    if !nemesis.schedule.is_empty() && nemesis.generate.is_some() {
        return Err(problem(
            vec![key("nemesis"), key("generate")],
            "give either `schedule` or `generate`, not both",
        ));
    }
    trigger::validate_triggers(s)?;
    for (index, fault) in nemesis.schedule.iter().enumerate() {
        let at = |field: &str| vec![key("nemesis"), key("schedule"), Index(index), key(field)];
        validate_fault(fault, n, duration_ms)
            .map_err(|(field, message)| problem(at(field), message))?;
    }
    if let Some(generate) = &nemesis.generate {
        let at = |field: &str| vec![key("nemesis"), key("generate"), key(field)];
        if generate.kinds.is_empty() {
            return Err(problem(at("kinds"), "name at least one fault kind"));
        }
        if generate.interval_ms < 100 {
            return Err(problem(at("interval_ms"), "must be at least 100"));
        }
        if !(generate.intensity > 0.0 && generate.intensity <= 1.0) {
            return Err(problem(at("intensity"), "must be in (0, 1]"));
        }
        rounds::validate_rounds(s)?;
    }
    if s.checks.oracles.is_empty() {
        return Err(problem(
            vec![key("checks"), key("oracles")],
            "name at least one oracle",
        ));
    }
    if s.checks.liveness_bound_ms == 0 {
        return Err(problem(
            vec![key("checks"), key("liveness_bound_ms")],
            "must be positive",
        ));
    }
    Ok(())
}

/// The cluster section alone: what no other check can be judged without.
fn validate_cluster(c: &ClusterSpec) -> Result<(), Problem> {
    use locate::Segment::Key;
    let key = |k: &str| Key(k.to_string());
    if c.f == 0 {
        return Err(problem(
            vec![key("cluster"), key("f")],
            "must be at least 1",
        ));
    }
    if c.checkpoint_interval == 0 {
        return Err(problem(
            vec![key("cluster"), key("checkpoint_interval")],
            "must be at least 1",
        ));
    }
    if c.watermark_window < 2 * c.checkpoint_interval
        || !c.watermark_window.is_multiple_of(c.checkpoint_interval)
    {
        return Err(problem(
            vec![key("cluster"), key("watermark_window")],
            "must be a multiple of checkpoint_interval and at least twice it",
        ));
    }
    Ok(())
}

fn validate_fault(
    fault: &ScheduledFault,
    n: u32,
    duration_ms: u64,
) -> Result<(), (&'static str, String)> {
    if let Some(at_ms) = fault.at_ms
        && at_ms > duration_ms
    {
        return Err((
            "at_ms",
            format!("{at_ms} is after the workload ends ({duration_ms} ms)"),
        ));
    }
    if let Some(TargetSpec::Id(id)) = fault.target
        && id >= n
    {
        return Err((
            "target",
            format!("replica {id} does not exist (ids 0..{n})"),
        ));
    }
    let is_process = matches!(
        fault.action,
        FaultAction::Kill | FaultAction::Restart | FaultAction::Pause | FaultAction::Resume
    );
    if fault.action == FaultAction::Partition && fault.shape.is_none() {
        return Err((
            "shape",
            "a partition needs a `shape` (halves, isolate-one, isolate-primary, bridge, ring)"
                .into(),
        ));
    }
    if fault.action == FaultAction::LinkFault && fault.rules.is_empty() {
        return Err(("rules", "a link-fault needs at least one proxy rule".into()));
    }
    if fault.action != FaultAction::Partition && fault.shape.is_some() {
        return Err(("shape", "only a partition takes a `shape`".into()));
    }
    if fault.action != FaultAction::LinkFault && !fault.rules.is_empty() {
        return Err(("rules", "only a link-fault takes `rules`".into()));
    }
    if fault.permanent && fault.action != FaultAction::Kill {
        return Err(("permanent", "only a kill can be permanent".into()));
    }
    if fault.permanent && fault.duration_ms.is_some() {
        return Err(("duration_ms", "a permanent kill has no duration".into()));
    }
    if is_process && fault.target.is_none() && fault.on.is_none() {
        return Err(("target", "a process fault needs a `target`".into()));
    }
    if matches!(fault.action, FaultAction::Restart | FaultAction::Resume)
        && fault.duration_ms.is_some()
    {
        return Err(("duration_ms", "restart and resume are instantaneous".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trigger_tests;
