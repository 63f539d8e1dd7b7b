//! `trace.jsonl`: one JSON object per span, appended the moment the span ends (a span
//! processor of the same tracer provider that feeds OTLP, so the ids are the exported ones).
//! Each line is one `write` on an append-only file: a run killed at any moment leaves whole
//! lines for every span that had ended.

#[cfg(test)]
use opentelemetry::trace::Status;
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry::{Array, Value as OtelValue};
use opentelemetry_sdk::trace::SpanData;
#[cfg(test)]
use serde_json::Map;
use serde_json::{json, Value};
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
        let written = span_line(span, &self.redactor)
            .map_err(|e| e.to_string())
            .and_then(|mut line| {
                line.push('\n');
                let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
                file.write_all(line.as_bytes()).map_err(|e| e.to_string())
            });
        if let Err(error) = written {
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

/// A span as the line `trace.jsonl` holds, every string redacted: serialized straight from the
/// span (no JSON tree per span). Its test checks it byte for byte against [`span_json`] then
/// `redact_json`.
pub(crate) fn span_line(
    span: &SpanData,
    redactor: &crate::redact::Redactor,
) -> serde_json::Result<String> {
    serde_json::to_string(&SpanLine { span, redactor })
}

struct SpanLine<'a> {
    span: &'a SpanData,
    redactor: &'a crate::redact::Redactor,
}

/// A string with the run's secrets hidden.
struct Clean<'a>(&'a str, &'a crate::redact::Redactor);

impl serde::Serialize for Clean<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.1.redact(self.0))
    }
}

/// Attributes as a JSON object: keys in order, the last value of a repeated key.
struct Attributes<'a>(&'a [opentelemetry::KeyValue], &'a crate::redact::Redactor);

impl serde::Serialize for Attributes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut sorted: Vec<&opentelemetry::KeyValue> = self.0.iter().collect();
        // Stable: of equal keys, the last set stays last.
        sorted.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        let mut map = serializer.serialize_map(None)?;
        for (i, kv) in sorted.iter().enumerate() {
            if sorted
                .get(i + 1)
                .is_some_and(|next| next.key.as_str() == kv.key.as_str())
            {
                continue;
            }
            map.serialize_entry(kv.key.as_str(), &Attribute(&kv.value, self.1))?;
        }
        map.end()
    }
}

struct Attribute<'a>(&'a OtelValue, &'a crate::redact::Redactor);

impl serde::Serialize for Attribute<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let redactor = self.1;
        match self.0 {
            OtelValue::Bool(b) => serializer.serialize_bool(*b),
            OtelValue::I64(i) => serializer.serialize_i64(*i),
            OtelValue::F64(f) => json!(f).serialize(serializer),
            OtelValue::String(s) => Clean(s.as_str(), redactor).serialize(serializer),
            OtelValue::Array(Array::String(items)) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Clean(item.as_str(), redactor))?;
                }
                seq.end()
            }
            OtelValue::Array(array) => array_json(array).serialize(serializer),
            other => Clean(&other.to_string(), redactor).serialize(serializer),
        }
    }
}

