//! The dispatcher and the executor driven directly, in virtual time (`tokio::time::pause`),
//! against the scripted fake provider: retries, timeouts, budgets, priorities, the parallel
//! bound, the drain on the first interrupt and tasks added while running. Fast and exact: no
//! sockets, no wall-clock windows.

use super::dispatcher::{execute, Interrupt, NewTask, RunInputs};
use super::events::RunEvent;
use crate::diag::Diagnostics;
use crate::load::Loaded;
use crate::plan::{Plan, PlanOptions};
use crate::provider::scripted::{Scripted, Step};
use crate::provider::{ChatProvider, ErrorKind, ModelOverrides, ProviderError};
use crate::settings::{CallLimits, Reuse, RunSettings};
use crate::source::SourceFile;
use crate::spec::BudgetSpec;
use crate::workspace::{Manifest, RunStatus, TaskStatus, Workspace};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PLAYBOOK: &str = "apiVersion: agent/v1\nkind: AgentSpec\nmetadata:\n  id: worker\nspec:\n  language_model:\n    provider: openai\n    model: m\n    api_base: http://127.0.0.1:9/v1\n  persona:\n    role: Worker\n  tasks:\n  - name: work\n    instruction: Work.\n";

fn loaded(orchestra: &str) -> Loaded {
    let mut diags = Diagnostics::default();
    let file = SourceFile::new(Path::new("t_orchestra.yaml"), orchestra.to_string());
    let root = crate::yaml::parse(&file).expect("yaml");
    let spec = crate::spec::decode_orchestra(&file, &root, &mut diags).expect("spec");
    let agent_file = SourceFile::new(Path::new("worker_playbook.yaml"), PLAYBOOK.to_string());
    let agent_root = crate::yaml::parse(&agent_file).expect("yaml");
    let agent =
        crate::spec::decode_agent(&agent_file, &agent_root, "worker", &mut diags).expect("agent");
    let plan = Plan::build(&spec, PlanOptions::default(), &mut diags).expect("plan");
    let choice = crate::provider::resolve(
        agent.language_model.as_ref(),
        &ModelOverrides::default(),
        &|_| None,
    )
    .expect("model");
    assert!(!diags.has_errors(), "{}", diags.render(false));
    let mut agents = BTreeMap::new();
    agents.insert(agent.name.clone(), agent);
    Loaded {
        models: vec![choice; spec.tasks.len()],
        schemas: vec![None; spec.tasks.len()],
        manager: None,
        agent_models: Default::default(),
        spec,
        agents,
        plan,
        inputs: Default::default(),
        warnings: diags,
    }
}

fn orchestra(strategy: &str, parallel: usize, tasks: &[(&str, &[&str], &str)]) -> String {
    let mut yaml = format!(
        "metadata:\n  id: t\norchestra:\n  execution:\n    strategy: {strategy}\n    max_parallel_tasks: {parallel}\n    task_timeout_seconds: 10\ntasks:\n"
    );
    for (name, context, priority) in tasks {
        yaml.push_str(&format!(
            "  - name: {name}\n    agent: worker\n    description: Do {name}.\n    priority: {priority}\n"
        ));
        if !context.is_empty() {
            yaml.push_str(&format!("    context: [{}]\n", context.join(", ")));
        }
    }
    yaml
}

fn settings(loaded: &Loaded, budget: BudgetSpec) -> RunSettings {
    RunSettings {
        goal: "the goal".into(),
        reuse: Reuse::Fresh,
        keep_going: false,
        budget,
        pricing: Default::default(),
        limits: CallLimits {
            retry_base: Duration::from_secs(1),
            max_server_wait: Duration::from_secs(600),
            max_reply_bytes: 1 << 20,
        },
        checkpoint_interval: Duration::from_millis(200),
        writer: crate::workspace::WriterKind::BlockingPool,
        tasks: RunSettings::tasks_of(loaded, None),
        config: Vec::new(),
    }
}

/// A fake that counts calls in flight.
struct Counting {
    inner: Scripted,
    now: AtomicUsize,
    max: AtomicUsize,
}

impl ChatProvider for Counting {
    fn complete<'a>(
        &'a self,
        request: &'a crate::provider::ChatRequest,
        call: crate::provider::CallContext<'a>,
    ) -> futures::future::BoxFuture<'a, Result<crate::provider::ChatResponse, ProviderError>> {
        Box::pin(async move {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
            let result = self.inner.complete(request, call).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }
}

