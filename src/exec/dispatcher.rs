//! The dispatcher: the one owner of a run's state. It starts ready tasks (the scheduler picks
//! them: priority, phases, concurrency), each as a future that reuses a cached output or runs
//! the task executor, then persists the task's files (its durable record before its output)
//! and only then counts it finished. It accepts new tasks while running (a manager agent's
//! work), reacts to Ctrl-C and SIGTERM (first: drain and save; second: abort), checkpoints
//! `run.json`, and writes the run's results at the end. It emits `RunEvent`s and never prints;
//! file I/O runs on the writer thread or the blocking pool, never on the runtime's thread.

use super::budget::Budget;
use super::cache::{sha256_hex, task_key, CacheEntry, TaskCache};
use super::events::{PlannedTask, RunEvent};
use super::executor::{Executor, TaskJob, TaskOutcome};
use super::ids;
use super::ratelimit::RateLimits;
use super::scheduler::Scheduler;
use crate::load::Loaded;
use crate::names::TaskName;
use crate::prompt::{self, ContextOutput};
use crate::provider::{ChatProvider, Endpoint, Message};
use crate::settings::{Reuse, RunSettings, TaskSettings};
use crate::spec::TaskSpec;
use crate::workspace::files::{FINAL_OUTPUT, SHARED_DATA};
use crate::workspace::{
    BackgroundWriter, Manifest, RunStatus, TaskRecord, TaskStatus, Workspace, WriteError,
    MANIFEST_SCHEMA_VERSION,
};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Ctrl-C (or SIGTERM/SIGHUP) as the dispatcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Stop starting tasks, let running ones end.
    Drain,
    /// Stop now.
    Abort,
}

/// Picks the provider of an endpoint (the run's `Providers`, or a test's fake).
pub type ProviderFor<'a> = &'a (dyn Fn(&Endpoint) -> Arc<dyn ChatProvider> + Sync);

/// What a run is made of.
pub struct RunInputs<'a> {
    pub loaded: &'a Loaded,
    pub settings: &'a RunSettings,
    pub workspace: &'a Workspace,
    pub provider_for: ProviderFor<'a>,
    pub run_id: String,
    pub archived_previous: Option<String>,
    /// The run's MCP servers, started before the first task.
    pub mcp: Option<&'a crate::tools::McpSessions>,
    /// Under `--replay`: tool calls are answered from this recording, never run.
    pub replay: Option<Arc<crate::provider::record::Replayer>>,
    /// The hierarchical strategy's manager: it plans before the first task, reviews each
    /// output and writes the final answer.
    pub hierarchy: Option<&'a super::manager::Hierarchy>,
}

/// A task added while the run goes on. Its `context` names existing tasks; its agent must be
/// one of the orchestra's.
pub struct NewTask {
    pub spec: TaskSpec,
    pub settings: TaskSettings,
    /// The index it got, or why it was refused (a taken name, an unknown task or agent).
    pub reply: oneshot::Sender<Result<usize, String>>,
}

/// The run's tasks: the declared ones, then any added while running.
struct TaskTable<'a> {
    loaded: &'a Loaded,
    settings: &'a [TaskSettings],
    added: Vec<(TaskSpec, TaskSettings, Vec<usize>)>,
    by_name: HashMap<TaskName, usize>,
}

impl TaskTable<'_> {
    fn spec(&self, index: usize) -> &TaskSpec {
        let declared = self.loaded.spec.tasks.len();
        match index.checked_sub(declared) {
            None => &self.loaded.spec.tasks[index],
            Some(extra) => &self.added[extra].0,
        }
    }

    fn settings(&self, index: usize) -> &TaskSettings {
        let declared = self.loaded.spec.tasks.len();
        match index.checked_sub(declared) {
            None => &self.settings[index],
            Some(extra) => &self.added[extra].1,
        }
    }

    fn context(&self, index: usize) -> &[usize] {
        let declared = self.loaded.spec.tasks.len();
        match index.checked_sub(declared) {
            None => &self.loaded.plan.context[index],
            Some(extra) => &self.added[extra].2,
        }
    }
}

/// A run's manifest as it starts: no task yet, status running.
pub(crate) fn new_manifest(
    loaded: &Loaded,
    run_id: &str,
    goal: &str,
    workspace: &Workspace,
    started_unix_ms: u64,
) -> Manifest {
    Manifest {
        schema_version: MANIFEST_SCHEMA_VERSION,
        run_id: run_id.to_string(),
        goal: goal.to_string(),
        inputs: loaded.inputs.clone(),
        orchestra: crate::workspace::manifest::OrchestraRef {
            id: loaded.spec.id.to_string(),
            name: loaded.spec.name.clone(),
            file: loaded.spec.file.path.display().to_string(),
            sha256: sha256_hex(loaded.spec.file.text.as_bytes()),
        },
        workspace: workspace.root.display().to_string(),
        strategy: loaded.plan.strategy.as_str().to_string(),
        started_at: ids::rfc3339(started_unix_ms),
        started_unix_ms,
        ended_at: None,
        duration_ms: 0,
        status: RunStatus::Running,
        stop_reason: None,
        tasks: Vec::new(),
        manager: None,
        totals: Default::default(),
    }
}

/// A task's record before it starts.
pub(crate) fn new_record(task: &TaskSpec, settings: &TaskSettings) -> TaskRecord {
    TaskRecord::pending(
        task.name.as_str(),
        task.agent.as_str(),
        &settings.model.endpoint.provider,
        &settings.model.model,
    )
}

