//! The machine interfaces are documented contracts: every event type and field `--json` emits
//! is listed in `docs/events.md`, every field of `run.json`, `metrics.json` and
//! `tasks/<task>.json` in `docs/schemas.md`. Samples of every event and record, with every
//! optional field filled, are serialized and their key paths looked up in the documents; a new
//! field that is not documented fails here.

use crate::exec::events::{PlannedTask, RunEvent};
use crate::workspace::manifest::{
    AssignmentRecord, AttemptRecord, CallRecord, ManagerRecord, OrchestraRef, ReviewRecord,
    TaskFile, ToolCallRecord, Totals,
};
use crate::workspace::{Manifest, RunStatus, TaskRecord, TaskStatus};
use serde_json::Value;
use std::time::Duration;

const EVENTS_DOC: &str = include_str!("../../docs/events.md");
const SCHEMAS_DOC: &str = include_str!("../../docs/schemas.md");

/// Every key path of a JSON value: `a`, `a.b`, `list[].c`; objects and lists are descended,
/// except below the paths in `opaque` (documented as a whole elsewhere).
pub(crate) fn key_paths(value: &Value, opaque: &[&str]) -> Vec<String> {
    fn walk(value: &Value, prefix: &str, opaque: &[&str], out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    out.push(path.clone());
                    if !opaque.contains(&path.as_str()) {
                        walk(inner, &path, opaque, out);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{prefix}[]"), opaque, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", opaque, &mut out);
    out.sort();
    out.dedup();
    out
}

/// The text of a document from the heading holding `title` to the next heading of the same
/// level or above.
pub(crate) fn section<'a>(doc: &'a str, title: &str) -> Option<&'a str> {
    let start = doc
        .match_indices('#')
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || doc.as_bytes()[i - 1] == b'\n')
        .find(|&i| doc[i..].lines().next().is_some_and(|l| l.contains(title)))?;
    let level = doc[start..].chars().take_while(|c| *c == '#').count();
    let body = &doc[start..];
    let end = body
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| {
            let hashes = body[i..].chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level
        })
        .unwrap_or(body.len());
    Some(&body[..end])
}

