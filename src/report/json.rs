//! `--json`: one JSON event per line on stdout, and nothing else there. Every line is one
//! object with `event` (its type), `timestamp` (RFC 3339, UTC, milliseconds) and `run_id`;
//! the first line of a run also has `schema_version`. `docs/events.md` documents every type
//! and field, and a test keeps the two in step.

use crate::exec::RunEvent;
use serde_json::{json, Value};
use std::io::Write;

/// The version of the events' layout; bumped when a field changes meaning or goes away.
pub const EVENTS_SCHEMA_VERSION: u32 = 1;

pub struct JsonReporter {
    out: std::io::Stdout,
    run_id: Option<String>,
    first: bool,
}

impl JsonReporter {
    /// A reporter for the run `run_id` (`None`: no run, as for a dry run or an invalid file).
    pub fn new(run_id: Option<String>) -> JsonReporter {
        JsonReporter {
            out: std::io::stdout(),
            run_id,
            first: true,
        }
    }

    pub fn report(&mut self, event: &RunEvent) {
        self.emit(event_value(event));
    }

    /// Writes one event (an object with its `event`), stamped.
    pub fn emit(&mut self, event: Value) {
        let stamped = stamp(
            event,
            self.run_id.as_deref(),
            &crate::exec::ids::rfc3339(crate::exec::ids::now_unix_ms()),
            self.first,
        );
        self.first = false;
        if let Ok(line) = serde_json::to_string(&stamped) {
            let mut out = self.out.lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// An event as its JSON object, before stamping.
pub(crate) fn event_value(event: &RunEvent) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or_else(
        |e| json!({"event": "error", "message": format!("failed to serialize an event: {e}")}),
    );
    // The end of the run, at a glance, beside the whole manifest.
    if let (RunEvent::RunFinished { manifest }, Some(object)) = (event, value.as_object_mut()) {
        object.insert("status".into(), json!(manifest.status.as_str()));
    }
    value
}

/// `event` with `timestamp` and `run_id` (and `schema_version` on the first line).
pub(crate) fn stamp(event: Value, run_id: Option<&str>, timestamp: &str, first: bool) -> Value {
    let Value::Object(fields) = event else {
        return event;
    };
    let mut object = serde_json::Map::new();
    if let Some(kind) = fields.get("event") {
        object.insert("event".into(), kind.clone());
    }
    if first {
        object.insert("schema_version".into(), json!(EVENTS_SCHEMA_VERSION));
    }
    object.insert("timestamp".into(), json!(timestamp));
    object.insert("run_id".into(), json!(run_id));
    for (key, value) in fields {
        object.entry(key).or_insert(value);
    }
    Value::Object(object)
}
