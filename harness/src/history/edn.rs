//! Jepsen EDN histories and porcupine's key-value logs, parsed with the `edn-format` crate.
//!
//! An operation event is a map with `:type` (`:invoke`, `:ok`, `:fail`, `:info`), `:process`,
//! `:f` and `:value`, and optionally `:time` (ns) and `:key`. Functions: `:read`/`:get`,
//! `:write`/`:put`, `:append` and `:cas` (`:value [expected new]`). Two shapes of keys:
//! porcupine's `:key` field, and Jepsen's independent keys, where every `:value` is a
//! `[key value]` pair (`[key [expected new]]` for a cas); a single register has the key "".
//! Values are compared as text: `3` and `"3"` are the same value.

use super::edn_split::{Form, operation_forms};
use super::{LineError, SourceEvent};
use edn_format::{Keyword, Value};
use std::collections::BTreeMap;
use workloads::history::{EventType, Function};

/// How a file's reads of an absent key look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Jepsen: `nil`.
    Jepsen,
    /// porcupine's kv model starts every key at "": a read of "" reads the absent key, so a
    /// written "" could not be told from it and is refused.
    PorcupineKv,
}

/// The client events of an EDN history, in document order.
pub fn read(text: &str, flavour: Flavour) -> Result<Vec<SourceEvent>, LineError> {
    let forms = operation_forms(text).map_err(|e| LineError::new(e.line, e.reason))?;
    let maps = forms.iter().map(parse_map).collect::<Result<Vec<_>, _>>()?;
    let independent = maps.iter().any(|(_, map)| is_independent(map));
    let mut events = Vec::with_capacity(maps.len());
    for (line, map) in &maps {
        let op = OpMap { line: *line, map };
        if let Some(event) = op.event(flavour, independent)? {
            events.push(event);
        }
    }
    Ok(events)
}

type EdnMap = BTreeMap<Value, Value>;

fn parse_map(form: &Form<'_>) -> Result<(usize, EdnMap), LineError> {
    let value = edn_format::parse_str(form.text)
        .map_err(|e| LineError::new(form.line, format!("not valid EDN: {}", e.error)))?;
    match value {
        Value::Map(map) => Ok((form.line, map)),
        // Jepsen 0.3 writes each operation as a record: `#jepsen.history.Op{...}`.
        Value::TaggedElement(_, inner) => match *inner {
            Value::Map(map) => Ok((form.line, map)),
            other => Err(not_an_operation(form.line, &other)),
        },
        other => Err(not_an_operation(form.line, &other)),
    }
}

fn not_an_operation(line: usize, value: &Value) -> LineError {
    LineError::new(
        line,
        format!(
            "expected an operation map like {{:type :invoke, :process 0, :f :read, :value nil}}, found {}",
            edn_format::emit_str(value)
        ),
    )
}

fn keyword(name: &str) -> Value {
    Value::Keyword(Keyword::from_name(name))
}

/// Jepsen's independent keys: a read or write whose value is a `[key value]` pair.
fn is_independent(map: &EdnMap) -> bool {
    let f = map.get(&keyword("f"));
    let is_register_op = [keyword("read"), keyword("write")]
        .iter()
        .any(|name| f == Some(name));
    is_register_op
        && matches!(map.get(&keyword("value")), Some(Value::Vector(pair)) if pair.len() == 2)
}

struct OpMap<'a> {
    line: usize,
    map: &'a EdnMap,
}

