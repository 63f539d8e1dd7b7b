//! `orchestra run-task` and `orchestra finish`: an orchestra run one task per process, as the
//! pods of an exported Argo Workflow run it.
//!
//! `run-task` runs one task with the prompt, provider, timeout and budgets of a local run, its
//! upstream outputs read from the workspace. It makes one attempt: the engine retries, and the
//! exit code tells it whether to (0 done, 75 worth another try, 1 not, 2 bad usage or a missing
//! upstream output). Under the task's own lock (`tasks/.<task>.lock`) it writes the task's files
//! and, last, its record `tasks/<task>.json`, each atomically through `.tmp/<task>/`: a
//! duplicate process waits and then finds the task finished, a killed one leaves no half file,
//! and no file is written by two tasks. `finish` assembles the results from the records with
//! the local run's own functions.

use super::run::{
    resolve_settings, set_threads, start_mcp, task_index, workspace_of, write_run_files,
};
use super::{
    env_lookup, Context, Failure, Outcome, EXIT_FAILED, EXIT_OK, EXIT_RETRYABLE, EXIT_USAGE,
};
use crate::cli::{FinishArgs, RunTaskArgs};
use crate::exec::budget::Budget;
use crate::exec::cache::sha256_hex;
use crate::exec::dispatcher::{
    fail_on_writes, new_manifest, new_record, outcome_files, prepare, relative, sinks,
    with_write_failures, write_results, Prepared, TaskInputs, FAILED_HEADING,
};
use crate::exec::executor::{Executor, TaskJob, TaskOutcome};
use crate::exec::ratelimit::RateLimits;
use crate::exec::{ids, RunEvent};
use crate::load::{load_orchestra, LoadOptions, Loaded};
use crate::names::TaskName;
use crate::provider::{CallMode, Providers, Usage};
use crate::redact::Redactor;
use crate::report::human::HumanReporter;
use crate::settings::{BudgetFlags, Reuse};
use crate::source::display_path;
use crate::spec::Strategy;
use crate::workspace::files::{write_atomic_in, ARTIFACTS, FINAL_RESULTS, TASKS, TASK_OUTPUTS};
use crate::workspace::{
    RunStatus, TaskFile, TaskRecord, TaskStatus, Workspace, WorkspaceLock, WriteError,
};
use std::path::Path;
use std::sync::Arc;

