//! Clients and workloads for the PBFT KV service.

pub mod baseline;
pub mod byzc;
pub mod client;
pub mod generator;
pub mod history;
pub mod model;
pub mod testnet;