/// The request a task sends, built from its context tasks' outputs.
pub fn build_request(
    loaded: &Loaded,
    task: &TaskSpec,
    settings: &TaskSettings,
    context: &[usize],
    tasks: &dyn Fn(usize) -> (String, String),
    goal: &str,
    outputs: &[Option<Arc<str>>],
) -> crate::provider::ChatRequest {
    let names: Vec<(String, String)> = context.iter().map(|&j| tasks(j)).collect();
    let context: Vec<ContextOutput<'_>> = context
        .iter()
        .zip(&names)
        .filter_map(|(&j, (name, agent))| {
            let output = outputs.get(j)?.as_deref()?;
            Some(ContextOutput {
                task: name,
                agent,
                output,
            })
        })
        .collect();
    // `{task}` and `{task.field}` in the description: the declared tasks' outputs (each such
    // task is a prerequisite, so it has finished).
    let by_name = |name: &str| -> Option<String> {
        let index = loaded
            .spec
            .tasks
            .iter()
            .position(|t| t.name.as_str() == name)?;
        outputs.get(index)?.as_deref().map(str::to_string)
    };
    match loaded.agents.get(&task.agent) {
        Some(agent) => prompt::chat_request(
            agent,
            task,
            settings,
            goal,
            &loaded.inputs,
            &context,
            &by_name,
        ),
        // Agents are checked at load time and for added tasks; this is only a safe fallback.
        None => crate::provider::ChatRequest::new(
            settings.model.model.clone(),
            String::new(),
            prompt::user_message(task, goal, &loaded.inputs, &context, &by_name),
        ),
    }
}

/// What a task is built from: its context tasks' outputs (by task index, `None` where absent)
/// and their hashes.
pub(crate) struct TaskInputs<'a> {
    pub loaded: &'a Loaded,
    pub task: &'a TaskSpec,
    pub settings: &'a TaskSettings,
    pub context: &'a [usize],
    /// A task's name and agent, by index.
    pub names: &'a dyn Fn(usize) -> (String, String),
    pub goal: &'a str,
    pub outputs: &'a [Option<Arc<str>>],
    pub output_hashes: &'a [String],
}

/// What a task sends, the tools it is offered, and the key of its inputs.
pub(crate) struct Prepared {
    pub request: crate::provider::ChatRequest,
    pub toolbox: super::executor::TaskToolbox,
    pub key: String,
}

/// The request (with the tools' definitions), the toolbox and the input key of a task: the
/// same for a task of a local run and for one run alone by `run-task`.
pub(crate) fn prepare(
    inputs: &TaskInputs<'_>,
    workspace: &Workspace,
    mcp: Option<&crate::tools::McpSessions>,
    replay: Option<&Arc<crate::provider::record::Replayer>>,
) -> Prepared {
    let mut request = build_request(
        inputs.loaded,
        inputs.task,
        inputs.settings,
        inputs.context,
        inputs.names,
        inputs.goal,
        inputs.outputs,
    );
    let toolbox = toolbox(inputs.loaded, inputs.task, workspace, mcp, replay);
    request.tools = toolbox
        .tools
        .iter()
        .map(|t| {
            let d = t.definition();
            crate::provider::ToolDefinition {
                name: d.name.clone(),
                description: d.description.clone(),
                parameters: d.parameters.clone(),
            }
        })
        .collect();
    let context_hashes: Vec<String> = inputs
        .context
        .iter()
        .map(|&j| inputs.output_hashes.get(j).cloned().unwrap_or_default())
        .collect();
    let key = task_key(
        &inputs.settings.model,
        &request,
        inputs.task.expected_output.as_deref(),
        &context_hashes,
        &crate::inputs::values_used(&inputs.loaded.spec, inputs.task, &inputs.loaded.inputs),
    );
    Prepared {
        request,
        toolbox,
        key,
    }
}

/// What a task's future hands back.
struct Finished {
    index: usize,
    outcome: TaskOutcome,
}

/// Everything a task future borrows from the run.
struct RunShared<'a> {
    executor: Executor<'a>,
    cache: TaskCache,
    writer: BackgroundWriter,
    workspace: &'a Workspace,
    store: bool,
    hierarchy: Option<&'a super::manager::Hierarchy>,
}

