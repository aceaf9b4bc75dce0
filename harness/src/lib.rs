//! harness (being built)
