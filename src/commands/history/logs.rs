//! `orchestra logs NAME TASK [--run RUN] [--follow]`: a task's prompt, each attempt, and its
//! output or error, in order. `--follow` on the run in progress prints the task's
//! `<task>_output.partial` (what it streams, written by `workspace::partial`) as it grows,
//! until the task's output or error file appears or the run ends.

use super::show::attempt_line;
use super::{duration, run_in_progress};
use crate::cli::LogsArgs;
use crate::commands::{Context, Failure, Outcome, EXIT_OK};
use crate::source::display_path;
use crate::workspace::history::RunEntry;
use crate::workspace::{Manifest, RunStatus, TaskRecord, TaskStatus};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often `--follow` looks for new text.
const POLL: Duration = Duration::from_millis(100);

/// A task's files in a run's folder, read.
#[derive(Debug, Default)]
pub(crate) struct TaskFiles {
    pub prompt: Option<(PathBuf, String)>,
    pub output: Option<(PathBuf, String)>,
    pub errors: Option<(PathBuf, String)>,
    pub streamed: Option<(PathBuf, String)>,
}

fn read(path: PathBuf) -> Option<(PathBuf, String)> {
    let bytes = std::fs::read(&path).ok()?;
    Some((path, String::from_utf8_lossy(&bytes).into_owned()))
}

impl TaskFiles {
    pub(crate) fn read(dir: &Path, task: &str) -> TaskFiles {
        let outputs = dir.join(crate::workspace::files::TASK_OUTPUTS);
        TaskFiles {
            prompt: read(outputs.join(format!("{task}_prompt.md"))),
            // A failed task's `_output.txt` is its error log (shown from `_error.txt`).
            output: read(outputs.join(format!("{task}_output.txt")))
                .filter(|(_, text)| !text.starts_with(crate::exec::dispatcher::FAILED_HEADING)),
            errors: read(outputs.join(format!("{task}_error.txt"))),
            streamed: read(outputs.join(format!("{task}_output.partial"))),
        }
    }
}

