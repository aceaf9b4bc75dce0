//! Finds the line of a field in block-style YAML text, so that errors found after parsing (when
//! serde's spans are gone) still point at a line. Flow-style values (`{a: 1}`) resolve to the
//! line of the nearest enclosing block key.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// `nemesis.schedule[2].at_ms`
pub fn display_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

struct Line<'a> {
    /// Column where the content starts after any `- ` sequence markers.
    content_col: usize,
    /// Column of the first `-` if the line starts a sequence item.
    dash_col: Option<usize>,
    content: &'a str,
}

fn scan(text: &str) -> Vec<Option<Line<'_>>> {
    text.lines()
        .map(|raw| {
            let without_comment = raw.split(" #").next().unwrap_or(raw);
            let trimmed = without_comment.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return None;
            }
            let mut col = without_comment.len() - trimmed.len();
            let mut rest = trimmed;
            let mut dash_col = None;
            while let Some(after) =
                rest.strip_prefix("- ")
                    .or(if rest == "-" { Some("") } else { None })
            {
                if dash_col.is_none() {
                    dash_col = Some(col);
                }
                let after_trimmed = after.trim_start();
                col += rest.len() - after_trimmed.len();
                rest = after_trimmed;
            }
            Some(Line {
                content_col: col,
                dash_col,
                content: rest,
            })
        })
        .collect()
}

fn key_of(content: &str) -> Option<&str> {
    let colon = content.find(':')?;
    let key = content[..colon].trim();
    Some(key.trim_matches(|c| c == '"' || c == '\''))
}

/// The 1-based line of the field at `path`, or of the deepest ancestor found.
pub fn line_of(text: &str, path: &[Segment]) -> usize {
    let lines = scan(text);
    // Search window: lines [start, end) whose content is deeper than `parent_col`.
    let mut start = 0usize;
    let mut parent_col: Option<usize> = None;
    let mut found_line = 0usize;
    for segment in path {
        let end = block_end(&lines, start, parent_col);
        let hit = match segment {
            Segment::Key(key) => (start..end).find(|&i| {
                lines[i].as_ref().is_some_and(|l| {
                    key_of(l.content) == Some(key.as_str())
                        && parent_col.is_none_or(|p| l.content_col > p)
                        && sibling_level(&lines, start, end, l.content_col)
                })
            }),
            Segment::Index(index) => {
                let dash = (start..end)
                    .filter_map(|i| lines[i].as_ref().and_then(|l| l.dash_col))
                    .next();
                dash.and_then(|dash| {
                    (start..end)
                        .filter(|&i| lines[i].as_ref().is_some_and(|l| l.dash_col == Some(dash)))
                        .nth(*index)
                })
            }
        };
        let Some(i) = hit else {
            break;
        };
        found_line = i;
        let line = lines[i].as_ref().map(|l| (l.content_col, l.dash_col));
        match (segment, line) {
            (Segment::Key(_), Some((col, _))) => {
                parent_col = Some(col);
                start = i + 1;
            }
            (Segment::Index(_), Some((col, Some(dash)))) => {
                // The item's first key sits on the dash line itself; later keys are deeper than the dash.
                parent_col = Some(dash);
                start = i;
                let _ = col;
            }
            _ => break,
        }
    }
    found_line + 1
}

/// The first line at or after `start` that is not deeper than `parent_col` ends the block.
fn block_end(lines: &[Option<Line<'_>>], start: usize, parent_col: Option<usize>) -> usize {
    let Some(parent) = parent_col else {
        return lines.len();
    };
    (start..lines.len())
        .find(|&i| {
            lines[i].as_ref().is_some_and(|l| {
                let col = l.dash_col.unwrap_or(l.content_col);
                col <= parent && !(i == start && l.dash_col.is_some() && col == parent)
            })
        })
        .unwrap_or(lines.len())
}

/// A key counts only at the shallowest key level of the block (not inside a nested mapping).
fn sibling_level(lines: &[Option<Line<'_>>], start: usize, end: usize, col: usize) -> bool {
    let shallowest = (start..end)
        .filter_map(|i| lines[i].as_ref().map(|l| l.content_col))
        .min();
    shallowest.is_none_or(|min| col == min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Segment {
        Segment::Key(s.to_string())
    }

    const TEXT: &str = "\
name: x
workload:
  kind: kv
  clients: 0
nemesis:
  schedule:
    - at_ms: 100
      action: kill
    - at_ms: 200
      action: pause
      target: 9
checks:
  settle_ms: 5
";

    #[test]
    fn nested_key_resolves_to_its_own_line() {
        assert_eq!(line_of(TEXT, &[k("workload"), k("clients")]), 4);
        assert_eq!(line_of(TEXT, &[k("checks"), k("settle_ms")]), 13);
    }

    #[test]
    fn sequence_items_resolve_by_index() {
        let path = [k("nemesis"), k("schedule"), Segment::Index(1), k("target")];
        assert_eq!(line_of(TEXT, &path), 11);
        let path = [k("nemesis"), k("schedule"), Segment::Index(1), k("at_ms")];
        assert_eq!(line_of(TEXT, &path), 9);
        let path = [k("nemesis"), k("schedule"), Segment::Index(0), k("action")];
        assert_eq!(line_of(TEXT, &path), 8);
    }

    #[test]
    fn missing_field_falls_back_to_deepest_ancestor() {
        assert_eq!(line_of(TEXT, &[k("workload"), k("rate")]), 2);
        assert_eq!(display_path(&[k("a"), Segment::Index(3), k("b")]), "a[3].b");
    }
}
