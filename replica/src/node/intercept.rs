//! The one seam between the core and the network. The honest node passes everything through;
//! the `byzantine` crate plugs in behaviours that withhold, delay, duplicate, rewrite or invent
//! what a faulty replica sends and sees. The simulator honours the same seam, so a behaviour
//! is tested in-process exactly as it runs in a process.

use crate::config::ClusterConfig;
use crate::core::{Core, Effect, Input};
use crate::crypto::KeyStore;
use ed25519_dalek::SigningKey;
use std::time::Duration;

pub struct InterceptContext<'a> {
    pub core: &'a Core,
    pub key: &'a SigningKey,
    pub keys: &'a KeyStore,
    pub config: &'a ClusterConfig,
    /// Time since the node (or simulated replica) started.
    pub elapsed: Duration,
}

pub trait Interceptor: Send + 'static {
    /// Sees every verified input before the core; returns what the core should see instead.
    fn inbound(&mut self, input: Input, _ctx: &InterceptContext<'_>) -> Vec<Input> {
        vec![input]
    }

    /// Sees every effect the core produced; returns what is carried out, each after a delay
    /// (`Duration::ZERO` = now, in order).
    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        vec![(Duration::ZERO, effect)]
    }

    /// Called about every 50 ms, for behaviours that act unprompted (a flood).
    fn tick(&mut self, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        Vec::new()
    }
}

/// The honest replica: no interception at all.
pub struct Honest;

impl Interceptor for Honest {}
