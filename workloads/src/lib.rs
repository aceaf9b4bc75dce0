//! Clients and workloads for the PBFT KV service.

pub mod history;
