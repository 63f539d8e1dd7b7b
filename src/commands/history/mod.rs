//! Looking back at runs: `orchestra runs | show | logs | diff | clean`. Each command finds the
//! orchestra's workspace, reads its runs through `workspace::history` and renders them; the
//! reading never prints, and each renderer is a function from records to text.

pub(crate) mod clean;
pub(crate) mod diff;
pub(crate) mod logs;
pub(crate) mod runs;
pub(crate) mod show;

use super::{Context, Failure};
use crate::source::display_path;
use crate::workspace::history::{find_run, list_runs, LookupError, RunEntry};
use crate::workspace::Manifest;
use std::path::{Path, PathBuf};

/// An orchestra's id and the root of its workspace: `--workspace`, else the file's
/// `workspace.path` (read from the file alone: its agents need not load, so runs of an
/// orchestra that no longer validates can still be read).
pub(crate) fn workspace_of(
    context: &Context,
    orchestra: &str,
    flag: Option<&Path>,
) -> Result<(String, PathBuf), Failure> {
    let (path, project) = context.orchestra(orchestra)?;
    workspace_of_file(&path, project.as_ref(), flag)
}

/// As [`workspace_of`], for an orchestra file already found.
pub(crate) fn workspace_of_file(
    path: &Path,
    project: Option<&crate::project::Project>,
    flag: Option<&Path>,
) -> Result<(String, PathBuf), Failure> {
    let unreadable = |diagnostic: &crate::diag::Diagnostic| {
        Failure::usage(format!(
            "cannot tell where the runs of `{}` are: {} {}",
            display_path(path),
            diagnostic.position(),
            diagnostic.message
        ))
        .hint("fix the file (`super orchestra validate`), or pass `--workspace DIR`")
    };
    let (file, root) = crate::load::read_yaml(path).map_err(|d| unreadable(&d))?;
    let mut diags = crate::diag::Diagnostics::default();
    let Some(spec) = crate::spec::orchestra::decode_orchestra(&file, &root, &mut diags) else {
        let first = diags.items.first().cloned().unwrap_or_else(|| {
            crate::diag::Diagnostic::error("the file is not an orchestra".to_string())
        });
        return Err(unreadable(&first));
    };
    let base = project
        .map(|p| p.root.clone())
        .unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    let root = crate::workspace::resolve_root(&base, &spec, flag).map_err(|d| {
        Failure::usage(format!("{} {}", d.position(), d.message).trim().to_string())
    })?;
    Ok((spec.id.to_string(), root))
}

/// The runs of the workspace at `root`, newest first.
pub(crate) fn runs_at(root: &Path) -> Result<Vec<RunEntry>, Failure> {
    list_runs(root).map_err(|e| {
        Failure::refused(format!(
            "failed to read the runs in `{}`: {e}",
            display_path(root)
        ))
    })
}

/// The run `given` names (default: the latest), or an error listing what exists.
pub(crate) fn pick<'a>(
    runs: &'a [RunEntry],
    given: Option<&str>,
    orchestra: &str,
    root: &Path,
) -> Result<&'a RunEntry, Failure> {
    find_run(runs, given).map_err(|error| match error {
        LookupError::NoRuns => Failure::usage(format!(
            "orchestra `{orchestra}` has no runs in `{}`",
            display_path(root)
        ))
        .hint(format!(
            "run it with `super orchestra run {orchestra} --goal \"...\"`"
        )),
        LookupError::Unknown {
            given,
            closest,
            known,
        } => {
            let listed = list_of(&known);
            Failure::usage(format!("orchestra `{orchestra}` has no run `{given}`")).hint(
                match closest {
                    Some(close) => format!("did you mean `{close}`? runs are: {listed}"),
                    None => format!("runs are: {listed}"),
                },
            )
        }
        LookupError::Ambiguous { given, matches } => Failure::usage(format!(
            "`{given}` is the start of {} runs of `{orchestra}`",
            matches.len()
        ))
        .hint(format!("give more of the id: {}", list_of(&matches))),
    })
}

/// Names in backticks, the first ten, then how many more.
fn list_of(names: &[String]) -> String {
    let mut shown: Vec<String> = names.iter().take(10).map(|n| format!("`{n}`")).collect();
    if names.len() > 10 {
        shown.push(format!("and {} more", names.len() - 10));
    }
    shown.join(", ")
}

/// A run's manifest, or the reason it cannot be read as an error.
pub(crate) fn manifest_of(run: &RunEntry) -> Result<&Manifest, Failure> {
    run.manifest.as_ref().map_err(|error| {
        Failure::refused(format!("run `{}` cannot be read: {error}", run.id))
            .hint("the other runs can still be read; `super orchestra runs` lists them")
    })
}

/// The task `given` names in a run, or an error with the closest name and the list.
pub(crate) fn task_of<'a>(
    manifest: &'a Manifest,
    given: &str,
) -> Result<&'a crate::workspace::TaskRecord, Failure> {
    let given = given.trim();
    if let Some(task) = manifest.tasks.iter().find(|t| t.name == given) {
        return Ok(task);
    }
    let names: Vec<String> = manifest.tasks.iter().map(|t| t.name.clone()).collect();
    let listed = list_of(&names);
    let hint = match crate::diag::did_you_mean(given, names.iter().map(String::as_str)) {
        Some(close) => format!("did you mean `{close}`? tasks are: {listed}"),
        None => format!("tasks are: {listed}"),
    };
    Err(Failure::usage(format!("run `{}` has no task `{given}`", manifest.run_id)).hint(hint))
}

/// Whether a process still holds the workspace (its lock file names a live process).
pub(crate) fn run_in_progress(root: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(root.join(".lock")) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A run's status as shown: `running` only while a process still holds its workspace; a
/// record left `running` by a process that is gone is `stopped` (killed before it could say).
pub(crate) fn status_text(run: &RunEntry, manifest: &Manifest) -> &'static str {
    match manifest.status {
        crate::workspace::RunStatus::Running if run.current && run_in_progress(&run.dir) => {
            "running"
        }
        crate::workspace::RunStatus::Running => "stopped",
        other => other.as_str(),
    }
}

/// `1.2s`, `2m03s`, `1h02m`.
pub(crate) fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    if seconds < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if seconds < 3600 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

/// `$0.0012`, or `-` for nothing.
pub(crate) fn cost(usd: f64) -> String {
    if usd <= 0.0 {
        "-".to_string()
    } else if usd < 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

/// `2026-11-24T10:15:00.123Z` as `2026-11-24 10:15:00`.
pub(crate) fn when(rfc3339: &str) -> String {
    let text = rfc3339.trim_end_matches('Z');
    let text = text.split('.').next().unwrap_or(text);
    text.replacen('T', " ", 1)
}

/// The width to cut lines to: `COLUMNS`, else stdout's terminal, else none.
pub(crate) fn width() -> Option<usize> {
    crate::report::terminal::stdout_width()
}

/// `text` on one line, cut to `max` characters with `…`.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else if max == 0 {
        String::new()
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

/// Text for the terminal: control characters escaped.
pub(crate) fn clean(text: &str) -> String {
    crate::sanitize::terminal(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_costs_read_well() {
        assert_eq!(duration(1234), "1.2s");
        assert_eq!(duration(123_000), "2m03s");
        assert_eq!(duration(3_720_000), "1h02m");
        assert_eq!(cost(0.0), "-");
        assert_eq!(cost(0.00123), "$0.0012");
        assert_eq!(when("2026-11-24T10:15:00.123Z"), "2026-11-24 10:15:00");
        assert_eq!(cut("a  b\nc", 10), "a b c");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
