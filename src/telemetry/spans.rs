//! The run's spans, opened where the work happens: the run, each task (and each manager step),
//! each attempt, each LLM call and each tool call, with the OpenTelemetry GenAI semantic
//! convention's attribute names. Prompts and completions become attributes only under
//! `--trace-content`. A span with no subscriber interested costs a disabled check.

use crate::provider::{ChatRequest, ChatResponse};
use crate::workspace::{CallRecord, TaskRecord, TaskStatus};
use opentelemetry::trace::Status;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Whether prompts and completions go into the spans (`--trace-content`).
static CONTENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn record_content(on: bool) {
    CONTENT.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn content() -> bool {
    CONTENT.load(std::sync::atomic::Ordering::Relaxed)
}

fn set_error(span: &Span, message: &str) {
    span.set_status(Status::error(message.to_string()));
}

/// An integer attribute (`tracing` would record a `u64` as a string).
fn int(span: &Span, key: &'static str, value: u64) {
    span.set_attribute(key, i64::try_from(value).unwrap_or(i64::MAX));
}

fn set_ok(span: &Span) {
    span.set_status(Status::Ok);
}

/// A span's OpenTelemetry context (to parent later spans on it).
pub(crate) fn context_of(span: &Span) -> opentelemetry::Context {
    span.context()
}

/// Makes `parent` the parent of `span`, which must not have started yet.
pub(crate) fn set_parent(span: &Span, parent: opentelemetry::Context) {
    let _ = span.set_parent(parent);
}

/// The root span of a run (or of one `run-task` process), under the caller's `TRACEPARENT`
/// when there is one.
pub(crate) fn run(orchestra: &str, run_id: &str, strategy: &str) -> Span {
    let span = tracing::info_span!(
        "orchestra.run",
        otel.name = %format!("orchestra.run {orchestra}"),
        super.run_id = %run_id,
        super.orchestra = %orchestra,
        super.strategy = %strategy,
        super.run.status = Empty,
    );
    if let Some(parent) = super::traceparent() {
        let _ = span.set_parent(parent);
    }
    span
}

/// The run's end: its status, and an error status when it did not succeed.
pub(crate) fn end_run(span: &Span, status: &str, reason: Option<&str>) {
    span.record("super.run.status", status);
    match reason {
        Some(reason) if status != "succeeded" => set_error(span, reason),
        _ => set_ok(span),
    }
}

/// One task of the run (`label` is `task`, or `manager` for a manager step).
pub(crate) fn task(label: &str, name: &str, agent: &str, run_id: &str) -> Span {
    tracing::info_span!(
        "task",
        otel.name = %format!("{label} {name}"),
        super.task = %name,
        super.agent = %agent,
        gen_ai.agent.name = %agent,
        super.run_id = %run_id,
        super.task.status = Empty,
        super.task.attempts = Empty,
        super.task.cached = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        super.cost_usd = Empty,
    )
}

/// One manager step (plan, review, synthesis) of the hierarchical strategy.
pub(crate) fn manager_step(step: &str, agent: &str) -> Span {
    tracing::info_span!(
        "manager",
        otel.name = %format!("manager manager.{step}"),
        super.task = %format!("manager.{step}"),
        super.agent = %agent,
        gen_ai.agent.name = %agent,
        super.task.status = Empty,
        super.task.attempts = Empty,
        super.task.cached = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        super.cost_usd = Empty,
    )
}

/// A task's end, from its record.
pub(crate) fn end_task(span: &Span, record: &TaskRecord) {
    span.record("super.task.status", record.status.as_str());
    int(span, "super.task.attempts", record.attempts.len() as u64);
    span.record("super.task.cached", record.status == TaskStatus::Cached);
    int(span, "gen_ai.usage.input_tokens", record.tokens_in);
    int(span, "gen_ai.usage.output_tokens", record.tokens_out);
    span.record("super.cost_usd", record.cost_usd);
    match (&record.status, &record.reason) {
        (TaskStatus::Failed, reason) => set_error(span, reason.as_deref().unwrap_or("failed")),
        _ => set_ok(span),
    }
}

/// One attempt of a task.
pub(crate) fn attempt(number: u32) -> Span {
    let span = tracing::info_span!(
        "attempt",
        otel.name = %format!("attempt {number}"),
        super.rate_limit.wait_ms = Empty,
        error.type = Empty,
    );
    int(&span, "super.attempt", u64::from(number));
    span
}

/// An attempt's end: its error (and its kind) when it failed.
pub(crate) fn end_attempt(span: &Span, rate_wait_ms: u64, error: Option<(&str, &str)>) {
    int(span, "super.rate_limit.wait_ms", rate_wait_ms);
    match error {
        Some((kind, message)) => {
            span.record("error.type", kind);
            set_error(span, message);
        }
        None => set_ok(span),
    }
}

/// One LLM call.
pub(crate) fn call(provider: &str, request: &ChatRequest) -> Span {
    let span = tracing::info_span!(
        "chat",
        otel.name = %format!("chat {}", request.model),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = %provider,
        gen_ai.request.model = %request.model,
        gen_ai.request.temperature = Empty,
        gen_ai.request.max_tokens = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        super.cost_usd = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if let Some(t) = request.sampling.temperature {
        span.record("gen_ai.request.temperature", t);
    }
    if let Some(m) = request.sampling.max_tokens {
        int(&span, "gen_ai.request.max_tokens", m);
    }
    if content() {
        if let Ok(messages) = serde_json::to_string(&request.messages) {
            span.set_attribute("gen_ai.input.messages", messages);
        }
    }
    span
}

/// A call's end, from its record (and the response, when there is one).
pub(crate) fn end_call(span: &Span, call: &CallRecord, response: Option<&ChatResponse>) {
    int(span, "gen_ai.usage.input_tokens", call.tokens_in);
    int(span, "gen_ai.usage.output_tokens", call.tokens_out);
    span.record("super.cost_usd", call.cost_usd);
    if let Some(model) = &call.response_model {
        span.record("gen_ai.response.model", model.as_str());
    }
    if let Some(reason) = &call.finish_reason {
        span.set_attribute(
            "gen_ai.response.finish_reasons",
            opentelemetry::Value::Array(
                vec![opentelemetry::StringValue::from(reason.clone())].into(),
            ),
        );
    }
    if let Some(status) = call.http_status {
        int(span, "http.response.status_code", u64::from(status));
    }
    match &call.error {
        Some(error) => {
            let kind = call
                .http_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "error".into());
            span.record("error.type", kind.as_str());
            set_error(span, error);
        }
        None => set_ok(span),
    }
    if let (true, Some(response)) = (content(), response) {
        let output = serde_json::json!([{
            "role": "assistant",
            "content": response.text,
            "tool_calls": response.tool_calls,
        }]);
        span.set_attribute("gen_ai.output.messages", output.to_string());
    }
}

/// One tool call.
pub(crate) fn tool(name: &str, arguments: &serde_json::Value) -> Span {
    let span = tracing::info_span!(
        "execute_tool",
        otel.name = %format!("execute_tool {name}"),
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %name,
        super.tool.replayed = Empty,
        error.type = Empty,
    );
    if content() {
        span.set_attribute("gen_ai.tool.call.arguments", arguments.to_string());
    }
    span
}

/// A tool call's end.
pub(crate) fn end_tool(span: &Span, replayed: bool, error: Option<&str>) {
    if replayed {
        span.record("super.tool.replayed", true);
    }
    match error {
        Some(error) => {
            span.record("error.type", "tool_error");
            set_error(span, error);
        }
        None => set_ok(span),
    }
}