impl RunShared<'_> {
    /// Reuses a cached output or runs the task, then writes its files; a write failure fails
    /// the task.
    #[allow(clippy::too_many_arguments)]
    async fn run_task(
        &self,
        index: usize,
        spec: TaskSpec,
        job: TaskJob,
        reusable: bool,
        key: String,
        number: usize,
        total: usize,
    ) -> Finished {
        let name = job.record.name.clone();
        let task = spec.name.clone();
        let output_path = self.workspace.task_output(&task);
        if reusable {
            let cache = self.cache.clone();
            let lookup_key = key.clone();
            let entry = tokio::task::spawn_blocking(move || cache.get(&lookup_key))
                .await
                .ok()
                .flatten();
            if let Some(entry) = entry {
                tracing::debug!(task = %name, key = %key, "cache hit: the task's output is reused");
                let _ = self.executor.events.send(RunEvent::TaskReused {
                    name: name.clone(),
                    agent: job.record.agent.clone(),
                    number,
                    total,
                });
                let mut record = job.record;
                record.status = TaskStatus::Cached;
                record.started_unix_ms = Some(ids::now_unix_ms());
                // A structured task's cached output is its validated object.
                let json = job
                    .settings
                    .output_schema
                    .as_ref()
                    .and_then(|_| serde_json::from_str(&entry.output).ok());
                let bytes = entry.output.as_bytes().to_vec();
                let mut files = vec![(output_path.clone(), bytes.clone())];
                if json.is_some() {
                    files.push((self.workspace.task_output_json(&task), bytes));
                }
                let mut output = Some(entry.output);
                match self.writer.write(files).wait().await {
                    Ok(()) => record.output_file = relative(self.workspace, &output_path),
                    Err(error) => {
                        record.status = TaskStatus::Failed;
                        record.reason = Some(error.to_string());
                        output = None;
                    }
                }
                return Finished {
                    index,
                    outcome: TaskOutcome {
                        record,
                        output,
                        json,
                        last_invalid_reply: None,
                        budget_stop: None,
                        retryable: false,
                    },
                };
            }
        }
        let _ = self.executor.events.send(RunEvent::TaskStarted {
            name: name.clone(),
            agent: job.record.agent.clone(),
            model: job.settings.model.label(),
            number,
            total,
            tools: job.tools.summary.clone(),
        });
        let prompt_written = self.writer.write(vec![(
            self.workspace.task_prompt(&task),
            prompt::render_request(&name, &job.request).into_bytes(),
        )]);
        let again = self.hierarchy.map(|_| {
            (
                job.request.clone(),
                job.settings.clone(),
                Arc::clone(&job.provider),
                Arc::clone(&job.limiter),
                job.tools.clone(),
            )
        });
        // Boxed (as the reviews below): the task's future holds only the step it is in.
        let mut outcome = Box::pin(self.executor.run(job)).await;
        if let (Some(manager), Some(again)) = (self.hierarchy.filter(|m| m.reviews()), again) {
            // The output is durable before the manager reviews it: a run killed during the
            // review resumes without running the task again.
            if let (Some(text), true) = (&outcome.output, self.store) {
                let entry = cache_entry(key.clone(), &outcome.record, text);
                // Best effort: the same entry is written (and a failure reported) once the
                // reviews end; this early copy only spares a re-run after a kill mid-review.
                if let Ok(line) = self.cache.journal_line(&entry) {
                    let _ = self
                        .writer
                        .write_recorded(Some(line), Vec::new())
                        .wait()
                        .await;
                }
            }
            outcome = Box::pin(self.reviewed(manager, &spec, again, outcome)).await;
        }
        let mut problems: Vec<WriteError> = Vec::new();
        if let Err(error) = prompt_written.wait().await {
            problems.push(error);
        }
        // The durable record first: an output on disk always has its record.
        let mut line = None;
        if let (Some(text), true) = (&outcome.output, self.store) {
            let entry = cache_entry(key, &outcome.record, text);
            match self.cache.journal_line(&entry) {
                Ok(record) => line = Some(record),
                Err(error) => problems.push(error),
            }
        }
        let files = outcome_files(self.workspace, &task, &outcome);
        if line.is_some() || !files.is_empty() {
            match self.writer.write_recorded(line, files).wait().await {
                Ok(()) if outcome.output.is_some() => {
                    outcome.record.output_file = relative(self.workspace, &output_path)
                }
                Ok(()) => {}
                Err(error) => problems.push(error),
            }
        }
        fail_on_writes(&mut outcome, &problems);
        Finished { index, outcome }
    }

    /// The manager's reviews of a task's output: each `revise` it may give keeps the output as
    /// `<task>_output.<round>.txt` and runs the task again with the feedback; a revision that
    /// fails leaves the earlier output standing.
    async fn reviewed(
        &self,
        manager: &super::manager::Hierarchy,
        spec: &TaskSpec,
        again: (
            crate::provider::ChatRequest,
            TaskSettings,
            Arc<dyn ChatProvider>,
            Arc<super::ratelimit::Limiter>,
            super::executor::TaskToolbox,
        ),
        mut outcome: TaskOutcome,
    ) -> TaskOutcome {
        let (mut request, settings, provider, limiter, tools) = again;
        let mut round = 1u32;
        while let Some(text) = outcome.output.clone() {
            let verdict = manager.review(&self.executor, spec, &text, round).await;
            let _ = self.executor.events.send(RunEvent::Reviewed {
                name: spec.name.to_string(),
                round,
                verdict: match &verdict {
                    super::manager::Verdict::Accept => "accept".into(),
                    super::manager::Verdict::Revise(_) => "revise".into(),
                },
            });
            let super::manager::Verdict::Revise(feedback) = verdict else {
                break;
            };
            let kept = self
                .workspace
                .path(crate::workspace::files::TASK_OUTPUTS)
                .join(format!("{}_output.{round}.txt", spec.name));
            if let Err(error) = self
                .writer
                .write(vec![(kept, text.clone().into_bytes())])
                .wait()
                .await
            {
                outcome.record.reason = Some(error.to_string());
            }
            request.messages.push(Message::assistant(text, Vec::new()));
            request.messages.push(Message::user(format!(
                "Your manager reviewed this answer and asks for a revision: {feedback}\nGive your whole revised answer."
            )));
            let mut record = outcome.record.clone();
            record.status = TaskStatus::Running;
            let revised = self
                .executor
                .run(TaskJob {
                    request: request.clone(),
                    settings: settings.clone(),
                    provider: Arc::clone(&provider),
                    limiter: Arc::clone(&limiter),
                    record,
                    tools: tools.clone(),
                })
                .await;
            if revised.output.is_none() {
                // The earlier output stands; the failed revision's attempts stay on record.
                outcome.record.attempts = revised.record.attempts;
                break;
            }
            outcome = revised;
            round += 1;
        }
        outcome
    }
}

/// The durable record of a task's output, under the key of its inputs.
fn cache_entry(key: String, record: &TaskRecord, output: &str) -> CacheEntry {
    CacheEntry {
        key,
        task: record.name.clone(),
        provider: record.provider.clone(),
        model: record.model.clone(),
        output: output.to_string(),
        usage: crate::provider::Usage {
            input_tokens: record.tokens_in,
            output_tokens: record.tokens_out,
        },
    }
}

