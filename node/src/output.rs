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

    /// Prints a failure as one line on stderr (`{"error": …}` with `--json`).
    pub fn fail(&self, error: &anyhow::Error) {
        let reason = format!("{error:#}");
        if self.json {
            eprintln!("{}", serde_json::json!({ "error": reason }));
        } else {
            eprintln!("error: {reason}");
        }
    }
}
