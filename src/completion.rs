//! Dynamic shell completion (clap_complete's engine): the shell asks the binary itself, so
//! `super orchestra run <TAB>` offers the project's orchestra ids, `--from <TAB>` that
//! orchestra's task names, `agent pull <TAB>` the library's agents, `--provider <TAB>` the
//! providers. Completers never fail and never print: a missing project completes nothing.

use crate::project::Project;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use std::ffi::OsStr;
use std::path::PathBuf;

/// The project a completion is for: `--project DIR` on the line being completed, else
/// `SUPER_PROJECT`, else found by walking up from the current folder.
fn project(words: &[String]) -> Option<Project> {
    let flagged = words
        .iter()
        .position(|w| w == "--project")
        .and_then(|i| words.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| {
            words
                .iter()
                .find_map(|w| w.strip_prefix("--project=").map(PathBuf::from))
        })
        .or_else(|| std::env::var_os("SUPER_PROJECT").map(PathBuf::from));
    match flagged {
        Some(dir) => Project::open(&dir).ok(),
        None => Project::discover(&std::env::current_dir().ok()?).ok(),
    }
}

/// The words of the command line being completed (the engine runs us as
/// `super -- super orchestra run ...`): everything after the first `--`.
fn line_words() -> Vec<String> {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

fn matching(
    current: &OsStr,
    names: impl IntoIterator<Item = (String, Option<String>)>,
) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let mut names: Vec<(String, Option<String>)> = names
        .into_iter()
        .filter(|(name, _)| name.starts_with(current.as_ref()))
        .collect();
    names.sort();
    names.dedup_by(|a, b| a.0 == b.0);
    names
        .into_iter()
        .map(|(name, help)| {
            let candidate = CompletionCandidate::new(name);
            match help {
                Some(help) => candidate.help(Some(help.into())),
                None => candidate,
            }
        })
        .collect()
}

fn orchestra_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(project) = project(&line_words()) else {
        return Vec::new();
    };
    let ids = project
        .orchestra_ids()
        .into_iter()
        .map(|(id, _)| (id, None));
    matching(current, ids)
}

/// The orchestra named on the line: the first word after the orchestra subcommand that is not
/// a flag or a flag's value.
fn orchestra_on_line(words: &[String]) -> Option<String> {
    let subcommands = [
        "run", "ru", "run-task", "validate", "graph", "export", "finish", "logs", "show", "diff",
        "clean", "runs",
    ];
    let start = words
        .iter()
        .position(|w| subcommands.contains(&w.as_str()))?;
    let mut rest = words[start + 1..].iter();
    while let Some(word) = rest.next() {
        if let Some(flag) = word.strip_prefix("--") {
            // A flag taking a value in the next word (no `=`): skip that word too.
            if !flag.contains('=') && !BOOLEAN_FLAGS.contains(&flag) {
                rest.next();
            }
            continue;
        }
        if word.starts_with('-') && word.len() > 1 {
            // Short flags: -g, -o take a value; -v, -q, -y do not.
            if matches!(word.as_str(), "-g" | "-o") {
                rest.next();
            }
            continue;
        }
        return Some(word.clone());
    }
    None
}

/// Long flags of the orchestra subcommands that take no value.
const BOOLEAN_FLAGS: &[&str] = &[
    "dry-run",
    "verbose",
    "json",
    "quiet",
    "print",
    "strict",
    "keep-going",
    "resume",
    "no-cache",
    "yes",
    "force",
    "template",
    "artifacts",
    "check-providers",
    "no-color",
];

fn task_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = line_words();
    let Some(project) = project(&words) else {
        return Vec::new();
    };
    let Some(id) = orchestra_on_line(&words) else {
        return Vec::new();
    };
    let path = if crate::project::looks_like_path(&id) {
        PathBuf::from(&id)
    } else {
        match project.find_orchestra(&id) {
            Ok(path) => path,
            Err(_) => return Vec::new(),
        }
    };
    let Ok(file) = crate::source::SourceFile::read(&path) else {
        return Vec::new();
    };
    let Ok(root) = crate::yaml::parse(&file) else {
        return Vec::new();
    };
    let tasks = match root.get("tasks").map(|t| &t.value) {
        Some(crate::yaml::Value::Seq(items)) => items
            .iter()
            .filter_map(|task| {
                let name = task.get("name")?.scalar()?.to_string();
                let agent = task
                    .get("agent")
                    .and_then(|a| a.scalar())
                    .map(str::to_string);
                Some((name, agent))
            })
            .collect(),
        _ => Vec::new(),
    };
    matching(current, tasks)
}

