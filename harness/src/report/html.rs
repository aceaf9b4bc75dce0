//! Escaping for the two places text lands in a report: HTML (element text and quoted
//! attributes) and JSON embedded in an inline `<script>`.

use std::fmt::Write as _;

/// Escapes `text` for element content and for single- or double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Serializes `value` for use inside `<script>`: `<`, `>` and `&` become `\u00XX` escapes, so
/// no string in the data can close the script element or open a comment.
pub fn json_for_script(value: &serde_json::Value) -> String {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A number for SVG coordinates: two decimals at most, so pages stay small.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "0".into();
    }
    let rounded = (x * 100.0).round() / 100.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

/// Milliseconds as a short human duration: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn duration_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", num(ms))
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let total_s = (ms / 1000.0).round() as u64;
        format!("{} min {:02} s", total_s / 60, total_s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn json_for_script_cannot_close_the_script_element() {
        let value = serde_json::json!({ "v": "</script><!--" });
        let embedded = json_for_script(&value);
        assert!(!embedded.contains("</script"));
        assert!(!embedded.contains("<!--"));
        let back: serde_json::Value = serde_json::from_str(&embedded).expect("still valid JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn num_rounds_to_two_decimals_and_drops_trailing_zeros() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(12.3456), "12.35");
        assert_eq!(num(f64::NAN), "0");
    }

    #[test]
    fn duration_picks_a_readable_unit() {
        assert_eq!(duration_ms(850.0), "850 ms");
        assert_eq!(duration_ms(12_340.0), "12.3 s");
        assert_eq!(duration_ms(245_000.0), "4 min 05 s");
    }
}