/// A task whose files could not be written failed, whatever it answered: the reason names
/// each file and the OS error.
pub(crate) fn fail_on_writes(outcome: &mut TaskOutcome, problems: &[WriteError]) {
    if problems.is_empty() {
        return;
    }
    let written: Vec<String> = problems.iter().map(ToString::to_string).collect();
    outcome.record.status = TaskStatus::Failed;
    outcome.record.output_file = None;
    outcome.record.reason = Some(match outcome.record.reason.take() {
        Some(reason) => format!("{reason}; {}", written.join("; ")),
        None => written.join("; "),
    });
    outcome.output = None;
    outcome.budget_stop = None;
    outcome.retryable = false;
}

/// The reason a run stopped, with the run's files that could not be written added to it.
pub(crate) fn with_write_failures(
    stop_reason: Option<String>,
    failures: &[WriteError],
) -> Option<String> {
    if failures.is_empty() {
        return stop_reason;
    }
    let text: Vec<String> = failures.iter().map(ToString::to_string).collect();
    let reason = format!("the run's files could not be written: {}", text.join("; "));
    Some(match stop_reason {
        Some(earlier) => format!("{earlier}; {reason}"),
        None => reason,
    })
}

/// `path` relative to the workspace root, as records name their files.
pub(crate) fn relative(workspace: &Workspace, path: &std::path::Path) -> Option<String> {
    path.strip_prefix(&workspace.root)
        .ok()
        .map(|p| p.display().to_string())
}

/// The files a task's outcome leaves in `task_outputs/`: its output (and a structured task's
/// object as `_output.json`), or, when it failed on its own, its error log, as `_error.txt` and,
/// where the seed's debugging guide tells users to look, as `_output.txt` too (headed as a
/// failure; the task's status, never this file, decides what resume and dependents do);
/// nothing when a budget stopped it.
pub(crate) fn outcome_files(
    workspace: &Workspace,
    task: &TaskName,
    outcome: &TaskOutcome,
) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    match &outcome.output {
        Some(text) => {
            let mut files = vec![(workspace.task_output(task), text.as_bytes().to_vec())];
            if outcome.json.is_some() {
                files.push((workspace.task_output_json(task), text.as_bytes().to_vec()));
            }
            files
        }
        None if outcome.budget_stop.is_none() => {
            let log = error_log(&outcome.record, outcome.last_invalid_reply.as_deref());
            vec![
                (workspace.task_error(task), log.clone().into_bytes()),
                (workspace.task_output(task), log.into_bytes()),
            ]
        }
        None => Vec::new(),
    }
}

/// How a failed task's error log begins, so nothing mistakes it for an output.
pub(crate) const FAILED_HEADING: &str = "# FAILED: task ";

/// A failed task's error log: each attempt's error, in order, then the last reply that did not
/// match the task's schema, if that is why it failed.
fn error_log(record: &TaskRecord, last_invalid_reply: Option<&str>) -> String {
    let mut text = format!(
        "{FAILED_HEADING}`{}` produced no output; this is its error log\n\n",
        record.name
    );
    if let Some(reason) = &record.reason {
        text.push_str(&format!("Reason: {reason}\n\n"));
    }
    for attempt in &record.attempts {
        text.push_str(&format!(
            "attempt {}: {}\n",
            attempt.number,
            attempt.error.as_deref().unwrap_or("ok")
        ));
    }
    if let Some(reply) = last_invalid_reply {
        text.push_str(&format!(
            "\n## The last reply (it does not match the task's output schema)\n\n{reply}\n"
        ));
    }
    text
}

