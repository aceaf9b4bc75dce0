//! workloads (being built)
