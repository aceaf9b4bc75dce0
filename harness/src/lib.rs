//! Gauntlet: attacks a PBFT cluster of real processes and judges what its clients saw.

pub mod check;
pub mod layout;
pub mod nemesis;
pub mod orchestrator;
pub mod plan;
pub mod primary;
pub mod processes;
pub mod proxy;
pub mod scenario;
pub mod verdict;
pub mod workload;
pub mod report;
pub mod build_info;
pub mod campaign;