pub fn run_task(context: &Context, args: &RunTaskArgs) -> Outcome {
    let goal = super::given::goal(&args.goal)?;
    let given = super::given::inputs(context, &args.inputs)?;
    check_run_id(&args.run_id)?;
    let (_, project) = context.orchestra(&args.orchestra)?;
    let config = super::run::load_config(context, project.as_ref())?;
    let otlp = crate::telemetry::otlp::config(args.telemetry.otlp_endpoint.as_deref(), &env_lookup)
        .map_err(Failure::usage)?;
    let options = LoadOptions {
        strict: args.strict,
        check_environment: true,
        inputs: given,
        require_inputs: true,
        defaults: config.model_defaults(),
        ..LoadOptions::default()
    };
    let opened = open(
        context,
        &args.orchestra,
        args.workspace.as_deref(),
        &options,
        &env_lookup,
    )?;
    let (loaded, workspace) = match opened {
        Opened::Ready(loaded, workspace) => (loaded, workspace),
        Opened::Exit(code) => return Ok(code),
    };
    let index = task_index(&loaded, "--task", &args.task)?;
    let task = &loaded.spec.tasks[index];
    set_threads(args.threads.or(config.threads.as_ref().map(|s| s.value)));
    let settings = resolve_settings(
        &loaded,
        &goal,
        Reuse::Off,
        false,
        &BudgetFlags::default(),
        None,
        &config,
    );
    // One attempt per process: the engine retries (the exported retryStrategy has the task's
    // retry count and backoff), and a retry inside the pod would multiply them.
    let mut task_settings = settings.tasks[index].clone();
    task_settings.attempts = 1;

    let redactor = || Redactor::for_models(&loaded.models);
    crate::workspace::files::redact_writes(redactor());
    let temp = workspace.task_temp(&task.name);
    make_dirs(
        &[
            workspace.path(TASK_OUTPUTS),
            workspace.path(TASKS),
            temp.clone(),
        ],
        &format!("task `{}`", task.name),
    )?;

    // The outputs of the tasks it depends on (context, dependencies, field references).
    let count = loaded.spec.tasks.len();
    let mut outputs: Vec<Option<Arc<str>>> = vec![None; count];
    let mut hashes: Vec<String> = vec![String::new(); count];
    for &j in &loaded.plan.deps[index] {
        let upstream = &loaded.spec.tasks[j].name;
        let record = workspace.task_record(upstream);
        if let Ok(Some(found)) = read_task_file(&record) {
            if !found.record.status.has_output() {
                return Err(Failure::usage(format!(
                    "task `{}` needs the output of `{upstream}`, but `{upstream}` is {} in run `{}` (its record `{}`)",
                    task.name,
                    found.record.status.as_str(),
                    found.run_id,
                    display_path(&record)
                ))
                .hint(format!(
                    "read why in `{}`, then run `{upstream}` again (`super orchestra run-task ... --task {upstream}`)",
                    display_path(&workspace.task_error(upstream))
                )));
            }
        }
        let file = workspace.task_output(upstream);
        let text = read_upstream(&file, &task.name, upstream)?;
        hashes[j] = sha256_hex(text.as_bytes());
        outputs[j] = Some(Arc::from(text));
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::refused(format!("failed to start the async runtime: {e}")))?;
    let mut mcp = start_mcp(&runtime, &loaded, std::slice::from_ref(task))?;
    let inputs = TaskInputs {
        loaded: &loaded,
        task,
        settings: &task_settings,
        context: &loaded.plan.context[index],
        names: &|j| declared(&loaded, j),
        goal: &settings.goal,
        outputs: &outputs,
        output_hashes: &hashes,
    };
    let prepared: Prepared = prepare(&inputs, &workspace, mcp.as_ref(), None);
    let key = prepared.key.clone();

    // One process runs the task at a time; a duplicate waits, then finds it finished.
    let lock_path = workspace.task_lock(&task.name);
    let _lock = WorkspaceLock::wait_for(&lock_path, &mut |pid| {
        let holder = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        eprintln!(
            "⏳ Task {} is being run by another process{holder}; waiting for it to end",
            task.name
        );
    })
    .map_err(|e| Failure::refused(e.to_string()))?;
    let record_path = workspace.task_record(&task.name);
    let previous = match read_task_file(&record_path) {
        Ok(previous) => previous,
        Err(problem) => {
            eprintln!("warning: {problem}; the task runs again");
            None
        }
    };
    let same_run =
        previous.filter(|p| p.run_id == args.run_id && p.record.cache_key.as_deref() == Some(&key));
    if let Some(done) = same_run.as_ref().filter(|p| p.record.status.has_output()) {
        let output = workspace.task_output(&task.name);
        if !args.force && output.is_file() {
            shown!(
                "✅ Task {} already finished in run {} with the same inputs ({}); nothing to do (`--force` runs it again)",
                task.name,
                args.run_id,
                done.record
                    .output_file
                    .as_deref()
                    .unwrap_or(&display_path(&output))
            );
            return Ok(EXIT_OK);
        }
    }
    // Attempts of earlier processes of this run (the engine's retries) stay in the record.
    let earlier_attempts = same_run
        .filter(|p| !p.record.status.has_output())
        .map(|p| p.record)
        .unwrap_or_else(|| new_record(task, &task_settings));
    // What killed processes of this task left in its temp folder; only the lock holder writes there.
    crate::workspace::files::clear_folder(&temp).map_err(|error| {
        Failure::refused(format!(
            "task `{}`: failed to clear its temp folder `{}`: {error}",
            task.name,
            display_path(&temp)
        ))
    })?;

    let budget = budget_so_far(
        &loaded,
        &workspace,
        &settings.budget,
        index,
        &args.run_id,
        &earlier_attempts,
    );
    let providers = Providers::new(CallMode::Live, settings.limits.max_reply_bytes, redactor())
        .map_err(Failure::refused)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let executor = Executor {
        budget: &budget,
        pricing: &settings.pricing,
        limits: &settings.limits,
        stop: &stop,
        events,
    };
    let limiters = RateLimits::default();
    let model = &task_settings.model;
    let rate = loaded.spec.execution.rate_limits;
    let limiter = limiters.limiter(
        &model.endpoint,
        model.rpm.or(rate.rpm),
        model.tpm.or(rate.tpm),
    );
    let started_unix_ms = ids::now_unix_ms();
    let record = TaskRecord {
        status: TaskStatus::Running,
        cache_key: Some(key),
        started_unix_ms: Some(started_unix_ms),
        attempts: Vec::new(),
        ..new_record(task, &task_settings)
    };
    let mut reporter = HumanReporter::new(args.verbose > 0, false, false).with_redactor(redactor());
    // This process's spans join the run's trace (its id derives from the run id, or comes from
    // TRACEPARENT); `finish` assembles trace.jsonl from the records, the spans go to OTLP.
    let telemetry = crate::telemetry::start_run(crate::telemetry::RunTrace {
        run_id: &args.run_id,
        file: None,
        otlp,
        content: args.telemetry.trace_content,
        redactor: redactor(),
    })
    .map_err(Failure::refused)?;
    let run_span = crate::telemetry::spans::run(
        loaded.spec.id.as_str(),
        &args.run_id,
        loaded.plan.strategy.as_str(),
    );
    let task_span = run_span.in_scope(|| {
        crate::telemetry::spans::task(
            "task",
            task.name.as_str(),
            task.agent.as_str(),
            &args.run_id,
        )
    });
    let number = loaded.plan.position[index] + 1;
    reporter.report(&RunEvent::TaskStarted {
        name: task.name.to_string(),
        agent: task.agent.to_string(),
        model: task_settings.model.label(),
        number,
        total: count,
        tools: prepared.toolbox.summary.clone(),
    });
    let mut problems: Vec<WriteError> = Vec::new();
    let prompt = crate::prompt::render_request(task.name.as_str(), &prepared.request);
    problems.extend(write_in(
        &temp,
        &workspace.task_prompt(&task.name),
        prompt.as_bytes(),
    ));
    let job = TaskJob {
        provider: providers.for_endpoint(&model.endpoint),
        limiter,
        request: prepared.request,
        settings: task_settings.clone(),
        record,
        tools: prepared.toolbox,
    };
    let mut outcome = runtime.block_on(async {
        let run = tracing::Instrument::instrument(executor.run(job), task_span.clone());
        tokio::pin!(run);
        loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                Some(event) = receiver.recv() => reporter.report(&event),
            }
        }
    });
    while let Ok(event) = receiver.try_recv() {
        reporter.report(&event);
    }
    if let Some(sessions) = mcp.as_mut() {
        runtime.block_on(sessions.shutdown());
    }
    drop(runtime);
    crate::telemetry::spans::end_task(&task_span, &outcome.record);
    drop(task_span);
    crate::telemetry::spans::end_run(
        &run_span,
        outcome.record.status.as_str(),
        outcome.record.reason.as_deref(),
    );
    drop(run_span);
    telemetry.observe(&RunEvent::TaskFinished {
        record: outcome.record.clone(),
    });
    let ended = telemetry.finish();
    if let Some(warning) = &ended.warning {
        eprintln!("{warning}");
    }
    carry_attempts(&mut outcome.record, earlier_attempts);

    // The task's files, then its record last: a record saying "finished" always has its output.
    for (file, bytes) in outcome_files(&workspace, &task.name, &outcome) {
        problems.extend(write_in(&temp, &file, &bytes));
    }
    if outcome.output.is_some() && problems.is_empty() {
        outcome.record.output_file = relative(&workspace, &workspace.task_output(&task.name));
    }
    fail_on_writes(&mut outcome, &problems);
    let task_file = TaskFile {
        run_id: args.run_id.clone(),
        goal: settings.goal.clone(),
        inputs: loaded.inputs.clone(),
        record: outcome.record.clone(),
    };
    let record_written = serde_json::to_vec_pretty(&task_file)
        .map_err(std::io::Error::other)
        .and_then(|bytes| write_atomic_in(&temp, &record_path, &bytes));
    reporter.report(&RunEvent::TaskFinished {
        record: outcome.record.clone(),
    });
    if let Err(source) = record_written {
        let error = WriteError {
            path: record_path,
            source,
        };
        return Err(Failure::refused(format!(
            "task `{}`: its record could not be written, so it counts as not finished: {error}",
            task.name
        )));
    }
    if args.verbose > 0 {
        shown!("   record: {}", display_path(&record_path));
    }
    Ok(exit_code(&task.name, &outcome))
}

