//! `metrics.json` and `trace.jsonl`, derived from the finished manifest: per task and in total,
//! wall time, attempts, tokens and provider wait; one span per run, task, attempt and LLM call
//! with OpenTelemetry GenAI attribute names. Neither ever holds a key or a header.

use crate::exec::ids::random_hex;
use crate::workspace::{Manifest, TaskStatus};
use serde_json::{json, Value};

/// The version of `metrics.json`'s layout; bumped when a field changes meaning or goes away.
pub const METRICS_SCHEMA_VERSION: u32 = 1;
/// The version of a `trace.jsonl` line's fields, on every line (live spans and `finish`'s).
pub const TRACE_SCHEMA_VERSION: u32 = 1;

pub fn metrics(manifest: &Manifest) -> Metrics<'_> {
    let attempts = || manifest.tasks.iter().flat_map(|t| &t.attempts);
    Metrics {
        orchestra: manifest.orchestra.id.as_str(),
        run_id: &manifest.run_id,
        schema_version: METRICS_SCHEMA_VERSION,
        status: manifest.status.as_str(),
        tasks: manifest
            .tasks
            .iter()
            .map(|t| TaskMetrics {
                agent: &t.agent,
                attempts: t.attempts.len(),
                cost_usd: t.cost_usd,
                model: &t.model,
                name: &t.name,
                provider: &t.provider,
                provider_wait_ms: t.attempts.iter().map(|a| a.provider_ms).sum(),
                rate_limit_wait_ms: t.attempts.iter().map(|a| a.rate_wait_ms).sum(),
                status: t.status.as_str(),
                tokens_in: t.tokens_in,
                tokens_out: t.tokens_out,
                wall_ms: t.duration_ms,
            })
            .collect(),
        total: TotalMetrics {
            attempts: manifest.totals.llm_calls,
            cost_usd: manifest.totals.cost_usd,
            provider_wait_ms: attempts().map(|a| a.provider_ms).sum(),
            rate_limit_wait_ms: attempts().map(|a| a.rate_wait_ms).sum(),
            tasks_cached: manifest.totals.cached,
            tasks_failed: manifest.totals.failed,
            tasks_skipped: manifest.totals.skipped,
            tasks_succeeded: manifest.totals.succeeded,
            tokens_in: manifest.totals.tokens_in,
            tokens_out: manifest.totals.tokens_out,
            wall_ms: manifest.duration_ms,
        },
    }
}

/// `metrics.json`, borrowed from the manifest (fields in the file's alphabetical order).
#[derive(serde::Serialize)]
pub struct Metrics<'a> {
    orchestra: &'a str,
    run_id: &'a str,
    schema_version: u32,
    status: &'static str,
    tasks: Vec<TaskMetrics<'a>>,
    total: TotalMetrics,
}

#[derive(serde::Serialize)]
struct TaskMetrics<'a> {
    agent: &'a str,
    attempts: usize,
    cost_usd: f64,
    model: &'a str,
    name: &'a str,
    provider: &'a str,
    provider_wait_ms: u64,
    rate_limit_wait_ms: u64,
    status: &'static str,
    tokens_in: u64,
    tokens_out: u64,
    wall_ms: u64,
}

#[derive(serde::Serialize)]
struct TotalMetrics {
    attempts: u64,
    cost_usd: f64,
    provider_wait_ms: u64,
    rate_limit_wait_ms: u64,
    tasks_cached: usize,
    tasks_failed: usize,
    tasks_skipped: usize,
    tasks_succeeded: usize,
    tokens_in: u64,
    tokens_out: u64,
    wall_ms: u64,
}

fn nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// One span of the trace.
struct Span<'a> {
    id: String,
    parent: Option<&'a str>,
    name: String,
    start_ms: u64,
    end_ms: u64,
    error: Option<&'a str>,
    attributes: Value,
}

impl Span<'_> {
    fn to_json(&self, trace_id: &str) -> Value {
        json!({
            "schema_version": TRACE_SCHEMA_VERSION,
            "trace_id": trace_id,
            "span_id": self.id,
            "parent_span_id": self.parent,
            "name": self.name,
            "start_time_unix_nano": nanos(self.start_ms),
            "end_time_unix_nano": nanos(self.end_ms.max(self.start_ms)),
            "status": match self.error {
                None => json!({"code": "OK"}),
                Some(message) => json!({"code": "ERROR", "message": message}),
            },
            "attributes": self.attributes,
        })
    }
}