pub async fn execute(
    inputs: &RunInputs<'_>,
    interrupts: &mut mpsc::UnboundedReceiver<Interrupt>,
    mut additions: Option<&mut mpsc::UnboundedReceiver<NewTask>>,
    report: &mut dyn FnMut(&RunEvent),
) -> Manifest {
    let settings = inputs.settings;
    let workspace = inputs.workspace;
    // What each running task streams also goes to its `.partial` file, for `logs --follow`.
    let partial = crate::workspace::partial::PartialLog::start(&workspace.root);
    let outer = report;
    let mut observed = |event: &RunEvent| {
        partial.observe(event);
        outer(event);
    };
    let report: &mut dyn FnMut(&RunEvent) = &mut observed;
    let (events, mut event_receiver) = mpsc::unbounded_channel();
    let budget = Budget::new(settings.budget.clone());
    let stop = CancellationToken::new();
    let limits = RateLimits::default();
    let temp = workspace.path(crate::workspace::files::TEMP);
    let shared = RunShared {
        executor: Executor {
            budget: &budget,
            pricing: &settings.pricing,
            limits: &settings.limits,
            stop: &stop,
            events: events.clone(),
        },
        cache: TaskCache::new(&workspace.path(crate::workspace::files::CACHE)),
        writer: BackgroundWriter::start(&temp, settings.writer),
        workspace,
        store: settings.reuse != Reuse::Off,
        hierarchy: inputs.hierarchy,
    };
    // Before any task appends to it: the journal's keys, for a run that reuses outputs.
    if matches!(settings.reuse, Reuse::Resume | Reuse::From(_)) {
        let cache = shared.cache.clone();
        let loaded = tokio::task::spawn_blocking(move || cache.load())
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(error) = loaded {
            tracing::warn!(
                "cannot read the task cache `{}` ({error}); tasks whose output it holds run again",
                crate::source::display_path(&shared.cache.journal())
            );
        }
    }
    // The hierarchical strategy: the manager's plan decides the tasks the workers run (the
    // declared ones when it is unusable).
    let applied = match inputs.hierarchy {
        Some(manager) => {
            manager.share_limiter(&limits, inputs.loaded.spec.execution.rate_limits);
            let applied = manager
                .plan(&shared.executor, inputs.loaded, &settings.tasks)
                .await;
            report(&RunEvent::Planned {
                manager: manager.record(),
            });
            Some(applied)
        }
        None => None,
    };
    let loaded: &Loaded = applied.as_ref().map_or(inputs.loaded, |a| &a.loaded);
    let task_settings: &[TaskSettings] = applied
        .as_ref()
        .map_or(&settings.tasks[..], |a| &a.settings[..]);
    let plan = &loaded.plan;
    let mut table = TaskTable {
        loaded,
        settings: task_settings,
        added: Vec::new(),
        by_name: loaded
            .spec
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect(),
    };

    let started = Instant::now();
    let started_unix_ms = ids::now_unix_ms();
    let mut records: Vec<TaskRecord> = (0..loaded.spec.tasks.len())
        .map(|i| new_record(table.spec(i), table.settings(i)))
        .collect();
    let mut manifest = new_manifest(
        loaded,
        &inputs.run_id,
        &settings.goal,
        workspace,
        started_unix_ms,
    );
    let mut scheduler = Scheduler::new(plan);
    // A checkpoint lends the records to the manifest (moved, not cloned), serializes it and
    // takes them back: its cost is the serialization alone, and `Pacing` spaces checkpoints so
    // that they take a small share of the dispatcher's time however large the run grows.
    let mut write_failures: Vec<WriteError> = Vec::new();
    let mut pacing = Pacing::new(settings.checkpoint_interval);
    let checkpoint_now = |manifest: &mut Manifest,
                          records: &mut [TaskRecord],
                          scheduler: &Scheduler,
                          pacing: &mut Pacing,
                          write_failures: &mut Vec<WriteError>| {
        let begun = Instant::now();
        lend_records(manifest, records, scheduler);
        manifest.duration_ms = started.elapsed().as_millis() as u64;
        manifest.manager = inputs.hierarchy.map(super::manager::Hierarchy::record);
        manifest.recompute_totals();
        if let Some(error) = checkpoint(&shared.writer, workspace, manifest) {
            write_failures.push(error);
        }
        take_back_records(manifest, records, scheduler);
        pacing.spent(begun.elapsed());
    };
    checkpoint_now(
        &mut manifest,
        &mut records,
        &scheduler,
        &mut pacing,
        &mut write_failures,
    );

    report(&RunEvent::RunStarted {
        run_id: inputs.run_id.clone(),
        orchestra: loaded.spec.id.to_string(),
        goal: settings.goal.clone(),
        inputs: loaded.inputs.clone(),
        workspace: workspace.root.clone(),
        strategy: plan.strategy.as_str().to_string(),
        tasks: plan
            .order
            .iter()
            .map(|&i| PlannedTask {
                name: loaded.spec.tasks[i].name.to_string(),
                agent: loaded.spec.tasks[i].agent.to_string(),
                model: task_settings[i].model.label(),
                depends_on: plan.deps[i]
                    .iter()
                    .map(|&j| loaded.spec.tasks[j].name.to_string())
                    .collect(),
            })
            .collect(),
        archived_previous: inputs.archived_previous.clone(),
    });

    let rerun = match settings.reuse {
        // `--from` names a declared task; under a manager's plan it may sit elsewhere.
        Reuse::From(task) => {
            let name = &inputs.loaded.spec.tasks[task].name;
            match loaded.spec.tasks.iter().position(|t| &t.name == name) {
                Some(index) => plan.downstream(index),
                None => vec![true; plan.len()],
            }
        }
        _ => vec![false; plan.len()],
    };
    let mut outputs: Vec<Option<Arc<str>>> = vec![None; plan.len()];
    let mut output_hashes: Vec<String> = vec![String::new(); plan.len()];
    let mut running: FuturesUnordered<BoxFuture<'_, Finished>> = FuturesUnordered::new();
    let mut started_count = 0usize;
    let mut stop_reason: Option<String> = None;
    let mut interrupted = false;
    let mut aborted = false;
    let mut failed_any = false;
    let mut interrupts_open = true;
    let limiters = &limits;
    let rate = loaded.spec.execution.rate_limits;

    loop {
        if stop_reason.is_none() {
            while let Some(index) = scheduler.next_ready() {
                let task = table.spec(index);
                let task_settings = table.settings(index).clone();
                let context = table.context(index).to_vec();
                let name_of = |j: usize| {
                    let t = table.spec(j);
                    (t.name.to_string(), t.agent.to_string())
                };
                let Prepared {
                    request,
                    toolbox,
                    key,
                } = prepare(
                    &TaskInputs {
                        loaded,
                        task,
                        settings: &task_settings,
                        context: &context,
                        names: &name_of,
                        goal: &settings.goal,
                        outputs: &outputs,
                        output_hashes: &output_hashes,
                    },
                    workspace,
                    inputs.mcp,
                    inputs.replay.as_ref(),
                );
                started_count += 1;
                let reusable = match settings.reuse {
                    Reuse::Resume => true,
                    Reuse::From(_) => !rerun.get(index).copied().unwrap_or(true),
                    Reuse::Fresh | Reuse::Off => false,
                };
                let record = TaskRecord {
                    status: TaskStatus::Running,
                    cache_key: Some(key.clone()),
                    started_unix_ms: Some(ids::now_unix_ms()),
                    ..records[index].clone()
                };
                records[index] = record.clone();
                let model = &task_settings.model;
                let job = TaskJob {
                    provider: (inputs.provider_for)(&model.endpoint),
                    limiter: limiters.limiter(
                        &model.endpoint,
                        model.rpm.or(rate.rpm),
                        model.tpm.or(rate.tpm),
                    ),
                    request,
                    settings: task_settings,
                    record,
                    tools: toolbox,
                };
                let total = scheduler.len();
                let span = crate::telemetry::spans::task(
                    "task",
                    task.name.as_str(),
                    task.agent.as_str(),
                    &inputs.run_id,
                );
                if let Some(plan) = inputs.hierarchy.and_then(|h| h.plan_span()) {
                    crate::telemetry::spans::set_parent(&span, plan);
                }
                let run = shared.run_task(
                    index,
                    task.clone(),
                    job,
                    reusable,
                    key,
                    started_count,
                    total,
                );
                running.push(Box::pin(async move {
                    let finished = tracing::Instrument::instrument(run, span.clone()).await;
                    crate::telemetry::spans::end_task(&span, &finished.outcome.record);
                    finished
                }));
            }
        }
        let accepting = additions.is_some() && stop_reason.is_none();
        if running.is_empty() && !accepting {
            break;
        }
        tokio::select! {
            biased;
            interrupt = interrupts.recv(), if interrupts_open => {
                match interrupt {
                    Some(Interrupt::Abort) => {
                        interrupted = true;
                        aborted = true;
                        stop.cancel();
                        stop_reason.get_or_insert_with(|| "interrupted twice: running tasks were aborted".into());
                        report(&RunEvent::Stopping { reason: "interrupted again: aborting running tasks".into() });
                        break;
                    }
                    Some(Interrupt::Drain) => {
                        interrupted = true;
                        stop.cancel();
                        stop_reason.get_or_insert_with(|| "interrupted: no new task was started".into());
                        report(&RunEvent::Stopping { reason: "interrupted: waiting for running tasks to end (interrupt again to abort)".into() });
                    }
                    // Nobody can interrupt any more.
                    None => interrupts_open = false,
                }
            }
            Some(event) = event_receiver.recv() => report(&event),
            addition = async {
                match additions.as_mut() {
                    Some(receiver) => receiver.recv().await,
                    None => std::future::pending().await,
                }
            }, if accepting => {
                match addition {
                    Some(new) => {
                        let result = add_task(&mut table, &mut scheduler, new.spec, new.settings);
                        if let Ok(index) = result {
                            records.push(new_record(table.spec(index), table.settings(index)));
                            outputs.push(None);
                            output_hashes.push(String::new());
                            if scheduler.state(index) == TaskStatus::Skipped {
                                records[index].reason = Some("depends on a task that did not finish".into());
                            }
                        }
                        let _ = new.reply.send(result);
                    }
                    // The sender is gone: no more tasks will come.
                    None => additions = None,
                }
            }
            Some(finished) = running.next() => {
                // Deliver what the task said before it ended (tokens, failed attempts).
                while let Ok(event) = event_receiver.try_recv() {
                    report(&event);
                }
                let Finished { index, outcome } = finished;
                let TaskOutcome { mut record, output, budget_stop, .. } = outcome;
                let status = record.status;
                let name = record.name.clone();
                match output {
                    Some(output) => {
                        output_hashes[index] = sha256_hex(output.as_bytes());
                        outputs[index] = Some(Arc::from(output));
                        scheduler.finish(index, status);
                        report(&RunEvent::TaskFinished { record: record.clone() });
                        records[index] = record;
                    }
                    None => {
                        if let Some(reason) = budget_stop {
                            stop_reason.get_or_insert(reason.clone());
                            stop.cancel();
                            report(&RunEvent::Stopping { reason: reason.clone() });
                            report(&RunEvent::TaskSkipped { name: name.clone(), reason: reason.clone() });
                            record.status = TaskStatus::Skipped;
                        } else {
                            failed_any = true;
                            report(&RunEvent::TaskFinished { record: record.clone() });
                        }
                        let skipped = scheduler.finish(index, record.status);
                        records[index] = record;
                        for skipped in skipped {
                            let reason = format!("depends on `{name}`, which did not finish");
                            records[skipped].reason = Some(reason.clone());
                            report(&RunEvent::TaskSkipped { name: records[skipped].name.clone(), reason });
                        }
                        if !settings.keep_going && stop_reason.is_none() {
                            stop_reason = Some(format!("task `{name}` failed; no new task was started (use --keep-going to run independent tasks)"));
                            stop.cancel();
                        }
                    }
                }
                if pacing.due() {
                    checkpoint_now(&mut manifest, &mut records, &scheduler, &mut pacing, &mut write_failures);
                }
            }
        }
    }
    drop(running);
    while let Ok(event) = event_receiver.try_recv() {
        report(&event);
    }

    // Tasks cut off by an abort, and tasks that never started.
    if aborted {
        for index in scheduler.abort_running() {
            let record = &mut records[index];
            record.reason = Some("aborted by a second interrupt".into());
            if let Some(started) = record.started_unix_ms {
                record.duration_ms = ids::now_unix_ms().saturating_sub(started);
            }
        }
    }
    for index in scheduler.close_pending() {
        let reason = format!(
            "not started: {}",
            stop_reason.as_deref().unwrap_or("the run stopped")
        );
        records[index].reason = Some(reason.clone());
        report(&RunEvent::TaskSkipped {
            name: records[index].name.clone(),
            reason,
        });
    }

    // The manager writes the final answer from the finished outputs, in the order they ran.
    let synthesis = match inputs.hierarchy {
        Some(manager) if !interrupted && !aborted => {
            let finished: Vec<(String, String, String)> = scheduler
                .order()
                .iter()
                .filter_map(|&i| {
                    let t = table.spec(i);
                    let output = outputs.get(i)?.as_deref()?;
                    Some((t.name.to_string(), t.agent.to_string(), output.to_string()))
                })
                .collect();
            manager.synthesize(&shared.executor, &finished).await
        }
        _ => None,
    };
    while let Ok(event) = event_receiver.try_recv() {
        report(&event);
    }

    // Every task file is on disk before the results that summarise them.
    let RunShared { writer, .. } = shared;
    write_failures.extend(writer.finish());
    lend_records(&mut manifest, &mut records, &scheduler);
    manifest.duration_ms = started.elapsed().as_millis() as u64;
    manifest.manager = inputs.hierarchy.map(super::manager::Hierarchy::record);
    manifest.recompute_totals();
    let sinks: Vec<usize> = run_sinks(&scheduler, &table);
    // Lent to the blocking thread and taken back (never copied: it holds every record).
    let manifest = Arc::new(manifest);
    let results = {
        let manifest = Arc::clone(&manifest);
        let names: Vec<(String, String)> = (0..scheduler.len())
            .map(|i| {
                let t = table.spec(i);
                (t.name.to_string(), t.agent.to_string())
            })
            .collect();
        let outputs = outputs.clone();
        let structured: Vec<bool> = (0..scheduler.len())
            .map(|i| table.settings(i).output_schema.is_some())
            .collect();
        let workspace = workspace.clone();
        tokio::task::spawn_blocking(move || {
            write_results(
                &workspace,
                &manifest,
                &names,
                &sinks,
                &outputs,
                &structured,
                synthesis,
            )
        })
        .await
        .unwrap_or_else(|e| {
            vec![WriteError {
                path: workspace_path(inputs.workspace, SHARED_DATA),
                source: std::io::Error::other(e.to_string()),
            }]
        })
    };
    write_failures.extend(results);
    // The blocking closure, and its reference, are gone once it returned.
    let mut manifest = Arc::try_unwrap(manifest).unwrap_or_else(|shared| (*shared).clone());

    manifest.status = if interrupted {
        RunStatus::Interrupted
    } else if failed_any || stop_reason.is_some() || !write_failures.is_empty() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    stop_reason = with_write_failures(stop_reason, &write_failures);
    if manifest.status != RunStatus::Succeeded {
        manifest.stop_reason = stop_reason.or_else(|| Some("one or more tasks failed".into()));
    }
    manifest.ended_at = Some(ids::rfc3339(ids::now_unix_ms()));
    manifest.duration_ms = started.elapsed().as_millis() as u64;
    manifest
}

