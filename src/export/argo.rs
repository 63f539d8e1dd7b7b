//! An orchestra as an Argo Workflow (or WorkflowTemplate): a DAG with one pod per task running
//! `super orchestra run-task`, ordered by `context`, `dependencies` and the mixed strategy's
//! groups, then a `finish` pod after every leaf. Retries only on the retryable exit code, with
//! the file's backoff; each pod's deadline from its task's timeout. The hierarchical strategy,
//! decided at run time, becomes one pod running the whole orchestra. Shapes JSON only.

use super::keys::KeyScan;
use super::kube_names::{dns_label, unique, MAX_LABEL};
use super::pod;
use super::settings::{
    ExportSettings, WorkspaceSpec, RETRYABLE_EXIT_CODE, STARTUP_MARGIN_SECONDS, WORKSPACE_MOUNT,
};
use crate::load::Loaded;
use crate::plan::Plan;
use crate::spec::orchestra::DEFAULT_TASK_TIMEOUT_SECONDS;
use crate::spec::{RetryStrategy, Strategy};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The DAG template, and the entry point of a per-task export.
const DAG_TEMPLATE: &str = "orchestra";
/// The one template of a whole-run export.
const RUN_TEMPLATE: &str = "run";
const FINISH: &str = "finish";
const GOAL: &str = "{{workflow.parameters.goal}}";
const RUN_ID: &str = "{{workflow.name}}";
/// The first retry waits this long; later ones `factor` times the one before (the local
/// run's exponential schedule starts at one second too, but a pod takes seconds to start).
const BACKOFF_SECONDS: u64 = 5;
const BACKOFF_FACTOR: u64 = 2;
/// The finish step only reads and writes files.
const FINISH_DEADLINE_SECONDS: u64 = 600;

/// Everything the Workflow is built from, resolved by the caller.
pub(crate) struct ArgoInput<'a> {
    pub loaded: &'a Loaded,
    pub settings: &'a ExportSettings,
    pub keys: &'a KeyScan,
    pub labels: &'a Map<String, Value>,
    pub annotations: &'a Map<String, Value>,
    pub project_volume: Value,
}

/// The Workflow (or WorkflowTemplate) document.
pub(crate) fn workflow(input: &ArgoInput<'_>) -> Value {
    let loaded = input.loaded;
    let settings = input.settings;
    let id = loaded.spec.id.as_str();
    let env = pod::key_env(&input.keys.variables, &settings.secret);

    let mut goal = json!({
        "name": "goal",
        "description": "What the orchestra should achieve (fills {goal} in task descriptions)",
    });
    if let Some(value) = &settings.goal {
        goal["value"] = json!(value);
    }
    // One parameter per input, its value the given one or the declared default (none: it must
    // be given at submit time, `argo submit -p NAME=...`); every pod passes them as `--var`.
    let mut parameters = vec![goal];
    for declared in &loaded.spec.inputs {
        let mut parameter = json!({"name": declared.name});
        if let Some(description) = &declared.description {
            parameter["description"] = json!(description);
        }
        if let Some(value) = loaded.inputs.get(&declared.name) {
            parameter["value"] = json!(value);
        }
        parameters.push(parameter);
    }

    let (entrypoint, templates, concurrency) = if loaded.plan.strategy == Strategy::Hierarchical {
        let template = json!({
            "name": RUN_TEMPLATE,
            "container": pod::container(
                None,
                &settings.image,
                [pod::run_args(id, GOAL, &[]), input_args(loaded)].concat(),
                &env,
                loaded.spec.resources.as_ref().and_then(pod::resources),
                pod::mounts(sub_path(settings)),
            ),
        });
        (RUN_TEMPLATE, vec![template], 1)
    } else {
        (
            DAG_TEMPLATE,
            per_task_templates(input, &env),
            concurrency(loaded),
        )
    };

    let mut volumes = vec![input.project_volume.clone()];
    let mut spec = json!({
        "entrypoint": entrypoint,
        "arguments": {"parameters": parameters},
        "parallelism": concurrency,
        "securityContext": pod::security_context(),
        "podMetadata": {"labels": input.labels},
        "templates": templates,
    });
    match &settings.workspace {
        WorkspaceSpec::NewClaim { size } => {
            spec["volumeClaimTemplates"] = json!([{
                "metadata": {"name": "workspace"},
                "spec": pod::claim_spec(size, "ReadWriteMany"),
            }]);
            // A failed run keeps its workspace for inspection.
            spec["volumeClaimGC"] = json!({"strategy": "OnWorkflowSuccess"});
        }
        WorkspaceSpec::ExistingClaim { name } => {
            volumes
                .push(json!({"name": "workspace", "persistentVolumeClaim": {"claimName": name}}));
        }
        WorkspaceSpec::Artifacts => {
            volumes.push(json!({"name": "workspace", "emptyDir": {}}));
        }
    }
    spec["volumes"] = json!(volumes);
    if let Some(seconds) = settings.max_wall_seconds {
        spec["activeDeadlineSeconds"] = json!(seconds);
    }

    let name = dns_label(id, MAX_LABEL - 6);
    let mut metadata = json!({"labels": input.labels, "annotations": input.annotations});
    if settings.template {
        metadata["name"] = json!(name);
    } else {
        metadata["generateName"] = json!(format!("{name}-"));
    }
    if let Some(namespace) = &settings.namespace {
        metadata["namespace"] = json!(namespace);
    }
    let kind = if settings.template {
        "WorkflowTemplate"
    } else {
        "Workflow"
    };
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    })
}