impl serde::Serialize for SpanLine<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let (span, redactor) = (self.span, self.redactor);
        struct Status<'a>(
            &'a opentelemetry::trace::Status,
            &'a crate::redact::Redactor,
        );
        impl serde::Serialize for Status<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = serializer.serialize_map(None)?;
                match self.0 {
                    opentelemetry::trace::Status::Error { description } => {
                        map.serialize_entry("code", "ERROR")?;
                        map.serialize_entry("message", &Clean(description, self.1))?;
                    }
                    opentelemetry::trace::Status::Ok => map.serialize_entry("code", "OK")?,
                    opentelemetry::trace::Status::Unset => map.serialize_entry("code", "UNSET")?,
                }
                map.end()
            }
        }
        struct Event<'a>(&'a opentelemetry::trace::Event, &'a crate::redact::Redactor);
        impl serde::Serialize for Event<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("attributes", &Attributes(&self.0.attributes, self.1))?;
                map.serialize_entry("name", &Clean(&self.0.name, self.1))?;
                map.serialize_entry("time_unix_nano", &nanos(self.0.timestamp))?;
                map.end()
            }
        }
        struct Events<'a>(
            &'a [opentelemetry::trace::Event],
            &'a crate::redact::Redactor,
        );
        impl serde::Serialize for Events<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|e| Event(e, self.1)))
            }
        }
        // The keys in the order of a JSON object (sorted), as every line has had them.
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("attributes", &Attributes(&span.attributes, redactor))?;
        map.serialize_entry("end_time_unix_nano", &nanos(span.end_time))?;
        if !span.events.events.is_empty() {
            map.serialize_entry("events", &Events(&span.events.events, redactor))?;
        }
        map.serialize_entry("kind", kind(&span.span_kind))?;
        map.serialize_entry("name", &Clean(&span.name, redactor))?;
        let parent =
            (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_string());
        map.serialize_entry(
            "parent_span_id",
            &parent.as_deref().map(|p| Clean(p, redactor)),
        )?;
        map.serialize_entry(
            "schema_version",
            &crate::report::files::TRACE_SCHEMA_VERSION,
        )?;
        map.serialize_entry(
            "span_id",
            &Clean(&span.span_context.span_id().to_string(), redactor),
        )?;
        map.serialize_entry("start_time_unix_nano", &nanos(span.start_time))?;
        map.serialize_entry("status", &Status(&span.status, redactor))?;
        map.serialize_entry(
            "trace_id",
            &Clean(&span.span_context.trace_id().to_string(), redactor),
        )?;
        map.end()
    }
}

fn kind(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "CLIENT",
        SpanKind::Server => "SERVER",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        SpanKind::Internal => "INTERNAL",
    }
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

#[cfg(test)]
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

#[cfg(test)]
fn attributes_json<'a>(attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Value {
    let mut map = Map::new();
    for kv in attributes {
        map.insert(kv.key.as_str().to_string(), value_json(&kv.value));
    }
    Value::Object(map)
}

/// A span as the line `trace.jsonl` holds (the OTLP span's fields, ids in hex), as a tree: the
/// reference [`span_line`] is tested against.
#[cfg(test)]
pub(crate) fn span_json(span: &SpanData) -> Value {
    let status = match &span.status {
        Status::Error { description } => json!({"code": "ERROR", "message": description}),
        Status::Ok => json!({"code": "OK"}),
        Status::Unset => json!({"code": "UNSET"}),
    };
    let kind = kind(&span.span_kind);
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry::KeyValue;

    fn span(status: Status, events: Vec<opentelemetry::trace::Event>) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes([7; 16]),
                SpanId::from_bytes([3; 8]),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from_bytes([1; 8]),
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: "chat sk-secret-123 model".into(),
            start_time: start,
            end_time: start + std::time::Duration::from_millis(42),
            attributes: vec![
                KeyValue::new("z.last", "first value"),
                KeyValue::new("gen_ai.usage.input_tokens", 12_i64),
                KeyValue::new("a.flag", true),
                KeyValue::new("super.cost_usd", 0.25_f64),
                KeyValue::new("z.last", "key sk-secret-123 in \"quotes\"\n"),
                KeyValue::new(
                    "list",
                    opentelemetry::Value::Array(Array::String(vec![
                        "x".into(),
                        "sk-secret-123".into(),
                    ])),
                ),
                KeyValue::new("ints", opentelemetry::Value::Array(Array::I64(vec![1, 2]))),
            ],
            dropped_attributes_count: 0,
            events: {
                let mut all = opentelemetry_sdk::trace::SpanEvents::default();
                all.events = events;
                all
            },
            links: Default::default(),
            status,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn a_line_is_the_tree_redacted_byte_for_byte() {
        let redactor = crate::redact::Redactor::new(["sk-secret-123"], []);
        let event = opentelemetry::trace::Event::new(
            "retry sk-secret-123",
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5),
            vec![KeyValue::new("attempt", 2_i64)],
            0,
        );
        for data in [
            span(Status::Ok, Vec::new()),
            span(Status::Unset, vec![event.clone()]),
            span(Status::error("failed: sk-secret-123"), vec![event]),
        ] {
            let mut tree = span_json(&data);
            redactor.redact_json(&mut tree);
            let line = span_line(&data, &redactor).expect("line");
            assert_eq!(line, tree.to_string());
            assert!(!line.contains("sk-secret-123"), "{line}");
        }
    }
}
