//! Which format a history file is in, from its content.

use super::{Format, LineError, etcd_log};

/// The format of `text`, judged by its first line that is not blank or a comment; the error
/// names that line when it matches no format.
pub fn detect_format(text: &str) -> Result<Format, LineError> {
    let first = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .find(|(_, line)| !line.is_empty() && !line.starts_with(';'));
    let Some((line, first)) = first else {
        return Err(LineError::new(
            1,
            "the file is empty: there is no history to check",
        ));
    };
    if etcd_log::is_operation_line(first) {
        return Ok(Format::PorcupineJepsenLog);
    }
    if first.starts_with("{\"") {
        return Ok(Format::Gauntlet);
    }
    // `#` opens EDN only as a tag (`#jepsen.history.Op{`), a set or a discard.
    let edn_dispatch = first
        .strip_prefix('#')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_alphabetic() || c == '{' || c == '_');
    if first.starts_with('{') || first.starts_with('[') || first.starts_with('(') || edn_dispatch {
        // porcupine's kv logs are EDN maps that name their key in a `:key` field.
        return Ok(if text.contains(":key ") {
            Format::PorcupineKv
        } else {
            Format::JepsenEdn
        });
    }
    let shown: String = first.chars().take(60).collect();
    Err(LineError::new(
        line,
        format!(
            "matches no history format: {shown:?} is not Gauntlet JSON lines, Jepsen EDN, porcupine's kv log or porcupine's Jepsen log (name one with --format)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_recognised_by_its_first_meaningful_line() {
        let cases = [
            ("{\"process\":0,\"type\":\"invoke\"}\n", Format::Gauntlet),
            (
                "; a comment\n\n[{:process 0, :type :invoke, :f :read, :value nil}]",
                Format::JepsenEdn,
            ),
            (
                "{:process 0, :type :invoke, :f :read, :value nil}\n",
                Format::JepsenEdn,
            ),
            (
                "#jepsen.history.Op{:process 0, :type :invoke}\n",
                Format::JepsenEdn,
            ),
            (
                "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n",
                Format::PorcupineKv,
            ),
            (
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
                Format::PorcupineJepsenLog,
            ),
        ];
        for (text, format) in cases {
            assert_eq!(detect_format(text), Ok(format), "{text}");
        }
    }

    #[test]
    fn an_unknown_format_names_the_line_that_matches_none() {
        let error = detect_format("\n\n# a markdown heading\n").expect_err("not a history");
        assert_eq!(error.line, 3);
        assert!(
            error.reason.contains("matches no history format"),
            "{}",
            error.reason
        );
        assert_eq!(detect_format(" \n").expect_err("empty").line, 1);
    }
}