/// The documented field rows of a section: the first cell of each table row.
fn documented(section: &str) -> Vec<String> {
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

fn call() -> CallRecord {
    CallRecord {
        started_unix_ms: 1,
        duration_ms: 2,
        tokens_in: 3,
        tokens_out: 4,
        cost_usd: 0.5,
        finish_reason: Some("stop".into()),
        response_model: Some("m".into()),
        error: Some("e".into()),
        http_status: Some(500),
        repair: true,
        note: Some("n".into()),
    }
}

fn record() -> TaskRecord {
    TaskRecord {
        name: "t".into(),
        agent: "a".into(),
        status: TaskStatus::Failed,
        provider: "openai".into(),
        model: "m".into(),
        attempts: vec![AttemptRecord {
            number: 1,
            started_unix_ms: 1,
            duration_ms: 2,
            provider_ms: 3,
            rate_wait_ms: 4,
            ok: false,
            error: Some("e".into()),
            reason: Some("timeout".into()),
            http_status: Some(429),
            retry_in_ms: Some(5),
            tokens_in: 6,
            tokens_out: 7,
            calls: vec![call()],
            tool_calls: vec![ToolCallRecord {
                name: "calculator".into(),
                arguments: Some("{}".into()),
                started_unix_ms: 1,
                duration_ms: 2,
                replayed: true,
                error: Some("e".into()),
            }],
        }],
        started_unix_ms: Some(1),
        duration_ms: 2,
        tokens_in: 3,
        tokens_out: 4,
        cost_usd: 0.5,
        output_file: Some("task_outputs/t_output.txt".into()),
        cache_key: Some("k".into()),
        reason: Some("r".into()),
    }
}

fn assignment() -> AssignmentRecord {
    AssignmentRecord {
        task: "t".into(),
        agent: "a".into(),
        instructions: "i".into(),
        added: true,
    }
}

fn manager() -> ManagerRecord {
    ManagerRecord {
        agent: "built-in".into(),
        provider: "openai".into(),
        model: "m".into(),
        plan: vec![assignment()],
        dropped: vec![assignment()],
        reviews: vec![ReviewRecord {
            task: "t".into(),
            round: 1,
            verdict: "revise".into(),
            feedback: "f".into(),
            not_obeyed: Some("limit".into()),
        }],
        fallbacks: vec!["f".into()],
        calls: vec![record()],
        tokens_in: 1,
        tokens_out: 2,
        cost_usd: 0.5,
    }
}

fn manifest() -> Manifest {
    Manifest {
        schema_version: crate::workspace::manifest::MANIFEST_SCHEMA_VERSION,
        run_id: "r".into(),
        goal: "g".into(),
        inputs: [("topic".to_string(), "x".to_string())].into(),
        orchestra: OrchestraRef {
            id: "o".into(),
            name: "O".into(),
            file: "o.yaml".into(),
            sha256: "s".into(),
        },
        workspace: "w".into(),
        strategy: "hierarchical".into(),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        started_unix_ms: 1,
        ended_at: Some("2026-01-01T00:00:01.000Z".into()),
        duration_ms: 1000,
        status: RunStatus::Failed,
        stop_reason: Some("s".into()),
        tasks: vec![record()],
        manager: Some(manager()),
        totals: Totals::default(),
    }
}

/// One sample of every event, every optional field filled.
fn events() -> Vec<RunEvent> {
    vec![
        RunEvent::RunStarted {
            run_id: "r".into(),
            orchestra: "o".into(),
            goal: "g".into(),
            inputs: [("topic".to_string(), "x".to_string())].into(),
            workspace: "w".into(),
            strategy: "sequential".into(),
            tasks: vec![PlannedTask {
                name: "t".into(),
                agent: "a".into(),
                model: "openai/m".into(),
                depends_on: vec!["u".into()],
            }],
            archived_previous: Some("history/r0".into()),
        },
        RunEvent::TaskStarted {
            name: "t".into(),
            agent: "a".into(),
            model: "m".into(),
            number: 1,
            total: 2,
            tools: Some("calculator".into()),
        },
        RunEvent::TaskReused {
            name: "t".into(),
            agent: "a".into(),
            number: 1,
            total: 2,
        },
        RunEvent::Token {
            name: "t".into(),
            text: "x".into(),
        },
        RunEvent::AttemptFailed {
            name: "t".into(),
            attempt: 1,
            attempts: 3,
            error: "e".into(),
            retry_in: Some(Duration::from_millis(5)),
            retryable: true,
        },
        RunEvent::ToolCalled {
            name: "t".into(),
            tool: "calculator".into(),
            duration_ms: 1,
            ok: true,
        },
        RunEvent::TaskFinished { record: record() },
        RunEvent::TaskSkipped {
            name: "t".into(),
            reason: "r".into(),
        },
        RunEvent::Stopping { reason: "r".into() },
        RunEvent::Planned { manager: manager() },
        RunEvent::Reviewed {
            name: "t".into(),
            round: 1,
            verdict: "accept".into(),
        },
        RunEvent::RunFinished {
            manifest: Box::new(manifest()),
        },
    ]
}

/// The fields of an event type that the document lists: its own section and the common ones.
fn event_fields(kind: &str) -> Vec<String> {
    let heading = format!("### `{kind}`");
    let own = section(EVENTS_DOC, &heading)
        .unwrap_or_else(|| panic!("docs/events.md has no section `{heading}`"));
    let mut fields = documented(own);
    fields.extend(documented(
        section(EVENTS_DOC, "## Every event").expect("the common fields"),
    ));
    fields
}

#[test]
fn every_event_and_field_is_documented() {
    let mut missing = Vec::new();
    for (n, event) in events().iter().enumerate() {
        let line = super::json::stamp(
            super::json::event_value(event),
            Some("r"),
            "2026-01-01T00:00:00.000Z",
            n == 0,
        );
        let kind = line["event"].as_str().expect("an event type").to_string();
        let fields = event_fields(&kind);
        // Opaque: `inputs` maps the run's own names; the others are documented as run.json.
        for path in key_paths(&line, &["inputs", "attempts", "manager", "manifest"]) {
            if !fields.contains(&path) {
                missing.push(format!("{kind}: {path}"));
            }
        }
        assert!(line["timestamp"].is_string() && line.get("run_id").is_some());
    }
    assert!(
        missing.is_empty(),
        "emitted but not documented in docs/events.md: {missing:#?}"
    );
}

#[test]
fn task_finished_is_flat_like_its_siblings() {
    let line = super::json::event_value(&RunEvent::TaskFinished { record: record() });
    assert_eq!(line["event"], "task_finished");
    assert_eq!(line["name"], "t");
    assert_eq!(line["status"], "failed");
    assert!(line.get("record").is_none(), "{line}");
}

#[test]
fn every_field_of_the_run_files_is_documented() {
    let run = section(SCHEMAS_DOC, "## `run.json`").expect("run.json section");
    let mut fields = documented(run);
    let mut missing = Vec::new();
    let value = serde_json::to_value(manifest()).expect("manifest");
    // `inputs` maps the run's own names to values.
    for path in key_paths(&value, &["inputs"]) {
        // The manager's calls are task records: documented once, under `tasks[]`.
        let as_task = path.replacen("manager.calls[].", "tasks[].", 1);
        if !fields.contains(&path) && !fields.contains(&as_task) {
            missing.push(format!("run.json: {path}"));
        }
    }
    let metrics = documented(section(SCHEMAS_DOC, "## `metrics.json`").expect("metrics section"));
    for path in key_paths(
        &serde_json::to_value(super::files::metrics(&manifest())).expect("metrics"),
        &[],
    ) {
        if !metrics.contains(&path) {
            missing.push(format!("metrics.json: {path}"));
        }
    }
    // A task's own record: its fields as a task of run.json, plus the run's.
    fields = documented(section(SCHEMAS_DOC, "## `tasks/<task>.json`").expect("tasks section"));
    let task_fields = documented(run);
    let file = TaskFile {
        run_id: "r".into(),
        goal: "g".into(),
        inputs: [("topic".to_string(), "x".to_string())].into(),
        record: record(),
    };
    for path in key_paths(&serde_json::to_value(file).expect("task file"), &["inputs"]) {
        if !fields.contains(&path) && !task_fields.contains(&format!("tasks[].{path}")) {
            missing.push(format!("tasks/<task>.json: {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "written but not documented in docs/schemas.md: {missing:#?}"
    );
}

#[test]
fn key_paths_descend_objects_and_lists() {
    let value = serde_json::json!({"a": {"b": 1}, "l": [{"c": 2}], "o": {"x": 1}});
    assert_eq!(key_paths(&value, &["o"]), ["a", "a.b", "l", "l[].c", "o"]);
}
