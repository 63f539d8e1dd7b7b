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

impl Protocol {
    /// How a task's output schema is enforced, in words (the dry run shows it). Every reply is
    /// also validated, with one repair call when it does not match.
    pub fn schema_enforcement(self) -> &'static str {
        match self {
            Protocol::OpenAi => "natively: `response_format: json_schema` (strict), falling back to `json_object` and the schema in the prompt where the server refuses it",
            Protocol::Ollama => "natively: Ollama's `format` holds the schema",
            Protocol::Anthropic => "natively: one forced tool whose input schema is the schema",
            Protocol::Local => "natively: constrained decoding in the embedded model",
        }
    }
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

/// How a provider takes its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// `Authorization: Bearer KEY` (OpenAI and every compatible server, Ollama).
    Bearer,
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
    /// `api-key: KEY` (Azure OpenAI).
    AzureApiKey,
}

/// What a provider needs beyond a base URL, a key and a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Plain,
    /// The server speaks OpenAI's API under `/v1`; a base URL given without it gets it added.
    UnderV1,
    /// Azure OpenAI: `{api_base}/openai/deployments/{model}` and `?api-version=...`.
    Azure,
    /// A provider we do not speak, with what to use instead.
    Refused(&'static str),
}

struct ProviderInfo {
    names: &'static [&'static str],
    protocol: Protocol,
    /// The default endpoint; empty when the playbook (or an environment variable) must give one.
    base_url: &'static str,
    /// Environment variables holding a base URL, tried in order before `base_url`.
    base_env: &'static [&'static str],
    /// Environment variables holding the key, tried in order.
    key_env: &'static [&'static str],
    /// Whether the default endpoint needs a key (hosted APIs do; local servers do not).
    key_required: bool,
    default_model: Option<&'static str>,
    auth: Auth,
    flavor: Flavor,
}

/// The defaults most providers share: an OpenAI-compatible server taking a bearer key.
const OPENAI_LIKE: ProviderInfo = ProviderInfo {
    names: &[],
    protocol: Protocol::OpenAi,
    base_url: "",
    base_env: &[],
    key_env: &[],
    key_required: false,
    default_model: None,
    auth: Auth::Bearer,
    flavor: Flavor::Plain,
};

/// The environment variables a provider reads its key from (for "check your key" hints).
pub(crate) fn key_variables(provider: &str) -> &'static [&'static str] {
    PROVIDERS
        .iter()
        .find(|p| p.names.contains(&provider))
        .map_or(&[], |p| p.key_env)
}

const BEDROCK_ALTERNATIVE: &str = "Amazon Bedrock needs AWS SigV4 request signing, which `super` does not do; run an OpenAI-compatible gateway in front of it (for example a LiteLLM proxy with a `bedrock/...` model) and use `provider: litellm` with its `api_base`";

const PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        names: &["local", "embedded", "smollm"],
        protocol: Protocol::Local,
        default_model: Some("smollm2-135m-instruct"),
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["ollama"],
        protocol: Protocol::Ollama,
        base_url: "http://localhost:11434",
        key_env: &["OLLAMA_API_KEY"],
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["openai"],
        base_url: "https://api.openai.com/v1",
        base_env: &["OPENAI_BASE_URL"],
        key_env: &["OPENAI_API_KEY"],
        key_required: true,
        default_model: Some("gpt-4o-mini"),
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["anthropic", "claude"],
        protocol: Protocol::Anthropic,
        base_url: "https://api.anthropic.com",
        key_env: &["ANTHROPIC_API_KEY"],
        key_required: true,
        default_model: Some("claude-3-5-haiku-latest"),
        auth: Auth::XApiKey,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["google", "google_genai", "gemini", "google_ai", "googleai"],
        base_url: "https://generativelanguage.googleapis.com/v1beta/openai",
        key_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        key_required: true,
        default_model: Some("gemini-2.5-flash"),
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["azure", "azure_openai", "azureopenai"],
        base_env: &["AZURE_OPENAI_ENDPOINT", "AZURE_API_BASE"],
        key_env: &["AZURE_OPENAI_API_KEY", "AZURE_API_KEY"],
        key_required: true,
        auth: Auth::AzureApiKey,
        flavor: Flavor::Azure,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["huggingface", "hugging_face", "hf", "tgi"],
        base_url: "https://router.huggingface.co/v1",
        key_env: &["HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGING_FACE_HUB_TOKEN"],
        key_required: true,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["mlx", "mlx_lm"],
        base_url: "http://localhost:8080/v1",
        key_env: &["MLX_API_KEY"],
        flavor: Flavor::UnderV1,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["litellm"],
        base_env: &["LITELLM_API_BASE", "LITELLM_PROXY_URL"],
        key_env: &["LITELLM_API_KEY", "LITELLM_MASTER_KEY"],
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["gateway", "llm_gateway"],
        base_env: &["GATEWAY_API_BASE"],
        key_env: &["GATEWAY_API_KEY", "LITELLM_API_KEY"],
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["bedrock", "aws_bedrock", "amazon_bedrock"],
        flavor: Flavor::Refused(BEDROCK_ALTERNATIVE),
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["groq"],
        base_url: "https://api.groq.com/openai/v1",
        key_env: &["GROQ_API_KEY"],
        key_required: true,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["deepseek"],
        base_url: "https://api.deepseek.com/v1",
        key_env: &["DEEPSEEK_API_KEY"],
        key_required: true,
        default_model: Some("deepseek-chat"),
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["mistral", "mistralai"],
        base_url: "https://api.mistral.ai/v1",
        key_env: &["MISTRAL_API_KEY"],
        key_required: true,
        default_model: Some("mistral-small-latest"),
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["openrouter"],
        base_url: "https://openrouter.ai/api/v1",
        key_env: &["OPENROUTER_API_KEY"],
        key_required: true,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["together", "together_ai", "togetherai"],
        base_url: "https://api.together.xyz/v1",
        key_env: &["TOGETHER_API_KEY"],
        key_required: true,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["fireworks", "fireworks_ai"],
        base_url: "https://api.fireworks.ai/inference/v1",
        key_env: &["FIREWORKS_API_KEY"],
        key_required: true,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["xai", "grok"],
        base_url: "https://api.x.ai/v1",
        key_env: &["XAI_API_KEY"],
        key_required: true,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["vllm"],
        base_url: "http://localhost:8000/v1",
        key_env: &["VLLM_API_KEY"],
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["sglang"],
        base_url: "http://localhost:30000/v1",
        key_env: &["SGLANG_API_KEY"],
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["lm_studio", "lmstudio"],
        base_url: "http://localhost:1234/v1",
        key_env: &["LM_STUDIO_API_KEY"],
        flavor: Flavor::UnderV1,
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["llama_cpp", "llamacpp", "llama.cpp", "llama-cpp"],
        base_url: "http://localhost:8080/v1",
        key_env: &["LLAMA_CPP_API_KEY"],
        default_model: Some("default"),
        ..OPENAI_LIKE
    },
    ProviderInfo {
        names: &["openai_compatible", "openai-compatible", "custom"],
        base_url: "http://localhost:8000/v1",
        key_env: &["OPENAI_API_KEY"],
        ..OPENAI_LIKE
    },
];

/// Azure OpenAI's API version when neither the playbook nor `OPENAI_API_VERSION` names one
/// (the current generally available version).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// The provider names we speak, for hints.
pub fn known_providers() -> Vec<&'static str> {
    PROVIDERS
        .iter()
        .filter(|p| !matches!(p.flavor, Flavor::Refused(_)))
        .map(|p| p.names[0])
        .collect()
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
    /// Everything before the protocol's path (`/chat/completions`, `/api/chat`, `/v1/messages`).
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// The header the key goes in.
    pub auth: Auth,
    /// A query string every request carries, without the `?` (Azure's `api-version=...`).
    pub query: Option<String>,
}

