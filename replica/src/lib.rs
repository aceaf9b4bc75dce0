//! A PBFT (Castro & Liskov) replicated key-value service.
//!
//! * [`core`] is the protocol as a sans-IO state machine: `step(input) -> effects`.
//! * [`message`], [`wire`], [`verify`] and [`crypto`] define what travels and how it is trusted.
//! * [`service`] and [`kv`] are the replicated state machine with its exactly-once reply cache.
//! * [`sim`] runs cores on a seeded in-process network (tests, and the simulator).
//! * [`node`] runs one core in a real process: TCP, write-ahead log, timers, events.
//! * [`logging`] sets up the log output every binary of the workspace shares.

pub mod auth;
pub mod client;
pub mod cofactored;
pub mod config;
pub mod core;
pub mod crypto;
pub mod digest;
pub mod events;
#[doc(hidden)]
pub mod fuzz;
pub mod host;
pub mod ids;
pub mod kv;
pub mod logging;
pub mod message;
pub mod node;
pub mod reply_tree;
pub mod service;
pub mod signature_ledger;
pub mod sim;
pub mod verify;
pub mod wire;

pub use crate::core::{Core, CoreParams, Effect, Input, Snapshot, Timer, WalRecord};
pub use ids::{ClientId, Principal, Quorums, ReplicaId, Seq, Timestamp, View};