struct Run {
    manifest: Manifest,
    events: Vec<RunEvent>,
    _dir: tempfile::TempDir,
}

async fn run_with(
    loaded: &Loaded,
    settings: &RunSettings,
    provider: Arc<dyn ChatProvider>,
    interrupts: Option<(Duration, Vec<Interrupt>)>,
    additions: Option<&mut mpsc::UnboundedReceiver<NewTask>>,
) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let workspace = Workspace::new(dir.path().join("ws"));
    workspace.create_layout().expect("layout");
    let provider_for = move |_: &crate::provider::Endpoint| Arc::clone(&provider);
    let inputs = RunInputs {
        loaded,
        settings,
        workspace: &workspace,
        provider_for: &provider_for,
        run_id: "test-run".into(),
        archived_previous: None,
        mcp: None,
        replay: None,
        hierarchy: None,
    };
    let (sender, mut receiver) = mpsc::unbounded_channel();
    if let Some((after, signals)) = interrupts {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            for signal in signals {
                let _ = sender.send(signal);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    } else {
        std::mem::forget(sender);
    }
    let mut events = Vec::new();
    let manifest = execute(&inputs, &mut receiver, additions, &mut |e| {
        events.push(e.clone())
    })
    .await;
    Run {
        manifest,
        events,
        _dir: dir,
    }
}

fn status(manifest: &Manifest, task: &str) -> TaskStatus {
    manifest
        .tasks
        .iter()
        .find(|t| t.name == task)
        .map(|t| t.status)
        .expect("task in manifest")
}

