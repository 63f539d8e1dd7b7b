//! `super doctor`: checks what a run needs and prints one line per check with ✅/❌ and the fix:
//! the project, the embedded model (size and sha256, timed), which API keys are set (names only,
//! never values), whether Ollama answers, and whether shell completion is installed. A report:
//! exits 0 when at least one provider can run, 1 when none can. Changes nothing.

use super::{Context, Outcome, EXIT_FAILED, EXIT_OK};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The hosted providers' key variables, as `provider::endpoint` reads them (the keys a run on
/// a hosted API needs; local servers' optional keys are left out).
const API_KEYS: &[(&str, &str)] = &[
    ("openai", "OPENAI_API_KEY"),
    ("anthropic", "ANTHROPIC_API_KEY"),
    ("groq", "GROQ_API_KEY"),
    ("deepseek", "DEEPSEEK_API_KEY"),
    ("mistral", "MISTRAL_API_KEY"),
    ("openrouter", "OPENROUTER_API_KEY"),
    ("together", "TOGETHER_API_KEY"),
    ("fireworks", "FIREWORKS_API_KEY"),
    ("xai", "XAI_API_KEY"),
];

const OLLAMA_DEFAULT: &str = "http://localhost:11434";

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    ok: bool,
    label: &'static str,
    detail: String,
    fix: Option<String>,
}

