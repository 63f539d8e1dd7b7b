//! The parts every exported pod shares: the `super` command line, API keys as `secretKeyRef`
//! environment variables (never a value), resources as requests and limits, the project and
//! workspace mounts, and the security context. Shapes JSON only.

use super::keys::KeyVariable;
use super::settings::{PROJECT_MOUNT, WORKSPACE_MOUNT};
use crate::spec::ResourcesSpec;
use serde_json::{json, Value};

/// The user the image runs as (see the Dockerfile); the workspace volume is made writable for it.
pub(crate) const RUN_AS_USER: u64 = 65532;

/// `super orchestra run-task ID --task TASK --goal G --run-id R --workspace W --project P`.
pub(crate) fn run_task_args(orchestra: &str, task: &str, goal: &str, run_id: &str) -> Vec<String> {
    let mut args = vec![
        "orchestra".to_string(),
        "run-task".into(),
        orchestra.into(),
        "--task".into(),
        task.into(),
        "--goal".into(),
        goal.into(),
    ];
    args.extend(run_and_places(run_id));
    args
}

/// `--var NAME=VALUE` for each input, in order.
pub(crate) fn var_args(inputs: &[(String, String)]) -> Vec<String> {
    inputs
        .iter()
        .flat_map(|(name, value)| ["--var".to_string(), format!("{name}={value}")])
        .collect()
}

/// `super orchestra finish ID --run-id R --workspace W --project P`.
pub(crate) fn finish_args(orchestra: &str, run_id: &str) -> Vec<String> {
    let mut args = vec!["orchestra".to_string(), "finish".into(), orchestra.into()];
    args.extend(run_and_places(run_id));
    args
}

fn run_and_places(run_id: &str) -> Vec<String> {
    vec![
        "--run-id".into(),
        run_id.into(),
        "--workspace".into(),
        WORKSPACE_MOUNT.into(),
        "--project".into(),
        PROJECT_MOUNT.into(),
    ]
}

/// `super orchestra run ID --goal G --workspace W --project P` (a whole run in one pod).
pub(crate) fn run_args(orchestra: &str, goal: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "orchestra".to_string(),
        "run".into(),
        orchestra.into(),
        "--goal".into(),
        goal.into(),
        "--workspace".into(),
        WORKSPACE_MOUNT.into(),
        "--project".into(),
        PROJECT_MOUNT.into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// One `env` entry per key variable, each from the secret; a key the provider can do without
/// is optional, so a secret lacking it does not stop the pod.
pub(crate) fn key_env(keys: &[KeyVariable], secret: &str) -> Vec<Value> {
    keys.iter()
        .map(|key| {
            let mut reference = json!({"name": secret, "key": key.name});
            if !key.required {
                reference["optional"] = json!(true);
            }
            json!({"name": key.name, "valueFrom": {"secretKeyRef": reference}})
        })
        .collect()
}

/// `{requests, limits}` from `cpu` and `memory`; `None` when neither is given.
pub(crate) fn resources(spec: &ResourcesSpec) -> Option<Value> {
    let mut amounts = serde_json::Map::new();
    if let Some(cpu) = &spec.cpu {
        amounts.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = &spec.memory {
        amounts.insert("memory".into(), json!(memory));
    }
    if amounts.is_empty() {
        return None;
    }
    Some(json!({"requests": amounts.clone(), "limits": amounts}))
}

pub(crate) fn mounts(workspace_sub_path: Option<&str>) -> Vec<Value> {
    let mut workspace = json!({"name": "workspace", "mountPath": WORKSPACE_MOUNT});
    if let Some(sub_path) = workspace_sub_path {
        workspace["subPath"] = json!(sub_path);
    }
    vec![
        json!({"name": "project", "mountPath": PROJECT_MOUNT, "readOnly": true}),
        workspace,
    ]
}

/// A container running `super` with these arguments.
pub(crate) fn container(
    name: Option<&str>,
    image: &str,
    args: Vec<String>,
    env: &[Value],
    resources: Option<Value>,
    mounts: Vec<Value>,
) -> Value {
    let mut container = json!({
        "image": image,
        "command": ["super"],
        "args": args,
        "volumeMounts": mounts,
    });
    if let Some(name) = name {
        container["name"] = json!(name);
    }
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    if let Some(resources) = resources {
        container["resources"] = resources;
    }
    container
}

/// The pod security context: not root, and the workspace volume writable by the image's user.
pub(crate) fn security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
    })
}

/// A new claim's spec.
pub(crate) fn claim_spec(size: &str, access_mode: &str) -> Value {
    json!({
        "accessModes": [access_mode],
        "resources": {"requests": {"storage": size}},
    })
}