/// The spans of one task (or one manager call): the task, its attempts, their LLM calls and
/// tool calls, under `parent`.
fn task_spans(
    task: &crate::workspace::TaskRecord,
    parent: &str,
    label: &str,
    trace_id: &str,
    lines: &mut Vec<Value>,
) -> Option<String> {
    let start = task.started_unix_ms?;
    let task_span = random_hex(8);
    lines.push(
        Span {
            id: task_span.clone(),
            parent: Some(parent),
            name: format!("{label} {}", task.name),
            start_ms: start,
            end_ms: start + task.duration_ms,
            error: (task.status == TaskStatus::Failed)
                .then_some(task.reason.as_deref().unwrap_or("failed")),
            attributes: json!({
                "super.task.name": task.name,
                "super.task.status": task.status.as_str(),
                "super.task.cached": task.status == TaskStatus::Cached,
                "gen_ai.agent.name": task.agent,
                "super.task.attempts": task.attempts.len(),
            }),
        }
        .to_json(trace_id),
    );
    for attempt in &task.attempts {
        let attempt_span = random_hex(8);
        lines.push(
                Span {
                    id: attempt_span.clone(),
                    parent: Some(&task_span),
                    name: format!("attempt {}", attempt.number),
                    start_ms: attempt.started_unix_ms,
                    end_ms: attempt.started_unix_ms + attempt.duration_ms,
                    error: attempt.error.as_deref(),
                    attributes: json!({"super.attempt.number": attempt.number, "super.rate_limit.wait_ms": attempt.rate_wait_ms}),
                }
                .to_json(trace_id),
            );
        for (number, call) in attempt.calls.iter().enumerate() {
            let mut attributes = json!({
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": task.provider,
                "gen_ai.request.model": task.model,
                "gen_ai.response.model": call.response_model.as_deref().unwrap_or(&task.model),
                "gen_ai.usage.input_tokens": call.tokens_in,
                "gen_ai.usage.output_tokens": call.tokens_out,
                "super.call.number": number + 1,
            });
            if let Some(reason) = &call.finish_reason {
                attributes["gen_ai.response.finish_reasons"] = json!([reason]);
            }
            if let Some(status) = call.http_status {
                attributes["http.response.status_code"] = json!(status);
            }
            if call.repair {
                attributes["super.call.repair"] = json!(true);
            }
            if call.error.is_some() {
                attributes["error.type"] = json!(call
                    .http_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "error".into()));
            }
            lines.push(
                Span {
                    id: random_hex(8),
                    parent: Some(&attempt_span),
                    name: format!("chat {}", task.model),
                    start_ms: call.started_unix_ms,
                    end_ms: call.started_unix_ms + call.duration_ms,
                    error: call.error.as_deref(),
                    attributes,
                }
                .to_json(trace_id),
            );
        }
        for tool in &attempt.tool_calls {
            let mut attributes = json!({
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool.name,
            });
            if let Some(arguments) = &tool.arguments {
                attributes["gen_ai.tool.call.arguments"] = json!(arguments);
            }
            if tool.error.is_some() {
                attributes["error.type"] = json!("tool_error");
            }
            if tool.replayed {
                attributes["super.tool.replayed"] = json!(true);
            }
            lines.push(
                Span {
                    id: random_hex(8),
                    parent: Some(&attempt_span),
                    name: format!("execute_tool {}", tool.name),
                    start_ms: tool.started_unix_ms,
                    end_ms: tool.started_unix_ms + tool.duration_ms,
                    error: tool.error.as_deref(),
                    attributes,
                }
                .to_json(trace_id),
            );
        }
    }
    Some(task_span)
}

/// The spans of a run, one JSON object a line.
pub fn trace(manifest: &Manifest) -> String {
    let trace_id = random_hex(16);
    let run_span = random_hex(8);
    let mut lines = vec![Span {
        id: run_span.clone(),
        parent: None,
        name: format!("orchestra.run {}", manifest.orchestra.id),
        start_ms: manifest.started_unix_ms,
        end_ms: manifest.started_unix_ms + manifest.duration_ms,
        error: (manifest.status != crate::workspace::RunStatus::Succeeded)
            .then_some(manifest.stop_reason.as_deref().unwrap_or("failed")),
        attributes: json!({
            "super.run.id": manifest.run_id,
            "super.orchestra.id": manifest.orchestra.id,
            "super.run.status": manifest.status.as_str(),
            "super.run.strategy": manifest.strategy,
        }),
    }
    .to_json(&trace_id)];
    // Under the hierarchical strategy the manager's plan is the parent of the work it caused.
    let mut workers_parent = run_span.clone();
    if let Some(manager) = &manifest.manager {
        for call in &manager.calls {
            let span = task_spans(call, &run_span, "manager", &trace_id, &mut lines);
            if call.name == "manager.plan" {
                if let Some(span) = span {
                    workers_parent = span;
                }
            }
        }
    }
    for task in &manifest.tasks {
        task_spans(task, &workers_parent, "task", &trace_id, &mut lines);
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}