fn workspace_path(workspace: &Workspace, relative: &str) -> std::path::PathBuf {
    workspace.path(relative)
}

/// The tools a task may use: its agent's, narrowed or widened by the orchestra and the task.
fn toolbox(
    loaded: &Loaded,
    task: &TaskSpec,
    workspace: &Workspace,
    mcp: Option<&crate::tools::McpSessions>,
    replay: Option<&Arc<crate::provider::record::Replayer>>,
) -> super::executor::TaskToolbox {
    let Some(agent) = loaded.agents.get(&task.agent) else {
        return Default::default();
    };
    let resolved = crate::tools::resolve_task_tools(agent, &loaded.spec, task);
    if resolved.is_empty() {
        return Default::default();
    }
    let tools = match replay {
        Some(recording) => crate::tools::replayed::replayed_tools(recording, task.name.as_str()),
        None => resolved.offer(mcp),
    };
    super::executor::TaskToolbox {
        summary: Some(match replay {
            Some(_) => format!("{} (replayed: no tool runs)", resolved.summary()),
            None => resolved.summary(),
        }),
        tools,
        settings: resolved.settings,
        context: crate::tools::ToolContext {
            workspace: workspace.root.clone(),
        },
    }
}

/// Adds a task while running, keeping names unique and references known.
fn add_task(
    table: &mut TaskTable<'_>,
    scheduler: &mut Scheduler,
    spec: TaskSpec,
    settings: TaskSettings,
) -> Result<usize, String> {
    if table.by_name.contains_key(&spec.name) {
        return Err(format!("a task named `{}` already exists", spec.name));
    }
    if !table.loaded.agents.contains_key(&spec.agent) {
        return Err(format!(
            "task `{}` names agent `{}`, which is not an agent of this orchestra",
            spec.name, spec.agent
        ));
    }
    let mut context = Vec::new();
    for reference in spec
        .context
        .iter()
        .chain(spec.dependencies.iter().map(|d| &d.task))
    {
        let Some(&j) = TaskName::parse(&reference.name)
            .ok()
            .and_then(|n| table.by_name.get(&n))
        else {
            return Err(format!(
                "task `{}` depends on unknown task `{}`",
                spec.name, reference.name
            ));
        };
        if !context.contains(&j) {
            context.push(j);
        }
    }
    let index = scheduler
        .add_task(&context, spec.priority)
        .map_err(|e| e.to_string())?;
    table.by_name.insert(spec.name.clone(), index);
    table.added.push((spec, settings, context));
    Ok(index)
}

