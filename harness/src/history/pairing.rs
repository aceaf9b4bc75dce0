//! Pairs each invocation with its completion, Jepsen-style, and gives every event the request
//! id and time the checker needs, refusing what no real history can contain.

use super::{Format, LineError, ModelKind, SourceEvent};
use replica::Timestamp;
use std::collections::HashMap;
use workloads::history::{EventType, HistoryEvent};

/// Where the events' order in time came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Every event carries its time.
    Recorded,
    /// At least one event has no time: the order of the events in the file is their order in
    /// time, as in Jepsen.
    FileOrder,
}

/// A history ready for the checker: Gauntlet's events with the file line of each.
#[derive(Clone, Debug)]
pub struct ImportedHistory {
    pub format: Format,
    pub model: ModelKind,
    pub timing: Timing,
    pub events: Vec<HistoryEvent>,
    /// `lines[i]` is the file line of `events[i]`.
    pub lines: Vec<usize>,
}

/// Pairs `events` (in file order) and checks each operation against `model`.
pub fn pair(
    events: Vec<SourceEvent>,
    format: Format,
    model: ModelKind,
) -> Result<ImportedHistory, LineError> {
    let timing = if events.iter().all(|e| e.time_ns.is_some()) {
        Timing::Recorded
    } else {
        Timing::FileOrder
    };
    for source in &events {
        if !model.admits(source.event.f) {
            return Err(LineError::new(
                source.line,
                format!(
                    "a {:?} operation is outside the {model} model (choose another with --model)",
                    source.event.f
                ),
            ));
        }
    }
    let mut paired = Vec::with_capacity(events.len());
    let mut lines = Vec::with_capacity(events.len());
    // Gauntlet's own histories already name each request; the others are paired by process.
    let mut by_process = (format != Format::Gauntlet).then(ProcessPairing::default);
    for (index, source) in events.into_iter().enumerate() {
        let mut event = source.event;
        event.time_ns = match timing {
            Timing::Recorded => source.time_ns.unwrap_or_default(),
            Timing::FileOrder => index as u64,
        };
        if let Some(pairing) = by_process.as_mut() {
            pairing.assign(&mut event, source.line)?;
        }
        paired.push(event);
        lines.push(source.line);
    }
    Ok(ImportedHistory {
        format,
        model,
        timing,
        events: paired,
        lines,
    })
}

/// Each process has at most one operation open; its completion closes it.
#[derive(Default)]
struct ProcessPairing {
    /// Per process: the open invocation's line, request id, and the event itself.
    open: HashMap<u32, (usize, HistoryEvent)>,
    requests: HashMap<u32, u64>,
}

impl ProcessPairing {
    fn assign(&mut self, event: &mut HistoryEvent, line: usize) -> Result<(), LineError> {
        let process = event.process.0;
        if event.kind == EventType::Invoke {
            if let Some((open_line, _)) = self.open.get(&process) {
                return Err(LineError::new(
                    line,
                    format!(
                        "process {process} invokes a second operation while the one it invoked on line {open_line} is still open"
                    ),
                ));
            }
            let request = self.requests.entry(process).or_default();
            *request += 1;
            event.request = Timestamp(*request);
            self.open.insert(process, (line, event.clone()));
            return Ok(());
        }
        let Some((invoke_line, invoke)) = self.open.remove(&process) else {
            return Err(LineError::new(
                line,
                format!(
                    "{} completion of process {process}, which has no operation open",
                    serde_json::to_string(&event.kind)
                        .unwrap_or_default()
                        .trim_matches('"')
                ),
            ));
        };
        if invoke.f != event.f || invoke.key != event.key {
            return Err(LineError::new(
                line,
                format!(
                    "completes {:?} on key {:?}, but process {process} invoked {:?} on key {:?} (line {invoke_line})",
                    event.f, event.key, invoke.f, invoke.key
                ),
            ));
        }
        if event.time_ns < invoke.time_ns {
            return Err(LineError::new(
                line,
                format!(
                    "completes at {} ns, before its invocation at {} ns (line {invoke_line})",
                    event.time_ns, invoke.time_ns
                ),
            ));
        }
        event.request = invoke.request;
        if event.expected.is_none() {
            event.expected = invoke.expected;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::history::Function;

    fn at(line: usize, process: u32, kind: EventType, time: Option<u64>) -> SourceEvent {
        let mut source = SourceEvent::new(line, process, kind, Function::Put, String::new());
        source.event.value = Some("1".into());
        source.time_ns = time;
        source
    }

    fn paired(events: Vec<SourceEvent>) -> Result<ImportedHistory, LineError> {
        pair(events, Format::JepsenEdn, ModelKind::CasRegister)
    }

    #[test]
    fn completions_take_their_invocation_request_and_file_order_is_time_without_times() {
        let history = paired(vec![
            at(1, 0, EventType::Invoke, None),
            at(2, 1, EventType::Invoke, None),
            at(3, 0, EventType::Ok, None),
            at(4, 0, EventType::Invoke, None),
            at(5, 1, EventType::Info, None),
        ])
        .expect("pairs");
        assert_eq!(history.timing, Timing::FileOrder);
        let requests: Vec<u64> = history.events.iter().map(|e| e.request.0).collect();
        assert_eq!(requests, vec![1, 1, 1, 2, 1]);
        let times: Vec<u64> = history.events.iter().map(|e| e.time_ns).collect();
        assert_eq!(times, vec![0, 1, 2, 3, 4]);
        assert_eq!(history.lines, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn impossible_histories_are_refused_with_their_line() {
        let two_open = paired(vec![
            at(1, 0, EventType::Invoke, None),
            at(2, 0, EventType::Invoke, None),
        ]);
        assert_eq!(two_open.expect_err("two open").line, 2);
        let orphan = paired(vec![
            at(1, 0, EventType::Invoke, None),
            at(7, 3, EventType::Ok, None),
        ]);
        let orphan = orphan.expect_err("no invocation");
        assert_eq!(orphan.line, 7);
        assert!(
            orphan.reason.contains("no operation open"),
            "{}",
            orphan.reason
        );
        let early = paired(vec![
            at(1, 0, EventType::Invoke, Some(50)),
            at(2, 0, EventType::Ok, Some(40)),
        ]);
        let early = early.expect_err("completes first");
        assert_eq!(early.line, 2);
        assert!(
            early.reason.contains("before its invocation"),
            "{}",
            early.reason
        );
    }

    #[test]
    fn operations_outside_the_model_are_refused() {
        let mut append = at(4, 0, EventType::Invoke, None);
        append.event.f = Function::Append;
        let error =
            pair(vec![append], Format::JepsenEdn, ModelKind::CasRegister).expect_err("append");
        assert_eq!(error.line, 4);
        assert!(error.reason.contains("cas-register"), "{}", error.reason);
    }
}