impl OpMap<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.map.get(&keyword(name))
    }

    fn error(&self, reason: impl Into<String>) -> LineError {
        LineError::new(self.line, reason)
    }

    fn keyword_field(&self, name: &str) -> Result<&str, LineError> {
        match self.field(name) {
            Some(Value::Keyword(k)) if k.namespace().is_none() => Ok(k.name()),
            Some(other) => Err(self.error(format!(
                "`:{name}` must be a keyword, found {}",
                edn_format::emit_str(other)
            ))),
            None => Err(self.error(format!("the operation has no `:{name}`"))),
        }
    }

    /// The event, or `None` for the nemesis and other non-client processes.
    fn event(&self, flavour: Flavour, independent: bool) -> Result<Option<SourceEvent>, LineError> {
        let process = match self.field("process") {
            Some(Value::Integer(p)) => u32::try_from(*p)
                .map_err(|_| self.error(format!("process {p} is not a client process number")))?,
            Some(Value::Keyword(k)) if k.name() == "nemesis" => return Ok(None),
            Some(other) => {
                return Err(self.error(format!(
                    "`:process` must be a number or :nemesis, found {}",
                    edn_format::emit_str(other)
                )));
            }
            None => return Err(self.error("the operation has no `:process`")),
        };
        let kind = match self.keyword_field("type")? {
            "invoke" => EventType::Invoke,
            "ok" => EventType::Ok,
            "fail" => EventType::Fail,
            "info" => EventType::Info,
            other => {
                return Err(self.error(format!(
                    "unknown `:type :{other}`; expected :invoke, :ok, :fail or :info"
                )));
            }
        };
        let f = match self.keyword_field("f")? {
            "read" | "get" => Function::Get,
            "write" | "put" => Function::Put,
            "append" => Function::Append,
            "cas" => Function::Cas,
            other => {
                return Err(self.error(format!(
                    "unknown function `:f :{other}`; the checker knows :read/:get, :write/:put, :append and :cas"
                )));
            }
        };
        let (key, value) = self.key_and_value(independent)?;
        let mut source = SourceEvent::new(self.line, process, kind, f, key);
        source.time_ns = self.time()?;
        self.fill_value(&mut source, value, flavour)?;
        Ok(Some(source))
    }

    fn time(&self) -> Result<Option<u64>, LineError> {
        match self.field("time") {
            None => Ok(None),
            Some(Value::Integer(t)) => u64::try_from(*t)
                .map(Some)
                .map_err(|_| self.error(format!("`:time {t}` is negative"))),
            Some(other) => Err(self.error(format!(
                "`:time` must be an integer (ns), found {}",
                edn_format::emit_str(other)
            ))),
        }
    }

    /// The key and the value that belongs to it.
    fn key_and_value(&self, independent: bool) -> Result<(String, Option<&Value>), LineError> {
        let value = self.field("value");
        if let Some(key) = self.field("key") {
            return Ok((
                scalar_text(key).ok_or_else(|| self.error("`:key` must be a scalar"))?,
                value,
            ));
        }
        if !independent {
            return Ok((String::new(), value));
        }
        match value {
            Some(Value::Vector(pair)) if pair.len() == 2 => {
                let key = scalar_text(&pair[0])
                    .ok_or_else(|| self.error("an independent key must be a scalar"))?;
                Ok((key, Some(&pair[1])))
            }
            _ => Err(self.error(
                "other operations in this history carry `[key value]` pairs (Jepsen's independent keys), this one does not",
            )),
        }
    }

    /// Puts the argument (invocations) or the result (completions) where Gauntlet keeps it.
    fn fill_value(
        &self,
        source: &mut SourceEvent,
        value: Option<&Value>,
        flavour: Flavour,
    ) -> Result<(), LineError> {
        let event = &mut source.event;
        let text = |v: Option<&Value>| -> Result<Option<String>, LineError> {
            match v {
                None | Some(Value::Nil) => Ok(None),
                Some(v) => scalar_text(v).map(Some).ok_or_else(|| {
                    self.error(format!(
                        "expected a scalar value, found {}",
                        edn_format::emit_str(v)
                    ))
                }),
            }
        };
        match event.f {
            Function::Get => {
                if event.kind == EventType::Ok {
                    event.value = text(value)?;
                    if flavour == Flavour::PorcupineKv && event.value.as_deref() == Some("") {
                        event.value = None;
                    }
                }
            }
            Function::Put | Function::Append => {
                event.value = text(value)?;
                if event.kind == EventType::Invoke && event.value.is_none() {
                    return Err(self.error("a write or append needs a value"));
                }
                if flavour == Flavour::PorcupineKv && event.value.as_deref() == Some("") {
                    return Err(self.error(
                        "writes \"\", which porcupine's kv model cannot tell from an absent key",
                    ));
                }
            }
            Function::Cas => match value {
                Some(Value::Vector(pair) | Value::List(pair)) if pair.len() == 2 => {
                    event.expected = text(Some(&pair[0]))?;
                    event.value = text(Some(&pair[1]))?;
                    if event.value.is_none() {
                        return Err(self.error("a cas must set a value, not nil"));
                    }
                    if event.kind == EventType::Ok {
                        event.swapped = Some(true);
                    }
                }
                _ if event.kind != EventType::Invoke => {}
                _ => return Err(self.error("a cas needs `:value [expected new]`")),
            },
        }
        Ok(())
    }
}

