//! The project as a ConfigMap: the `.super` marker, the orchestra file (where `super` finds
//! it by id) and the playbook of every agent it uses, laid out at their project paths when
//! mounted. It must carry nothing else: no key, no workspace, no file outside the project.

use super::kube_names::label_value;
use super::settings::ExportError;
use crate::load::Loaded;
use crate::project::Project;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;

/// What the API server accepts in one ConfigMap.
const CONFIGMAP_LIMIT: usize = 1024 * 1024;

/// A file of the project, by its path relative to the project root (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    pub path: String,
    pub text: String,
}

/// The files a pod needs to load the orchestra from `/project` by its id.
pub fn project_files(project: &Project, loaded: &Loaded) -> Result<Vec<ProjectFile>, ExportError> {
    let marker = project.root.join(".super");
    let marker_text = std::fs::read_to_string(&marker).map_err(|source| ExportError::Read {
        path: marker.clone(),
        source,
    })?;
    let mut files = vec![ProjectFile {
        path: ".super".into(),
        text: marker_text,
    }];
    // Wherever the file came from, it goes where `find_orchestra(id)` looks first.
    let orchestra_dir = relative(&project.root, &project.default_orchestras_dir())?;
    let id = loaded.spec.id.as_str().to_lowercase().replace(' ', "_");
    files.push(ProjectFile {
        path: join(&orchestra_dir, &format!("{id}_orchestra.yaml")),
        text: loaded.spec.file.text.clone(),
    });
    for agent in loaded.agents.values() {
        files.push(ProjectFile {
            path: relative(&project.root, &agent.file.path)?,
            text: agent.file.text.clone(),
        });
    }
    let bytes: usize = files.iter().map(|f| f.path.len() + f.text.len()).sum();
    if bytes > CONFIGMAP_LIMIT {
        return Err(ExportError::TooLarge {
            bytes,
            limit: CONFIGMAP_LIMIT,
        });
    }
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> Result<String, ExportError> {
    let inside = path.strip_prefix(root).map_err(|_| {
        ExportError::Invalid(format!(
            "`{}` lies outside the project `{}`",
            path.display(),
            root.display()
        ))
    })?;
    let parts: Vec<String> = inside
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

/// The sha256 of the files (paths and contents), as hex.
pub fn files_digest(files: &[ProjectFile]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.path.as_bytes());
        hasher.update([0]);
        hasher.update(file.text.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// A ConfigMap key for each file: `[-._a-zA-Z0-9]+`, unique.
fn keys(files: &[ProjectFile]) -> Vec<String> {
    let mut taken = HashSet::new();
    files
        .iter()
        .map(|file| {
            let base: String = file
                .path
                .chars()
                .map(|c| match c {
                    '/' => '.',
                    c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => c,
                    _ => '_',
                })
                .collect();
            let base = base.trim_start_matches('.').to_string();
            let base = if base.is_empty() { "file".into() } else { base };
            let mut key = base.clone();
            let mut n = 2;
            while !taken.insert(key.clone()) {
                key = format!("{base}-{n}");
                n += 1;
            }
            key
        })
        .collect()
}

/// The ConfigMap document and the pod volume that lays its files out at their paths.
pub fn configmap(
    name: &str,
    namespace: Option<&str>,
    labels: &serde_json::Map<String, Value>,
    files: &[ProjectFile],
) -> (Value, Value) {
    let keys = keys(files);
    let mut data = serde_json::Map::new();
    let mut items = Vec::new();
    for (key, file) in keys.iter().zip(files) {
        data.insert(key.clone(), Value::String(file.text.clone()));
        items.push(json!({"key": key, "path": file.path}));
    }
    let mut labels = labels.clone();
    labels.insert("super-orchestra/part".into(), json!("project"));
    let mut metadata = json!({"name": name, "labels": labels});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    let document = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": data,
    });
    let volume = json!({
        "name": "project",
        "configMap": {"name": name, "items": items},
    });
    (document, volume)
}

/// The labels every exported object carries: who made it, the orchestra and its file's hash
/// (cut to fit a label; the whole hash is an annotation).
pub fn common_labels(loaded: &Loaded, file_sha256: &str) -> serde_json::Map<String, Value> {
    let mut labels = serde_json::Map::new();
    labels.insert("app.kubernetes.io/managed-by".into(), json!("super"));
    labels.insert(
        "super-orchestra/orchestra".into(),
        json!(label_value(loaded.spec.id.as_str())),
    );
    labels.insert(
        "super-orchestra/sha256-prefix".into(),
        json!(&file_sha256[..32.min(file_sha256.len())]),
    );
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_and_unique() {
        let file = |path: &str| ProjectFile {
            path: path.into(),
            text: String::new(),
        };
        let keys = keys(&[
            file(".super"),
            file("shop/orchestras/sdlc_orchestra.yaml"),
            file("shop/agents/dev er/playbook/x.yaml"),
            file("shop/agents/dev_er/playbook/x.yaml"),
        ]);
        assert_eq!(keys[0], "super");
        assert_eq!(keys[1], "shop.orchestras.sdlc_orchestra.yaml");
        assert_eq!(keys[2], "shop.agents.dev_er.playbook.x.yaml");
        assert_eq!(keys[3], "shop.agents.dev_er.playbook.x.yaml-2");
    }
}