/// `--var NAME={{workflow.parameters.NAME}}` for each input.
fn input_args(loaded: &Loaded) -> Vec<String> {
    let pairs: Vec<(String, String)> = loaded
        .spec
        .inputs
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                format!("{{{{workflow.parameters.{}}}}}", i.name),
            )
        })
        .collect();
    pod::var_args(&pairs)
}

/// With an existing claim, each run works in its own folder of it.
fn sub_path(settings: &ExportSettings) -> Option<&'static str> {
    matches!(settings.workspace, WorkspaceSpec::ExistingClaim { .. }).then_some(RUN_ID)
}

/// How many task pods may run at once: the widest phase, capped by `replicas`.
fn concurrency(loaded: &Loaded) -> u64 {
    let widest = loaded
        .plan
        .phases
        .iter()
        .map(|phase| phase.concurrency.min(phase.tasks.len().max(1)))
        .max()
        .unwrap_or(1) as u64;
    match loaded.spec.replicas {
        Some(replicas) if replicas >= 1 => widest.min(replicas),
        _ => widest,
    }
    .max(1)
}

/// What each task waits for in the DAG: its `context` and `dependencies`, every task of the
/// previous group (mixed), and the task before it in a phase that runs one task at a time.
pub(crate) fn dag_edges(plan: &Plan) -> Vec<Vec<usize>> {
    let n = plan.len();
    let mut edges: Vec<Vec<usize>> = plan.deps.clone();
    let add = |edges: &mut Vec<Vec<usize>>, task: usize, before: usize| {
        if task != before && !edges[task].contains(&before) {
            edges[task].push(before);
        }
    };
    let mut previous: Option<&[usize]> = None;
    for phase in &plan.phases {
        if let Some(before) = previous {
            for &task in &phase.tasks {
                for &b in before {
                    add(&mut edges, task, b);
                }
            }
        }
        if phase.concurrency <= 1 {
            // One at a time, in the order a local run takes them.
            let mut in_order: Vec<usize> = phase.tasks.clone();
            in_order.sort_by_key(|&t| plan.position[t]);
            for pair in in_order.windows(2) {
                add(&mut edges, pair[1], pair[0]);
            }
        }
        if !phase.tasks.is_empty() {
            previous = Some(phase.tasks.as_slice());
        }
    }
    for list in &mut edges {
        list.sort_by_key(|&t| plan.position[t]);
    }
    debug_assert_eq!(edges.len(), n);
    edges
}

