//! `orchestra run`: resolve the arguments once into `RunSettings`, load and check, then either
//! print the plan (`--dry-run`) or run it: lock the workspace, file the previous run under
//! `history/`, execute, write metrics, trace and the manifest, and map the outcome to an exit
//! code.

use super::{
    env_lookup, Context, Failure, Outcome, EXIT_FAILED, EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_OK,
    EXIT_TERMINATED, EXIT_USAGE,
};
use crate::cli::{RunArgs, StrategyArg};
use crate::config::{Config, OutputMode};
use crate::exec::budget::PriceTable;
use crate::exec::{execute, Interrupt, RunEvent, RunInputs};
use crate::load::{load_orchestra, LoadOptions, Loaded};
use crate::plan::PlanOptions;
use crate::provider::record::{RecordFile, Replayer};
use crate::provider::{CallMode, ModelOverrides, Providers};
use crate::report::{human::HumanReporter, json::JsonReporter, Reporter};
use crate::settings::{BudgetFlags, CallLimits, Reuse, RunSettings, Source};
use crate::spec::Strategy;
use crate::workspace::{Manifest, RunStatus, Workspace, WorkspaceLock, WriteError};
use std::sync::Arc;

fn strategy(arg: StrategyArg) -> Strategy {
    match arg {
        StrategyArg::Sequential => Strategy::Sequential,
        StrategyArg::Parallel => Strategy::Parallel,
        StrategyArg::Mixed => Strategy::Mixed,
        StrategyArg::Hierarchical => Strategy::Hierarchical,
    }
}

/// `--resume`, `--from TASK` (checked against the tasks), `--no-cache`, or a fresh run.
fn reuse(args: &RunArgs, loaded: &Loaded) -> Result<Reuse, Failure> {
    if args.no_cache {
        return Ok(Reuse::Off);
    }
    if args.resume {
        return Ok(Reuse::Resume);
    }
    let Some(from) = &args.from else {
        return Ok(Reuse::Fresh);
    };
    task_index(loaded, "--from", from).map(Reuse::From)
}

/// The task a flag (`--from`, `--task`) names, or a usage error with the closest name.
pub(crate) fn task_index(loaded: &Loaded, flag: &str, name: &str) -> Result<usize, Failure> {
    match loaded.spec.task_index(name.trim()) {
        Some(index) => Ok(index),
        None => {
            let names: Vec<&str> = loaded.spec.tasks.iter().map(|t| t.name.as_str()).collect();
            let hint = match crate::diag::did_you_mean(name, names.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("tasks are: {}", names.join(", ")),
            };
            Err(Failure::usage(format!("`{flag} {name}`: no task has this name")).hint(hint))
        }
    }
}

/// Everything the run needs from the arguments, the environment and the file, resolved once.
pub fn settings(
    args: &RunArgs,
    loaded: &Loaded,
    goal: &str,
    config: &Config,
) -> Result<RunSettings, Failure> {
    Ok(resolve_settings(
        loaded,
        goal,
        reuse(args, loaded)?,
        args.keep_going,
        &BudgetFlags {
            max_tokens: args.max_tokens,
            max_cost_usd: args.max_cost_usd,
            max_llm_calls: args.max_llm_calls,
            max_wall_seconds: args.max_wall_seconds,
            max_tool_calls: args.max_tool_calls,
        },
        args.timeout,
        config,
    ))
}

