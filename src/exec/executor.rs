//! The task executor: one task, from its first request to its outcome. Each attempt runs under
//! the task's timeout (the in-flight call is dropped when it runs out) and may make several
//! calls (tool loops and repair calls build on this); every call is checked against the
//! budgets, waits for the endpoint's shared rate limit, and is recorded on its own (tokens,
//! cost, duration, error). A failed attempt is retried with backoff while the error is worth
//! another try; a server's `Retry-After` is obeyed only while it fits the task's timeout, the
//! run's wall budget and `MAX_SERVER_WAIT`; a stop (Ctrl-C, SIGTERM) interrupts every wait.
//! It never imports the dispatcher: `run-task` calls it alone.

use super::budget::{Budget, PriceTable};
use super::events::RunEvent;
use super::ids;
use super::ratelimit::Limiter;
use super::retry::Backoff;
use crate::provider::{
    CallContext, ChatProvider, ChatRequest, ChatResponse, ErrorKind, Message, ProviderError,
    ToolChoice,
};
use crate::settings::{CallLimits, TaskSettings};
use crate::workspace::{AttemptRecord, CallRecord, TaskRecord, TaskStatus, ToolCallRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// What a run shares with each of its tasks.
pub struct Executor<'a> {
    pub budget: &'a Budget,
    pub pricing: &'a PriceTable,
    pub limits: &'a CallLimits,
    /// Cancelled on the first Ctrl-C (or SIGTERM): no retry starts, every wait ends.
    pub stop: &'a CancellationToken,
    pub events: mpsc::UnboundedSender<RunEvent>,
}

/// One task to run.
pub struct TaskJob {
    pub request: ChatRequest,
    pub settings: TaskSettings,
    pub provider: Arc<dyn ChatProvider>,
    pub limiter: Arc<Limiter>,
    /// The task's record as it started.
    pub record: TaskRecord,
    /// The tools the model is offered (their definitions are already in `request.tools`).
    pub tools: TaskToolbox,
}

/// A task's tools, their limits and what they may touch.
#[derive(Default, Clone)]
pub struct TaskToolbox {
    pub tools: Vec<Arc<dyn crate::tools::Tool>>,
    /// The line the task's start shows: what it may use, what it asked for but lacks.
    pub summary: Option<String>,
    pub settings: crate::tools::ToolSettings,
    pub context: crate::tools::ToolContext,
}

/// How a task ended.
pub struct TaskOutcome {
    pub record: TaskRecord,
    /// The answer (for a task with a schema, the validated object pretty-printed).
    pub output: Option<String>,
    /// The validated object, for a task with a schema.
    pub json: Option<serde_json::Value>,
    /// The last reply that did not match the task's schema, when the task failed on it.
    pub last_invalid_reply: Option<String>,
    /// A budget stopped the run at this task.
    pub budget_stop: Option<String>,
    /// The task failed on an error worth another try (429, 5xx, timeout, connection, invalid
    /// output): what `run-task`'s exit code tells the engine that retries it.
    pub retryable: bool,
}

/// An attempt's answer.
struct Answer {
    text: String,
    json: Option<serde_json::Value>,
}

impl Answer {
    fn json(value: serde_json::Value) -> Answer {
        Answer {
            text: serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string()),
            json: Some(value),
        }
    }
}

/// Why one call did not give a response.
enum CallError {
    Provider(ProviderError),
    Budget(String),
}