fn per_task_templates(input: &ArgoInput<'_>, env: &[Value]) -> Vec<Value> {
    let loaded = input.loaded;
    let settings = input.settings;
    let spec = &loaded.spec;
    let id = spec.id.as_str();
    let plan = &loaded.plan;
    let artifacts = settings.workspace == WorkspaceSpec::Artifacts;

    let mut taken: HashSet<String> = [DAG_TEMPLATE.to_string()].into_iter().collect();
    let names: Vec<String> = spec
        .tasks
        .iter()
        .map(|t| unique(dns_label(t.name.as_str(), MAX_LABEL), &mut taken, MAX_LABEL))
        .collect();
    let finish_name = unique(FINISH.to_string(), &mut taken, MAX_LABEL);

    let edges = dag_edges(plan);
    let mut has_dependents = vec![false; plan.len()];
    for list in &edges {
        for &j in list {
            has_dependents[j] = true;
        }
    }

    let mut dag_tasks = Vec::new();
    let mut templates = Vec::new();
    for &i in &plan.order {
        let task = &spec.tasks[i];
        let mut dag_task = json!({"name": names[i], "template": names[i]});
        if !edges[i].is_empty() {
            dag_task["depends"] = json!(depends(&edges[i], &names));
        }
        let mut template = json!({"name": names[i]});
        if artifacts {
            let upstream: Vec<(usize, &str)> = plan.deps[i]
                .iter()
                .map(|&j| (j, spec.tasks[j].name.as_str()))
                .collect();
            dag_task["arguments"] = json!({"artifacts": artifact_arguments(&upstream, &names)});
            template["inputs"] = json!({"artifacts": input_artifacts(&upstream, &names)});
            template["outputs"] = json!({"artifacts": task_output_artifacts(task.name.as_str())});
        }
        dag_tasks.push(dag_task);

        let timeout = task
            .timeout_seconds
            .or(spec.execution.task_timeout_seconds)
            .unwrap_or(DEFAULT_TASK_TIMEOUT_SECONDS);
        let deadline = timeout + STARTUP_MARGIN_SECONDS;
        template["activeDeadlineSeconds"] = json!(deadline.to_string());
        let retries = task
            .retry_count
            .unwrap_or_else(|| spec.execution.retry_strategy.default_retries());
        if let Some(retry) = retry_strategy(spec.execution.retry_strategy, retries, deadline) {
            template["retryStrategy"] = retry;
        }
        let resources = match &task.resources {
            Some(own) => Some(own.or(spec.resources.as_ref())),
            None => spec.resources.clone(),
        };
        template["container"] = pod::container(
            None,
            &settings.image,
            [
                pod::run_task_args(id, task.name.as_str(), GOAL, RUN_ID),
                input_args(loaded),
            ]
            .concat(),
            env,
            resources.as_ref().and_then(pod::resources),
            pod::mounts(sub_path(settings)),
        );
        templates.push(template);
    }

    let leaves: Vec<usize> = plan
        .order
        .iter()
        .copied()
        .filter(|&i| !has_dependents[i])
        .collect();
    let mut finish_task = json!({"name": finish_name, "template": finish_name});
    if !leaves.is_empty() {
        finish_task["depends"] = json!(depends(&leaves, &names));
    }
    let mut finish = json!({
        "name": finish_name,
        "activeDeadlineSeconds": FINISH_DEADLINE_SECONDS.to_string(),
        // A lost pod (an Argo error, not a failure of `finish` itself) is tried again.
        "retryStrategy": {"limit": "2", "retryPolicy": "OnError"},
        "container": pod::container(
            None,
            &settings.image,
            pod::finish_args(id, RUN_ID),
            &[],
            spec.resources.as_ref().and_then(pod::resources),
            pod::mounts(sub_path(settings)),
        ),
    });
    if artifacts {
        let every: Vec<(usize, &str)> = plan
            .order
            .iter()
            .map(|&j| (j, spec.tasks[j].name.as_str()))
            .collect();
        finish_task["arguments"] = json!({"artifacts": artifact_arguments(&every, &names)});
        finish["inputs"] = json!({"artifacts": input_artifacts(&every, &names)});
        finish["outputs"] = json!({"artifacts": [{"name": "workspace", "path": WORKSPACE_MOUNT}]});
    }
    dag_tasks.push(finish_task);

    let mut all = vec![json!({"name": DAG_TEMPLATE, "dag": {"tasks": dag_tasks}})];
    all.extend(templates);
    all.push(finish);
    all
}