/// The settings of a run (or of one task run alone) from what the command was given.
pub(crate) fn resolve_settings(
    loaded: &Loaded,
    goal: &str,
    reuse: Reuse,
    keep_going: bool,
    flags: &BudgetFlags,
    timeout: Option<u64>,
    config: &Config,
) -> RunSettings {
    let value = |s: &Option<crate::config::Setting<u64>>| s.as_ref().map(|s| s.value);
    let number = |s: &Option<crate::config::Setting<f64>>| s.as_ref().map(|s| s.value);
    let defaults = BudgetFlags {
        max_tokens: value(&config.max_tokens),
        max_cost_usd: number(&config.max_cost_usd),
        max_llm_calls: value(&config.max_llm_calls),
        max_wall_seconds: number(&config.max_wall_seconds),
        max_tool_calls: value(&config.max_tool_calls),
    };
    let timeout = timeout
        .map(|s| (s, Source::Flag))
        .or_else(|| config.timeout.as_ref().map(|s| (s.value, Source::Config)));
    RunSettings {
        goal: goal.trim().to_string(),
        reuse,
        keep_going,
        budget: crate::settings::budget(&loaded.spec.execution.budget, flags, &defaults),
        pricing: PriceTable::new(loaded.spec.pricing.clone()),
        limits: CallLimits::from_env(&env_lookup),
        checkpoint_interval: crate::settings::CHECKPOINT_INTERVAL,
        writer: crate::workspace::WriterKind::Threads,
        tasks: RunSettings::tasks_of(loaded, timeout),
        config: config
            .entries()
            .into_iter()
            .map(|(key, value, origin)| (key, value, origin.position()))
            .collect(),
    }
}

/// The config files around `project` (and the user's). Their warnings are printed; an error
/// ends the command (exit 2) after printing every problem.
pub(crate) fn load_config(
    context: &Context,
    project: Option<&crate::project::Project>,
) -> Result<Config, Failure> {
    let mut diags = crate::diag::Diagnostics::default();
    let config = Config::load(project.map(|p| p.root.as_path()), &env_lookup, &mut diags);
    context.print_diagnostics(&diags);
    if diags.has_errors() {
        return Err(Failure::usage("a config file is invalid; nothing was run")
            .hint("fix it, or see what is read with `super config show`"));
    }
    Ok(config)
}

/// The workspace: `--workspace`, else the file's `workspace.path` relative to the project root
/// (or the orchestra's folder outside a project). A refused one is printed as a diagnostic and
/// `Err` holds the exit code.
pub(crate) fn workspace_of(
    context: &Context,
    project: Option<&crate::project::Project>,
    path: &std::path::Path,
    loaded: &Loaded,
    flag: Option<&std::path::Path>,
) -> Result<Workspace, u8> {
    let base = project.map(|p| p.root.clone()).unwrap_or_else(|| {
        path.parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    });
    match crate::workspace::resolve_root(&base, &loaded.spec, flag) {
        Ok(root) => Ok(Workspace::new(root)),
        Err(diagnostic) => {
            context.print_diagnostics(&crate::diag::Diagnostics {
                items: vec![diagnostic],
            });
            Err(EXIT_USAGE)
        }
    }
}

