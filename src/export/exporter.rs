//! The one entry point: a loaded orchestra and its project to manifests. It gathers the
//! project files, the key variables and the labels once, then hands them to the Argo or Job
//! builder. It reads the project's files and nothing else; it never prints.

use super::argo::{self, ArgoInput};
use super::configmap::{common_labels, configmap, files_digest, project_files};
use super::job::{self, JobInput};
use super::keys::scan_keys;
use super::kube_names::{dns_label, MAX_LABEL};
use super::settings::{
    ExportError, ExportSettings, ExportTarget, Exported, WorkspaceSpec, DEFAULT_IMAGE,
};
use crate::load::Loaded;
use crate::project::Project;
use crate::spec::Strategy;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub fn export(
    project: &Project,
    loaded: &Loaded,
    settings: &ExportSettings,
) -> Result<Exported, ExportError> {
    if settings.target == ExportTarget::Job {
        if settings.template {
            return Err(ExportError::Invalid(
                "`--template` makes an Argo WorkflowTemplate; it does not apply to `--target job`"
                    .into(),
            ));
        }
        if settings.workspace == WorkspaceSpec::Artifacts {
            return Err(ExportError::Invalid(
                "`--artifacts` passes outputs between Argo steps; it does not apply to `--target job`".into(),
            ));
        }
    }
    let keys = scan_keys(loaded).map_err(|literal| ExportError::LiteralKey {
        agent: literal.agent,
        playbook: literal.playbook,
    })?;
    let files = project_files(project, loaded)?;
    let file_sha256 = hex::encode(Sha256::digest(loaded.spec.file.text.as_bytes()));
    let labels = common_labels(loaded, &file_sha256);
    let mut annotations = Map::new();
    annotations.insert("super-orchestra/sha256".into(), json!(file_sha256));
    if !loaded.spec.description.is_empty() {
        annotations.insert(
            "workflows.argoproj.io/description".into(),
            json!(loaded.spec.description),
        );
    }
    let digest = files_digest(&files);
    // Named by content: a changed project is a new ConfigMap, so a running workflow keeps its own.
    let configmap_name = format!(
        "super-{}-project-{}",
        dns_label(loaded.spec.id.as_str(), MAX_LABEL - 30),
        &digest[..10]
    );
    let (configmap_document, project_volume) = configmap(
        &configmap_name,
        settings.namespace.as_deref(),
        &labels,
        &files,
    );

    let mut notes = Vec::new();
    if settings.image == DEFAULT_IMAGE {
        notes.push(format!(
            "the pods use the image `{DEFAULT_IMAGE}`; build and push your own (see docs/kubernetes.md) and pass `--image`"
        ));
    }
    if keys.uses_embedded_model {
        notes.push(
            "some tasks run on the embedded model: build the image with `--build-arg WITH_MODEL=1`"
                .into(),
        );
    }
    if !keys.variables.is_empty() {
        let names: Vec<&str> = keys.variables.iter().map(|k| k.name.as_str()).collect();
        notes.push(format!(
            "API keys come from the secret `{}` (keys: {})",
            settings.secret,
            names.join(", ")
        ));
    }
    let mut summary = vec![format!("ConfigMap {configmap_name}")];
    let mut documents = vec![configmap_document];
    match settings.target {
        ExportTarget::Argo => {
            if loaded.plan.strategy == Strategy::Hierarchical {
                notes.push(
                    "strategy `hierarchical` decides its tasks at run time: exported as one pod running the whole orchestra (`super orchestra run`)".into(),
                );
            }
            let workflow = argo::workflow(&ArgoInput {
                loaded,
                settings,
                keys: &keys,
                labels: &labels,
                annotations: &annotations,
                project_volume,
            });
            summary.push(describe(&workflow));
            documents.push(workflow);
        }
        ExportTarget::Job => {
            let Some(goal) = settings.goal.as_deref() else {
                return Err(ExportError::Invalid(
                    "`--target job` needs `--goal`: a Job has no parameters to pass it at submit time".into(),
                ));
            };
            for document in job::job(&JobInput {
                loaded,
                settings,
                keys: &keys,
                labels: &labels,
                annotations: &annotations,
                project_volume,
                goal,
            }) {
                summary.push(describe(&document));
                documents.push(document);
            }
        }
    }
    Ok(Exported {
        documents,
        notes,
        summary,
    })
}

/// `Workflow sdlc-` or `Job super-sdlc`.
fn describe(document: &Value) -> String {
    let kind = document["kind"].as_str().unwrap_or_default();
    let metadata = &document["metadata"];
    let name = metadata["name"]
        .as_str()
        .or_else(|| metadata["generateName"].as_str())
        .unwrap_or_default();
    format!("{kind} {name}")
}

/// The documents as one multi-document YAML text.
pub fn to_yaml(documents: &[Value]) -> Result<String, ExportError> {
    serde_saphyr::to_string_multiple(documents).map_err(|e| ExportError::Yaml(e.to_string()))
}
