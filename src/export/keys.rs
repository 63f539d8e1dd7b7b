//! Which environment variables hold the API keys an exported orchestra needs, found without
//! reading a single key: the provider resolver is handed placeholder values that name their
//! variable, so a resolved key tells where it would come from. It must never read, hold or
//! return a real key value.

use crate::load::Loaded;
use crate::provider::{self, ModelOverrides, Protocol, ResolveError};

const PLACEHOLDER_PREFIX: &str = "__super_export_env__";

/// The environment lookup to load an orchestra for export with: every variable "is set" to a
/// placeholder naming itself, so loading needs no key on this machine and none is read.
pub fn placeholder_env(name: &str) -> Option<String> {
    Some(format!("{PLACEHOLDER_PREFIX}{name}"))
}

/// An environment variable a pod needs, filled from the Kubernetes secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyVariable {
    pub name: String,
    /// The provider refuses to run without it (a hosted API); otherwise the secret may lack it.
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScan {
    pub variables: Vec<KeyVariable>,
    /// Some task runs on the embedded model, which the image must then include.
    pub uses_embedded_model: bool,
}

/// A playbook that writes its key into the file: exporting it would put the key in the
/// ConfigMap, so the export is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralKey {
    pub agent: String,
    pub playbook: String,
}

pub fn scan_keys(loaded: &Loaded) -> Result<KeyScan, LiteralKey> {
    let overrides = ModelOverrides::default();
    let mut variables: Vec<KeyVariable> = Vec::new();
    let mut uses_embedded_model = false;
    for agent in loaded.agents.values() {
        let language_model = agent.language_model.as_ref();
        let Ok(choice) = provider::resolve(language_model, &overrides, &placeholder_env) else {
            continue;
        };
        if choice.endpoint.protocol == Protocol::Local {
            uses_embedded_model = true;
        }
        let Some(key) = &choice.endpoint.api_key else {
            continue;
        };
        let Some(name) = key.expose().strip_prefix(PLACEHOLDER_PREFIX) else {
            return Err(LiteralKey {
                agent: agent.name.to_string(),
                playbook: crate::source::display_path(&agent.file.path),
            });
        };
        let required = matches!(
            provider::resolve(language_model, &overrides, &|_| None),
            Err(ResolveError::MissingKey { .. })
        );
        match variables.iter_mut().find(|v| v.name == name) {
            Some(known) => known.required |= required,
            None => variables.push(KeyVariable {
                name: name.to_string(),
                required,
            }),
        }
    }
    variables.sort();
    Ok(KeyScan {
        variables,
        uses_embedded_model,
    })
}