/// `a && b`: every one of them succeeded.
fn depends(tasks: &[usize], names: &[String]) -> String {
    tasks
        .iter()
        .map(|&j| names[j].as_str())
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Retry only what `run-task` says is worth retrying (exit code 75) and pods the cluster lost,
/// with the file's backoff.
/// `None` when the task gets no retries.
fn retry_strategy(strategy: RetryStrategy, retries: u32, deadline: u64) -> Option<Value> {
    if retries == 0 || strategy == RetryStrategy::None {
        return None;
    }
    // Argo's backoff is geometric: linear and fixed delays both wait the base delay each time.
    let factor = match strategy {
        RetryStrategy::ExponentialBackoff => BACKOFF_FACTOR,
        _ => 1,
    };
    let mut waits = 0u64;
    let mut wait = BACKOFF_SECONDS;
    for _ in 0..retries {
        waits = waits.saturating_add(wait);
        wait = wait.saturating_mul(factor);
    }
    let max_duration = deadline
        .saturating_mul(u64::from(retries) + 1)
        .saturating_add(waits);
    Some(json!({
        "limit": retries.to_string(),
        "retryPolicy": "Always",
        // A lost pod (node gone, evicted) is an Argo `Error`, not a failure of the task: it is
        // retried too. Checked first, as such a pod may have no exit code to read.
        "expression": format!(
            "lastRetry.status == \"Error\" || asInt(lastRetry.exitCode) == {RETRYABLE_EXIT_CODE}"
        ),
        "backoff": {
            "duration": format!("{BACKOFF_SECONDS}s"),
            "factor": factor.to_string(),
            "maxDuration": format!("{max_duration}s"),
        },
    }))
}

/// Where `run-task` writes a task's output and its record in the workspace.
pub(crate) fn output_path(task: &str) -> String {
    format!("{WORKSPACE_MOUNT}/task_outputs/{task}_output.txt")
}

pub(crate) fn record_path(task: &str) -> String {
    format!("{WORKSPACE_MOUNT}/tasks/{task}.json")
}

fn task_output_artifacts(task: &str) -> Value {
    json!([
        {"name": "output", "path": output_path(task)},
        {"name": "record", "path": record_path(task)},
    ])
}

fn input_artifacts(upstream: &[(usize, &str)], names: &[String]) -> Vec<Value> {
    upstream
        .iter()
        .flat_map(|&(j, task)| {
            [
                json!({"name": format!("output-{}", names[j]), "path": output_path(task)}),
                json!({"name": format!("record-{}", names[j]), "path": record_path(task)}),
            ]
        })
        .collect()
}

fn artifact_arguments(upstream: &[(usize, &str)], names: &[String]) -> Vec<Value> {
    upstream
        .iter()
        .flat_map(|&(j, _)| {
            let name = &names[j];
            [
                json!({"name": format!("output-{name}"), "from": format!("{{{{tasks.{name}.outputs.artifacts.output}}}}")}),
                json!({"name": format!("record-{name}"), "from": format!("{{{{tasks.{name}.outputs.artifacts.record}}}}")}),
            ]
        })
        .collect()
}
