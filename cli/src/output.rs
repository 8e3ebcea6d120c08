//! Human or JSON output, chosen once by `--json`.
//!
//! Invariant: with `--json`, every run of a command prints exactly one JSON document on
//! stdout, whichever way it ends. A command's result is held, not printed, until the
//! command is over: on success it is printed as it is (when the `Output` is dropped at the
//! end of `main`); on failure [`Output::fail`] prints it once with `error`, `kind` and
//! `exit_code` added (a transaction that was committed but failed is one document that
//! carries both its status and the failure), or those three alone when there is no result.
//! Nothing else goes to stdout; notes for a person (retries) go to stderr.
//! Without `--json`, results print at once on stdout and a failure is one `error: …` line on
//! stderr.

use std::cell::RefCell;

use serde_json::{json, Value};

pub struct Output {
    json: bool,
    /// The result held back until the command ends (`--json` only).
    document: RefCell<Option<Value>>,
    /// Set once the one document is out, so that nothing prints a second.
    done: RefCell<bool>,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            document: RefCell::new(None),
            done: RefCell::new(false),
        }
    }

    /// A command's result: held as the JSON document with `--json` (a later result
    /// replaces an earlier one), else `text` printed now.
    pub fn emit(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            *self.document.borrow_mut() = Some(value);
        } else {
            println!("{}", text());
        }
    }

    /// Reports a failure: with `--json`, the one document on stdout (the held result, if
    /// any, with `error`, `kind` and `exit_code` added); else `error: …` on stderr.
    pub fn fail(&self, error: &anyhow::Error, kind: Option<&str>, exit_code: i32) {
        let reason = format!("{error:#}");
        if self.json {
            let mut value = match self.document.borrow_mut().take() {
                Some(Value::Object(map)) => Value::Object(map),
                _ => json!({}),
            };
            value["error"] = reason.into();
            value["exit_code"] = exit_code.into();
            if let Some(kind) = kind {
                value["kind"] = kind.into();
            }
            self.print(&value);
        } else {
            eprintln!("error: {reason}");
        }
    }

    fn print(&self, value: &Value) {
        let mut done = self.done.borrow_mut();
        if !*done {
            *done = true;
            println!("{value}");
        }
    }
}

impl Drop for Output {
    /// The end of a command that did not fail: its held result goes out. A command that
    /// succeeded with nothing to report (`ordo run` after a clean stop) still prints one
    /// document, and a panic unwinding through `main` is reported as a failure, never as
    /// the result held before it.
    fn drop(&mut self) {
        if !self.json || *self.done.borrow() {
            return;
        }
        let value = if std::thread::panicking() {
            json!({
                "error": "the client panicked (see stderr); this is a bug",
                "kind": "panic",
                "exit_code": 101,
            })
        } else {
            self.document
                .borrow_mut()
                .take()
                .unwrap_or_else(|| json!({ "status": "ok" }))
        };
        self.print(&value);
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
