//! The dispatcher: the one owner of a run's state. It starts ready tasks (bounded by the
//! phase's concurrency), each attempt under a timeout that drops the in-flight call, retries
//! with backoff, reuses cached outputs, enforces budgets and shared rate limits, and reacts to
//! Ctrl-C (first: drain and save; second: abort). It emits `RunEvent`s and never prints.

use super::budget::{Budget, PriceTable};
use super::cache::{sha256_hex, task_key, CacheEntry, TaskCache};
use super::events::{PlannedTask, RunEvent};
use super::ids;
use super::ratelimit::RateLimits;
use super::record::{Recorder, Recording, Replayer};
use super::retry::Backoff;
use crate::load::Loaded;
use crate::plan::{Scheduler, SlotState};
use crate::prompt::{self, ContextOutput};
use crate::provider::{
    http::estimate_tokens, ChatRequest, ErrorKind, ModelChoice, ProviderError, Providers,
};
use crate::spec::BudgetSpec;
use crate::workspace::files::{FINAL_OUTPUT, SHARED_DATA};
use crate::workspace::{
    AttemptRecord, BackgroundWriter, Manifest, RunStatus, TaskRecord, TaskStatus, Workspace,
};
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Which finished outputs a run may reuse instead of calling the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// A plain run: call every task, store outputs for later reuse.
    Fresh,
    /// `--resume`: reuse every task whose key matches a stored output.
    Resume,
    /// `--from TASK`: rerun this task and everything downstream, reuse the rest.
    From(usize),
    /// `--no-cache`: neither reuse nor store.
    Off,
}

pub struct ExecConfig {
    pub run_id: String,
    pub goal: String,
    /// `--timeout`: used when neither the task nor the file sets one.
    pub default_timeout_seconds: Option<u64>,
    pub keep_going: bool,
    pub reuse: Reuse,
    pub retry_base: Duration,
    pub budget: BudgetSpec,
    pub pricing: PriceTable,
    pub record: Option<Recorder>,
    pub replay: Option<Replayer>,
    /// How often `run.json` may be rewritten while tasks finish.
    pub checkpoint_interval: Duration,
}

/// Ctrl-C as the dispatcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Stop starting tasks, let running ones end.
    Drain,
    /// Stop now.
    Abort,
}

struct Shared<'a> {
    loaded: &'a Loaded,
    config: &'a ExecConfig,
    providers: &'a Providers,
    budget: Budget,
    limits: RateLimits,
    cache: TaskCache,
    draining: AtomicBool,
    events: mpsc::UnboundedSender<RunEvent>,
}

struct TaskOutcome {
    index: usize,
    record: TaskRecord,
    output: Option<String>,
    /// A budget stopped the run at this task.
    budget_stop: Option<String>,
}

pub fn attempts_for(loaded: &Loaded, index: usize) -> u32 {
    let strategy = loaded.spec.execution.retry_strategy;
    1 + loaded.spec.tasks[index]
        .retry_count
        .unwrap_or_else(|| strategy.default_retries())
}

/// The task's `timeout_seconds`, else the file's `task_timeout_seconds`, else `--timeout`, else 300.
pub fn effective_timeout_seconds(loaded: &Loaded, default: Option<u64>, index: usize) -> u64 {
    loaded.spec.tasks[index]
        .timeout_seconds
        .or(loaded.spec.execution.task_timeout_seconds)
        .or(default)
        .unwrap_or(crate::spec::orchestra::DEFAULT_TASK_TIMEOUT_SECONDS)
}

/// A task's record as it starts (or is reused), keyed for the cache.
fn started_record(loaded: &Loaded, index: usize, key: &str, status: TaskStatus) -> TaskRecord {
    TaskRecord {
        status,
        cache_key: Some(key.to_string()),
        started_unix_ms: Some(ids::now_unix_ms()),
        ..new_record(loaded, index)
    }
}

