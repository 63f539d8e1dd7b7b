//! Which provider, endpoint, model and key a task uses: from the agent's
//! `spec.language_model`, overridden by `--provider/--model/--base-url` (or SUPER_* variables),
//! with each provider's defaults. Resolved once, at validate time, so a missing key or an
//! unknown provider is reported before anything runs.

use crate::spec::LanguageModelSpec;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    OpenAi,
    Ollama,
    Anthropic,
    Local,
}

/// An API key: never printed, never written.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

struct ProviderInfo {
    names: &'static [&'static str],
    protocol: Protocol,
    base_url: &'static str,
    key_env: Option<&'static str>,
    /// Whether the default endpoint needs a key (hosted APIs do; local servers do not).
    key_required: bool,
    default_model: Option<&'static str>,
}

const PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        names: &["local", "embedded", "smollm"],
        protocol: Protocol::Local,
        base_url: "",
        key_env: None,
        key_required: false,
        default_model: Some("smollm2-135m-instruct"),
    },
    ProviderInfo {
        names: &["ollama"],
        protocol: Protocol::Ollama,
        base_url: "http://localhost:11434",
        key_env: Some("OLLAMA_API_KEY"),
        key_required: false,
        default_model: None,
    },
    ProviderInfo {
        names: &["openai"],
        protocol: Protocol::OpenAi,
        base_url: "https://api.openai.com/v1",
        key_env: Some("OPENAI_API_KEY"),
        key_required: true,
        default_model: Some("gpt-4o-mini"),
    },
    ProviderInfo {
        names: &["anthropic", "claude"],
        protocol: Protocol::Anthropic,
        base_url: "https://api.anthropic.com",
        key_env: Some("ANTHROPIC_API_KEY"),
        key_required: true,
        default_model: Some("claude-3-5-haiku-latest"),
    },
    ProviderInfo {
        names: &["groq"],
        protocol: Protocol::OpenAi,
        base_url: "https://api.groq.com/openai/v1",
        key_env: Some("GROQ_API_KEY"),
        key_required: true,
        default_model: None,
    },
    ProviderInfo {
        names: &["deepseek"],
        protocol: Protocol::OpenAi,
        base_url: "https://api.deepseek.com/v1",
        key_env: Some("DEEPSEEK_API_KEY"),
        key_required: true,
        default_model: Some("deepseek-chat"),
    },
    ProviderInfo {
        names: &["mistral", "mistralai"],
        protocol: Protocol::OpenAi,
        base_url: "https://api.mistral.ai/v1",
        key_env: Some("MISTRAL_API_KEY"),
        key_required: true,
        default_model: Some("mistral-small-latest"),
    },
    ProviderInfo {
        names: &["openrouter"],
        protocol: Protocol::OpenAi,
        base_url: "https://openrouter.ai/api/v1",
        key_env: Some("OPENROUTER_API_KEY"),
        key_required: true,
        default_model: None,
    },
    ProviderInfo {
        names: &["together", "together_ai", "togetherai"],
        protocol: Protocol::OpenAi,
        base_url: "https://api.together.xyz/v1",
        key_env: Some("TOGETHER_API_KEY"),
        key_required: true,
        default_model: None,
    },
    ProviderInfo {
        names: &["fireworks", "fireworks_ai"],
        protocol: Protocol::OpenAi,
        base_url: "https://api.fireworks.ai/inference/v1",
        key_env: Some("FIREWORKS_API_KEY"),
        key_required: true,
        default_model: None,
    },
    ProviderInfo {
        names: &["xai", "grok"],
        protocol: Protocol::OpenAi,
        base_url: "https://api.x.ai/v1",
        key_env: Some("XAI_API_KEY"),
        key_required: true,
        default_model: None,
    },
    ProviderInfo {
        names: &["vllm"],
        protocol: Protocol::OpenAi,
        base_url: "http://localhost:8000/v1",
        key_env: Some("VLLM_API_KEY"),
        key_required: false,
        default_model: None,
    },
    ProviderInfo {
        names: &["sglang"],
        protocol: Protocol::OpenAi,
        base_url: "http://localhost:30000/v1",
        key_env: Some("SGLANG_API_KEY"),
        key_required: false,
        default_model: None,
    },
    ProviderInfo {
        names: &["lm_studio", "lmstudio"],
        protocol: Protocol::OpenAi,
        base_url: "http://localhost:1234/v1",
        key_env: Some("LM_STUDIO_API_KEY"),
        key_required: false,
        default_model: None,
    },
    ProviderInfo {
        names: &["llama_cpp", "llamacpp", "llama.cpp", "llama-cpp"],
        protocol: Protocol::OpenAi,
        base_url: "http://localhost:8080/v1",
        key_env: Some("LLAMA_CPP_API_KEY"),
        key_required: false,
        default_model: Some("default"),
    },
    ProviderInfo {
        names: &["openai_compatible", "openai-compatible", "custom"],
        protocol: Protocol::OpenAi,
        base_url: "http://localhost:8000/v1",
        key_env: Some("OPENAI_API_KEY"),
        key_required: false,
        default_model: None,
    },
];

