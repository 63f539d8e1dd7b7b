//! `trace.jsonl`: one JSON object per span, appended the moment the span ends (a span
//! processor of the same tracer provider that feeds OTLP, so the ids are the exported ones).
//! Each line is one `write` on an append-only file: a run killed at any moment leaves whole
//! lines for every span that had ended.

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, Value as OtelValue};
use opentelemetry_sdk::trace::SpanData;
use serde_json::{json, Map, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The open trace file of a run.
#[derive(Debug)]
pub(crate) struct TraceFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    redactor: crate::redact::Redactor,
    /// The first write error, reported once when the run ends.
    failed: Mutex<Option<String>>,
}

impl TraceFile {
    /// Creates (or truncates) `path`.
    pub(crate) fn create(
        path: &Path,
        redactor: crate::redact::Redactor,
    ) -> std::io::Result<TraceFile> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(TraceFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            redactor,
            failed: Mutex::new(None),
        })
    }

    /// Appends one span, a whole line in one write.
    pub(crate) fn write(&self, span: &SpanData) {
        let mut value = span_json(span);
        self.redactor.redact_json(&mut value);
        let mut line = value.to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = file.write_all(line.as_bytes()) {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| format!("`{}`: {error}", self.path.display()));
        }
    }

    /// The first write that failed, if any.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn array_json(array: &Array) -> Value {
    match array {
        Array::Bool(items) => json!(items),
        Array::I64(items) => json!(items),
        Array::F64(items) => json!(items),
        Array::String(items) => json!(items.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        _ => Value::Null,
    }
}

fn value_json(value: &OtelValue) -> Value {
    match value {
        OtelValue::Bool(b) => json!(b),
        OtelValue::I64(i) => json!(i),
        OtelValue::F64(f) => json!(f),
        OtelValue::String(s) => json!(s.as_str()),
        OtelValue::Array(array) => array_json(array),
        _ => json!(value.to_string()),
    }
}

fn attributes_json<'a>(attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Value {
    let mut map = Map::new();
    for kv in attributes {
        map.insert(kv.key.as_str().to_string(), value_json(&kv.value));
    }
    Value::Object(map)
}

/// A span as the line `trace.jsonl` holds (the OTLP span's fields, ids in hex).
pub(crate) fn span_json(span: &SpanData) -> Value {
    let status = match &span.status {
        Status::Error { description } => json!({"code": "ERROR", "message": description}),
        Status::Ok => json!({"code": "OK"}),
        Status::Unset => json!({"code": "UNSET"}),
    };
    let kind = match span.span_kind {
        SpanKind::Client => "CLIENT",
        SpanKind::Server => "SERVER",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        SpanKind::Internal => "INTERNAL",
    };
    let events: Vec<Value> = span
        .events
        .iter()
        .map(|event| {
            json!({
                "name": event.name,
                "time_unix_nano": nanos(event.timestamp),
                "attributes": attributes_json(event.attributes.iter()),
            })
        })
        .collect();
    let mut line = json!({
        "schema_version": crate::report::files::TRACE_SCHEMA_VERSION,
        "trace_id": span.span_context.trace_id().to_string(),
        "span_id": span.span_context.span_id().to_string(),
        "parent_span_id": (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_string()),
        "name": span.name,
        "kind": kind,
        "start_time_unix_nano": nanos(span.start_time),
        "end_time_unix_nano": nanos(span.end_time),
        "status": status,
        "attributes": attributes_json(span.attributes.iter()),
    });
    if !events.is_empty() {
        line["events"] = Value::Array(events);
    }
    line
}
