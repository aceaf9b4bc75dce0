//! byzantine (being built)