/// The provider names we speak, for hints.
pub fn known_providers() -> Vec<&'static str> {
    PROVIDERS.iter().map(|p| p.names[0]).collect()
}

fn lookup(provider: &str) -> Option<&'static ProviderInfo> {
    let wanted = provider.trim().to_ascii_lowercase().replace('-', "_");
    PROVIDERS
        .iter()
        .find(|p| p.names.iter().any(|n| n.replace('-', "_") == wanted))
}

/// One provider endpoint. Rate limits are shared per endpoint (base URL plus key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// The provider's canonical name (`openai`, `vllm`, ...).
    pub provider: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
}

/// Everything a task needs to make its call.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChoice {
    pub endpoint: Endpoint,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

impl ModelChoice {
    /// `provider/model`, as shown in plans and summaries.
    pub fn label(&self) -> String {
        format!("{}/{}", self.endpoint.provider, self.model)
    }
}

/// Overrides for the whole run.
#[derive(Debug, Clone, Default)]
pub struct ModelOverrides {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub seed: Option<u64>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
}

/// Why a model could not be resolved; the caller places it in the playbook.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveError {
    UnknownProvider {
        provider: String,
        from_playbook: bool,
    },
    MissingKey {
        provider: String,
        variable: String,
        from_playbook: bool,
    },
    MissingModel {
        provider: String,
    },
}

impl ResolveError {
    pub fn message(&self) -> String {
        match self {
            ResolveError::UnknownProvider { provider, .. } => {
                format!("unknown provider `{provider}`")
            }
            ResolveError::MissingKey {
                provider, variable, ..
            } => {
                format!("missing API key for `{provider}`: the environment variable `{variable}` is not set")
            }
            ResolveError::MissingModel { provider } => {
                format!("no model given for provider `{provider}`")
            }
        }
    }

    pub fn hint(&self) -> String {
        match self {
            ResolveError::UnknownProvider { .. } => format!(
                "providers are {}; any OpenAI-compatible server works as `openai` with a `base_url`",
                known_providers().join(", ")
            ),
            ResolveError::MissingKey { variable, .. } => {
                format!("export {variable}=... before the run, or set `api_key: ${{{variable}}}` in the playbook")
            }
            ResolveError::MissingModel { .. } => "set `spec.language_model.model` in the playbook, or pass `--model`".into(),
        }
    }
}

/// Reads the environment through a function, so tests can pass their own.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn resolve(
    spec: Option<&LanguageModelSpec>,
    overrides: &ModelOverrides,
    env: EnvLookup<'_>,
) -> Result<ModelChoice, ResolveError> {
    let from_playbook = overrides.provider.is_none();
    let provider_name = overrides
        .provider
        .clone()
        .or_else(|| spec.and_then(|s| s.provider.clone()))
        .unwrap_or_else(|| "local".to_string());
    let info = lookup(&provider_name).ok_or_else(|| ResolveError::UnknownProvider {
        provider: provider_name.clone(),
        from_playbook,
    })?;
    // Playbook settings apply only while the run keeps the playbook's provider.
    let same_provider = match (
        &overrides.provider,
        spec.and_then(|s| s.provider.as_deref()),
    ) {
        (None, _) => true,
        (Some(o), Some(p)) => {
            lookup(p).map(|i| i.names[0]) == Some(info.names[0]) && o.eq_ignore_ascii_case(p)
        }
        (Some(_), None) => false,
    };
    let playbook = if same_provider { spec } else { None };

    let default_base = match info.protocol {
        Protocol::Ollama => env("OLLAMA_HOST")
            .filter(|h| !h.trim().is_empty())
            .map(|h| {
                if h.contains("://") {
                    h
                } else {
                    format!("http://{h}")
                }
            })
            .unwrap_or_else(|| info.base_url.to_string()),
        Protocol::OpenAi if info.names[0] == "openai" => env("OPENAI_BASE_URL")
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| info.base_url.to_string()),
        _ => info.base_url.to_string(),
    };
    let base_url = overrides
        .base_url
        .clone()
        .or_else(|| playbook.and_then(|s| s.base_url.clone()))
        .unwrap_or_else(|| default_base.clone());
    let base_url = base_url.trim().trim_end_matches('/').to_string();

    let mut api_key = None;
    if let Some(raw) = playbook.and_then(|s| s.api_key.as_deref()) {
        api_key = match env_reference(raw) {
            Some(variable) => env(variable),
            None => Some(raw.to_string()),
        };
    }
    if api_key.is_none() {
        if let Some(variable) = info.key_env {
            api_key = env(variable);
        }
    }
    let api_key = api_key
        .filter(|k| !k.trim().is_empty())
        .map(|k| Secret::new(k.trim().to_string()));
    if api_key.is_none() && info.key_required && base_url == info.base_url.trim_end_matches('/') {
        return Err(ResolveError::MissingKey {
            provider: info.names[0].to_string(),
            variable: playbook
                .and_then(|s| s.api_key.as_deref())
                .and_then(env_reference)
                .unwrap_or(info.key_env.unwrap_or("API_KEY"))
                .to_string(),
            from_playbook,
        });
    }

    let model = overrides
        .model
        .clone()
        .or_else(|| playbook.and_then(|s| s.model.clone()))
        .or_else(|| info.default_model.map(str::to_string))
        .ok_or_else(|| ResolveError::MissingModel {
            provider: info.names[0].to_string(),
        })?;

    let lm = playbook;
    let mut choice = ModelChoice {
        endpoint: Endpoint {
            protocol: info.protocol,
            provider: info.names[0].to_string(),
            base_url,
            api_key,
        },
        model,
        temperature: overrides.temperature.or(lm.and_then(|s| s.temperature)),
        max_tokens: overrides.max_tokens.or(lm.and_then(|s| s.max_tokens)),
        top_p: lm.and_then(|s| s.top_p),
        seed: overrides.seed.or(lm.and_then(|s| s.seed)),
        rpm: lm.and_then(|s| s.rpm),
        tpm: lm.and_then(|s| s.tpm),
    };
    if info.protocol == Protocol::Local {
        // The embedded model runs greedy and short unless told otherwise: repeatable and quick.
        choice.temperature = Some(choice.temperature.unwrap_or(0.0));
        choice.max_tokens = Some(choice.max_tokens.unwrap_or(256));
        choice.seed = Some(choice.seed.unwrap_or(0));
    }
    Ok(choice)
}

