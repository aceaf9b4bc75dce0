//! Which world a run happens in: real replica processes behind the proxy, or the
//! deterministic simulator in virtual time. Both take the same scenario and plan, and write
//! the same run folder.

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Replica processes on 127.0.0.1, every link through the proxy, in real time.
    #[default]
    Real,
    /// Every replica's host, the proxy's rule engine and the clients in one process, in
    /// virtual time: byte-identical from the seed.
    Sim,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Real => "real",
            Backend::Sim => "sim",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