/// A declared task's name and agent.
fn declared(loaded: &Loaded, index: usize) -> (String, String) {
    let task = &loaded.spec.tasks[index];
    (task.name.to_string(), task.agent.to_string())
}

/// 0 done; 75 a failure worth another try, for the engine; 1 a failure retrying cannot fix.
fn exit_code(task: &TaskName, outcome: &TaskOutcome) -> u8 {
    if outcome.record.status.has_output() {
        EXIT_OK
    } else if outcome.retryable {
        eprintln!(
            "↻ Task {task}: the failure is worth another try; exit code {EXIT_RETRYABLE} asks the engine to run it again"
        );
        EXIT_RETRYABLE
    } else {
        EXIT_FAILED
    }
}

/// This process's attempts follow those of the earlier processes of the same run: numbered on,
/// with the tokens, cost and time of them all.
fn carry_attempts(record: &mut TaskRecord, earlier: TaskRecord) {
    if earlier.attempts.is_empty() {
        return;
    }
    let before = u32::try_from(earlier.attempts.len()).unwrap_or(u32::MAX);
    for attempt in &mut record.attempts {
        attempt.number = attempt.number.saturating_add(before);
    }
    let mut attempts = earlier.attempts;
    attempts.append(&mut record.attempts);
    record.attempts = attempts;
    if let Some(first) = earlier.started_unix_ms {
        record.started_unix_ms = Some(first);
        record.duration_ms = ids::now_unix_ms().saturating_sub(first);
    }
    record.recompute_usage();
}

