//! What to do about a failed call, added to its message where the cause is common and the fix
//! is known: a local server that is not running, a key that was refused (and which variable it
//! came from), a model the server does not have (and the ones it has).

use super::endpoint::{Endpoint, Protocol};
use super::http::HttpTransport;
use super::types::{ErrorKind, ProviderError};

/// Most model names listed after a 404.
const MODELS_SHOWN: usize = 12;

pub(crate) async fn explain(
    error: &mut ProviderError,
    endpoint: &Endpoint,
    model: &str,
    transport: Option<&HttpTransport>,
) {
    match error.kind {
        ErrorKind::Connect if endpoint.protocol == Protocol::Ollama => {
            error.message.push_str(&format!(
                " (is `ollama serve` running at {}? Start it, or set OLLAMA_HOST or the playbook's `api_base`)",
                crate::redact::redact_urls(&endpoint.base_url)
            ));
        }
        ErrorKind::Status(401 | 403) => {
            let variables = super::endpoint::key_variables(&endpoint.provider);
            let from = match (endpoint.api_key.is_some(), variables) {
                (false, _) => "no key was sent".to_string(),
                (true, []) => "a key was sent".to_string(),
                (true, names) => format!(
                    "the key comes from {} or the playbook's `api_key`",
                    names.join(" or ")
                ),
            };
            error.message.push_str(&format!(
                " (the `{}` server refused the credentials: {from}; check that it is valid for this server)",
                endpoint.provider
            ));
        }
        ErrorKind::Status(404) => {
            let Some(transport) = transport else { return };
            let Ok(names) = models(transport, endpoint).await else {
                return;
            };
            if names.is_empty() || names.iter().any(|n| n == model) {
                return;
            }
            let shown: Vec<&str> = names
                .iter()
                .take(MODELS_SHOWN)
                .map(String::as_str)
                .collect();
            let more = names.len().saturating_sub(MODELS_SHOWN);
            error.message.push_str(&format!(
                " (the server has no model `{model}`; it has: {}{})",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        _ => {}
    }
}

/// The models an endpoint lists (OpenAI-compatible `/models`, Ollama `/api/tags`, Anthropic
/// `/v1/models`), or why it could not be asked; the embedded model lists nothing.
pub(crate) async fn models(
    transport: &HttpTransport,
    endpoint: &Endpoint,
) -> Result<Vec<String>, ProviderError> {
    let (path, field, name, headers): (&str, &str, &str, &[(&'static str, &str)]) =
        match endpoint.protocol {
            Protocol::OpenAi => ("/models", "data", "id", &[]),
            Protocol::Ollama => ("/api/tags", "models", "name", &[]),
            Protocol::Anthropic => (
                "/v1/models",
                "data",
                "id",
                &[("anthropic-version", super::anthropic::ANTHROPIC_VERSION)],
            ),
            Protocol::Local => return Ok(Vec::new()),
        };
    let listing = transport
        .get_json(
            &endpoint.url(path),
            super::http::credentials(endpoint),
            headers,
        )
        .await?;
    Ok(listing
        .get(field)
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|m| m.get(name).and_then(|n| n.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// Whether an endpoint answers and has `model`, in one line (for `validate --check-providers`).
pub(crate) async fn probe(
    transport: &HttpTransport,
    endpoint: &Endpoint,
    model: &str,
) -> Result<String, String> {
    if endpoint.protocol == Protocol::Local {
        return match super::local::unavailable_reason() {
            None => Ok("the embedded model is downloaded".into()),
            Some(why) => Err(format!("{why}; download it with `super model pull`")),
        };
    }
    match models(transport, endpoint).await {
        Ok(names) if names.iter().any(|n| n == model) => Ok(format!("answers, and has `{model}`")),
        Ok(names) if names.is_empty() => Ok("answers (it lists no models)".into()),
        Ok(names) => Err(format!(
            "answers, but has no model `{model}`; it has: {}",
            names
                .iter()
                .take(MODELS_SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(mut error) => {
            Box::pin(explain(&mut error, endpoint, model, None)).await;
            Err(error.to_string())
        }
    }
}
