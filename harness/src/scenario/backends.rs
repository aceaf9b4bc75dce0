//! What each backend can run. The simulator grows feature by feature; a scenario that needs
//! one it lacks is refused before planning, pointing at the field that needs it, rather than
//! run as something it is not.

use super::{LoadedScenario, ScenarioError, locate_field};
use crate::backend::Backend;

/// The advice every refusal ends with: the real backend runs every scenario.
const USE_REAL: &str = "run it with --backend real";

/// Refuses `loaded` on `backend` if the scenario needs something that backend does not model.
pub fn check_backend(loaded: &LoadedScenario, backend: Backend) -> Result<(), ScenarioError> {
    match backend {
        Backend::Real => Ok(()),
        Backend::Sim => check_sim(loaded),
    }
}

/// Twins are two processes behind one identity, routed apart by the proxy's links; the
/// simulator has one host per replica id.
fn check_sim(loaded: &LoadedScenario) -> Result<(), ScenarioError> {
    let refuse = |path: &[&str], feature: &str| {
        locate_field(
            loaded,
            path,
            format!("the sim backend does not model {feature} yet; {USE_REAL}"),
        )
    };
    if let Some(id) = loaded.scenario.twinned().first() {
        return Err(refuse(&["replicas", &id.to_string(), "build"], "twins"));
    }
    if loaded.scenario.twins.is_some() {
        return Err(refuse(&["twins"], "twins"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TWINNED: &str = "\
name: t
workload:
  kind: kv
  duration_s: 3
replicas:
  1:
    build: twin
";

    #[test]
    fn the_sim_refuses_a_twin_naming_file_line_and_field() {
        let loaded =
            LoadedScenario::from_text(TWINNED, Path::new("byz-twin.yaml")).expect("parses");
        let error = check_backend(&loaded, Backend::Sim).expect_err("twins");
        assert_eq!(
            error.to_string(),
            "byz-twin.yaml:7: field `replicas.1.build`: the sim backend does not model twins yet; \
             run it with --backend real"
        );
        assert!(check_backend(&loaded, Backend::Real).is_ok());
    }

    #[test]
    fn the_sim_refuses_the_builtin_twin_scenario_and_runs_the_rest() {
        let twin = crate::scenario::load("byz-twin").expect("built-in");
        let error = check_backend(&twin, Backend::Sim).expect_err("twins");
        assert_eq!(error.line(), Some(4), "{error}");
        assert!(error.to_string().contains("replicas.0.build"), "{error}");
        let smoke = crate::scenario::load("smoke").expect("built-in");
        assert!(check_backend(&smoke, Backend::Sim).is_ok());
    }
}
