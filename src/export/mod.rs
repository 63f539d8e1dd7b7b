//! Export: an orchestra to Kubernetes manifests, an Argo Workflow (one pod per task running
//! `super orchestra run-task`) or a plain Job (one pod running the whole orchestra), with the
//! project as a ConfigMap and API keys only as secret references.

mod argo;
mod configmap;
mod exporter;
mod job;
mod keys;
mod kube_names;
mod pod;
mod settings;

#[cfg(test)]
mod tests;

pub use exporter::{export, to_yaml};
pub use keys::placeholder_env;
pub(crate) use kube_names::{is_dns_label, is_dns_subdomain};
pub use settings::{
    ExportSettings, ExportTarget, WorkspaceSpec, DEFAULT_IMAGE, DEFAULT_PVC_SIZE, DEFAULT_SECRET,
    RETRYABLE_EXIT_CODE,
};
