//! The `clients` section: workload clients that run a Byzantine behaviour instead of the
//! honest workload, by id, as `replicas` names the faulty replicas:
//!
//! ```yaml
//! workload: { kind: kv, clients: 4, duration_s: 8 }
//! clients:
//!   3: { behaviour: flood, params: { rate: "max", targets: mixed } }
//! ```
//!
//! A Byzantine client keeps its id, key and proxy links; it records nothing in the history
//! (the judges check the honest clients' service), and what it sent goes to
//! `byzantine-clients.json`.

use super::locate::Segment::{self, Key};
use super::{Build, Problem, Scenario, problem};
use replica::ClientId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// One of `workloads::byzc::CATALOGUE`.
    pub behaviour: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

impl ClientSpec {
    /// The behaviour with its parameters resolved (checked when the scenario was loaded).
    pub fn spec(&self) -> Result<workloads::byzc::Spec, workloads::byzc::SpecError> {
        workloads::byzc::validate(&self.behaviour, &self.params)
    }
}

impl Scenario {
    /// The clients that run a Byzantine behaviour, in id order.
    pub fn byzantine_clients(&self) -> Vec<ClientId> {
        self.clients.keys().copied().map(ClientId).collect()
    }

    pub fn is_byzantine_client(&self, client: ClientId) -> bool {
        self.clients.contains_key(&client.0)
    }

    /// The clients that run the honest workload (and whose history is judged), in id order.
    pub fn honest_clients(&self) -> Vec<ClientId> {
        (0..self.workload.clients)
            .map(ClientId)
            .filter(|c| !self.is_byzantine_client(*c))
            .collect()
    }
}

/// Checks the `clients` section against the workload's clients and the behaviours' catalogue.
pub(super) fn validate_clients(s: &Scenario) -> Result<(), Problem> {
    let clients = s.workload.clients;
    for (id, spec) in &s.clients {
        let path = vec![Key("clients".into()), Key(id.to_string())];
        if *id >= clients {
            return Err(problem(
                path,
                format!(
                    "client {id} does not exist: the workload has {clients} clients (ids 0..{clients})"
                ),
            ));
        }
        let behaviour = spec
            .spec()
            .map_err(|error| behaviour_problem(path.clone(), &error))?;
        if let Some(needs) = behaviour.needs_auth()
            && needs != s.cluster.auth
        {
            let mut path = path;
            path.push(Key("behaviour".into()));
            return Err(problem(
                path,
                format!(
                    "behaviour `{}` needs `auth: {needs}` (it spoils the MAC authenticators of \
                     requests, and under `auth: {}` requests carry none): set `cluster: {{ auth: \
                     {needs} }}`",
                    spec.behaviour, s.cluster.auth
                ),
            ));
        }
        if let workloads::byzc::Spec::MacAttack {
            spoil: workloads::byzc::Spoil::Backups(count),
            ..
        } = behaviour
        {
            let backups = s.cluster.n() - 1;
            if count > backups {
                let mut path = path;
                path.extend([Key("params".into()), Key("spoil".into())]);
                return Err(problem(
                    path,
                    format!(
                        "spoil={count}, but a cluster of {} replicas has {backups} backups \
                         (write `all` for every one)",
                        s.cluster.n()
                    ),
                ));
            }
        }
    }
    if !s.clients.is_empty() && s.clients.len() as u32 >= clients {
        let last = s.clients.keys().next_back().copied().unwrap_or_default();
        return Err(problem(
            vec![Key("clients".into()), Key(last.to_string())],
            "at least one client must stay honest: the oracles judge the honest clients' service",
        ));
    }
    if !s.clients.is_empty() && s.replicas.values().any(|r| r.build == Build::Twin) {
        return Err(problem(
            vec![Key("clients".into())],
            "Byzantine clients and twins in one scenario are not supported yet: the simulator \
             cannot deliver a client's own frames to a twin",
        ));
    }
    Ok(())
}

