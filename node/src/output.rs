//! Human or JSON output, chosen once by `--json`.

use serde_json::Value;

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Prints a command's result: `value` as one JSON line with `--json`, else `text`.
    pub fn emit(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }

    /// Prints a failure as one line on stderr: `error: …`, or with `--json`
    /// `{"error": …, "kind": …, "exit_code": …}` (`kind` when the failure has a stable name).
    pub fn fail(&self, error: &anyhow::Error, kind: Option<&str>, exit_code: i32) {
        let reason = format!("{error:#}");
        if self.json {
            let mut value = serde_json::json!({ "error": reason, "exit_code": exit_code });
            if let Some(kind) = kind {
                value["kind"] = kind.into();
            }
            eprintln!("{value}");
        } else {
            eprintln!("error: {reason}");
        }
    }
}

/// Label-value rows as text with the values in one column.
pub fn rows<L: AsRef<str>>(rows: &[(L, String)]) -> String {
    let width = rows
        .iter()
        .map(|(l, _)| l.as_ref().len())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(l, v)| format!("{:<width$}  {v}", l.as_ref()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_align_values() {
        let text = super::rows(&[("a", "1".to_string()), ("long label", "2".to_string())]);
        assert_eq!(text, "a           1\nlong label  2");
    }
}