/// The text of a scalar: strings as they are, numbers in decimal, keywords with their colon.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::BigInt(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Character(c) => Some(c.to_string()),
        Value::Keyword(_) | Value::Symbol(_) => Some(edn_format::emit_str(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_history_reads_with_lines_and_skips_the_nemesis() {
        let text = "[{:process 0, :type :invoke, :f :write, :value 3}\n\
                    {:process :nemesis, :type :info, :f :start, :value nil}\n\
                    {:process 0, :type :ok, :f :write, :value 3}\n\
                    {:process 1, :type :invoke, :f :cas, :value [3 4]}\n\
                    {:process 1, :type :fail, :f :cas, :value [3 4]}\n\
                    {:process 2, :type :invoke, :f :read, :value nil}\n\
                    {:process 2, :type :ok, :f :read, :value 3}]";
        let events = read(text, Flavour::Jepsen).expect("reads");
        let lines: Vec<usize> = events.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 5, 6, 7]);
        assert_eq!(events[0].event.f, Function::Put);
        assert_eq!(events[0].event.value.as_deref(), Some("3"));
        assert_eq!(events[2].event.expected.as_deref(), Some("3"));
        assert_eq!(events[3].event.kind, EventType::Fail);
        assert_eq!(events[5].event.value.as_deref(), Some("3"));
        assert!(events.iter().all(|e| e.event.key.is_empty()));
    }

    #[test]
    fn independent_keys_come_from_value_pairs() {
        let text = "{:process 0, :type :invoke, :f :read, :value [7 nil], :time 5}\n\
                    {:process 0, :type :ok, :f :read, :value [7 2], :time 9}\n\
                    {:process 1, :type :invoke, :f :cas, :value [8 [1 2]], :time 10}\n";
        let events = read(text, Flavour::Jepsen).expect("reads");
        assert_eq!(events[0].event.key, "7");
        assert_eq!(events[0].time_ns, Some(5));
        assert_eq!(events[1].event.value.as_deref(), Some("2"));
        assert_eq!(events[2].event.key, "8");
        assert_eq!(events[2].event.expected.as_deref(), Some("1"));
    }

    #[test]
    fn porcupine_kv_reads_of_empty_text_read_the_absent_key() {
        let text = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                    {:process 0, :type :ok, :f :get, :key \"1\", :value \"\"}\n";
        let events = read(text, Flavour::PorcupineKv).expect("reads");
        assert_eq!(events[1].event.value, None);
        let empty_write = "{:process 0, :type :invoke, :f :put, :key \"1\", :value \"\"}\n";
        let refused = read(empty_write, Flavour::PorcupineKv).expect_err("refused");
        assert_eq!(refused.line, 1);
    }

    #[test]
    fn malformed_operations_name_their_line_and_field() {
        let cases = [
            (
                "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :done, :f :read}",
                2,
                ":type :done",
            ),
            (
                "{:process 0, :type :invoke, :f :frobnicate}",
                1,
                ":f :frobnicate",
            ),
            ("{:type :invoke, :f :read}", 1, ":process"),
            ("\n[1 2]", 2, "expected an operation map"),
            (
                "{:process 0, :type :invoke, :f :cas, :value 3}",
                1,
                "[expected new]",
            ),
            (
                "{:process 0, :type :invoke, :f :read, :time \"noon\"}",
                1,
                ":time",
            ),
        ];
        for (text, line, needle) in cases {
            let error = read(text, Flavour::Jepsen).expect_err(text);
            assert_eq!(error.line, line, "{text}: {}", error.reason);
            assert!(error.reason.contains(needle), "{text}: {}", error.reason);
        }
    }
}