pub fn run(context: &Context, args: &RunArgs) -> Outcome {
    let goal = super::given::goal(&args.goal)?;
    let given = super::given::inputs(context, &args.inputs)?;
    let otlp = crate::telemetry::otlp::config(args.telemetry.otlp_endpoint.as_deref(), &env_lookup)
        .map_err(Failure::usage)?;
    let (path, project) = context.orchestra(&args.orchestra)?;
    let config = load_config(context, project.as_ref())?;
    // The config's `output` applies when no flag chooses how the run reports.
    let mode_flag = args.json || args.verbose > 0 || args.quiet || args.print;
    let mode = config
        .output
        .as_ref()
        .map(|s| s.value)
        .filter(|_| !mode_flag);
    let args = &RunArgs {
        json: args.json || mode == Some(OutputMode::Json),
        verbose: args
            .verbose
            .max(u8::from(mode == Some(OutputMode::Verbose))),
        quiet: args.quiet || mode == Some(OutputMode::Quiet),
        threads: args.threads.or(config.threads.as_ref().map(|s| s.value)),
        ..args.clone()
    };
    let options = LoadOptions {
        strict: args.strict,
        plan: PlanOptions {
            strategy: args.strategy.map(strategy),
            max_parallel: args.max_parallel.map(|n| n as usize),
        },
        overrides: ModelOverrides {
            seed: args.seed,
            ..args.model.overrides()
        },
        // A replayed run needs neither keys nor a model: nothing is called.
        check_environment: args.replay.is_none(),
        model_download_offered: !args.dry_run,
        inputs: given,
        require_inputs: true,
        defaults: config.model_defaults(),
    };
    let loaded = match load_orchestra(project.as_ref(), &path, &options, &env_lookup) {
        Ok(loaded) => loaded,
        Err(diags) => {
            if args.json {
                JsonReporter::new(None).emit(
                    serde_json::json!({"event": "invalid", "orchestra": crate::source::display_path(&path), "diagnostics": diags.to_json()}),
                );
            } else {
                context.print_diagnostics(&diags);
                eprintln!(
                    "❌ {} is invalid; nothing was run",
                    crate::source::display_path(&path)
                );
            }
            return Ok(EXIT_USAGE);
        }
    };
    if !args.json {
        context.print_diagnostics(&loaded.warnings);
        if args.verbose > 0 {
            // `--print` keeps stdout for the result alone.
            let mut line = super::orchestra::valid_line(&loaded, &path);
            line.push('\n');
            line.push_str(&tier_line(&loaded));
            if args.print {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        let on_kubernetes =
            loaded.spec.orchestration_type.as_deref().map(str::trim) == Some("kubernetes");
        if on_kubernetes && !args.dry_run {
            eprintln!(
                "ℹ️  orchestration_type `kubernetes`: this run stays on this machine; to run it on the cluster, `super orchestra export {} --target argo -o wf.yaml` (see docs/kubernetes.md)",
                loaded.spec.id
            );
        }
    }
    if loaded.spec.tasks.is_empty() {
        return Err(Failure::usage(format!("orchestra `{}` has no tasks; nothing to run", loaded.spec.id))
            .hint("pull agents with `super agent pull NAME` and recreate it with `super orchestra create --force`"));
    }
    let settings = settings(args, &loaded, &goal, &config)?;
    set_threads(args.threads);

    if args.dry_run {
        // Only tasks on the embedded model are counted with its tokenizer.
        let uses_local = settings
            .tasks
            .iter()
            .any(|t| t.model.endpoint.protocol == crate::provider::Protocol::Local);
        let counter = uses_local
            .then(crate::provider::local::PromptCounter::load)
            .flatten();
        if args.json {
            let mut event = super::dry_run::plan_json(&loaded, &settings, counter.as_ref());
            event["event"] = serde_json::json!("dry_run");
            event["warnings"] = serde_json::json!(loaded.warnings.to_json());
            JsonReporter::new(None).emit(event);
        } else {
            print!(
                "{}",
                super::dry_run::render(&loaded, &settings, counter.as_ref())
            );
        }
        return Ok(EXIT_OK);
    }
    let uses_local = settings
        .tasks
        .iter()
        .any(|t| t.model.endpoint.protocol == crate::provider::Protocol::Local);
    if uses_local && args.replay.is_none() && crate::provider::local::unavailable_reason().is_some()
    {
        super::model::ensure_model(args.yes)?;
    }
    let (mode, replayer) = call_mode(args.replay.as_deref(), args.record.as_deref())?;

    let workspace = match workspace_of(
        context,
        project.as_ref(),
        &path,
        &loaded,
        args.workspace.as_deref(),
    ) {
        Ok(workspace) => workspace,
        Err(code) => return Ok(code),
    };
    crate::workspace::files::redact_writes(crate::redact::Redactor::for_models(&loaded.models));
    let lock =
        WorkspaceLock::acquire(&workspace.root).map_err(|e| Failure::refused(e.to_string()))?;
    if let Some(pid) = lock.taken_over_from {
        tracing::info!(
            pid,
            "workspace lock taken over from a process no longer running"
        );
        eprintln!("warning: took over the workspace lock left by process {pid}, which is no longer running");
    }
    let archived = workspace.archive_previous().map_err(|e| {
        Failure::refused(format!(
            "failed to move the previous run into `history/`: {e}"
        ))
    })?;
    workspace.create_layout().map_err(|e| {
        Failure::refused(format!(
            "failed to create the workspace `{}`: {e}",
            workspace.root.display()
        ))
    })?;

    let run_id = crate::exec::ids::run_id();
    // The run's spans: trace.jsonl as each ends, and the OTLP export when an endpoint is set.
    let telemetry = crate::telemetry::start_run(crate::telemetry::RunTrace {
        run_id: &run_id,
        file: loaded
            .spec
            .execution
            .enable_trace
            .then(|| workspace.path(crate::workspace::files::TRACE)),
        otlp,
        content: args.telemetry.trace_content,
        redactor: crate::redact::Redactor::for_models(&loaded.models),
    })
    .map_err(Failure::refused)?;
    let providers = Providers::new(
        mode,
        settings.limits.max_reply_bytes,
        crate::redact::Redactor::for_models(&loaded.models),
    )
    .map_err(Failure::refused)?;
    // Every consumer at once: with `--json` (stdout is data) the human lines go to stderr,
    // when a person watches it (a terminal) and not under `--quiet`.
    let human = |to_stderr: bool| {
        // Bars only on a terminal, and not with --quiet or --verbose (whose tokens stream);
        // NO_COLOR keeps them (it is about colour, and the bars have none).
        let progress = context.stderr_terminal && !args.quiet && args.verbose == 0;
        // The summary goes to stdout, or to stderr under --print and beside --json.
        let colour = if to_stderr {
            context.color
        } else {
            context.color_stdout
        };
        let human = HumanReporter::new(args.verbose > 0, args.quiet, progress)
            .with_redactor(crate::redact::Redactor::for_models(&loaded.models))
            .full_table(args.table == crate::cli::TableArg::Full)
            .coloured(colour);
        if to_stderr {
            human.printing_result()
        } else {
            human
        }
    };
    let mut reporter = if args.json {
        Reporter::json(
            run_id.clone(),
            (context.stderr_terminal && !args.quiet).then(|| human(true)),
        )
    } else {
        Reporter::human(human(args.print))
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::refused(format!("failed to start the async runtime: {e}")))?;
    // Every MCP server the run's tasks may use, started once before the first task.
    // A replay runs no tool: no server starts, the recording answers every call.
    let mut mcp = if replayer.is_some() {
        None
    } else {
        start_mcp(&runtime, &loaded, &loaded.spec.tasks)?
    };
    let provider_for = |endpoint: &crate::provider::Endpoint| providers.for_endpoint(endpoint);
    let hierarchy = match (&loaded.manager, loaded.plan.strategy) {
        (Some(manager), Strategy::Hierarchical) => crate::exec::manager::Hierarchy::new(
            &loaded,
            &settings,
            providers.for_endpoint(&manager.model.endpoint),
            &workspace,
        ),
        _ => None,
    };
    let inputs = RunInputs {
        loaded: &loaded,
        settings: &settings,
        workspace: &workspace,
        provider_for: &provider_for,
        run_id: run_id.clone(),
        archived_previous: archived,
        mcp: mcp.as_ref(),
        replay: replayer.clone(),
        hierarchy: hierarchy.as_ref(),
    };
    // The exit code of the first stopping signal: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.
    let stopped_by = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let run_span = crate::telemetry::spans::run(
        loaded.spec.id.as_str(),
        &run_id,
        loaded.plan.strategy.as_str(),
    );
    let mut manifest = runtime.block_on(tracing::Instrument::instrument(
        async {
            let (interrupt_sender, mut interrupts) = tokio::sync::mpsc::unbounded_channel();
            // SIGTERM and SIGHUP are handled like Ctrl-C: the first drains and saves, the next
            // aborts. Registered before the run starts, so none of them kills it unsaved.
            use tokio::signal::unix::{signal, SignalKind};
            let mut terminate = signal(SignalKind::terminate()).ok();
            let mut hangup = signal(SignalKind::hangup()).ok();
            let stopped = std::sync::Arc::clone(&stopped_by);
            let watcher = tokio::spawn(async move {
                // A stream that cannot deliver waits for ever rather than reporting a signal.
                async fn next(stream: &mut Option<tokio::signal::unix::Signal>) {
                    let delivered = match stream {
                        Some(stream) => stream.recv().await.is_some(),
                        None => false,
                    };
                    if !delivered {
                        std::future::pending::<()>().await;
                    }
                }
                for interrupt in [Interrupt::Drain, Interrupt::Abort] {
                    let ctrl_c = async {
                        if tokio::signal::ctrl_c().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    };
                    let code = tokio::select! {
                        () = ctrl_c => EXIT_INTERRUPTED,
                        () = next(&mut terminate) => EXIT_TERMINATED,
                        () = next(&mut hangup) => EXIT_HANGUP,
                    };
                    let _ = stopped.compare_exchange(
                        0,
                        code,
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                    );
                    let _ = interrupt_sender.send(interrupt);
                }
            });
            let manifest = execute(&inputs, &mut interrupts, None, &mut |event| {
                telemetry.observe(event);
                reporter.report(event)
            })
            .await;
            watcher.abort();
            manifest
        },
        run_span.clone(),
    ));
    drop(inputs);
    if let Some(sessions) = mcp.as_mut() {
        runtime.block_on(sessions.shutdown());
    }
    drop(runtime);
    crate::telemetry::spans::end_run(
        &run_span,
        manifest.status.as_str(),
        manifest.stop_reason.as_deref(),
    );
    drop(run_span);
    // Bounded: a dead collector delays the exit a few seconds at most, and only warns.
    let ended = telemetry.finish();
    if let Some(warning) = &ended.warning {
        eprintln!("{warning}");
    }
    if let Some(error) = ended.file_error {
        manifest.status = RunStatus::Failed;
        manifest.stop_reason = Some(format!("the trace could not be written: {error}"));
    }

    let failures = write_run_files(&workspace, &loaded, &mut manifest, false);
    let status = manifest.status;
    reporter.report(&RunEvent::RunFinished {
        manifest: Box::new(manifest),
    });
    // `--print`: the final result, whole, is all stdout carries; failing to give it fails the run.
    let mut print_failed = false;
    if args.print && status == RunStatus::Succeeded && failures.is_empty() {
        if let Err(error) = print_result(&workspace) {
            eprintln!("error: {error}");
            print_failed = true;
        }
    }
    for failure in &failures {
        eprintln!("error: {failure}");
    }
    drop(lock);
    // A run stopped by a signal exits with that signal's code, even if its tasks all ended.
    let signal_code = stopped_by.load(std::sync::atomic::Ordering::SeqCst);
    Ok(match status {
        _ if signal_code != 0 => signal_code,
        _ if !failures.is_empty() || print_failed => EXIT_FAILED,
        RunStatus::Succeeded => EXIT_OK,
        RunStatus::Interrupted => EXIT_INTERRUPTED,
        RunStatus::Failed | RunStatus::Running => EXIT_FAILED,
    })
}

/// `metrics.json` and, when `derive_trace` (a run assembled from records, whose spans were not
/// written live), `trace.jsonl` (when enabled), then the final `run.json`. A failed write
/// fails the run: the manifest says so when it can still be written.
pub(crate) fn write_run_files(
    workspace: &Workspace,
    loaded: &Loaded,
    manifest: &mut Manifest,
    derive_trace: bool,
) -> Vec<WriteError> {
    let write = |relative: &str, bytes: Result<Vec<u8>, serde_json::Error>| {
        let path = workspace.path(relative);
        bytes
            .map_err(std::io::Error::other)
            .and_then(|bytes| workspace.write(&path, &bytes))
            .err()
            .map(|source| WriteError { path, source })
    };
    let mut failures = Vec::new();
    if loaded.spec.execution.enable_metrics {
        failures.extend(write(
            crate::workspace::files::METRICS,
            serde_json::to_vec_pretty(&crate::report::files::metrics(manifest)),
        ));
    }
    if loaded.spec.execution.enable_trace && derive_trace {
        failures.extend(write(
            crate::workspace::files::TRACE,
            Ok(crate::report::files::trace(manifest).into_bytes()),
        ));
    }
    if !failures.is_empty() && manifest.status == RunStatus::Succeeded {
        manifest.status = RunStatus::Failed;
        let text: Vec<String> = failures.iter().map(ToString::to_string).collect();
        manifest.stop_reason = Some(format!(
            "the run's files could not be written: {}",
            text.join("; ")
        ));
    }
    failures.extend(write(
        crate::workspace::files::MANIFEST,
        serde_json::to_vec_pretty(&*manifest),
    ));
    failures
}

/// The MCP servers `tasks` may use, started once; `None` when they use none.
pub(crate) fn start_mcp(
    runtime: &tokio::runtime::Runtime,
    loaded: &Loaded,
    tasks: &[crate::spec::TaskSpec],
) -> Result<Option<crate::tools::McpSessions>, Failure> {
    let servers = crate::tools::run_servers(
        tasks
            .iter()
            .filter_map(|task| {
                let agent = loaded.agents.get(&task.agent)?;
                Some(crate::tools::resolve_task_tools(agent, &loaded.spec, task))
            })
            .collect::<Vec<_>>()
            .iter(),
    );
    if servers.is_empty() {
        return Ok(None);
    }
    runtime
        .block_on(crate::tools::McpSessions::start(&servers))
        .map(Some)
        .map_err(|e| Failure::refused(e.to_string()))
}

/// The embedded model's thread count; must be set before any thread pool starts.
pub(crate) fn set_threads(threads: Option<usize>) {
    #[cfg(feature = "local")]
    super_local::set_threads(threads.unwrap_or_else(super_local::default_threads));
    #[cfg(not(feature = "local"))]
    let _ = threads;
}

/// Where calls go under `--replay FILE` / `--record FILE` (and the recording a replay reads).
pub(crate) fn call_mode(
    replay: Option<&std::path::Path>,
    record: Option<&std::path::Path>,
) -> Result<(CallMode, Option<Arc<Replayer>>), Failure> {
    if let Some(file) = replay {
        let recording = Arc::new(Replayer::open(file).map_err(|e| Failure::usage(e.to_string()))?);
        return Ok((CallMode::Replay(Arc::clone(&recording)), Some(recording)));
    }
    let mode = match record {
        Some(file) => CallMode::Record(Arc::new(RecordFile::create(file).map_err(|e| {
            Failure::usage(format!(
                "failed to create the recording `{}`: {e}",
                file.display()
            ))
        })?)),
        None => CallMode::Live,
    };
    Ok((mode, None))
}

/// The seed's "tier validation results": each agent's tier from its playbook, and the features
/// of the file that SuperOptiX reserves for higher tiers, all of which run here.
fn tier_line(loaded: &Loaded) -> String {
    let tiers: Vec<String> = loaded
        .agents
        .values()
        .map(|a| format!("{} ({})", a.name, a.level.as_deref().unwrap_or("no level")))
        .collect();
    let mut reserved = Vec::new();
    let strategy = loaded.plan.strategy;
    if strategy != Strategy::Sequential {
        reserved.push(format!("strategy `{}`", strategy.as_str()));
    }
    if loaded.spec.execution.max_parallel_tasks > 1 {
        reserved.push(format!(
            "max_parallel_tasks {}",
            loaded.spec.execution.max_parallel_tasks
        ));
    }
    if let Some(kind) = loaded
        .spec
        .orchestration_type
        .as_deref()
        .filter(|k| *k != "local")
    {
        reserved.push(format!("orchestration_type `{kind}`"));
    }
    let features = if reserved.is_empty() {
        "no feature reserved for higher tiers".to_string()
    } else {
        format!(
            "{} (reserved for higher tiers in SuperOptiX; available here)",
            reserved.join(", ")
        )
    };
    format!(
        "🏷️  Tier validation: agents {}; {features}",
        tiers.join(", ")
    )
}

/// Writes `final_results/orchestra_output.txt` to stdout, whole.
fn print_result(workspace: &Workspace) -> Result<(), String> {
    use std::io::Write as _;
    let path = workspace.path(crate::workspace::files::FINAL_OUTPUT);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("failed to read the final result `{}`: {e}", path.display()))?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                stdout.write_all(b"\n")
            }
        })
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("failed to print the final result: {e}"))
}