fn new_record(loaded: &Loaded, index: usize) -> TaskRecord {
    let task = &loaded.spec.tasks[index];
    let model = &loaded.models[index];
    TaskRecord {
        name: task.name.to_string(),
        agent: task.agent.to_string(),
        status: TaskStatus::Pending,
        provider: model.endpoint.provider.clone(),
        model: model.model.clone(),
        attempts: Vec::new(),
        started_unix_ms: None,
        duration_ms: 0,
        tokens_in: 0,
        tokens_out: 0,
        cost_usd: 0.0,
        output_file: None,
        cache_key: None,
        reason: None,
    }
}

/// The request a task sends, built from the outputs its context tasks produced.
pub fn build_request(
    loaded: &Loaded,
    index: usize,
    goal: &str,
    outputs: &[Option<Arc<str>>],
) -> ChatRequest {
    let task = &loaded.spec.tasks[index];
    let choice = &loaded.models[index];
    let agent = &loaded.agents[&task.agent];
    let context: Vec<ContextOutput<'_>> = loaded.plan.context[index]
        .iter()
        .filter_map(|&j| {
            outputs[j].as_deref().map(|output| ContextOutput {
                task: loaded.spec.tasks[j].name.as_str(),
                agent: loaded.spec.tasks[j].agent.as_str(),
                output,
            })
        })
        .collect();
    ChatRequest {
        model: choice.model.clone(),
        system: prompt::system_message(agent, task),
        user: prompt::user_message(task, goal, &context),
        temperature: choice.temperature,
        max_tokens: choice.max_tokens,
        top_p: choice.top_p,
        seed: choice.seed,
    }
}