impl Check {
    fn pass(label: &'static str, detail: impl Into<String>) -> Check {
        Check {
            ok: true,
            label,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(label: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            ok: false,
            label,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn render(&self) -> String {
        let mark = if self.ok { "✅" } else { "❌" };
        let mut text = format!("{mark} {:<11} {}\n", self.label, self.detail);
        if let Some(fix) = &self.fix {
            text.push_str(&format!("   {:<11} fix: {fix}\n", ""));
        }
        text
    }
}

pub fn doctor(context: &Context) -> Outcome {
    let lookup = |name: &str| super::env_lookup(name).filter(|v| !v.trim().is_empty());
    let project = project_check(context);
    let model = model_check();
    let keys = keys_check(&lookup);
    let ollama = ollama_check(&lookup);
    let completion = completion_check(&lookup);
    println!("super {} doctor", env!("CARGO_PKG_VERSION"));
    for check in [&project, &model, &keys, &ollama, &completion] {
        print!("{}", check.render());
    }
    if model.ok || keys.ok || ollama.ok {
        Ok(EXIT_OK)
    } else {
        println!(
            "\nNothing can run yet: download the embedded model, set an API key, or start Ollama."
        );
        Ok(EXIT_FAILED)
    }
}

fn project_check(context: &Context) -> Check {
    match context.project() {
        Ok(project) => {
            let agents = project.list_agents().len();
            let orchestras = project.list_orchestras().len();
            Check::pass(
                "project",
                format!(
                    "`{}` at {} ({agents} agent{}, {orchestras} orchestra{})",
                    project.name.as_deref().unwrap_or("(unnamed)"),
                    project.root.display(),
                    plural(agents),
                    plural(orchestras),
                ),
            )
        }
        Err(error) => Check::fail(
            "project",
            error.to_string(),
            "`super init` makes this folder a project; `super init NAME` creates one in a new folder",
        ),
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(not(feature = "local"))]
fn model_check() -> Check {
    Check::fail(
        "model",
        "this build has no embedded model (built without the `local` feature)",
        "use a provider with `--provider`, or build with the `local` feature",
    )
}

#[cfg(feature = "local")]
fn model_check() -> Check {
    let path = super_local::default_model_path();
    if !path.is_file() {
        return Check::fail(
            "model",
            format!("the embedded model is not downloaded: {}", path.display()),
            "super model pull   (98 MB, once)",
        );
    }
    let started = Instant::now();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let sha = match super_local::sha256_file(&path) {
        Ok(sha) => sha,
        Err(error) => {
            return Check::fail(
                "model",
                format!("failed to read `{}`: {error}", path.display()),
                "super model pull --force",
            )
        }
    };
    let took = started.elapsed();
    let facts = format!(
        "{} ({:.1} MB, sha256 checked in {} ms)",
        path.display(),
        size as f64 / 1_000_000.0,
        took.as_millis()
    );
    let custom = super::env_lookup(super_local::MODEL_PATH_ENV).is_some_and(|v| !v.is_empty());
    if sha == super_local::DEFAULT_MODEL_SHA256 {
        Check::pass("model", format!("verified: {facts}"))
    } else if custom {
        Check::pass(
            "model",
            format!(
                "{} names another model: {facts}, sha256 {sha}",
                super_local::MODEL_PATH_ENV
            ),
        )
    } else {
        Check::fail(
            "model",
            format!("CHECKSUM MISMATCH: {facts}, sha256 {sha}"),
            "super model pull --force",
        )
    }
}

/// Which hosted API keys are set; names only, never values.
fn keys_check(lookup: &dyn Fn(&str) -> Option<String>) -> Check {
    let set: Vec<&str> = API_KEYS
        .iter()
        .filter(|(_, variable)| lookup(variable).is_some())
        .map(|(_, variable)| *variable)
        .collect();
    if set.is_empty() {
        Check::fail(
            "API keys",
            "none set (looked for OPENAI_API_KEY, ANTHROPIC_API_KEY, GROQ_API_KEY, ...)",
            "export OPENAI_API_KEY=... (or another provider's key) to run on a hosted API",
        )
    } else {
        Check::pass("API keys", format!("set: {}", set.join(", ")))
    }
}

/// The Ollama base URL as runs use it: `OLLAMA_HOST` (with `http://` added), else the default.
fn ollama_url(lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let url = match lookup("OLLAMA_HOST") {
        Some(host) if host.contains("://") => host.trim().to_string(),
        Some(host) => format!("http://{}", host.trim()),
        None => OLLAMA_DEFAULT.to_string(),
    };
    url.trim_end_matches('/').to_string()
}

fn ollama_check(lookup: &dyn Fn(&str) -> Option<String>) -> Check {
    let url = ollama_url(lookup);
    let fix =
        "start it with `ollama serve` (or set OLLAMA_HOST); needed only for `--provider ollama`";
    let probe = async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(700))
            .timeout(Duration::from_millis(1500))
            .build()
            .map_err(|error| error.to_string())?;
        let response = client
            .get(format!("{url}/api/version"))
            .send()
            .await
            .map_err(|error| describe(&error))?;
        if !response.status().is_success() {
            return Err(format!("it answered {}", response.status()));
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Ok(body
            .get("version")
            .and_then(|v| v.as_str())
            .map(str::to_string))
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())
        .and_then(|runtime| runtime.block_on(probe));
    match result {
        Ok(Some(version)) => Check::pass("ollama", format!("answers at {url} (version {version})")),
        Ok(None) => Check::pass("ollama", format!("answers at {url}")),
        Err(reason) => Check::fail("ollama", format!("no answer at {url}: {reason}"), fix),
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "connection refused".to_string()
    } else {
        error.to_string()
    }
}

/// Where bash, zsh and fish look for completion files, and the rc files that may load them.
fn completion_places(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let home = lookup("HOME").map(PathBuf::from);
    let data = lookup("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    let config = lookup("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut places = Vec::new();
    if let Some(data) = &data {
        places.push(data.join("bash-completion/completions/super"));
        places.push(data.join("fish/vendor_completions.d/super.fish"));
    }
    if let Some(config) = &config {
        places.push(config.join("fish/completions/super.fish"));
    }
    if let Some(home) = &home {
        for relative in [
            ".bash_completion.d/super",
            ".zfunc/_super",
            ".zsh/completions/_super",
            ".oh-my-zsh/completions/_super",
        ] {
            places.push(home.join(relative));
        }
    }
    for system in [
        "/usr/share/bash-completion/completions/super",
        "/usr/local/share/bash-completion/completions/super",
        "/etc/bash_completion.d/super",
        "/usr/share/zsh/site-functions/_super",
        "/usr/local/share/zsh/site-functions/_super",
        "/usr/share/zsh/vendor-completions/_super",
        "/usr/share/fish/vendor_completions.d/super.fish",
        "/usr/local/share/fish/vendor_completions.d/super.fish",
    ] {
        places.push(PathBuf::from(system));
    }
    places
}

/// rc files that may load completions generated on the fly (`source <(super completions bash)`).
fn rc_files(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let Some(home) = lookup("HOME").map(PathBuf::from) else {
        return Vec::new();
    };
    let config = lookup("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    vec![
        home.join(".bashrc"),
        home.join(".bash_profile"),
        home.join(".zshrc"),
        config.join("fish/config.fish"),
    ]
}

fn loads_completions(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.contains("super completions")
            || text
                .lines()
                .any(|line| line.contains("COMPLETE=") && line.contains(" super"))
    })
}

fn completion_check(lookup: &dyn Fn(&str) -> Option<String>) -> Check {
    if let Some(found) = completion_places(lookup).into_iter().find(|p| p.is_file()) {
        return Check::pass("completion", format!("installed: {}", found.display()));
    }
    if let Some(rc) = rc_files(lookup).into_iter().find(|p| loads_completions(p)) {
        return Check::pass("completion", format!("loaded by {}", rc.display()));
    }
    let shell = lookup("SHELL")
        .and_then(|s| s.rsplit('/').next().map(str::to_string))
        .unwrap_or_default();
    let fix = match shell.as_str() {
        "zsh" => "echo 'source <(COMPLETE=zsh super)' >> ~/.zshrc",
        "fish" => "echo 'COMPLETE=fish super | source' >> ~/.config/fish/config.fish",
        _ => "echo 'source <(COMPLETE=bash super)' >> ~/.bashrc",
    };
    Check::fail("completion", "not installed for bash, zsh or fish", fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_host_is_read_as_runs_read_it() {
        let none = |_: &str| None;
        assert_eq!(ollama_url(&none), "http://localhost:11434");
        let bare = |_: &str| Some("127.0.0.1:9999".to_string());
        assert_eq!(ollama_url(&bare), "http://127.0.0.1:9999");
        let full = |_: &str| Some("https://gpu:11434/".to_string());
        assert_eq!(ollama_url(&full), "https://gpu:11434");
    }

    #[test]
    fn a_failed_check_prints_its_fix() {
        let check = Check::fail("model", "missing", "super model pull");
        assert_eq!(
            check.render(),
            "❌ model       missing\n               fix: super model pull\n"
        );
        assert_eq!(Check::pass("x", "y").render(), "✅ x           y\n");
    }
}
