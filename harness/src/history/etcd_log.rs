//! porcupine's Jepsen etcd logs: `INFO  jepsen.util - PROCESS TYPE F VALUE` lines (tab or
//! space separated) of one register with read, write and cas.
//!
//! Read as porcupine's own test reads them: a `:fail` cas ran and did not swap (etcd answered
//! false), a `:fail` read timed out (unknown outcome), `:info` is unknown, and a read of `nil`
//! reads the initial value. Lines that are not `jepsen.util` operation lines are skipped.

use super::{LineError, SourceEvent};
use workloads::history::{EventType, Function};

const MARKER: &str = "jepsen.util - ";

/// True if `line` is one of this format's operation lines.
pub fn is_operation_line(line: &str) -> bool {
    line.starts_with("INFO") && line.contains(MARKER)
}

pub fn read(text: &str) -> Result<Vec<SourceEvent>, LineError> {
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if !is_operation_line(line) {
            continue;
        }
        let Some((_, rest)) = line.split_once(MARKER) else {
            continue;
        };
        events.push(parse(index + 1, rest)?);
    }
    Ok(events)
}

fn parse(line: usize, rest: &str) -> Result<SourceEvent, LineError> {
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let error = |reason: String| LineError::new(line, reason);
    let [process, raw_kind, f, value @ ..] = fields.as_slice() else {
        return Err(error(format!(
            "expected `PROCESS :type :f VALUE` after `{MARKER}`, found {rest:?}"
        )));
    };
    let process: u32 = process
        .parse()
        .map_err(|_| error(format!("process {process:?} is not a number")))?;
    let value = value.join(" ");
    let function = match *f {
        ":read" => Function::Get,
        ":write" => Function::Put,
        ":cas" => Function::Cas,
        other => {
            return Err(error(format!(
                "unknown function {other}; expected :read, :write or :cas"
            )));
        }
    };
    let kind = match (*raw_kind, function) {
        (":invoke", _) => EventType::Invoke,
        (":ok", _) => EventType::Ok,
        // etcd answered the compare-and-set with false: it ran and did not swap.
        (":fail", Function::Cas) => EventType::Ok,
        // A read that timed out may have read anything.
        (":fail", Function::Get) | (":info", _) => EventType::Info,
        (":fail", _) => EventType::Fail,
        (other, _) => {
            return Err(error(format!(
                "unknown type {other}; expected :invoke, :ok, :fail or :info"
            )));
        }
    };
    let mut source = SourceEvent::new(line, process, kind, function, String::new());
    let event = &mut source.event;
    match function {
        Function::Get if kind == EventType::Ok => {
            event.value = (value != "nil").then(|| number(&value, line)).transpose()?;
        }
        Function::Put if kind == EventType::Invoke => event.value = Some(number(&value, line)?),
        Function::Cas if kind == EventType::Invoke => {
            let inner = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| error(format!("a cas needs `[expected new]`, found {value:?}")))?;
            let [expected, new] = inner.split_whitespace().collect::<Vec<_>>()[..] else {
                return Err(error(format!(
                    "a cas needs `[expected new]`, found {value:?}"
                )));
            };
            event.expected = Some(number(expected, line)?);
            event.value = Some(number(new, line)?);
        }
        Function::Cas if kind == EventType::Ok => event.swapped = Some(*raw_kind == ":ok"),
        _ => {}
    }
    Ok(source)
}

fn number(text: &str, line: usize) -> Result<String, LineError> {
    text.parse::<i64>()
        .map(|n| n.to_string())
        .map_err(|_| LineError::new(line, format!("expected a number, found {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_lines_read_as_porcupine_reads_them() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\n\
                    some other log line\n\
                    INFO  jepsen.util - 0   :fail   :cas    [1 2]\n\
                    INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 1\t:fail\t:read\t:timed-out\n\
                    INFO  jepsen.util - 2\t:invoke\t:write\t4\n\
                    INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n\
                    INFO  jepsen.util - 3\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 3\t:ok\t:read\tnil\n";
        let events = read(text).expect("reads");
        assert_eq!(events.len(), 8);
        assert_eq!(events[0].event.expected.as_deref(), Some("1"));
        assert_eq!(events[1].line, 3);
        assert_eq!(events[1].event.kind, EventType::Ok);
        assert_eq!(events[1].event.swapped, Some(false));
        assert_eq!(events[3].event.kind, EventType::Info);
        assert_eq!(events[4].event.value.as_deref(), Some("4"));
        assert_eq!(events[5].event.kind, EventType::Info);
        assert_eq!(events[7].event.value, None);
    }

    #[test]
    fn a_malformed_operation_line_is_refused_with_its_line() {
        let text =
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - x\t:ok\t:read\t3\n";
        let error = read(text).expect_err("bad process");
        assert_eq!(error.line, 2);
        let error = read("INFO  jepsen.util - 0\t:invoke\t:cas\t[1]\n").expect_err("bad cas");
        assert!(error.reason.contains("[expected new]"), "{}", error.reason);
    }
}