/// `${VAR}`, `$VAR` or `env:VAR` name an environment variable.
fn env_reference(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    let name = raw
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| raw.strip_prefix("env:"))
        .or_else(|| raw.strip_prefix('$'))?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_to_the_local_model() {
        let choice =
            resolve(None, &ModelOverrides::default(), &no_env).expect("local needs nothing");
        assert_eq!(choice.endpoint.protocol, Protocol::Local);
        assert_eq!(choice.temperature, Some(0.0));
    }

    #[test]
    fn maps_compatible_providers_and_requires_hosted_keys() {
        let spec = LanguageModelSpec {
            provider: Some("lm_studio".into()),
            model: Some("qwen".into()),
            ..LanguageModelSpec::default()
        };
        let choice = resolve(Some(&spec), &ModelOverrides::default(), &no_env).expect("resolves");
        assert_eq!(choice.endpoint.protocol, Protocol::OpenAi);
        assert_eq!(choice.endpoint.base_url, "http://localhost:1234/v1");

        let overrides = ModelOverrides {
            provider: Some("openai".into()),
            ..ModelOverrides::default()
        };
        let error = resolve(Some(&spec), &overrides, &no_env).expect_err("needs a key");
        assert!(
            matches!(error, ResolveError::MissingKey { ref variable, .. } if variable == "OPENAI_API_KEY")
        );

        let overrides = ModelOverrides {
            provider: Some("openai".into()),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            ..ModelOverrides::default()
        };
        let choice = resolve(Some(&spec), &overrides, &no_env).expect("own server needs no key");
        assert_eq!(choice.model, "gpt-4o-mini");
    }

    #[test]
    fn reads_keys_named_in_the_playbook() {
        let spec = LanguageModelSpec {
            provider: Some("anthropic".into()),
            api_key: Some("${MY_KEY}".into()),
            ..LanguageModelSpec::default()
        };
        let env = |name: &str| (name == "MY_KEY").then(|| "k-1".to_string());
        let choice = resolve(Some(&spec), &ModelOverrides::default(), &env).expect("key from env");
        assert_eq!(
            choice.endpoint.api_key.as_ref().map(Secret::expose),
            Some("k-1")
        );
        assert_eq!(
            format!("{:?}", choice.endpoint.api_key),
            "Some(Secret(***))"
        );
        let error = resolve(Some(&spec), &ModelOverrides::default(), &no_env).expect_err("missing");
        assert!(error.message().contains("MY_KEY"));
    }

    #[test]
    fn rejects_unknown_providers() {
        let spec = LanguageModelSpec {
            provider: Some("watsonx".into()),
            ..LanguageModelSpec::default()
        };
        assert!(matches!(
            resolve(Some(&spec), &ModelOverrides::default(), &no_env),
            Err(ResolveError::UnknownProvider { .. })
        ));
    }
}
