//! The message-aware proxy that sits on every link.

mod rules;

pub use rules::{Action, Direction, Endpoint, LinkSpec, Matcher, RewriteMode, Rule};
