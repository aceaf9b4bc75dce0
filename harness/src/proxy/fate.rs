//! What happens to one frame: the matching rules' actions, composed in rule order.

use super::matching::FrameInfo;
use super::mutate::rewrite;
use super::rules::{Action, RewriteMode, Rule};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use replica::message::WireMessage;
use std::time::Duration;

/// Copies a frame may multiply into through duplicate rules, so rules cannot blow up memory.
const MAX_COPIES: usize = 8;

/// One copy of the frame to deliver, after `delay`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub frame: Vec<u8>,
    pub delay: Duration,
}

/// An action taken on the frame, for the log and the statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub rule: String,
    pub action: &'static str,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fate {
    /// Empty when the frame is dropped.
    pub copies: Vec<Copy>,
    /// Hold for shuffling: `(window, max hold)`.
    pub reorder: Option<(usize, Duration)>,
    pub taken: Vec<Taken>,
}

/// One uniform draw per probabilistic action, whatever the probability, so the stream of
/// draws on a link depends only on its traffic and its rules.
fn happens(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    let draw: f64 = rng.random();
    draw < probability
}

fn mode_name(mode: RewriteMode) -> &'static str {
    match mode {
        RewriteMode::Field => "field",
        RewriteMode::FlipBytes => "flip-bytes",
        RewriteMode::Truncate => "truncate",
    }
}

/// Applies every rule that matches `info`, in order. `frame` is the whole frame as received
/// (length prefix and payload); `decoded` its payload as a message, if it decoded.
pub fn decide(
    rules: &[Rule],
    info: &FrameInfo,
    frame: &[u8],
    decoded: Option<&WireMessage>,
    rng: &mut ChaCha8Rng,
) -> Fate {
    let mut fate = Fate {
        copies: vec![Copy {
            frame: frame.to_vec(),
            delay: Duration::ZERO,
        }],
        reorder: None,
        taken: Vec::new(),
    };
    let payload_of = |frame: &[u8]| {
        frame
            .get(replica::wire::LENGTH_PREFIX..)
            .unwrap_or(&[])
            .to_vec()
    };
    for rule in rules.iter().filter(|r| r.matcher.matches(info)) {
        let take = |fate: &mut Fate, action: &'static str, detail: Option<String>| {
            fate.taken.push(Taken {
                rule: rule.id.clone(),
                action,
                detail,
            })
        };
        match &rule.action {
            Action::Delay {
                fixed_ms,
                jitter_ms,
            } => {
                let jitter = if *jitter_ms > 0 {
                    rng.random_range(0..=*jitter_ms)
                } else {
                    0
                };
                let delay = Duration::from_millis(fixed_ms.saturating_add(jitter));
                take(
                    &mut fate,
                    "delay",
                    Some(format!("{} ms", delay.as_millis())),
                );
                for copy in &mut fate.copies {
                    copy.delay += delay;
                }
            }
            Action::Drop { probability } => {
                if happens(rng, *probability) {
                    take(&mut fate, "drop", None);
                    fate.copies.clear();
                    fate.reorder = None;
                    return fate;
                }
            }
            Action::Duplicate { probability } => {
                if happens(rng, *probability) && fate.copies.len() < MAX_COPIES {
                    take(&mut fate, "duplicate", None);
                    let extra = fate.copies.clone();
                    fate.copies.extend(extra);
                    fate.copies.truncate(MAX_COPIES);
                }
            }
            Action::Reorder {
                window,
                max_hold_ms,
            } => {
                take(&mut fate, "reorder", Some(format!("window {window}")));
                fate.reorder = Some(((*window).max(1), Duration::from_millis(*max_hold_ms)));
            }
            Action::Rewrite { mode, probability } => {
                if happens(rng, *probability) {
                    // Every copy carries the same rewritten bytes: one mutation per frame.
                    let current = payload_of(&fate.copies[0].frame);
                    // A second rewrite works on what the first produced, which may no
                    // longer be the decoded message.
                    let already_rewritten = fate.taken.iter().any(|t| t.action == "rewrite");
                    let source = if already_rewritten { None } else { decoded };
                    let rewritten = rewrite(*mode, &current, source, rng);
                    take(
                        &mut fate,
                        "rewrite",
                        Some(format!("{}: {}", mode_name(*mode), rewritten.detail)),
                    );
                    for copy in &mut fate.copies {
                        copy.frame.clone_from(&rewritten.frame);
                    }
                }
            }
        }
    }
    fate
}
