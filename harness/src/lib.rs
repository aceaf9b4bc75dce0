//! Gauntlet: attacks a PBFT cluster of real processes and judges what its clients saw.

pub mod check;
pub mod proxy;
