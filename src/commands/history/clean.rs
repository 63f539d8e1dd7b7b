//! `orchestra clean NAME [--keep N] [--yes | --dry-run]`: deletes the oldest runs under
//! `history/`, keeping the newest N (the current run counted, and never deleted). It lists
//! what it would delete first; on a terminal it asks, `--yes` deletes without asking, and
//! without either (a script, a pipe) it deletes nothing. Deleting happens under the
//! workspace's lock, so never while a run is going.

use super::{clean as sanitized, duration};
use crate::cli::CleanArgs;
use crate::commands::{Context, Failure, Outcome, EXIT_OK};
use crate::source::display_path;
use crate::workspace::history::{size_of, RunEntry};
use crate::workspace::WorkspaceLock;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// The runs `--keep keep` deletes: those of `history/` past the newest `keep` (the current
/// run counts as one of them and is never chosen).
pub(crate) fn to_delete(runs: &[RunEntry], keep: usize) -> Vec<&RunEntry> {
    let keep = keep.max(1);
    let kept_current = usize::from(runs.iter().any(|r| r.current));
    runs.iter()
        .filter(|r| !r.current)
        .skip(keep.saturating_sub(kept_current))
        .collect()
}

/// `12.3 MB`, `4.0 KB`.
fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1_000_000.0)
    } else {
        format!("{:.1} KB", bytes as f64 / 1_000.0)
    }
}

/// The listing of what would go.
pub(crate) fn render_plan(doomed: &[(&RunEntry, u64)], kept: usize) -> String {
    let mut out = format!(
        "Would delete {} run{} ({}), keeping {kept}:\n",
        doomed.len(),
        if doomed.len() == 1 { "" } else { "s" },
        size(doomed.iter().map(|(_, b)| b).sum())
    );
    for (run, bytes) in doomed {
        let what = match &run.manifest {
            Ok(m) => format!(
                "{}, {} UTC, took {}",
                m.status.as_str(),
                super::when(&m.started_at),
                duration(m.duration_ms)
            ),
            Err(_) => "unreadable record".to_string(),
        };
        out.push_str(&format!(
            "  {}  {what}  {}  {}\n",
            run.id,
            size(*bytes),
            display_path(&run.dir)
        ));
    }
    out
}

/// Asks on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub fn clean(context: &Context, args: &CleanArgs) -> Outcome {
    let (orchestra, root) =
        super::workspace_of(context, &args.orchestra, args.workspace.as_deref())?;
    if !root.is_dir() {
        println!(
            "No runs of `{orchestra}` in {}: nothing to delete.",
            display_path(&root)
        );
        return Ok(EXIT_OK);
    }
    crate::workspace::root::check_own_folders(&root)
        .map_err(|d| Failure::refused(d.message.clone()))?;
    // The lock first: the runs listed are the runs deleted, and no run starts meanwhile.
    let lock = WorkspaceLock::acquire(&root).map_err(|e| {
        Failure::refused(e.to_string()).hint("clean deletes nothing while a run is going")
    })?;
    let runs = super::runs_at(&root)?;
    let doomed: Vec<(&RunEntry, u64)> = to_delete(&runs, args.keep)
        .into_iter()
        .map(|r| (r, size_of(&r.dir)))
        .collect();
    let kept = runs.len() - doomed.len();
    if doomed.is_empty() {
        println!(
            "Nothing to delete: `{orchestra}` has {} run{}, and --keep is {}.",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            args.keep.max(1)
        );
        return Ok(EXIT_OK);
    }
    print!("{}", sanitized(&render_plan(&doomed, kept)));
    if args.dry_run {
        println!("Dry run: nothing was deleted.");
        return Ok(EXIT_OK);
    }
    if !args.yes {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            println!("Nothing was deleted: pass --yes to delete them.");
            return Ok(EXIT_OK);
        }
        if !confirm(&format!("Delete these {} runs?", doomed.len())) {
            println!("Nothing was deleted.");
            return Ok(EXIT_OK);
        }
    }
    let history = root.join(crate::workspace::files::HISTORY);
    let mut freed = 0;
    let mut deleted = 0;
    let mut failures = Vec::new();
    for (run, bytes) in &doomed {
        // Only folders directly under history/: never the workspace itself.
        if run.current || run.dir.parent() != Some(history.as_path()) {
            continue;
        }
        match std::fs::remove_dir_all(&run.dir) {
            Ok(()) => {
                freed += bytes;
                deleted += 1;
            }
            Err(e) => failures.push(format!("{}: {e}", display_path(&run.dir))),
        }
    }
    drop(lock);
    println!(
        "Deleted {deleted} run{} ({}).",
        if deleted == 1 { "" } else { "s" },
        size(freed)
    );
    if failures.is_empty() {
        Ok(EXIT_OK)
    } else {
        Err(Failure::refused(format!(
            "failed to delete: {}",
            failures.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::history::RecordError;

    fn entry(id: &str, current: bool) -> RunEntry {
        RunEntry {
            id: id.into(),
            dir: std::path::PathBuf::new(),
            current,
            manifest: Err(RecordError::Missing {
                path: String::new(),
            }),
        }
    }

    #[test]
    fn keeps_the_newest_and_never_the_current() {
        let runs = vec![entry("c", true), entry("b", false), entry("a", false)];
        let ids = |keep| -> Vec<String> {
            to_delete(&runs, keep)
                .iter()
                .map(|r| r.id.clone())
                .collect()
        };
        assert_eq!(ids(1), ["b", "a"]);
        assert_eq!(ids(0), ["b", "a"]);
        assert_eq!(ids(2), ["a"]);
        assert!(ids(3).is_empty());
        let history_only = vec![entry("b", false), entry("a", false)];
        let ids: Vec<String> = to_delete(&history_only, 1)
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(ids, ["a"]);
    }
}
