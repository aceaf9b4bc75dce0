//! porcupine-rs's own linearization view of a failing key. The checker stores porcupine's
//! visualization data in the check's details; the page around it is porcupine's visualizer
//! (its public `visualize`), fed that data, embedded as a sandboxed `srcdoc` frame so its
//! script and styles cannot touch the report's.

use super::html::{escape, json_for_script, num};
use porcupine_rs::visualization::compute_visualization_data;
use porcupine_rs::{LinearizationInfo, Model};
use std::fmt::Write as _;

/// A model with no operations: only used to have porcupine write its visualizer page around
/// an empty data set, whose data is then swapped for the stored one.
#[derive(Clone)]
struct Unused;

impl Model for Unused {
    type State = ();
    type Op = ();
    type Metadata = ();

    fn init() -> Self::State {}

    fn step(_state: &Self::State, _op: &Self::Op) -> (bool, Self::State) {
        (true, ())
    }
}

/// porcupine's visualizer page showing `visualization` (its `VisualizationData` as JSON), or
/// `None` if this porcupine version's page does not have the expected data slot.
pub fn porcupine_page(visualization: &serde_json::Value) -> Option<String> {
    let empty = LinearizationInfo::<Unused>::default();
    let mut page = Vec::new();
    porcupine_rs::visualize::<Unused, _>(&empty, &mut page).ok()?;
    let page = String::from_utf8(page).ok()?;
    let empty_data = serde_json::to_string(&compute_visualization_data(&empty)).ok()?;
    let slot = format!("const data = {empty_data}");
    if !page.contains(&slot) {
        return None;
    }
    Some(page.replacen(
        &slot,
        &format!("const data = {}", json_for_script(visualization)),
        1,
    ))
}

/// The failing keys of a linearizability violation: porcupine's view and the operations.
pub fn failing_keys_html(details: &serde_json::Value) -> Option<String> {
    let failing = details.get("failing")?.as_array()?;
    if failing.is_empty() {
        return None;
    }
    let mut html = String::new();
    if let Some(all) = details.get("illegal_keys").and_then(|k| k.as_array())
        && all.len() > failing.len()
    {
        let _ = write!(
            html,
            "<p class=\"note\">{} keys are not linearizable; the first {} are drawn.</p>",
            all.len(),
            failing.len()
        );
    }
    for key in failing {
        let name = key.get("key").and_then(|k| k.as_str()).unwrap_or("?");
        let _ = write!(html, "<h3>key <code>{}</code></h3>", escape(name));
        match key.get("visualization").and_then(porcupine_page) {
            Some(page) => {
                let _ = write!(
                    html,
                    "<iframe class=\"porcupine\" sandbox=\"allow-scripts\" title=\"porcupine-rs linearization view of key {}\" srcdoc=\"{}\"></iframe>",
                    escape(name),
                    escape(&page)
                );
            }
            None => html.push_str(
                "<p class=\"muted\">porcupine's visualization data is missing for this key.</p>",
            ),
        }
        if let Some(ops) = key.get("operations").and_then(|o| o.as_array()) {
            html.push_str(&operations_table(ops));
        }
    }
    Some(html)
}

fn operations_table(ops: &[serde_json::Value]) -> String {
    let mut html = String::from(
        "<details><summary>operations on this key</summary><div class=\"scroll\"><table class=\"ops\"><thead><tr><th>client</th><th>call</th><th>return</th><th>operation</th><th>origin</th></tr></thead><tbody>",
    );
    let ms = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_f64()).map_or_else(
            || "never (unknown outcome)".to_string(),
            |ns| format!("{} ms", num(ns / 1e6)),
        )
    };
    for op in ops {
        let text = |field: &str| {
            op.get(field)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .unwrap_or_default()
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&text("process")),
            ms(op.get("call_ns")),
            ms(op.get("return_ns")),
            escape(&text("operation")),
            escape(&text("origin"))
        );
    }
    html.push_str("</tbody></table></div></details>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcupine_page_carries_the_stored_data_in_place_of_the_empty_set() {
        let data = serde_json::json!({
            "partitions": [{ "history": [], "partialLinearizations": [], "largest": {} }],
            "annotations": [],
            "marker": "</script>",
        });
        let page = porcupine_page(&data).expect("porcupine's page has a data slot");
        assert!(page.contains("\"partialLinearizations\""));
        assert!(!page.contains("const data = {\"partitions\":[],\"annotations\":[]}"));
        assert_eq!(
            page.matches("</script>").count(),
            1,
            "the data cannot close the script"
        );
    }

    #[test]
    fn failing_key_is_framed_with_its_escaped_name() {
        let details = serde_json::json!({
            "illegal_keys": ["k\"1", "k2"],
            "failing": [{ "key": "k\"1", "operations": [
                { "process": 0, "call_ns": 1_000_000, "return_ns": null, "operation": "put <x>", "origin": "p0" }
            ], "visualization": { "partitions": [], "annotations": [] } }],
        });
        let html = failing_keys_html(&details).expect("rendered");
        assert!(html.contains("<code>k&quot;1</code>"));
        assert!(html.contains("<iframe class=\"porcupine\""));
        assert!(html.contains("2 keys are not linearizable; the first 1 are drawn"));
        assert!(html.contains("never (unknown outcome)"));
        assert!(html.contains("put &lt;x&gt;"));
    }
}