/// The run's tasks no other task depends on, in start order.
fn run_sinks(scheduler: &Scheduler, table: &TaskTable<'_>) -> Vec<usize> {
    let prerequisites: Vec<Vec<usize>> = (0..scheduler.len())
        .map(|i| {
            let mut before = table.context(i).to_vec();
            if let Some(deps) = table.loaded.plan.deps.get(i) {
                before.extend(deps);
            }
            before
        })
        .collect();
    sinks(scheduler.order(), &prerequisites)
}

/// Tasks of `order` no task depends on (`prerequisites` by task index), in that order: the
/// tasks whose outputs make the final result.
pub(crate) fn sinks(order: &[usize], prerequisites: &[Vec<usize>]) -> Vec<usize> {
    let mut has_dependent = vec![false; prerequisites.len()];
    for before in prerequisites {
        for &j in before {
            if let Some(flag) = has_dependent.get_mut(j) {
                *flag = true;
            }
        }
    }
    order
        .iter()
        .copied()
        .filter(|&i| !has_dependent.get(i).copied().unwrap_or(false))
        .collect()
}

/// Moves every record into the manifest in the plan's order, each with its scheduler status.
fn lend_records(manifest: &mut Manifest, records: &mut [TaskRecord], scheduler: &Scheduler) {
    manifest.tasks.clear();
    manifest.tasks.reserve(scheduler.order().len());
    for &i in scheduler.order() {
        let mut record = std::mem::take(&mut records[i]);
        record.status = scheduler.state(i);
        manifest.tasks.push(record);
    }
}