impl Endpoint {
    /// The URL of a request to `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        match &self.query {
            Some(query) => format!("{}{path}?{query}", self.base_url),
            None => format!("{}{path}", self.base_url),
        }
    }
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
    /// The sampling settings a request to this model carries.
    pub fn sampling(&self) -> super::Sampling {
        super::Sampling {
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            top_p: self.top_p,
            seed: self.seed,
        }
    }

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
    /// A provider with no default endpoint (a proxy, Azure) and none given.
    MissingBaseUrl {
        provider: String,
        variables: Vec<String>,
        from_playbook: bool,
    },
    /// A provider we recognise and do not speak.
    Unsupported {
        provider: String,
        alternative: String,
        from_playbook: bool,
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
            ResolveError::MissingBaseUrl { provider, .. } => {
                format!("provider `{provider}` needs an endpoint: no `api_base` given")
            }
            ResolveError::Unsupported { provider, .. } => {
                format!("provider `{provider}` is not supported")
            }
        }
    }

    pub fn hint(&self) -> String {
        match self {
            ResolveError::UnknownProvider { provider, .. } => {
                let known = known_providers();
                let close = crate::diag::did_you_mean(provider, known.iter().copied())
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                format!(
                    "{close}providers are {}; any OpenAI-compatible server works as `openai` with a `base_url`",
                    known.join(", ")
                )
            }
            ResolveError::MissingKey { variable, .. } => {
                format!("export {variable}=... before the run, or set `api_key: ${{{variable}}}` in the playbook")
            }
            ResolveError::MissingModel { provider } => format!(
                "set `spec.language_model.model` in the playbook (the model `{provider}` should serve), or pass `--model`"
            ),
            ResolveError::MissingBaseUrl { variables, .. } => {
                let mut hint =
                    "set `spec.language_model.api_base` in the playbook, or pass `--base-url`"
                        .to_string();
                if !variables.is_empty() {
                    hint.push_str(&format!(", or export {}", variables.join(" or ")));
                }
                hint
            }
            ResolveError::Unsupported { alternative, .. } => alternative.clone(),
        }
    }

    /// Whether the error comes from the playbook (rather than `--provider` and friends).
    pub fn comes_from_playbook(&self) -> Option<bool> {
        match self {
            ResolveError::UnknownProvider { from_playbook, .. }
            | ResolveError::MissingKey { from_playbook, .. }
            | ResolveError::MissingBaseUrl { from_playbook, .. }
            | ResolveError::Unsupported { from_playbook, .. } => Some(*from_playbook),
            ResolveError::MissingModel { .. } => None,
        }
    }
}

/// Reads the environment through a function, so tests can pass their own.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The first of `variables` set to something other than blanks.
fn first_env(variables: &[&str], env: EnvLookup<'_>) -> Option<String> {
    variables
        .iter()
        .find_map(|variable| env(variable).filter(|value| !value.trim().is_empty()))
}

