//! Log output of every binary of the workspace (`replica`, `byzantine-replica`, `gauntlet`):
//! `tracing` lines on standard error, coloured only for a person at a terminal.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

/// Whether log lines get ANSI colour codes: only when standard error is a terminal and
/// `NO_COLOR` (<https://no-color.org>) is unset or empty. A pipe or a file (a run folder's
/// `replica-N.stderr`) gets plain text.
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the global `tracing` subscriber: filtered by `RUST_LOG`, else by `default_filter`
/// (an `EnvFilter` directive such as `info` or `warn,harness=info`), written to standard error,
/// coloured as [`use_colour`] decides.
pub fn init(default_filter: &str) {
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
}

#[cfg(test)]
mod tests {
    use super::use_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_and_only_without_a_non_empty_no_color() {
        let set = |v: &'static str| Some(OsStr::new(v));
        assert!(use_colour(true, None));
        assert!(
            use_colour(true, set("")),
            "an empty NO_COLOR counts as unset"
        );
        assert!(!use_colour(true, set("1")));
        assert!(
            !use_colour(true, set("false")),
            "any non-empty value disables colour"
        );
        assert!(!use_colour(false, None), "a pipe or a file gets no colour");
        assert!(!use_colour(false, set("")));
        assert!(!use_colour(false, set("1")));
    }
}