fn project_agents(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    if let Some(project) = project(&line_words()) {
        names.extend(
            project
                .list_agents()
                .into_iter()
                .map(|(name, _)| (name, None)),
        );
    }
    names.extend(library_names());
    matching(current, names)
}

fn library_names() -> Vec<(String, Option<String>)> {
    crate::library::names()
        .into_iter()
        .map(|name| {
            let help = crate::library::find(name).map(|a| crate::library::category(a).to_string());
            (name.to_string(), help)
        })
        .collect()
}

fn library_agents(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(current, library_names())
}

fn providers(current: &OsStr) -> Vec<CompletionCandidate> {
    let names = crate::provider::endpoint::known_providers()
        .into_iter()
        .map(|p| (p.to_string(), None));
    matching(current, names)
}

/// `super completions SHELL`: the shell's registration of the dynamic completer (what
/// `COMPLETE=SHELL super` prints), which asks this binary for candidates at each TAB.
pub(crate) fn registration(shell: clap_complete::Shell) -> crate::commands::Outcome {
    use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::PowerShell => &Powershell,
        clap_complete::Shell::Zsh => &Zsh,
        other => {
            return Err(crate::commands::Failure::usage(format!(
                "no completion for the shell `{other}`"
            )))
        }
    };
    // The binary the shell will call: as invoked when that names a path, else `super` on PATH.
    let invoked = std::env::args_os().next().map(PathBuf::from);
    let program = match invoked {
        Some(path) if path.components().count() > 1 => crate::project::absolute(&path),
        _ => PathBuf::from("super"),
    };
    let mut script = Vec::new();
    completer
        .write_registration(
            COMPLETE_VAR,
            "super",
            "super",
            &program.to_string_lossy(),
            &mut script,
        )
        .map_err(|e| {
            crate::commands::Failure::refused(format!("failed to write the script: {e}"))
        })?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| {
            crate::commands::Failure::refused(format!("failed to write to stdout: {e}"))
        })?;
    Ok(crate::commands::EXIT_OK)
}

/// The variable that turns the binary into its own completer (clap_complete's default).
pub(crate) const COMPLETE_VAR: &str = "COMPLETE";

/// Answers a completion request and exits when `COMPLETE` is set; otherwise returns at once.
pub fn complete_from_env() {
    clap_complete::CompleteEnv::with_factory(<crate::cli::Cli as clap::CommandFactory>::command)
        .var(COMPLETE_VAR)
        .complete();
}

pub(crate) fn orchestra() -> ArgValueCompleter {
    ArgValueCompleter::new(orchestra_ids)
}

pub(crate) fn task() -> ArgValueCompleter {
    ArgValueCompleter::new(task_names)
}

pub(crate) fn agent() -> ArgValueCompleter {
    ArgValueCompleter::new(project_agents)
}

pub(crate) fn library_agent() -> ArgValueCompleter {
    ArgValueCompleter::new(library_agents)
}

pub(crate) fn provider() -> ArgValueCompleter {
    ArgValueCompleter::new(providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_orchestra_is_the_first_word_that_is_no_flag_or_flag_value() {
        assert_eq!(
            orchestra_on_line(&words("super orchestra run sdlc --from")),
            Some("sdlc".into())
        );
        assert_eq!(
            orchestra_on_line(&words(
                "super orchestra run -g goal --provider ollama --dry-run sdlc --from"
            )),
            Some("sdlc".into())
        );
        assert_eq!(
            orchestra_on_line(&words("super --project p orch ru --goal=x api --from")),
            Some("api".into())
        );
        assert_eq!(
            orchestra_on_line(&words("super orchestra run --from")),
            None
        );
    }
}