/// A behaviour or parameter the catalogue refuses, pinned to the field it is about.
fn behaviour_problem(client: Vec<Segment>, error: &workloads::byzc::SpecError) -> Problem {
    let mut path = client;
    match error.param() {
        Some(param) => path.extend([Key("params".into()), Key(param.to_string())]),
        None => path.push(Key("behaviour".into())),
    }
    problem(path, error.to_string())
}

#[cfg(test)]
mod tests {
    use crate::scenario::parse;
    use replica::ClientId;
    use std::path::Path;

    const BASE: &str = "name: t\nworkload:\n  kind: kv\n  clients: 3\n  duration_s: 3\n";

    #[test]
    fn byzantine_clients_parse_and_the_rest_stay_honest() {
        let text = format!(
            "{BASE}clients:\n  2:\n    behaviour: flood\n    params: {{ rate: \"500\" }}\n"
        );
        let scenario = parse(&text, Path::new("t.yaml")).expect("parses");
        assert_eq!(scenario.byzantine_clients(), vec![ClientId(2)]);
        assert_eq!(scenario.honest_clients(), vec![ClientId(0), ClientId(1)]);
        assert!(scenario.is_byzantine_client(ClientId(2)));
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let text = format!("{BASE}clients:\n  1:\n    behaviour: flod\n");
        let error = parse(&text, Path::new("t.yaml")).expect_err("typo");
        let message = error.to_string();
        assert!(
            message.starts_with("t.yaml:8: field `clients.1.behaviour`"),
            "{message}"
        );
        assert!(message.contains("did you mean `flood`"), "{message}");

        let text =
            format!("{BASE}clients:\n  1:\n    behaviour: flood\n    params:\n      rate: \"0\"\n");
        let error = parse(&text, Path::new("t.yaml")).expect_err("bad rate");
        assert_eq!(error.line(), Some(10), "{error}");
        assert!(
            error.to_string().contains("field `clients.1.params.rate`"),
            "{error}"
        );

        let text = format!("{BASE}clients:\n  7: {{ behaviour: flood }}\n");
        let error = parse(&text, Path::new("t.yaml")).expect_err("no client 7");
        assert_eq!(error.line(), Some(7), "{error}");
        assert!(
            error.to_string().contains("client 7 does not exist"),
            "{error}"
        );

        let text = format!(
            "{BASE}clients:\n  0: {{ behaviour: flood }}\n  1: {{ behaviour: flood }}\n  2: {{ behaviour: never-read }}\n"
        );
        let error = parse(&text, Path::new("t.yaml")).expect_err("no honest client");
        assert!(
            error
                .to_string()
                .contains("at least one client must stay honest"),
            "{error}"
        );

        let text = format!("{BASE}clients:\n  1: {{ behaviour: mac-attack }}\n");
        assert!(
            parse(&text, Path::new("t.yaml")).is_ok(),
            "macs is the default"
        );
        let text = "name: t\ncluster: { auth: signatures }\nworkload:\n  kind: kv\n  clients: 3\n  \
                    duration_s: 3\nclients:\n  1:\n    behaviour: mac-attack\n";
        let error = parse(text, Path::new("t.yaml")).expect_err("nothing to spoil");
        let message = error.to_string();
        assert!(
            message.starts_with("t.yaml:9: field `clients.1.behaviour`"),
            "{message}"
        );
        assert!(message.contains("needs `auth: macs`"), "{message}");
        let text = format!(
            "{BASE}clients:\n  1:\n    behaviour: mac-attack\n    params: {{ spoil: \"4\" }}\n"
        );
        let error = parse(&text, Path::new("t.yaml")).expect_err("four backups of four");
        assert!(
            error.to_string().contains("field `clients.1.params.spoil`"),
            "{error}"
        );
        assert!(error.to_string().contains("has 3 backups"), "{error}");

        let text = format!("{BASE}clients:\n  1: {{ behaviour: flood, speed: 3 }}\n");
        let error = parse(&text, Path::new("t.yaml")).expect_err("unknown field");
        assert!(error.to_string().contains("speed"), "{error}");
    }
}
