//! Seeded in-process network for running cores deterministically (being built).