/// The run's budget less what the other tasks of this run (their records) and this task's
/// earlier attempts spent, its wall time counted from the run's first task.
fn budget_so_far(
    loaded: &Loaded,
    workspace: &Workspace,
    limits: &crate::spec::BudgetSpec,
    index: usize,
    run_id: &str,
    earlier: &TaskRecord,
) -> Budget {
    let mut spent: Vec<TaskRecord> = vec![earlier.clone()];
    for (j, other) in loaded.spec.tasks.iter().enumerate() {
        if j == index {
            continue;
        }
        if let Ok(Some(file)) = read_task_file(&workspace.task_record(&other.name)) {
            if file.run_id == run_id {
                spent.push(file.record);
            }
        }
    }
    let usage = Usage {
        input_tokens: spent.iter().map(|r| r.tokens_in).sum(),
        output_tokens: spent.iter().map(|r| r.tokens_out).sum(),
    };
    let calls = spent.iter().map(TaskRecord::calls).sum();
    let cost = spent.iter().map(|r| r.cost_usd).sum();
    let elapsed = spent
        .iter()
        .filter_map(|r| r.started_unix_ms)
        .min()
        .map(|first| ids::now_unix_ms().saturating_sub(first))
        .unwrap_or(0);
    let tool_calls = spent
        .iter()
        .flat_map(|r| &r.attempts)
        .map(|a| a.tool_calls.len() as u64)
        .sum();
    Budget::continuing(
        limits.clone(),
        calls,
        tool_calls,
        usage,
        cost,
        std::time::Duration::from_millis(elapsed),
    )
}

/// An upstream task's output; missing, it is a usage error (exit 2) naming the task and path.
fn read_upstream(file: &Path, task: &TaskName, upstream: &TaskName) -> Result<String, Failure> {
    match std::fs::read(file) {
        Ok(bytes) if bytes.starts_with(FAILED_HEADING.as_bytes()) => Err(Failure::usage(format!(
            "task `{task}` needs the output of `{upstream}`, but `{}` is the error log of its failed run",
            display_path(file)
        ))
        .hint(format!(
            "run `{upstream}` again first (`super orchestra run-task ... --task {upstream}`)"
        ))),
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| {
            Failure::refused(format!(
                "task `{task}`: the output of `{upstream}`, `{}`, is not UTF-8 text (byte {})",
                display_path(file),
                e.utf8_error().valid_up_to()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(Failure::usage(format!(
            "task `{task}` needs the output of `{upstream}`, but `{}` does not exist",
            display_path(file)
        ))
        .hint(format!(
            "run `{upstream}` first (`super orchestra run-task ... --task {upstream}`); in a Workflow it runs before `{task}`"
        ))),
        Err(error) => Err(Failure::refused(format!(
            "task `{task}`: failed to read the output of `{upstream}`, `{}`: {error}",
            display_path(file)
        ))),
    }
}

/// A record of `tasks/`; `Ok(None)` when there is none.
fn read_task_file(path: &Path) -> Result<Option<TaskFile>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("`{}` is not a task record: {e}", display_path(path))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("failed to read `{}`: {error}", display_path(path))),
    }
}