pub async fn execute(
    loaded: &Loaded,
    workspace: &Workspace,
    config: &ExecConfig,
    providers: &Providers,
    archived_previous: Option<String>,
    interrupts: &mut mpsc::UnboundedReceiver<Interrupt>,
    report: &mut dyn FnMut(&RunEvent),
) -> Manifest {
    let plan = &loaded.plan;
    let n = plan.len();
    let (events, mut event_receiver) = mpsc::unbounded_channel();
    let shared = Shared {
        loaded,
        config,
        providers,
        budget: Budget::new(config.budget.clone()),
        limits: RateLimits::default(),
        cache: TaskCache::new(
            &workspace.path(crate::workspace::files::CACHE),
            &workspace.path(crate::workspace::files::TEMP),
        ),
        draining: AtomicBool::new(false),
        events,
    };

    let started = Instant::now();
    let started_unix_ms = ids::now_unix_ms();
    let mut manifest = Manifest {
        run_id: config.run_id.clone(),
        goal: config.goal.clone(),
        orchestra: crate::workspace::manifest::OrchestraRef {
            id: loaded.spec.id.to_string(),
            name: loaded.spec.name.clone(),
            file: loaded.spec.file.path.display().to_string(),
            sha256: sha256_hex(loaded.spec.file.text.as_bytes()),
        },
        workspace: workspace.root.display().to_string(),
        strategy: plan.strategy.as_str().to_string(),
        started_at: ids::rfc3339(started_unix_ms),
        started_unix_ms,
        ended_at: None,
        duration_ms: 0,
        status: RunStatus::Running,
        stop_reason: None,
        tasks: plan.order.iter().map(|&i| new_record(loaded, i)).collect(),
        totals: Default::default(),
    };
    // Manifest rows are in plan order; this maps a task index to its row.
    let row = |index: usize| plan.position[index];
    write_manifest(workspace, &manifest);
    let writer = BackgroundWriter::start(&workspace.path(crate::workspace::files::TEMP));

    report(&RunEvent::RunStarted {
        run_id: config.run_id.clone(),
        orchestra: loaded.spec.id.to_string(),
        goal: config.goal.clone(),
        workspace: workspace.root.clone(),
        strategy: plan.strategy.as_str().to_string(),
        tasks: plan
            .order
            .iter()
            .map(|&i| PlannedTask {
                name: loaded.spec.tasks[i].name.to_string(),
                agent: loaded.spec.tasks[i].agent.to_string(),
                model: loaded.models[i].label(),
                depends_on: plan.deps[i]
                    .iter()
                    .map(|&j| loaded.spec.tasks[j].name.to_string())
                    .collect(),
            })
            .collect(),
        archived_previous,
    });

    let rerun = match config.reuse {
        Reuse::From(task) => plan.downstream(task),
        _ => vec![false; n],
    };
    let mut scheduler = Scheduler::new(plan);
    let mut outputs: Vec<Option<Arc<str>>> = vec![None; n];
    let mut output_hashes: Vec<String> = vec![String::new(); n];
    let mut running = FuturesUnordered::new();
    let mut started_count = 0usize;
    let mut stop_reason: Option<String> = None;
    let mut interrupted = false;
    let mut aborted = false;
    let mut last_checkpoint = Instant::now();
    let mut failed_any = false;

    loop {
        if stop_reason.is_none() {
            while let Some(index) = scheduler.next_ready() {
                let task = &loaded.spec.tasks[index];
                let request = build_request(loaded, index, &config.goal, &outputs);
                let context_hashes: Vec<String> = plan.context[index]
                    .iter()
                    .map(|&j| output_hashes[j].clone())
                    .collect();
                let key = task_key(
                    &loaded.models[index],
                    &request,
                    task.expected_output.as_deref(),
                    &context_hashes,
                );
                started_count += 1;

                let reusable = match config.reuse {
                    Reuse::Resume => true,
                    Reuse::From(_) => !rerun[index],
                    Reuse::Fresh | Reuse::Off => false,
                };
                if reusable {
                    if let Some(entry) = shared.cache.get(&key) {
                        let mut record = started_record(loaded, index, &key, TaskStatus::Cached);
                        record.output_file =
                            write_output(&writer, workspace, loaded, index, &entry.output);
                        output_hashes[index] = sha256_hex(entry.output.as_bytes());
                        outputs[index] = Some(Arc::from(entry.output.as_str()));
                        report(&RunEvent::TaskReused {
                            name: task.name.to_string(),
                            agent: task.agent.to_string(),
                            number: started_count,
                            total: n,
                        });
                        report(&RunEvent::TaskFinished {
                            record: record.clone(),
                        });
                        manifest.tasks[row(index)] = record;
                        scheduler.finish(index, true);
                        continue;
                    }
                }

                let record = started_record(loaded, index, &key, TaskStatus::Running);
                manifest.tasks[row(index)] = record.clone();
                let prompt_file =
                    prompt::render_file(task.name.as_str(), &request.system, &request.user);
                writer.write(workspace.task_prompt(&task.name), prompt_file.into_bytes());
                report(&RunEvent::TaskStarted {
                    name: task.name.to_string(),
                    agent: task.agent.to_string(),
                    model: loaded.models[index].label(),
                    number: started_count,
                    total: n,
                });
                running.push(run_task(&shared, index, request, record));
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            interrupt = interrupts.recv() => {
                match interrupt {
                    Some(Interrupt::Abort) => {
                        interrupted = true;
                        aborted = true;
                        stop_reason.get_or_insert_with(|| "interrupted (Ctrl-C twice): running tasks were aborted".into());
                        report(&RunEvent::Stopping { reason: "interrupted again: aborting running tasks".into() });
                        break;
                    }
                    Some(Interrupt::Drain) => {
                        interrupted = true;
                        shared.draining.store(true, Ordering::SeqCst);
                        stop_reason.get_or_insert_with(|| "interrupted (Ctrl-C): no new task was started".into());
                        report(&RunEvent::Stopping { reason: "interrupted: waiting for running tasks to end (Ctrl-C again to abort)".into() });
                    }
                    None => {}
                }
            }
            Some(event) = event_receiver.recv() => report(&event),
            Some(outcome) = running.next() => {
                // Deliver what the task said before it ended (tokens, failed attempts).
                while let Ok(event) = event_receiver.try_recv() {
                    report(&event);
                }
                let TaskOutcome { index, mut record, output, budget_stop } = outcome;
                match output {
                    Some(output) => {
                        record.output_file = write_output(&writer, workspace, loaded, index, &output);
                        if config.reuse != Reuse::Off {
                            if let Some(key) = &record.cache_key {
                                let _ = shared.cache.put(&CacheEntry {
                                    key: key.clone(),
                                    task: record.name.clone(),
                                    provider: record.provider.clone(),
                                    model: record.model.clone(),
                                    output: output.clone(),
                                    usage: crate::provider::Usage { input_tokens: record.tokens_in, output_tokens: record.tokens_out },
                                });
                            }
                        }
                        output_hashes[index] = sha256_hex(output.as_bytes());
                        outputs[index] = Some(Arc::from(output));
                        report(&RunEvent::TaskFinished { record: record.clone() });
                        manifest.tasks[row(index)] = record;
                        scheduler.finish(index, true);
                    }
                    None => {
                        let name = record.name.clone();
                        if let Some(reason) = budget_stop {
                            stop_reason.get_or_insert(reason.clone());
                            shared.draining.store(true, Ordering::SeqCst);
                            report(&RunEvent::Stopping { reason: reason.clone() });
                            report(&RunEvent::TaskSkipped { name: name.clone(), reason: reason.clone() });
                        } else {
                            failed_any = true;
                            let error_text = record
                                .attempts
                                .iter()
                                .map(|a| format!("attempt {}: {}\n", a.number, a.error.as_deref().unwrap_or("ok")))
                                .collect::<String>();
                            writer.write(workspace.task_error(&loaded.spec.tasks[index].name), error_text.into_bytes());
                            report(&RunEvent::TaskFinished { record: record.clone() });
                        }
                        manifest.tasks[row(index)] = record;
                        for skipped in scheduler.finish(index, false) {
                            let reason = format!("depends on `{name}`, which did not finish");
                            let skipped_record = &mut manifest.tasks[row(skipped)];
                            skipped_record.status = TaskStatus::Skipped;
                            skipped_record.reason = Some(reason.clone());
                            report(&RunEvent::TaskSkipped { name: skipped_record.name.clone(), reason });
                        }
                        if !config.keep_going && stop_reason.is_none() {
                            stop_reason = Some(format!("task `{name}` failed; no new task was started (use --keep-going to run independent tasks)"));
                            shared.draining.store(true, Ordering::SeqCst);
                        }
                    }
                }
                if last_checkpoint.elapsed() >= config.checkpoint_interval {
                    last_checkpoint = Instant::now();
                    manifest.duration_ms = started.elapsed().as_millis() as u64;
                    write_manifest(workspace, &manifest);
                }
            }
        }
    }
    drop(running);
    while let Ok(event) = event_receiver.try_recv() {
        report(&event);
    }

    // Tasks cut off by an abort, and tasks that never started.
    for index in 0..n {
        let record = &mut manifest.tasks[row(index)];
        if aborted
            && scheduler.state(index) == SlotState::Running
            && record.status == TaskStatus::Running
        {
            record.status = TaskStatus::Failed;
            record.reason = Some("aborted by a second Ctrl-C".into());
            if let Some(started) = record.started_unix_ms {
                record.duration_ms = ids::now_unix_ms().saturating_sub(started);
            }
        }
    }
    for index in scheduler.not_started() {
        let record = &mut manifest.tasks[row(index)];
        if record.status == TaskStatus::Pending {
            record.status = TaskStatus::Skipped;
            let reason = format!(
                "not started: {}",
                stop_reason.as_deref().unwrap_or("the run stopped")
            );
            record.reason = Some(reason.clone());
            report(&RunEvent::TaskSkipped {
                name: record.name.clone(),
                reason,
            });
        }
    }

    manifest.status = if interrupted {
        RunStatus::Interrupted
    } else if failed_any || stop_reason.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    if manifest.status != RunStatus::Succeeded {
        manifest.stop_reason = stop_reason.or_else(|| Some("one or more tasks failed".into()));
    }
    let ended = ids::now_unix_ms();
    manifest.ended_at = Some(ids::rfc3339(ended));
    manifest.duration_ms = started.elapsed().as_millis() as u64;
    manifest.recompute_totals();
    // Every task file is on disk before the results that summarise them.
    writer.finish();
    write_results(workspace, loaded, &manifest, &outputs);
    write_manifest(workspace, &manifest);
    manifest
}

fn write_manifest(workspace: &Workspace, manifest: &Manifest) {
    if let Ok(bytes) = serde_json::to_vec_pretty(manifest) {
        let _ = workspace.write(&workspace.path(crate::workspace::files::MANIFEST), &bytes);
    }
}

/// Queues a task's output file; returns its path inside the workspace.
fn write_output(
    writer: &BackgroundWriter,
    workspace: &Workspace,
    loaded: &Loaded,
    index: usize,
    output: &str,
) -> Option<String> {
    let path = workspace.task_output(&loaded.spec.tasks[index].name);
    writer.write(path.clone(), output.as_bytes().to_vec());
    path.strip_prefix(&workspace.root)
        .ok()
        .map(|p| p.display().to_string())
}

/// `intermediate/shared_data.json` and `final_results/orchestra_output.txt`.
fn write_results(
    workspace: &Workspace,
    loaded: &Loaded,
    manifest: &Manifest,
    outputs: &[Option<Arc<str>>],
) {
    let mut shared = serde_json::Map::new();
    // Manifest rows are in plan order.
    for (record, &index) in manifest.tasks.iter().zip(&loaded.plan.order) {
        if let Some(output) = &outputs[index] {
            shared.insert(
                record.name.clone(),
                serde_json::json!({
                    "agent": record.agent,
                    "status": record.status.as_str(),
                    "provider": record.provider,
                    "model": record.model,
                    "tokens_in": record.tokens_in,
                    "tokens_out": record.tokens_out,
                    "duration_ms": record.duration_ms,
                    "output": &**output,
                }),
            );
        }
    }
    let document = serde_json::json!({
        "run_id": manifest.run_id,
        "goal": manifest.goal,
        "tasks": shared,
    });
    if let Ok(bytes) = serde_json::to_vec_pretty(&document) {
        let _ = workspace.write(&workspace.path(SHARED_DATA), &bytes);
    }
    let sinks = loaded.plan.sinks();
    let finished: Vec<usize> = sinks
        .iter()
        .copied()
        .filter(|&i| outputs[i].is_some())
        .collect();
    let text = match finished.as_slice() {
        [] => None,
        [only] if sinks.len() == 1 => outputs[*only].as_deref().map(str::to_string),
        several => Some(
            several
                .iter()
                .filter_map(|&i| {
                    let task = &loaded.spec.tasks[i];
                    outputs[i]
                        .as_deref()
                        .map(|o| format!("## {} ({})\n\n{}\n", task.name, task.agent, o.trim_end()))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    if let Some(text) = text {
        let _ = workspace.write(&workspace.path(FINAL_OUTPUT), text.as_bytes());
    }
}

async fn run_task(
    shared: &Shared<'_>,
    index: usize,
    request: ChatRequest,
    mut record: TaskRecord,
) -> TaskOutcome {
    let loaded = shared.loaded;
    let config = shared.config;
    let task = &loaded.spec.tasks[index];
    let choice: &ModelChoice = &loaded.models[index];
    let attempts = attempts_for(loaded, index);
    let timeout = Duration::from_secs(effective_timeout_seconds(
        loaded,
        config.default_timeout_seconds,
        index,
    ));
    let mut backoff = Backoff::new(loaded.spec.execution.retry_strategy, config.retry_base);
    let rate = &loaded.spec.execution.rate_limits;
    let limiter = shared.limits.limiter(
        &choice.endpoint,
        choice.rpm.or(rate.rpm),
        choice.tpm.or(rate.tpm),
    );
    let key = record.cache_key.clone().unwrap_or_default();
    let started = Instant::now();
    let estimated_input = estimate_tokens(&request.system) + estimate_tokens(&request.user);
    let name = task.name.to_string();
    let events = shared.events.clone();
    let token_name = name.clone();
    let sink = move |text: &str| {
        let _ = events.send(RunEvent::Token {
            name: token_name.clone(),
            text: text.to_string(),
        });
    };

    let finish = |mut record: TaskRecord, output: Option<String>, budget_stop: Option<String>| {
        record.duration_ms = started.elapsed().as_millis() as u64;
        record.status = if output.is_some() {
            TaskStatus::Succeeded
        } else if budget_stop.is_some() {
            TaskStatus::Skipped
        } else {
            TaskStatus::Failed
        };
        TaskOutcome {
            index,
            record,
            output,
            budget_stop,
        }
    };

    for attempt in 1..=attempts {
        let estimated_cost = config.pricing.cost(
            choice,
            crate::provider::Usage {
                input_tokens: estimated_input,
                output_tokens: 0,
            },
        );
        if let Err(reason) = shared
            .budget
            .try_start_call(estimated_input, estimated_cost)
        {
            record.reason = Some(reason.clone());
            return finish(record, None, Some(reason));
        }
        let attempt_started_unix = ids::now_unix_ms();
        let attempt_started = Instant::now();
        let rate_wait = if config.replay.is_some() {
            Duration::ZERO
        } else {
            limiter.acquire(estimated_input).await
        };
        let call_started = Instant::now();
        let call = async {
            if let Some(replayer) = &config.replay {
                return replayer.answer(&key, &name, &request);
            }
            shared
                .providers
                .complete(&choice.endpoint, &request, &sink)
                .await
        };
        let remaining = timeout.saturating_sub(rate_wait);
        let result = match tokio::time::timeout(remaining, call).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::new(
                ErrorKind::Timeout,
                format!(
                    "timed out after {}s (the call was cancelled)",
                    timeout.as_secs()
                ),
            )),
        };
        let provider_ms = call_started.elapsed().as_millis() as u64;
        let mut attempt_record = AttemptRecord {
            number: attempt,
            started_unix_ms: attempt_started_unix,
            duration_ms: attempt_started.elapsed().as_millis() as u64,
            provider_ms,
            rate_wait_ms: rate_wait.as_millis() as u64,
            ..AttemptRecord::default()
        };
        match result {
            Ok(response) => {
                limiter.observe(&response.rate);
                limiter.settle_tokens(estimated_input, response.usage.total());
                let cost = config.pricing.cost(choice, response.usage);
                shared.budget.record(response.usage, cost);
                attempt_record.ok = true;
                attempt_record.tokens_in = response.usage.input_tokens;
                attempt_record.tokens_out = response.usage.output_tokens;
                record.attempts.push(attempt_record);
                record.tokens_in += response.usage.input_tokens;
                record.tokens_out += response.usage.output_tokens;
                record.cost_usd += cost;
                if let Some(recorder) = &config.record {
                    let _ = recorder.append(&Recording {
                        key: key.clone(),
                        task: name.clone(),
                        provider: choice.endpoint.provider.clone(),
                        request: request.clone(),
                        response: response.clone(),
                    });
                }
                return finish(record, Some(response.text), None);
            }
            Err(error) => {
                if error.kind == ErrorKind::Status(429) {
                    // Without a Retry-After, pause the endpoint for one base delay.
                    limiter.back_off(error.retry_after.unwrap_or(config.retry_base));
                }
                limiter.observe(&error.rate);
                attempt_record.error = Some(error.to_string());
                if let ErrorKind::Status(code) = error.kind {
                    attempt_record.http_status = Some(code);
                }
                let more = attempt < attempts
                    && error.is_retryable()
                    && !shared.draining.load(Ordering::SeqCst);
                let delay = more.then(|| backoff.next_delay(error.retry_after));
                attempt_record.retry_in_ms = delay.map(|d| d.as_millis() as u64);
                record.attempts.push(attempt_record);
                let _ = shared.events.send(RunEvent::AttemptFailed {
                    name: name.clone(),
                    attempt,
                    attempts,
                    error: error.to_string(),
                    retry_in: delay,
                });
                match delay {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        let why = if !error.is_retryable() || attempt == attempts {
                            error.to_string()
                        } else {
                            format!("{error} (not retried: the run is stopping)")
                        };
                        record.reason = Some(why);
                        return finish(record, None, None);
                    }
                }
            }
        }
    }
    record.reason = Some("no attempts were made".into());
    finish(record, None, None)
}