impl Executor<'_> {
    pub async fn run(&self, job: TaskJob) -> TaskOutcome {
        let TaskJob {
            request,
            settings,
            provider,
            limiter,
            mut record,
            tools,
        } = job;
        let started = Instant::now();
        let mut backoff = Backoff::new(settings.retry, self.limits.retry_base);
        let attempts = settings.attempts.max(1);
        let mut outcome = None;
        let mut last_invalid_reply = None;
        let mut retryable = false;
        for attempt in 1..=attempts {
            let attempt_started_unix = ids::now_unix_ms();
            let attempt_started = Instant::now();
            let deadline = attempt_started + settings.timeout;
            let mut attempt_record = AttemptRecord {
                number: attempt,
                started_unix_ms: attempt_started_unix,
                ..AttemptRecord::default()
            };
            let attempt_span = crate::telemetry::spans::attempt(attempt);
            // Boxed, as `structured` below: a task's future holds only the step it is in, not
            // room for every step (500 tasks at once each held 16 KB before).
            let result = Box::pin(
                self.converse(
                    &*provider,
                    &limiter,
                    &settings,
                    &tools,
                    &record.name,
                    &request,
                    deadline,
                    &mut attempt_record,
                )
                .instrument(attempt_span.clone()),
            )
            .await;
            let result = match (result, &settings.output_schema) {
                (Ok(response), Some(schema)) => {
                    Box::pin(
                        self.structured(
                            &*provider,
                            &limiter,
                            &settings,
                            schema,
                            &record.name,
                            &request,
                            response,
                            deadline,
                            &mut attempt_record,
                            &mut last_invalid_reply,
                        )
                        .instrument(attempt_span.clone()),
                    )
                    .await
                }
                (Ok(response), None) => Ok(Answer {
                    text: response.text,
                    json: None,
                }),
                (Err(error), _) => Err(error),
            };
            attempt_record.duration_ms = attempt_started.elapsed().as_millis() as u64;
            crate::telemetry::spans::end_attempt(
                &attempt_span,
                attempt_record.rate_wait_ms,
                match &result {
                    Err(CallError::Provider(error)) => Some((error.kind.code(), error.to_string())),
                    Err(CallError::Budget(reason)) => Some(("budget", reason.clone())),
                    Ok(_) => None,
                }
                .as_ref()
                .map(|(kind, message)| (*kind, message.as_str())),
            );
            drop(attempt_span);
            match result {
                Ok(answer) => {
                    attempt_record.ok = true;
                    record.attempts.push(attempt_record);
                    last_invalid_reply = None;
                    outcome = Some(Ok(answer));
                    break;
                }
                Err(CallError::Budget(reason)) => {
                    record.attempts.push(attempt_record);
                    // An attempt that made no call is not an attempt.
                    if record.attempts.last().is_some_and(|a| a.calls.is_empty()) {
                        record.attempts.pop();
                    }
                    outcome = Some(Err((reason, true)));
                    break;
                }
                Err(CallError::Provider(error)) => {
                    retryable = error.is_retryable();
                    attempt_record.error = Some(error.to_string());
                    attempt_record.reason = Some(error.kind.code().to_string());
                    attempt_record.http_status = error.status();
                    let decision =
                        self.retry_decision(&error, attempt, attempts, &settings, &mut backoff);
                    attempt_record.retry_in_ms =
                        decision.as_ref().ok().map(|d| d.as_millis() as u64);
                    record.attempts.push(attempt_record);
                    let _ = self.events.send(RunEvent::AttemptFailed {
                        name: record.name.clone(),
                        attempt,
                        attempts,
                        error: error.to_string(),
                        retry_in: decision.as_ref().ok().copied(),
                        retryable: error.is_retryable(),
                    });
                    match &decision {
                        Ok(delay) => tracing::info!(
                            task = %record.name,
                            attempt,
                            attempts,
                            backoff_ms = delay.as_millis() as u64,
                            retry_after_ms = error.retry_after().map(|d| d.as_millis() as u64),
                            error = %error,
                            "attempt failed; retrying after a backoff wait"
                        ),
                        Err(why) => tracing::info!(
                            task = %record.name,
                            attempt,
                            attempts,
                            error = %error,
                            "attempt failed; not retried: {why}"
                        ),
                    }
                    match decision {
                        Ok(delay) => {
                            tracing::debug!(
                                task = %record.name,
                                wait_ms = delay.as_millis() as u64,
                                "backoff: waiting before attempt {}",
                                attempt + 1
                            );
                            tokio::select! {
                                _ = tokio::time::sleep(delay) => {}
                                _ = self.stop.cancelled() => {
                                    outcome = Some(Err((format!("{error} (not retried: the run is stopping)"), false)));
                                    break;
                                }
                            }
                        }
                        Err(why) => {
                            outcome = Some(Err((why, false)));
                            break;
                        }
                    }
                }
            }
        }
        record.duration_ms = started.elapsed().as_millis() as u64;
        record.recompute_usage();
        let mut ended = TaskOutcome {
            record,
            output: None,
            json: None,
            last_invalid_reply,
            budget_stop: None,
            retryable: false,
        };
        match outcome {
            Some(Ok(answer)) => {
                ended.record.status = TaskStatus::Succeeded;
                ended.output = Some(answer.text);
                ended.json = answer.json;
            }
            Some(Err((reason, true))) => {
                ended.record.status = TaskStatus::Skipped;
                ended.record.reason = Some(reason.clone());
                ended.budget_stop = Some(reason);
            }
            Some(Err((reason, false))) => {
                ended.record.status = TaskStatus::Failed;
                ended.record.reason = Some(reason);
                ended.retryable = retryable;
            }
            None => {
                ended.record.status = TaskStatus::Failed;
                ended.record.reason = Some("no attempts were made".into());
            }
        }
        ended
    }

    /// The wait before the next attempt, or why there is none.
    fn retry_decision(
        &self,
        error: &ProviderError,
        attempt: u32,
        attempts: u32,
        settings: &TaskSettings,
        backoff: &mut Backoff,
    ) -> Result<Duration, String> {
        if !error.is_retryable() {
            return Err(error.to_string());
        }
        if error.kind == ErrorKind::InvalidOutput && !settings.retry_invalid_output {
            return Err(error.to_string());
        }
        if attempt >= attempts {
            return Err(error.to_string());
        }
        if self.stop.is_cancelled() {
            return Err(format!("{error} (not retried: the run is stopping)"));
        }
        let delay = backoff.next_delay(error.retry_after());
        if let Some(asked) = error.retry_after() {
            let allowed = [
                Some(self.limits.max_server_wait),
                Some(settings.timeout),
                self.budget.wall_time_left(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.limits.max_server_wait);
            if asked > allowed {
                return Err(format!(
                    "{error} (the server asked to wait {:.0}s before retrying, longer than the {:.0}s this run allows: the task's timeout, the wall budget and the {}s cap on server waits)",
                    asked.as_secs_f64(),
                    allowed.as_secs_f64(),
                    self.limits.max_server_wait.as_secs()
                ));
            }
        }
        if let Some(left) = self.budget.wall_time_left() {
            if delay >= left {
                return Err(format!(
                    "{error} (not retried: the wall budget ends before the next attempt)"
                ));
            }
        }
        Ok(delay)
    }

    /// The conversation of one attempt: a call, then, while the model asks for tools, each
    /// tool's result and another call, up to the tool-loop limits; at the limit the model is
    /// asked once more for its final answer without tools. A tool's error goes back to the
    /// model as its result; only the deadline, a budget or a failed call end the attempt.
    #[allow(clippy::too_many_arguments)]
    async fn converse(
        &self,
        provider: &dyn ChatProvider,
        limiter: &Limiter,
        settings: &TaskSettings,
        toolbox: &TaskToolbox,
        task: &str,
        request: &ChatRequest,
        deadline: Instant,
        attempt: &mut AttemptRecord,
    ) -> Result<ChatResponse, CallError> {
        let first = self
            .call(
                provider, limiter, settings, task, request, deadline, attempt,
            )
            .await?;
        if toolbox.tools.is_empty() && !first.tool_calls.is_empty() && first.text.trim().is_empty()
        {
            // Calls to tools it was never offered, and no text: nothing to use.
            return Err(CallError::Provider(ProviderError::new(
                ErrorKind::Empty,
                "the model answered only with calls to tools it was not offered",
            )));
        }
        if first.tool_calls.is_empty() || toolbox.tools.is_empty() {
            return Ok(first);
        }
        let limits = &toolbox.settings;
        let mut conversation = request.clone();
        let mut response = first;
        let mut turns = 0u32;
        let mut calls_made = 0u32;
        loop {
            turns += 1;
            let wanted = u32::try_from(response.tool_calls.len()).unwrap_or(u32::MAX);
            let task_over = turns > limits.max_iterations
                || limits
                    .max_tool_calls
                    .is_some_and(|max| calls_made.saturating_add(wanted) > max);
            // The run's budget is reserved only when the task's own limits allow the batch.
            let over = if task_over {
                Some("not run: the task's tool-call limit is reached".to_string())
            } else {
                self.budget
                    .try_tool_calls(u64::from(wanted))
                    .err()
                    .map(|why| format!("not run: {why}"))
            };
            conversation.messages.push(Message::assistant(
                response.text.clone(),
                response.tool_calls.clone(),
            ));
            if let Some(why) = over {
                for call in &response.tool_calls {
                    conversation
                        .messages
                        .push(Message::tool_result(call, why.clone()));
                }
                conversation.messages.push(Message::user(
                    "The tool limit is reached. Give your final answer now, without calling tools.",
                ));
                conversation.tool_choice = ToolChoice::None;
                let mut last = self
                    .call(
                        provider,
                        limiter,
                        settings,
                        task,
                        &conversation,
                        deadline,
                        attempt,
                    )
                    .await?;
                last.tool_calls.clear();
                if last.text.trim().is_empty() {
                    return Err(CallError::Provider(ProviderError::new(
                        ErrorKind::Empty,
                        "the model gave no final answer after the tool limit",
                    )));
                }
                return Ok(last);
            }
            for call in &response.tool_calls {
                calls_made += 1;
                let started = Instant::now();
                let found = toolbox
                    .tools
                    .iter()
                    .find(|t| t.definition().name == call.name);
                let replayed = found.is_some_and(|t| t.replayed());
                let outcome = match found {
                    Some(tool) => {
                        let run = crate::tools::run_tool(
                            tool.as_ref(),
                            call.arguments.clone(),
                            &toolbox.context,
                            limits.call,
                        );
                        let tool_span = crate::telemetry::spans::tool(&call.name, &call.arguments);
                        let timed = tokio::time::timeout_at(deadline, run)
                            .instrument(tool_span.clone())
                            .await;
                        crate::telemetry::spans::end_tool(
                            &tool_span,
                            replayed,
                            match &timed {
                                Ok(outcome) if outcome.is_error => Some(outcome.text.as_str()),
                                Ok(_) => None,
                                Err(_) => Some("timed out"),
                            },
                        );
                        match timed {
                            Ok(outcome) => outcome,
                            Err(_) => {
                                return Err(CallError::Provider(ProviderError::new(
                                    ErrorKind::Timeout,
                                    format!(
                                        "timed out after {}s while the tool `{}` ran",
                                        settings.timeout.as_secs(),
                                        call.name
                                    ),
                                )))
                            }
                        }
                    }
                    None => crate::tools::ToolOutcome {
                        text: format!(
                            "error: there is no tool named `{}`; the tools are: {}",
                            call.name,
                            toolbox
                                .tools
                                .iter()
                                .map(|t| t.definition().name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        is_error: true,
                        truncated: false,
                        duration: started.elapsed(),
                    },
                };
                attempt.tool_calls.push(ToolCallRecord {
                    name: call.name.clone(),
                    arguments: Some(cut(&call.arguments.to_string(), 1024)),
                    started_unix_ms: ids::now_unix_ms()
                        .saturating_sub(outcome.duration.as_millis() as u64),
                    duration_ms: outcome.duration.as_millis() as u64,
                    error: outcome.is_error.then(|| outcome.text.clone()),
                    replayed,
                });
                let _ = self.events.send(RunEvent::ToolCalled {
                    name: task.to_string(),
                    tool: call.name.clone(),
                    duration_ms: outcome.duration.as_millis() as u64,
                    ok: !outcome.is_error,
                });
                conversation
                    .messages
                    .push(Message::tool_result(call, outcome.text));
            }
            response = self
                .call(
                    provider,
                    limiter,
                    settings,
                    task,
                    &conversation,
                    deadline,
                    attempt,
                )
                .await?;
            if response.tool_calls.is_empty() {
                return Ok(response);
            }
        }
    }

    /// A reply checked against the task's schema. An invalid reply gets one repair call that
    /// shows the model its reply and the validator's errors; a second invalid reply fails the
    /// attempt with `invalid_output` (retryable) and is kept for the error log.
    #[allow(clippy::too_many_arguments)]
    async fn structured(
        &self,
        provider: &dyn ChatProvider,
        limiter: &Limiter,
        settings: &TaskSettings,
        schema: &crate::structured::OutputSchema,
        task: &str,
        request: &ChatRequest,
        reply: ChatResponse,
        deadline: Instant,
        attempt: &mut AttemptRecord,
        last_invalid_reply: &mut Option<String>,
    ) -> Result<Answer, CallError> {
        let problems = match schema.check_reply(&reply.text) {
            Ok(value) => return Ok(Answer::json(value)),
            Err(problems) => problems,
        };
        let mut repair = request.clone();
        repair.tools.clear();
        repair.tool_choice = ToolChoice::Auto;
        repair
            .messages
            .push(Message::assistant(reply.text.clone(), Vec::new()));
        repair.messages.push(Message::user(
            crate::structured::OutputSchema::repair_message(&problems),
        ));
        *last_invalid_reply = Some(reply.text);
        tracing::debug!(task, %problems, "the reply does not match the schema; one repair call");
        let fixed = self
            .call(
                provider, limiter, settings, task, &repair, deadline, attempt,
            )
            .await;
        if let Some(call) = attempt.calls.last_mut() {
            call.repair = true;
        }
        let fixed = fixed?;
        match schema.check_reply(&fixed.text) {
            Ok(value) => {
                *last_invalid_reply = None;
                Ok(Answer::json(value))
            }
            Err(problems) => {
                *last_invalid_reply = Some(fixed.text);
                Err(CallError::Provider(ProviderError::new(
                    ErrorKind::InvalidOutput,
                    format!("invalid output after one repair: {problems}"),
                )))
            }
        }
    }

    /// One call: the budget, the rate limit, then the provider, all before `deadline`.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        provider: &dyn ChatProvider,
        limiter: &Limiter,
        settings: &TaskSettings,
        task: &str,
        request: &ChatRequest,
        deadline: Instant,
        attempt: &mut AttemptRecord,
    ) -> Result<ChatResponse, CallError> {
        let estimated_input = request.estimated_input_tokens();
        let estimated_cost = self.pricing.cost(
            &settings.model,
            crate::provider::Usage {
                input_tokens: estimated_input,
                output_tokens: 0,
            },
        );
        self.budget
            .try_start_call(estimated_input, estimated_cost)
            .map_err(CallError::Budget)?;
        let started_unix = ids::now_unix_ms();
        let started = Instant::now();
        let timed_out = || {
            ProviderError::new(
                ErrorKind::Timeout,
                format!(
                    "timed out after {}s (the call was cancelled)",
                    settings.timeout.as_secs()
                ),
            )
        };
        let tokens = TokenBuffer::new(self.events.clone(), task);
        let sink = |text: &str| tokens.push(text);
        let call_span = crate::telemetry::spans::call(&settings.model.endpoint.provider, request);
        let result = match tokio::time::timeout_at(deadline, limiter.acquire(estimated_input)).await
        {
            Err(_) => Err(timed_out()),
            Ok(_) => {
                let rate_wait = started.elapsed();
                let call_started = Instant::now();
                let context = CallContext {
                    task,
                    on_token: &sink,
                };
                if rate_wait.as_millis() > 0 {
                    tracing::debug!(
                        task,
                        wait_ms = rate_wait.as_millis() as u64,
                        "rate limit: waited for the endpoint's limiter"
                    );
                }
                // The call's span is a leaf, so it is not entered on each poll of the exchange
                // (what it measures is from its creation to its drop below).
                let result =
                    match tokio::time::timeout_at(deadline, provider.complete(request, context))
                        .await
                    {
                        Ok(result) => result,
                        Err(_) => Err(timed_out()),
                    };
                attempt.rate_wait_ms += rate_wait.as_millis() as u64;
                attempt.provider_ms += call_started.elapsed().as_millis() as u64;
                result
            }
        };
        // What streamed and is still held goes out before the call's outcome is known.
        tokens.flush();
        let mut call = CallRecord {
            started_unix_ms: started_unix,
            duration_ms: started.elapsed().as_millis() as u64,
            ..CallRecord::default()
        };
        let result = match result {
            Ok(response) => {
                limiter.observe(&response.rate);
                limiter.settle_tokens(estimated_input, response.usage.total());
                let cost = self.pricing.cost(&settings.model, response.usage);
                self.budget.record(response.usage, cost);
                call.tokens_in = response.usage.input_tokens;
                call.tokens_out = response.usage.output_tokens;
                call.cost_usd = cost;
                call.finish_reason = response.finish_reason.clone();
                call.response_model = response.model.clone();
                call.note = response.note.clone();
                attempt.tokens_in += call.tokens_in;
                attempt.tokens_out += call.tokens_out;
                Ok(response)
            }
            Err(error) => {
                if error.kind == ErrorKind::Status(429) {
                    // Without a Retry-After, pause the endpoint for one base delay.
                    limiter.back_off(
                        error
                            .retry_after()
                            .unwrap_or(self.limits.retry_base)
                            .min(self.limits.max_server_wait),
                    );
                }
                limiter.observe(&error.rate);
                call.error = Some(error.to_string());
                call.http_status = error.status();
                Err(CallError::Provider(error))
            }
        };
        crate::telemetry::spans::end_call(&call_span, &call, result.as_ref().ok());
        attempt.calls.push(call);
        result
    }
}

/// `text` cut at `max` bytes (on a character boundary), marked when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A call's streamed text on its way to `RunEvent::Token`: at most one event every TOKEN_EVERY
/// per call (the first piece at once, the pieces close behind it together, the rest when the
/// call ends), so a reply streamed in 20 pieces within a millisecond costs two events, not 20
/// (each event is allocated, queued, and seen by every reporter and the `.partial` writer).
struct TokenBuffer {
    events: mpsc::UnboundedSender<RunEvent>,
    name: String,
    /// The text not yet sent, and when the last event went.
    held: std::sync::Mutex<(String, Option<Instant>)>,
}

/// The longest streamed text waits before it is reported.
const TOKEN_EVERY: Duration = Duration::from_millis(50);

impl TokenBuffer {
    fn new(events: mpsc::UnboundedSender<RunEvent>, task: &str) -> TokenBuffer {
        TokenBuffer {
            events,
            name: task.to_string(),
            held: std::sync::Mutex::new((String::new(), None)),
        }
    }

    /// A piece after a quiet TOKEN_EVERY goes out at once (with anything held); pieces close
    /// behind it are held.
    fn push(&self, text: &str) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        let (buffer, last_sent) = &mut *held;
        buffer.push_str(text);
        let now = Instant::now();
        if last_sent.is_none_or(|last| now.duration_since(last) >= TOKEN_EVERY) {
            *last_sent = Some(now);
            let text = std::mem::take(buffer);
            drop(held);
            self.send(text);
        }
    }

    fn flush(&self) {
        let text = match self.held.lock() {
            Ok(mut held) => std::mem::take(&mut held.0),
            Err(_) => return,
        };
        self.send(text);
    }

    fn send(&self, text: String) {
        if !text.is_empty() {
            let _ = self.events.send(RunEvent::Token {
                name: self.name.clone(),
                text,
            });
        }
    }
}