/// Moves the records lent by `lend_records` back to their places.
fn take_back_records(manifest: &mut Manifest, records: &mut [TaskRecord], scheduler: &Scheduler) {
    for (record, &i) in manifest.tasks.drain(..).zip(scheduler.order()) {
        records[i] = record;
    }
}

/// When the next checkpoint may be written: no sooner than the configured interval, and no
/// sooner than `SHARE` times what the last one took, so rewriting a `run.json` that grows with
/// the run stays a bounded share of the dispatcher's time (about 1/SHARE) at any size.
pub(crate) struct Pacing {
    interval: Duration,
    gap: Duration,
    last: Instant,
}

impl Pacing {
    const SHARE: u32 = 20;

    pub(crate) fn new(interval: Duration) -> Pacing {
        Pacing {
            interval,
            gap: interval,
            last: Instant::now(),
        }
    }

    pub(crate) fn due(&self) -> bool {
        self.last.elapsed() >= self.gap
    }

    /// A checkpoint just ended, having taken `cost`.
    pub(crate) fn spent(&mut self, cost: Duration) {
        self.last = Instant::now();
        self.gap = self.interval.max(cost.saturating_mul(Self::SHARE));
    }
}

/// Queues `run.json`; a failure to queue is returned (a failure to write comes from `finish`).
fn checkpoint(
    writer: &BackgroundWriter,
    workspace: &Workspace,
    manifest: &Manifest,
) -> Option<WriteError> {
    let path = workspace.path(crate::workspace::files::MANIFEST);
    // Compact: a checkpoint is for programs (`runs`, `show`, `logs --follow`, a resume); the
    // run's last `run.json` is written indented.
    match serde_json::to_vec(manifest) {
        Ok(bytes) => writer.write_detached(path, bytes),
        Err(e) => Some(WriteError {
            path,
            source: std::io::Error::other(e),
        }),
    }
}

/// `intermediate/shared_data.json` (fields in the order the file has always had them).
#[derive(serde::Serialize)]
struct SharedData<'a> {
    goal: &'a str,
    run_id: &'a str,
    tasks: std::collections::BTreeMap<&'a str, SharedTask<'a>>,
}

#[derive(serde::Serialize)]
struct SharedTask<'a> {
    agent: &'a str,
    duration_ms: u64,
    model: &'a str,
    output: SharedOutput<'a>,
    provider: &'a str,
    status: &'static str,
    tokens_in: u64,
    tokens_out: u64,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum SharedOutput<'a> {
    Json(serde_json::Value),
    Text(&'a str),
}

/// `intermediate/shared_data.json` and `final_results/orchestra_output.txt`; returns the
/// writes that failed. `names`, `outputs` and `structured` by task index.
pub(crate) fn write_results(
    workspace: &Workspace,
    manifest: &Manifest,
    names: &[(String, String)],
    sinks: &[usize],
    outputs: &[Option<Arc<str>>],
    structured: &[bool],
    synthesis: Option<String>,
) -> Vec<WriteError> {
    let mut failures = Vec::new();
    let by_name: HashMap<&str, &TaskRecord> = manifest
        .tasks
        .iter()
        .map(|r| (r.name.as_str(), r))
        .collect();
    // Borrowed, serialized straight to bytes: a 10,000-task run builds no tree of its outputs.
    let mut tasks: std::collections::BTreeMap<&str, SharedTask<'_>> = Default::default();
    for (index, (name, _)) in names.iter().enumerate() {
        let (Some(output), Some(record)) = (&outputs[index], by_name.get(name.as_str())) else {
            continue;
        };
        // A structured task's output is its object, not a string.
        let output = structured
            .get(index)
            .copied()
            .unwrap_or(false)
            .then(|| serde_json::from_str::<serde_json::Value>(output).ok())
            .flatten()
            .map_or(SharedOutput::Text(output), SharedOutput::Json);
        tasks.insert(
            name.as_str(),
            SharedTask {
                agent: &record.agent,
                duration_ms: record.duration_ms,
                model: &record.model,
                output,
                provider: &record.provider,
                status: record.status.as_str(),
                tokens_in: record.tokens_in,
                tokens_out: record.tokens_out,
            },
        );
    }
    let document = SharedData {
        goal: &manifest.goal,
        run_id: &manifest.run_id,
        tasks,
    };
    let path = workspace.path(SHARED_DATA);
    let written = serde_json::to_vec_pretty(&document)
        .map_err(std::io::Error::other)
        .and_then(|bytes| workspace.write(&path, &bytes));
    if let Err(source) = written {
        failures.push(WriteError { path, source });
    }
    let finished: Vec<usize> = sinks
        .iter()
        .copied()
        .filter(|&i| outputs[i].is_some())
        .collect();
    let text = match finished.as_slice() {
        _ if synthesis.is_some() => synthesis,
        [] => None,
        [only] if sinks.len() == 1 => outputs[*only].as_deref().map(str::to_string),
        several => Some(
            several
                .iter()
                .filter_map(|&i| {
                    let (name, agent) = &names[i];
                    outputs[i]
                        .as_deref()
                        .map(|o| format!("## {name} ({agent})\n\n{}\n", o.trim_end()))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    if let Some(text) = text {
        let path = workspace.path(FINAL_OUTPUT);
        if let Err(source) = workspace.write(&path, text.as_bytes()) {
            failures.push(WriteError { path, source });
        }
    }
    failures
}
