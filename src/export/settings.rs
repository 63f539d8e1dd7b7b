//! What an export is asked for (target, image, secret, workspace) and what it returns: the
//! manifests as JSON values, in file order, with notes for the user. Errors are data; nothing
//! here prints.

use std::path::PathBuf;

/// The secret the pods read API keys from, when `--secret` is not given.
pub const DEFAULT_SECRET: &str = "super-llm-keys";
/// The workspace claim's size, when `--pvc-size` is not given.
pub const DEFAULT_PVC_SIZE: &str = "1Gi";
/// The image, when `--image` is not given.
pub const DEFAULT_IMAGE: &str = "super:latest";
/// Where the project's files are mounted, read-only, in every pod.
pub const PROJECT_MOUNT: &str = "/project";
/// Where the run's workspace is mounted in every pod.
pub const WORKSPACE_MOUNT: &str = "/workspace";
/// The exit code of `super orchestra run-task` for a failure worth retrying (429, 5xx,
/// timeout, connection): the only code the exported retry strategy retries.
pub const RETRYABLE_EXIT_CODE: u8 = 75;
/// Added to a task's timeout for its pod's deadline: pulling the image and starting `super`
/// happen inside the deadline, and the task's own timeout must fire first (so it exits with
/// the retryable code instead of being killed by the cluster).
pub const STARTUP_MARGIN_SECONDS: u64 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportTarget {
    /// An Argo Workflow: one pod per task.
    Argo,
    /// A Kubernetes Job: one pod running the whole orchestra.
    Job,
}

/// Where the run's workspace lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceSpec {
    /// A claim made for the run (Argo `volumeClaimTemplates`, or a PersistentVolumeClaim
    /// beside the Job) of this size.
    NewClaim { size: String },
    /// An existing claim; each run works in its own sub-folder, so results stay after it.
    ExistingClaim { name: String },
    /// Argo artifacts: each output is passed to its dependents through the artifact repository.
    Artifacts,
}

#[derive(Debug, Clone)]
pub struct ExportSettings {
    pub target: ExportTarget,
    /// A WorkflowTemplate instead of a Workflow.
    pub template: bool,
    pub image: String,
    pub namespace: Option<String>,
    pub secret: String,
    pub workspace: WorkspaceSpec,
    /// The whole run's deadline.
    pub max_wall_seconds: Option<u64>,
    /// The goal: the default of the Workflow's `goal` parameter, or the Job's goal.
    pub goal: Option<String>,
}

/// The manifests, in the order they are written, and what the user should be told.
#[derive(Debug, Clone)]
pub struct Exported {
    pub documents: Vec<serde_json::Value>,
    pub notes: Vec<String>,
    /// `kind name` of each document, for the summary line.
    pub summary: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("failed to export: the playbook `{playbook}` of agent `{agent}` holds a literal `api_key`, which would be written into the ConfigMap")]
    LiteralKey { agent: String, playbook: String },
    #[error("failed to read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to export: the project files come to {bytes} bytes; a ConfigMap holds at most {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("failed to export: {0}")]
    Invalid(String),
    #[error("failed to write the manifests as YAML: {0}")]
    Yaml(String),
}

impl ExportError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ExportError::LiteralKey { .. } => Some(
                "write `api_key: ${OPENAI_API_KEY}` (any variable name) and put the key in the Kubernetes secret".into(),
            ),
            ExportError::TooLarge { .. } => {
                Some("keep large data out of the playbooks; mount it into the pods instead".into())
            }
            _ => None,
        }
    }
}
