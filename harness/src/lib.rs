//! Gauntlet: attacks a PBFT cluster of real processes and judges what its clients saw.

pub mod backend;
pub mod build_info;
pub mod campaign;
pub mod check;
pub mod defence;
pub mod history;
pub mod layout;
pub mod mutants;
pub mod nemesis;
pub mod orchestrator;
mod pipeline;
pub mod plan;
pub mod primary;
pub mod processes;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod sim;
pub mod twins;
pub mod verdict;
pub mod workload;
