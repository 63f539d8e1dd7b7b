//! An orchestra as a plain Kubernetes Job, for clusters without Argo: one pod runs the whole
//! orchestra (`super orchestra run --resume`), beside a claim for its workspace. A pod lost
//! with its node is replaced and resumes from the finished tasks; a run that failed on its
//! own is not repeated. Shapes JSON only.

use super::keys::KeyScan;
use super::kube_names::{dns_label, MAX_LABEL};
use super::pod;
use super::settings::{ExportSettings, WorkspaceSpec};
use crate::load::Loaded;
use serde_json::{json, Map, Value};

/// The container's name, which the pod failure policy names.
const CONTAINER: &str = "super";
/// Replacement pods after failures the policy does not end the Job for (evicted, OOM-killed).
const BACKOFF_LIMIT: u64 = 2;

pub(crate) struct JobInput<'a> {
    pub loaded: &'a Loaded,
    pub settings: &'a ExportSettings,
    pub keys: &'a KeyScan,
    pub labels: &'a Map<String, Value>,
    pub annotations: &'a Map<String, Value>,
    pub project_volume: Value,
    /// The goal, required for a Job (it has no parameters).
    pub goal: &'a str,
}

/// The object name shared by the Job and its claim.
pub(crate) fn base_name(loaded: &Loaded) -> String {
    format!(
        "super-{}",
        dns_label(loaded.spec.id.as_str(), MAX_LABEL - 16)
    )
}

/// The workspace claim (when the export makes one) and the Job.
pub(crate) fn job(input: &JobInput<'_>) -> Vec<Value> {
    let loaded = input.loaded;
    let settings = input.settings;
    let name = base_name(loaded);
    let metadata = |name: &str| {
        let mut metadata =
            json!({"name": name, "labels": input.labels, "annotations": input.annotations});
        if let Some(namespace) = &settings.namespace {
            metadata["namespace"] = json!(namespace);
        }
        metadata
    };
    let mut documents = Vec::new();
    let claim_name = match &settings.workspace {
        WorkspaceSpec::ExistingClaim { name } => name.clone(),
        _ => {
            let size = match &settings.workspace {
                WorkspaceSpec::NewClaim { size } => size.as_str(),
                _ => super::settings::DEFAULT_PVC_SIZE,
            };
            let claim = format!("{name}-workspace");
            documents.push(json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": metadata(&claim),
                "spec": pod::claim_spec(size, "ReadWriteOnce"),
            }));
            claim
        }
    };
    // Kubernetes expands `$(NAME)` in arguments: `$$` keeps a `$` of the goal as written.
    let goal = input.goal.replace('$', "$$");
    let env = pod::key_env(&input.keys.variables, &settings.secret);
    let container = pod::container(
        Some(CONTAINER),
        &settings.image,
        [
            pod::run_args(loaded.spec.id.as_str(), &goal, &["--resume"]),
            // `$$` keeps a `$` of a value as written, as for the goal.
            pod::var_args(
                &loaded
                    .inputs
                    .iter()
                    .map(|(name, value)| (name.clone(), value.replace('$', "$$")))
                    .collect::<Vec<_>>(),
            ),
        ]
        .concat(),
        &env,
        loaded.spec.resources.as_ref().and_then(pod::resources),
        pod::mounts(None),
    );
    let mut spec = json!({
        "backoffLimit": BACKOFF_LIMIT,
        "podFailurePolicy": {"rules": [
            // A node lost or drained: replace the pod without counting it.
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            // The run itself failed (a task, a budget, the spec): running it again cannot help.
            {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [1, 2]}},
        ]},
        "template": {
            "metadata": {"labels": input.labels},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": pod::security_context(),
                "containers": [container],
                "volumes": [
                    input.project_volume,
                    {"name": "workspace", "persistentVolumeClaim": {"claimName": claim_name}},
                ],
            },
        },
    });
    if let Some(seconds) = settings.max_wall_seconds {
        spec["activeDeadlineSeconds"] = json!(seconds);
    }
    documents.push(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(&name),
        "spec": spec,
    }));
    documents
}