/// Writes `path` atomically with its temp file in `temp`.
fn write_in(temp: &Path, path: &Path, bytes: &[u8]) -> Option<WriteError> {
    write_atomic_in(temp, path, bytes)
        .err()
        .map(|source| WriteError {
            path: path.to_path_buf(),
            source,
        })
}

/// The run id names the run in records and `run.json`: it must be a plain name.
fn check_run_id(run_id: &str) -> Result<(), Failure> {
    match crate::names::unsafe_reason(run_id) {
        None => Ok(()),
        Some(reason) => Err(
            Failure::usage(format!("`--run-id {run_id}` is refused: {reason}"))
                .hint("use letters, digits, `-` and `_`, such as the Workflow's name"),
        ),
    }
}

/// A hierarchical orchestra decides its tasks while it runs: it runs whole, in one process.
fn refuse_hierarchical(loaded: &Loaded) -> Result<(), Failure> {
    if loaded.plan.strategy == Strategy::Hierarchical {
        return Err(Failure::usage(format!(
            "orchestra `{}` uses strategy `hierarchical`, whose tasks are decided at run time; it cannot run task by task",
            loaded.spec.id
        ))
        .hint("run it whole with `super orchestra run` (its export is one pod doing that)"));
    }
    Ok(())
}

/// An orchestra loaded with its workspace, or the exit code of a problem already printed (an
/// invalid orchestra, a refused workspace).
enum Opened {
    Ready(Box<Loaded>, Workspace),
    Exit(u8),
}

/// Loads the orchestra (its diagnostics printed) and resolves its workspace; a hierarchical
/// orchestra is refused.
fn open(
    context: &Context,
    orchestra: &str,
    workspace_flag: Option<&Path>,
    options: &LoadOptions,
    env: crate::provider::endpoint::EnvLookup<'_>,
) -> Result<Opened, Failure> {
    let (path, project) = context.orchestra(orchestra)?;
    let loaded = match load_orchestra(project.as_ref(), &path, options, env) {
        Ok(loaded) => loaded,
        Err(diags) => {
            context.print_diagnostics(&diags);
            eprintln!("❌ {} is invalid; nothing was run", display_path(&path));
            return Ok(Opened::Exit(EXIT_USAGE));
        }
    };
    context.print_diagnostics(&loaded.warnings);
    refuse_hierarchical(&loaded)?;
    Ok(
        match workspace_of(context, project.as_ref(), &path, &loaded, workspace_flag) {
            Ok(workspace) => Opened::Ready(Box::new(loaded), workspace),
            Err(code) => Opened::Exit(code),
        },
    )
}

/// Creates the folders a command writes into; a failure names the folder and `what` it is for.
fn make_dirs(dirs: &[std::path::PathBuf], what: &str) -> Result<(), Failure> {
    for dir in dirs {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::refused(format!(
                "failed to create `{}` for {what}: {e}",
                display_path(dir)
            ))
        })?;
    }
    Ok(())
}