/// A blank line before each section but the first.
fn gap(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

fn section(out: &mut String, title: &str, path: &Path, text: &str) {
    gap(out);
    out.push_str(&format!("── {title} ({}) ──\n", display_path(path)));
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}

fn heading(manifest: &Manifest, task: &TaskRecord) -> String {
    let mut line = format!(
        "Task {} of run {}: {}",
        task.name,
        manifest.run_id,
        task.status.as_str()
    );
    if task.started_unix_ms.is_some() && task.status != TaskStatus::Skipped {
        line.push_str(&format!(" in {}", duration(task.duration_ms)));
    }
    line.push_str(&format!(
        " ({}, {} {})\n",
        task.agent, task.provider, task.model
    ));
    line
}

/// The task's log: its prompt, each attempt, then its output (or errors).
pub(crate) fn render(manifest: &Manifest, task: &TaskRecord, files: &TaskFiles) -> String {
    let mut out = heading(manifest, task);
    match &files.prompt {
        Some((path, text)) => section(&mut out, "prompt", path, text),
        None if task.status == TaskStatus::Cached => out
            .push_str("\n── prompt ──\n(reused from the cache: no prompt was sent in this run)\n"),
        None => out.push_str("\n── prompt ──\n(none written: the task did not start)\n"),
    }
    if !task.attempts.is_empty() {
        gap(&mut out);
        out.push_str("── attempts ──\n");
        for attempt in &task.attempts {
            out.push_str(&attempt_line(attempt));
            out.push('\n');
        }
    }
    if let Some(reason) = &task.reason {
        out.push_str(&format!("reason: {reason}\n"));
    }
    if let Some((path, text)) = &files.streamed {
        section(&mut out, "streamed before the run stopped", path, text);
    }
    if let Some((path, text)) = &files.output {
        section(&mut out, "output", path, text);
    }
    if let Some((path, text)) = &files.errors {
        section(&mut out, "errors", path, text);
    }
    out
}

pub fn logs(context: &Context, args: &LogsArgs) -> Outcome {
    let (orchestra, root) =
        super::workspace_of(context, &args.orchestra, args.workspace.as_deref())?;
    let mut runs = super::runs_at(&root)?;
    if args.follow && args.run.is_none() {
        runs = starting_run(&root, runs)?;
    }
    let run = super::pick(&runs, args.run.as_deref(), &orchestra, &root)?;
    let manifest = super::manifest_of(run)?;
    let task = super::task_of(manifest, &args.task)?;
    let live = run.current && manifest.status == RunStatus::Running && run_in_progress(&run.dir);
    if args.follow && live {
        return follow(run, manifest, task);
    }
    if args.follow {
        eprintln!(
            "note: run `{}` is not in progress; here is what it recorded",
            run.id
        );
    }
    let files = TaskFiles::read(&run.dir, &task.name);
    print!("{}", super::clean(&render(manifest, task, &files)));
    Ok(EXIT_OK)
}

/// How long `--follow` waits for a run that holds the workspace to record itself.
const STARTING: Duration = Duration::from_secs(10);

/// The runs, once a run that holds the workspace but has not yet written its `run.json` (it
/// is moving the last run aside, or starting its MCP servers) has written it: `logs --follow`
/// typed just after `run` follows the new run, not the one before. Gives up after `STARTING`.
fn starting_run(root: &Path, mut runs: Vec<RunEntry>) -> Result<Vec<RunEntry>, Failure> {
    let started = std::time::Instant::now();
    let recorded = |runs: &[RunEntry]| {
        runs.first().is_some_and(|r| {
            r.current
                && r.manifest
                    .as_ref()
                    .is_ok_and(|m| m.status == RunStatus::Running)
        })
    };
    let mut told = false;
    while run_in_progress(root) && !recorded(&runs) && started.elapsed() < STARTING {
        if !told {
            eprintln!("waiting for the run that is starting…");
            told = true;
        }
        std::thread::sleep(POLL);
        runs = super::runs_at(root)?;
    }
    Ok(runs)
}

fn print_now(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(super::clean(text).as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::refused(format!("failed to print: {e}")))
}

/// The task's record in the run's latest `run.json`, if it is still this run's.
fn latest(run: &RunEntry, run_id: &str, task: &str) -> Option<(Manifest, TaskRecord)> {
    let manifest =
        crate::workspace::history::read_manifest(&run.dir.join(crate::workspace::files::MANIFEST))
            .ok()
            .filter(|m| m.run_id == run_id)?;
    let record = manifest.tasks.iter().find(|t| t.name == task)?.clone();
    Some((manifest, record))
}

/// Prints the task's prompt when it starts, then its streamed text as it is written, until
/// its output or error file appears, its record ends or the run does.
fn follow(run: &RunEntry, manifest: &Manifest, task: &TaskRecord) -> Outcome {
    let name = task.name.clone();
    let files = run.files();
    let outputs = run.dir.join(crate::workspace::files::TASK_OUTPUTS);
    let prompt_path = outputs.join(format!("{name}_prompt.md"));
    let output_path = outputs.join(format!("{name}_output.txt"));
    let error_path = outputs.join(format!("{name}_error.txt"));
    let partial_path = files.task_partial(&name);
    print_now(&heading(manifest, task))?;
    let mut prompt_shown = false;
    let mut streamed = false;
    let mut stream: Option<std::fs::File> = None;
    let mut told_waiting = false;
    let mut buffer = Vec::new();
    let drain = |stream: &mut Option<std::fs::File>, buffer: &mut Vec<u8>| {
        if let Some(file) = stream {
            // Display only: a failed read is tried again at the next poll, and the task's
            // files (read whole at the end) hold everything.
            let _ = file.read_to_end(buffer);
        }
        // Only whole UTF-8 characters are printed; a cut one waits for its rest.
        let valid = match std::str::from_utf8(buffer) {
            Ok(text) => text.len(),
            Err(error) => error.valid_up_to(),
        };
        let text = String::from_utf8_lossy(&buffer[..valid]).into_owned();
        buffer.drain(..valid);
        text
    };
    let record = loop {
        let (current, record) = latest(run, &manifest.run_id, &name).unzip();
        let ended_run = current
            .as_ref()
            .is_none_or(|m| m.status != RunStatus::Running)
            || !run_in_progress(&run.dir);
        if !prompt_shown {
            if let Ok(text) = std::fs::read_to_string(&prompt_path) {
                let mut out = String::new();
                section(&mut out, "prompt", &prompt_path, &text);
                print_now(&out)?;
                prompt_shown = true;
            }
        }
        if stream.is_none() {
            if let Ok(file) = std::fs::File::open(&partial_path) {
                stream = Some(file);
                print_now(&format!(
                    "── output, as it streams ({}) ──\n",
                    display_path(&partial_path)
                ))?;
            }
        }
        let text = drain(&mut stream, &mut buffer);
        if !text.is_empty() {
            streamed = true;
            print_now(&text)?;
        }
        let status = record.as_ref().map(|r| r.status);
        // A task whose stream is open is done when the writer removed the file (after
        // writing all of it); one that never streamed, when its files or record say so.
        let done = ended_run
            || match stream {
                Some(_) => !partial_path.exists(),
                None => {
                    output_path.is_file()
                        || error_path.is_file()
                        || matches!(
                            status,
                            Some(
                                TaskStatus::Succeeded
                                    | TaskStatus::Failed
                                    | TaskStatus::Skipped
                                    | TaskStatus::Cached
                            )
                        )
                }
            };
        if done {
            // What was written before the end.
            let text = drain(&mut stream, &mut buffer);
            if !text.is_empty() {
                streamed = true;
                print_now(&text)?;
            }
            break record;
        }
        if !told_waiting && status == Some(TaskStatus::Pending) && !prompt_shown {
            eprintln!("waiting for task `{name}` to start…");
            told_waiting = true;
        }
        std::thread::sleep(POLL);
    };
    let mut out = String::new();
    if streamed {
        out.push('\n');
    }
    // The files are complete once they exist (written atomically).
    let after = TaskFiles::read(&run.dir, &name);
    match (&after.output, &after.errors) {
        (Some((path, text)), _) if !streamed => section(&mut out, "output", path, text),
        (Some((path, _)), _) => out.push_str(&format!(
            "── the task finished; its output is in {} ──\n",
            display_path(path)
        )),
        (None, Some((path, text))) => section(&mut out, "errors", path, text),
        (None, None) => match record {
            Some(r) if r.status == TaskStatus::Skipped => out.push_str(&format!(
                "── skipped: {} ──\n",
                r.reason.as_deref().unwrap_or("the run stopped")
            )),
            _ => out.push_str("── the run ended before the task finished ──\n"),
        },
    }
    print_now(&out)?;
    Ok(EXIT_OK)
}