fn unavailable() -> Step {
    Step::Fail(ProviderError::new(ErrorKind::Status(503), "busy"))
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_until_the_call_succeeds() {
    let loaded = loaded(&orchestra("sequential", 1, &[("a", &[], "medium")]));
    let settings = settings(&loaded, BudgetSpec::default());
    let fake = Arc::new(Scripted::new(
        vec![unavailable(), unavailable()],
        Step::Reply("done".into()),
    ));
    let started = tokio::time::Instant::now();
    let run = run_with(&loaded, &settings, fake.clone(), None, None).await;
    assert_eq!(run.manifest.status, RunStatus::Succeeded);
    let task = &run.manifest.tasks[0];
    assert_eq!(task.attempts.len(), 3);
    assert_eq!(fake.calls(), 3);
    // Backoff with jitter: about 1 s, then about 2 s (the base doubles).
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(7),
        "{waited:?}"
    );
    assert_eq!(task.attempts[0].http_status, Some(503));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cancels_the_call_at_the_deadline() {
    let mut yaml = orchestra("sequential", 1, &[("a", &[], "medium")]);
    yaml.push_str("    timeout_seconds: 2\n    retry_count: 0\n");
    let loaded = loaded(&yaml);
    let settings = settings(&loaded, BudgetSpec::default());
    let fake = Arc::new(Scripted::new(
        vec![Step::Delay(
            Duration::from_secs(60),
            Box::new(Step::Reply("late".into())),
        )],
        Step::Reply("x".into()),
    ));
    let started = tokio::time::Instant::now();
    let run = run_with(&loaded, &settings, fake, None, None).await;
    assert_eq!(run.manifest.status, RunStatus::Failed);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2100),
        "{elapsed:?}"
    );
    let reason = run.manifest.tasks[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("timed out after 2s"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_timeout_fails_without_waiting() {
    let loaded = loaded(&orchestra("sequential", 1, &[("a", &[], "medium")]));
    let settings = settings(&loaded, BudgetSpec::default());
    let fake = Arc::new(Scripted::new(
        vec![Step::Fail(
            ProviderError::new(ErrorKind::Status(429), "slow down")
                .with_retry_after(Some(Duration::from_secs(3600))),
        )],
        Step::Reply("x".into()),
    ));
    let started = tokio::time::Instant::now();
    let run = run_with(&loaded, &settings, fake.clone(), None, None).await;
    assert_eq!(run.manifest.status, RunStatus::Failed);
    assert_eq!(fake.calls(), 1);
    assert!(started.elapsed() < Duration::from_secs(1));
    let reason = run.manifest.tasks[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("asked to wait 3600s") && reason.contains("longer than the 10s"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn call_and_token_budgets_stop_the_run_before_the_next_call() {
    let tasks: &[(&str, &[&str], &str)] = &[
        ("a", &[], "medium"),
        ("b", &["a"], "medium"),
        ("c", &["b"], "medium"),
    ];
    let loaded = loaded(&orchestra("sequential", 1, tasks));
    let budget = BudgetSpec {
        max_llm_calls: Some(2),
        ..BudgetSpec::default()
    };
    let settings = settings(&loaded, budget);
    let fake = Arc::new(Scripted::new(vec![], Step::Reply("ok".into())));
    let run = run_with(&loaded, &settings, fake.clone(), None, None).await;
    assert_eq!(fake.calls(), 2);
    assert_eq!(run.manifest.status, RunStatus::Failed);
    assert_eq!(status(&run.manifest, "c"), TaskStatus::Skipped);
    assert!(run
        .manifest
        .stop_reason
        .as_deref()
        .unwrap_or_default()
        .contains("max_llm_calls 2"));
    assert_eq!(run.manifest.totals.llm_calls, 2);

    // Tokens: each call uses 15 (10 in, 5 out); a 20-token budget allows one more prompt
    // estimate only while it fits.
    let budget = BudgetSpec {
        max_tokens: Some(20),
        ..BudgetSpec::default()
    };
    let settings = crate::exec::tests::settings(&loaded, budget);
    let fake = Arc::new(Scripted::new(vec![], Step::Reply("ok".into())));
    let run = run_with(&loaded, &settings, fake.clone(), None, None).await;
    assert_eq!(fake.calls(), 1, "the second prompt would cross max_tokens");
    assert!(run
        .manifest
        .stop_reason
        .as_deref()
        .unwrap_or_default()
        .contains("max_tokens 20"));
}

/// The cost budget at run time: each call costs what the price table says for its usage, and
/// once the spending has crossed `max_cost_usd` no call starts.
#[tokio::test(start_paused = true)]
async fn the_cost_budget_stops_the_run_before_the_call_that_would_cross_it() {
    let tasks: &[(&str, &[&str], &str)] = &[
        ("a", &[], "medium"),
        ("b", &["a"], "medium"),
        ("c", &["b"], "medium"),
    ];
    let loaded = loaded(&orchestra("sequential", 1, tasks));
    let mut settings = settings(
        &loaded,
        BudgetSpec {
            max_cost_usd: Some(0.000_008),
            ..BudgetSpec::default()
        },
    );
    // Output at $1 per million tokens, input free: each call (10 in, 5 out) costs $0.000005,
    // and no prompt estimate can stop a call by itself.
    settings.pricing = crate::exec::budget::PriceTable::new(
        [(
            "m".to_string(),
            crate::spec::Price {
                input_per_million: 0.0,
                output_per_million: 1.0,
            },
        )]
        .into_iter()
        .collect(),
    );
    let fake = Arc::new(Scripted::new(vec![], Step::Reply("ok".into())));
    let run = run_with(&loaded, &settings, fake.clone(), None, None).await;
    assert_eq!(
        fake.calls(),
        2,
        "$0.000010 spent after two calls crosses $0.000008"
    );
    assert_eq!(run.manifest.status, RunStatus::Failed);
    assert_eq!(status(&run.manifest, "b"), TaskStatus::Succeeded);
    assert_eq!(status(&run.manifest, "c"), TaskStatus::Skipped);
    assert!(run
        .manifest
        .stop_reason
        .as_deref()
        .unwrap_or_default()
        .contains("max_cost_usd"));
    assert!((run.manifest.totals.cost_usd - 0.000_010).abs() < 1e-12);
}

#[tokio::test(start_paused = true)]
async fn parallel_tasks_stay_within_the_bound_and_start_by_priority() {
    let names: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    let mut tasks: Vec<(&str, &[&str], &str)> =
        names.iter().map(|n| (n.as_str(), &[][..], "low")).collect();
    tasks[7].2 = "critical";
    tasks[4].2 = "high";
    let loaded = loaded(&orchestra("parallel", 3, &tasks));
    let settings = settings(&loaded, BudgetSpec::default());
    let fake = Arc::new(Counting {
        inner: Scripted::new(
            vec![],
            Step::Delay(
                Duration::from_millis(100),
                Box::new(Step::Reply("ok".into())),
            ),
        ),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    });
    let started = tokio::time::Instant::now();
    let run = run_with(&loaded, &settings, fake.clone(), None, None).await;
    assert_eq!(run.manifest.status, RunStatus::Succeeded);
    assert_eq!(fake.max.load(Ordering::SeqCst), 3);
    // Ten tasks of 100 ms, three at a time: four rounds.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(500),
        "{elapsed:?}"
    );
    let order: Vec<&str> = run
        .events
        .iter()
        .filter_map(|e| match e {
            RunEvent::TaskStarted { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(&order[..3], &["t7", "t4", "t0"]);
}

#[tokio::test(start_paused = true)]
async fn the_first_interrupt_drains_and_a_waiting_retry_stops() {
    let tasks: &[(&str, &[&str], &str)] = &[
        ("slow", &[], "high"),
        ("flaky", &[], "high"),
        ("later", &["slow"], "medium"),
    ];
    let loaded = loaded(&orchestra("parallel", 2, tasks));
    let settings = settings(&loaded, BudgetSpec::default());
    // `slow` takes 3 s; `flaky` fails and would wait about 1 s to retry.
    let fake = Arc::new(Scripted::new(
        vec![
            Step::Delay(
                Duration::from_secs(3),
                Box::new(Step::Reply("slow done".into())),
            ),
            unavailable(),
        ],
        Step::Reply("ok".into()),
    ));
    let run = run_with(
        &loaded,
        &settings,
        fake.clone(),
        Some((Duration::from_millis(500), vec![Interrupt::Drain])),
        None,
    )
    .await;
    assert_eq!(run.manifest.status, RunStatus::Interrupted);
    assert_eq!(
        status(&run.manifest, "slow"),
        TaskStatus::Succeeded,
        "a running task ends"
    );
    assert_eq!(
        status(&run.manifest, "flaky"),
        TaskStatus::Failed,
        "its retry wait ended"
    );
    assert_eq!(
        status(&run.manifest, "later"),
        TaskStatus::Skipped,
        "nothing new starts"
    );
    assert_eq!(fake.calls(), 2);
    let reason = run
        .manifest
        .tasks
        .iter()
        .find(|t| t.name == "flaky")
        .and_then(|t| t.reason.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("not retried: the run is stopping"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_interrupt_aborts_running_tasks() {
    let loaded = loaded(&orchestra("sequential", 1, &[("a", &[], "medium")]));
    let settings = settings(&loaded, BudgetSpec::default());
    let fake = Arc::new(Scripted::new(
        vec![Step::Delay(
            Duration::from_secs(5),
            Box::new(Step::Reply("x".into())),
        )],
        Step::Reply("x".into()),
    ));
    let started = tokio::time::Instant::now();
    let run = run_with(
        &loaded,
        &settings,
        fake,
        Some((
            Duration::from_millis(100),
            vec![Interrupt::Drain, Interrupt::Abort],
        )),
        None,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(run.manifest.status, RunStatus::Interrupted);
    assert_eq!(run.manifest.tasks[0].status, TaskStatus::Failed);
    assert!(run.manifest.tasks[0]
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("aborted"));
}

#[tokio::test(start_paused = true)]
async fn mixed_groups_run_in_order() {
    let mut yaml = orchestra(
        "mixed",
        4,
        &[
            ("a", &[], "low"),
            ("b", &[], "critical"),
            ("c", &[], "medium"),
            ("d", &[], "medium"),
        ],
    );
    yaml = yaml.replace(
        "    task_timeout_seconds: 10\n",
        "    task_timeout_seconds: 10\n    task_groups:\n      - name: first\n        tasks: [a, b]\n        execution_strategy: sequential\n      - name: second\n        tasks: [c, d]\n        execution_strategy: parallel\n",
    );
    let loaded = loaded(&yaml);
    let settings = settings(&loaded, BudgetSpec::default());
    let fake = Arc::new(Counting {
        inner: Scripted::new(
            vec![],
            Step::Delay(
                Duration::from_millis(10),
                Box::new(Step::Reply("ok".into())),
            ),
        ),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    });
    let run = run_with(&loaded, &settings, fake.clone(), None, None).await;
    assert_eq!(run.manifest.status, RunStatus::Succeeded);
    let order: Vec<&str> = run
        .events
        .iter()
        .filter_map(|e| match e {
            RunEvent::TaskStarted { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["b", "a", "c", "d"]);
    assert_eq!(
        fake.max.load(Ordering::SeqCst),
        2,
        "the second group runs in parallel"
    );
}

#[tokio::test(start_paused = true)]
async fn takes_new_tasks_while_running_and_keeps_names_unique() {
    let loaded = loaded(&orchestra("parallel", 2, &[("a", &[], "medium")]));
    let settings = settings(&loaded, BudgetSpec::default());
    let fake = Arc::new(Scripted::new(
        vec![],
        Step::Delay(
            Duration::from_millis(50),
            Box::new(Step::Reply("ok".into())),
        ),
    ));
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let task = |name: &str, context: &[&str]| {
        let yaml = orchestra("parallel", 2, &[(name, context, "medium")])
            .replace(&format!("context: [{}]", context.join(", ")), "");
        let mut spec = crate::exec::tests::loaded(&yaml).spec.tasks.remove(0);
        spec.context = context
            .iter()
            .map(|c| crate::spec::TaskRef {
                name: c.to_string(),
                loc: spec.name_loc,
            })
            .collect();
        spec
    };
    let task_settings = settings.tasks[0].clone();
    let (reply_b, answer_b) = tokio::sync::oneshot::channel();
    let (reply_dup, answer_dup) = tokio::sync::oneshot::channel();
    let (reply_bad, answer_bad) = tokio::sync::oneshot::channel();
    for (spec, reply) in [
        (task("b", &["a"]), reply_b),
        (task("a", &[]), reply_dup),
        (task("c", &["nope"]), reply_bad),
    ] {
        let _ = sender.send(NewTask {
            spec,
            settings: task_settings.clone(),
            reply,
        });
    }
    drop(sender);
    let run = run_with(&loaded, &settings, fake.clone(), None, Some(&mut receiver)).await;
    assert_eq!(answer_b.await.expect("answered"), Ok(1));
    assert!(answer_dup
        .await
        .expect("answered")
        .unwrap_err()
        .contains("already exists"));
    assert!(answer_bad
        .await
        .expect("answered")
        .unwrap_err()
        .contains("unknown task `nope`"));
    assert_eq!(run.manifest.status, RunStatus::Succeeded);
    assert_eq!(run.manifest.tasks.len(), 2);
    assert_eq!(status(&run.manifest, "b"), TaskStatus::Succeeded);
    assert_eq!(fake.calls(), 2);
    // `b` got `a`'s output as context.
    let requests = fake.requests.lock().expect("lock");
    let (_, second) = &requests[1];
    assert!(second.messages[1].content.contains("## Output of `a`"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_fails_the_task() {
    let loaded = loaded(&orchestra(
        "sequential",
        1,
        &[("a", &[], "medium"), ("b", &["a"], "medium")],
    ));
    let settings = settings(&loaded, BudgetSpec::default());
    let fake: Arc<dyn ChatProvider> = Arc::new(Scripted::new(vec![], Step::Reply("ok".into())));
    let dir = tempfile::tempdir().expect("tempdir");
    let workspace = Workspace::new(dir.path().join("ws"));
    workspace.create_layout().expect("layout");
    // `task_outputs` is a file: nothing can be written under it.
    let outputs = workspace.path(crate::workspace::files::TASK_OUTPUTS);
    std::fs::remove_dir_all(&outputs).expect("rm");
    std::fs::write(&outputs, b"not a folder").expect("write");
    let provider_for = move |_: &crate::provider::Endpoint| Arc::clone(&fake);
    let inputs = RunInputs {
        loaded: &loaded,
        settings: &settings,
        workspace: &workspace,
        provider_for: &provider_for,
        run_id: "w".into(),
        archived_previous: None,
        mcp: None,
        replay: None,
        hierarchy: None,
    };
    let (_sender, mut receiver) = mpsc::unbounded_channel();
    let manifest = execute(&inputs, &mut receiver, None, &mut |_| {}).await;
    assert_eq!(manifest.status, RunStatus::Failed);
    assert_eq!(manifest.tasks[0].status, TaskStatus::Failed);
    assert_eq!(manifest.tasks[1].status, TaskStatus::Skipped);
    let reason = manifest.tasks[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("failed to write") && reason.contains("task_outputs"),
        "{reason}"
    );
}
