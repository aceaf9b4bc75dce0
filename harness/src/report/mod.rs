//! `report.html`: one self-contained page per run (inline CSS and SVG, a few lines of inline
//! script, nothing fetched) that a reader would rather look at than read: the verdict against
//! the expectation, how to reproduce it, what the clients saw over time with the faults shaded,
//! what each replica counted, and the failing key or sequence number when a check failed.

mod charts;
mod history_page;
pub mod html;
mod inputs;
mod linview;
mod ops;
mod page;
mod resources;
mod scale;
mod shading;
mod tables;
mod timeline;
mod windows;

pub use history_page::render_history_page;
pub use inputs::{FaultWindow, ReplicaFiles, RunData};
pub use timeline::MAX_BARS;

use crate::backend::Backend;
use crate::layout::RunDir;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// How pages and summaries name a backend: whether the times shown are virtual matters to
/// whoever reads them.
pub fn backend_label(backend: Backend) -> &'static str {
    match backend {
        Backend::Real => "real processes",
        Backend::Sim => "sim (virtual time)",
    }
}

/// Reads the run folder and writes `report.html` into it; returns its path. Missing or
/// malformed inputs are listed on the page rather than failing the report.
pub fn write_report(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let data = RunData::load(run_dir);
    let html = page::render(&data);
    let path = RunDir::new(run_dir.to_path_buf()).report();
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The page for `run_dir` as a string, without writing it.
pub fn render_report(run_dir: &Path) -> String {
    page::render(&RunData::load(run_dir))
}