/// `azure/gpt-4o` -> `gpt-4o` when `azure` is this provider: playbooks written for LiteLLM
/// prefix the model with the provider's name.
fn strip_provider_prefix(model: String, info: &ProviderInfo) -> String {
    match model.split_once('/') {
        Some((prefix, rest))
            if !rest.is_empty()
                && info.names.iter().any(|n| {
                    n.replace('-', "_") == prefix.to_ascii_lowercase().replace('-', "_")
                }) =>
        {
            rest.to_string()
        }
        _ => model,
    }
}

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
    if let Flavor::Refused(alternative) = info.flavor {
        return Err(ResolveError::Unsupported {
            provider: provider_name.trim().to_string(),
            alternative: alternative.to_string(),
            from_playbook,
        });
    }
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
        _ => first_env(info.base_env, env).unwrap_or_else(|| info.base_url.to_string()),
    };
    let base_url = overrides
        .base_url
        .clone()
        .or_else(|| playbook.and_then(|s| s.base_url.clone()))
        .unwrap_or_else(|| default_base.clone());
    let mut base_url = base_url.trim().trim_end_matches('/').to_string();
    if base_url.is_empty() && info.protocol != Protocol::Local {
        return Err(ResolveError::MissingBaseUrl {
            provider: info.names[0].to_string(),
            variables: info.base_env.iter().map(|v| v.to_string()).collect(),
            from_playbook,
        });
    }
    if info.flavor == Flavor::UnderV1 && !base_url.ends_with("/v1") {
        base_url.push_str("/v1");
    }

    let mut api_key = None;
    if let Some(raw) = playbook.and_then(|s| s.api_key.as_deref()) {
        api_key = match env_reference(raw) {
            Some(variable) => env(variable),
            None => Some(raw.to_string()),
        };
    }
    if api_key.is_none() {
        api_key = first_env(info.key_env, env);
    }
    let api_key = api_key
        .filter(|k| !k.trim().is_empty())
        .map(|k| Secret::new(k.trim().to_string()));
    // A key is needed at the provider's own endpoint, and always where there is none by default.
    let own_endpoint = info.base_url.is_empty() || base_url == info.base_url.trim_end_matches('/');
    if api_key.is_none() && info.key_required && own_endpoint {
        return Err(ResolveError::MissingKey {
            provider: info.names[0].to_string(),
            variable: playbook
                .and_then(|s| s.api_key.as_deref())
                .and_then(env_reference)
                .or_else(|| info.key_env.first().copied())
                .unwrap_or("API_KEY")
                .to_string(),
            from_playbook,
        });
    }

    let model = overrides
        .model
        .clone()
        .or_else(|| playbook.and_then(|s| s.model.clone()))
        .or_else(|| info.default_model.map(str::to_string))
        .map(|model| strip_provider_prefix(model, info))
        .ok_or_else(|| ResolveError::MissingModel {
            provider: info.names[0].to_string(),
        })?;

    let mut query = None;
    if info.flavor == Flavor::Azure {
        // The deployment is the model; the URL carries it and the API version.
        if !base_url.contains("/openai/deployments/") {
            base_url = format!("{base_url}/openai/deployments/{model}");
        }
        let version = playbook
            .and_then(|s| s.api_version.clone())
            .or_else(|| first_env(&["OPENAI_API_VERSION", "AZURE_API_VERSION"], env))
            .unwrap_or_else(|| AZURE_DEFAULT_API_VERSION.to_string());
        query = Some(format!("api-version={}", version.trim()));
    }

    let lm = playbook;
    let mut choice = ModelChoice {
        endpoint: Endpoint {
            protocol: info.protocol,
            provider: info.names[0].to_string(),
            base_url,
            api_key,
            auth: info.auth,
            query,
        },
        model,
        // Sampling belongs to the agent, not the endpoint: it survives `--provider`/`--model`.
        temperature: overrides.temperature.or(spec.and_then(|s| s.temperature)),
        max_tokens: overrides.max_tokens.or(spec.and_then(|s| s.max_tokens)),
        top_p: spec.and_then(|s| s.top_p),
        seed: overrides.seed.or(spec.and_then(|s| s.seed)),
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

    fn playbook(provider: &str, model: Option<&str>, base: Option<&str>) -> LanguageModelSpec {
        LanguageModelSpec {
            provider: Some(provider.into()),
            model: model.map(str::to_string),
            base_url: base.map(str::to_string),
            ..LanguageModelSpec::default()
        }
    }

    #[test]
    fn gemini_takes_either_key_and_speaks_openai() {
        let spec = playbook("google-genai", None, None);
        let env = |name: &str| (name == "GOOGLE_API_KEY").then(|| "g-2".to_string());
        let choice = resolve(Some(&spec), &ModelOverrides::default(), &env).expect("resolves");
        assert_eq!(choice.endpoint.protocol, Protocol::OpenAi);
        assert_eq!(choice.endpoint.provider, "google");
        assert_eq!(
            choice.endpoint.url("/chat/completions"),
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"
        );
        assert_eq!(choice.endpoint.auth, Auth::Bearer);
        let both = |name: &str| match name {
            "GEMINI_API_KEY" => Some("g-1".to_string()),
            "GOOGLE_API_KEY" => Some("g-2".to_string()),
            _ => None,
        };
        let choice = resolve(Some(&spec), &ModelOverrides::default(), &both).expect("resolves");
        assert_eq!(
            choice.endpoint.api_key.as_ref().map(Secret::expose),
            Some("g-1")
        );
        let error = resolve(Some(&spec), &ModelOverrides::default(), &no_env).expect_err("key");
        assert!(error.message().contains("GEMINI_API_KEY"));
    }

    #[test]
    fn azure_builds_the_deployment_url_and_uses_the_api_key_header() {
        let mut spec = playbook(
            "azure_openai",
            Some("azure/prod-4o"),
            Some("https://x.openai.azure.com/"),
        );
        spec.api_version = Some("2024-06-01".into());
        let env = |name: &str| (name == "AZURE_OPENAI_API_KEY").then(|| "az".to_string());
        let choice = resolve(Some(&spec), &ModelOverrides::default(), &env).expect("resolves");
        assert_eq!(choice.model, "prod-4o");
        assert_eq!(choice.endpoint.auth, Auth::AzureApiKey);
        assert_eq!(
            choice.endpoint.url("/chat/completions"),
            "https://x.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-06-01"
        );
        let error = resolve(Some(&spec), &ModelOverrides::default(), &no_env).expect_err("key");
        assert!(error.message().contains("AZURE_OPENAI_API_KEY"));
        let bare = playbook("azure", Some("d"), None);
        let error = resolve(Some(&bare), &ModelOverrides::default(), &env).expect_err("endpoint");
        assert!(
            error.hint().contains("AZURE_OPENAI_ENDPOINT"),
            "{}",
            error.hint()
        );
    }

    #[test]
    fn proxies_need_an_endpoint_local_servers_get_v1_and_bedrock_is_refused() {
        let error = resolve(
            Some(&playbook("litellm", Some("m"), None)),
            &ModelOverrides::default(),
            &no_env,
        )
        .expect_err("no endpoint");
        assert!(matches!(error, ResolveError::MissingBaseUrl { .. }));
        let choice = resolve(
            Some(&playbook(
                "lm_studio",
                Some("m"),
                Some("http://127.0.0.1:1234/"),
            )),
            &ModelOverrides::default(),
            &no_env,
        )
        .expect("resolves");
        assert_eq!(choice.endpoint.base_url, "http://127.0.0.1:1234/v1");
        let error = resolve(
            Some(&playbook("bedrock", Some("m"), None)),
            &ModelOverrides::default(),
            &no_env,
        )
        .expect_err("refused");
        assert!(matches!(error, ResolveError::Unsupported { .. }));
        assert!(error.hint().contains("LiteLLM"));
        assert!(!known_providers().contains(&"bedrock"));
    }

    #[test]
    fn sampling_survives_a_provider_override_but_the_endpoint_does_not() {
        let mut spec = playbook("ollama", Some("llama3.2"), Some("http://gpu:11434"));
        spec.temperature = Some(0.3);
        spec.max_tokens = Some(77);
        spec.rpm = Some(10);
        let overrides = ModelOverrides {
            provider: Some("openai".into()),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            ..ModelOverrides::default()
        };
        let choice = resolve(Some(&spec), &overrides, &no_env).expect("resolves");
        assert_eq!(
            (choice.temperature, choice.max_tokens),
            (Some(0.3), Some(77))
        );
        assert_eq!(choice.model, "gpt-4o-mini");
        assert_eq!(choice.rpm, None);
    }
}