pub fn finish(context: &Context, args: &FinishArgs) -> Outcome {
    check_run_id(&args.run_id)?;
    // Nothing is called: no key is needed, none is read.
    let opened = open(
        context,
        &args.orchestra,
        args.workspace.as_deref(),
        &LoadOptions::default(),
        &crate::export::placeholder_env,
    )?;
    let (loaded, workspace) = match opened {
        Opened::Ready(loaded, workspace) => (loaded, workspace),
        Opened::Exit(code) => return Ok(code),
    };
    let _lock =
        WorkspaceLock::acquire(&workspace.root).map_err(|e| Failure::refused(e.to_string()))?;
    let dirs = [FINAL_RESULTS, ARTIFACTS, crate::workspace::files::TEMP].map(|d| workspace.path(d));
    make_dirs(&dirs, &format!("run `{}`", args.run_id))?;

    let tasks = &loaded.spec.tasks;
    let mut goal: Option<String> = None;
    let mut inputs: Option<crate::inputs::InputValues> = None;
    let mut outputs: Vec<Option<Arc<str>>> = vec![None; tasks.len()];
    let mut records: Vec<TaskRecord> = Vec::with_capacity(tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        let file = workspace.task_record(&task.name);
        let shown = display_path(&file);
        let mut record = match read_task_file(&file) {
            Ok(Some(found)) if found.run_id == args.run_id => {
                goal.get_or_insert(found.goal);
                inputs.get_or_insert(found.inputs);
                found.record
            }
            Ok(Some(found)) => not_run(
                i,
                &loaded,
                format!(
                    "its record `{shown}` belongs to run `{}`, not `{}`",
                    found.run_id, args.run_id
                ),
            ),
            Ok(None) => not_run(
                i,
                &loaded,
                format!("no record `{shown}`: it did not run in this run"),
            ),
            Err(problem) => not_run(i, &loaded, problem),
        };
        if record.status.has_output() {
            let output = workspace.task_output(&task.name);
            match std::fs::read_to_string(&output) {
                Ok(text) => outputs[i] = Some(Arc::from(text)),
                Err(error) => {
                    record.status = TaskStatus::Failed;
                    record.output_file = None;
                    record.reason = Some(format!(
                        "its record says it finished, but its output `{}` cannot be read: {error}",
                        display_path(&output)
                    ));
                }
            }
        }
        records.push(record);
    }

    let now = ids::now_unix_ms();
    let started = records
        .iter()
        .filter_map(|r| r.started_unix_ms)
        .min()
        .unwrap_or(now);
    let mut manifest = new_manifest(
        &loaded,
        &args.run_id,
        goal.as_deref().unwrap_or_default(),
        &workspace,
        started,
    );
    if let Some(inputs) = inputs {
        manifest.inputs = inputs;
    }
    manifest.tasks = loaded
        .plan
        .order
        .iter()
        .map(|&i| records[i].clone())
        .collect();
    manifest.recompute_totals();
    let unfinished: Vec<&str> = manifest
        .tasks
        .iter()
        .filter(|r| !r.status.has_output())
        .map(|r| r.name.as_str())
        .collect();
    let stop_reason = (!unfinished.is_empty()).then(|| {
        format!(
            "not finished in run `{}`: {}",
            args.run_id,
            unfinished.join(", ")
        )
    });

    let names: Vec<(String, String)> = (0..tasks.len()).map(|i| declared(&loaded, i)).collect();
    let json: Vec<bool> = loaded.schemas.iter().map(Option::is_some).collect();
    let leaves = sinks(&loaded.plan.order, &loaded.plan.deps);
    // No manager: the final result is the leaves' outputs, as in a local run.
    let mut failures = write_results(
        &workspace, &manifest, &names, &leaves, &outputs, &json, None,
    );
    let stop_reason = with_write_failures(stop_reason, &failures);
    manifest.status = if stop_reason.is_none() {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    manifest.stop_reason = stop_reason;
    manifest.ended_at = Some(ids::rfc3339(now));
    manifest.duration_ms = now.saturating_sub(started);
    failures.extend(write_run_files(&workspace, &loaded, &mut manifest, true));
    let status = manifest.status;
    HumanReporter::new(false, false, false).report(&RunEvent::RunFinished {
        manifest: Box::new(manifest),
    });
    for failure in &failures {
        eprintln!("error: {failure}");
    }
    Ok(if status == RunStatus::Succeeded && failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// The record of a task that has no finished record of this run.
fn not_run(index: usize, loaded: &Loaded, reason: String) -> TaskRecord {
    let settings = crate::settings::task_settings(loaded, index, None);
    TaskRecord {
        status: TaskStatus::Skipped,
        reason: Some(reason),
        ..new_record(&loaded.spec.tasks[index], &settings)
    }
}
