//! Keeping secrets out of everything shown or stored: credentials in URLs (`user:pass@`),
//! the configured API keys echoed back in provider text, and values written under keys whose
//! names look secret. Pure text functions; this module decides what is hidden, never where text
//! goes (commands, reporters and the executor call it before printing or writing).

use std::borrow::Cow;

/// What a hidden value is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not searched for: masking every `x` would hide the text
/// without protecting anything.
const MIN_SECRET_LEN: usize = 6;

/// Whether a key's name looks like it holds a secret (`api_key`, `apikey`, `token`,
/// `client_secret`, `password`, ...), case-insensitively.
pub fn is_secret_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["key", "token", "secret", "password", "passwd", "credential"]
        .iter()
        .any(|word| lower.contains(word))
}

/// Replaces the userinfo of every URL in `text` (`http://user:pass@host/v1` ->
/// `http://***@host/v1`).
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        // The authority ends at the path, query, fragment, whitespace or a quote.
        let end = after
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']'
                ) || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(MASK);
                out.push_str(&authority[userinfo_end..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// The userinfo of a URL (`user:pass` in `http://user:pass@host`), if it has one.
fn userinfo(url: &str) -> Option<&str> {
    let after = &url[url.find("://")? + 3..];
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    authority.rfind('@').map(|end| &authority[..end])
}

/// A source line of a YAML file with the value of every secret-looking key masked, so a
/// diagnostic that shows the line never shows a key (`  apikey: sk-123` ->
/// `  apikey: ***`). Works on block (`key: value`) and flow (`{key: value}`) forms: everything
/// after such a key on the line is hidden.
pub fn mask_secret_values(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        let word = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                start = None;
                let name = &line[s..i];
                // The key may be quoted: skip a closing quote, then spaces, then `:`.
                let mut j = i;
                if matches!(bytes.get(j), Some(b'"' | b'\'')) {
                    j += 1;
                }
                while matches!(bytes.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                if bytes.get(j) == Some(&b':') && is_secret_key(name) {
                    let value = line[j + 1..].trim();
                    if value.is_empty() {
                        continue;
                    }
                    return Cow::Owned(format!("{} {MASK}", &line[..=j]));
                }
            }
            _ => {}
        }
    }
    Cow::Borrowed(line)
}

/// Hides every configured secret (API keys, URL passwords) and every URL's userinfo in text
/// that came from outside (provider errors and replies) before it is stored or shown. Built once
/// per run from the resolved endpoints.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a key containing another is masked whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor for these secret values and these URLs' credentials (their userinfo, its
    /// password, and its Basic-auth form).
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = &'a str>,
        urls: impl IntoIterator<Item = &'a str>,
    ) -> Redactor {
        let mut all: Vec<String> = secrets.into_iter().map(str::to_string).collect();
        for url in urls {
            if let Some(info) = userinfo(url) {
                all.push(info.to_string());
                all.push(base64(info.as_bytes()));
                if let Some((_, password)) = info.split_once(':') {
                    all.push(password.to_string());
                }
            }
        }
        all.retain(|s| s.trim().len() >= MIN_SECRET_LEN);
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Redactor { secrets: all }
    }

    /// A redactor for every key and base URL of a run's resolved models.
    pub fn for_models(models: &[crate::provider::ModelChoice]) -> Redactor {
        Redactor::new(
            models
                .iter()
                .filter_map(|m| m.endpoint.api_key.as_ref().map(|k| k.expose())),
            models.iter().map(|m| m.endpoint.base_url.as_str()),
        )
    }

    /// `text` with every secret and every URL's userinfo replaced by `***`.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = redact_urls(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }

    /// Redacts every string inside a JSON value, in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(clean) = self.redact(s) {
                    *s = clean;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

/// Standard base64 with padding (the form of an HTTP Basic credential).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_userinfo_is_hidden_wherever_the_url_appears() {
        assert_eq!(
            redact_urls("failed to connect to http://user:pass@host:8/v1/chat (refused)"),
            "failed to connect to http://***@host:8/v1/chat (refused)"
        );
        assert_eq!(redact_urls("https://a@b@host"), "https://***@host");
        assert_eq!(redact_urls("http://host/v1?x=a@b"), "http://host/v1?x=a@b");
        assert_eq!(redact_urls("no url"), "no url");
    }

    #[test]
    fn secret_keys_are_recognised_by_name() {
        for name in [
            "api_key",
            "apikey",
            "APIKey",
            "token",
            "client_secret",
            "Password",
        ] {
            assert!(is_secret_key(name), "{name}");
        }
        for name in ["model", "provider", "temperature", "api_base"] {
            assert!(!is_secret_key(name), "{name}");
        }
    }

    #[test]
    fn values_under_secret_keys_are_masked_in_source_lines() {
        assert_eq!(
            mask_secret_values("    apikey: sk-live-123"),
            "    apikey: ***"
        );
        assert_eq!(
            mask_secret_values("  lm: {model: m, \"api_key\": sk-1}"),
            "  lm: {model: m, \"api_key\": ***"
        );
        assert_eq!(mask_secret_values("    api_key:"), "    api_key:");
        assert_eq!(mask_secret_values("    model: gpt"), "    model: gpt");
    }

    #[test]
    fn configured_secrets_and_their_basic_form_are_hidden() {
        let redactor = Redactor::new(["sk-test-SECRET"], ["http://user:hunter22@h/v1"]);
        let text = "401: Bearer sk-test-SECRET; Basic dXNlcjpodW50ZXIyMg== hunter22 at http://user:hunter22@h/v1";
        let clean = redactor.redact(text);
        assert!(!clean.contains("sk-test-SECRET"), "{clean}");
        assert!(!clean.contains("hunter22"), "{clean}");
        assert!(!clean.contains("dXNlcjpodW50ZXIyMg=="), "{clean}");
        assert_eq!(base64(b"user:hunter22"), "dXNlcjpodW50ZXIyMg==");
    }
}
