//! `orchestra show NAME [RUN]`: one run's record in words.

use super::{cost, duration, status_text, when};
use crate::cli::{OutputFormat, ShowArgs};
use crate::commands::{Context, Outcome, EXIT_OK};
use crate::source::display_path;
use crate::workspace::history::RunEntry;
use crate::workspace::{AttemptRecord, Manifest, TaskRecord, TaskStatus};
use std::path::Path;

/// How many lines of the final result `show` prints.
const RESULT_LINES: usize = 10;

/// The files of a task that exist in the run's folder, as (label, path).
pub(crate) fn task_files(dir: &Path, task: &TaskRecord) -> Vec<(&'static str, std::path::PathBuf)> {
    let outputs = dir.join(crate::workspace::files::TASK_OUTPUTS);
    let name = &task.name;
    [
        ("output", format!("{name}_output.txt")),
        ("object", format!("{name}_output.json")),
        ("prompt", format!("{name}_prompt.md")),
        ("errors", format!("{name}_error.txt")),
        ("streamed", format!("{name}_output.partial")),
    ]
    .into_iter()
    .map(|(label, file)| (label, outputs.join(file)))
    .filter(|(_, path)| path.is_file())
    // A failed task's `_output.txt` is its error log, listed as `errors`.
    .filter(|(label, _)| *label != "output" || task.status.has_output())
    .collect()
}

fn mark(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Succeeded => "✓",
        TaskStatus::Cached => "↺",
        TaskStatus::Failed => "✗",
        TaskStatus::Skipped => "-",
        TaskStatus::Running => "…",
        TaskStatus::Pending => "·",
    }
}

/// One attempt in words: `attempt 2: failed after 0.3s: HTTP 500 ... (retried in 0.1s)`.
pub(crate) fn attempt_line(attempt: &AttemptRecord) -> String {
    let tokens = attempt.tokens_in + attempt.tokens_out;
    let mut line = format!("attempt {}: ", attempt.number);
    if attempt.ok {
        line.push_str(&format!("succeeded in {}", duration(attempt.duration_ms)));
    } else {
        line.push_str(&format!("failed after {}", duration(attempt.duration_ms)));
        if let Some(error) = &attempt.error {
            line.push_str(&format!(": {error}"));
        }
    }
    if tokens > 0 {
        line.push_str(&format!(", {tokens} tokens"));
    }
    if attempt.calls.len() > 1 {
        line.push_str(&format!(", {} calls", attempt.calls.len()));
    }
    if !attempt.tool_calls.is_empty() {
        line.push_str(&format!(", {} tool calls", attempt.tool_calls.len()));
    }
    line
}

/// The run in words; `dir` is where its files are.
pub(crate) fn render(run: &RunEntry, manifest: &Manifest, orchestra: &str) -> String {
    let m = manifest;
    let mut out = String::new();
    let place = if run.current { "current" } else { "history" };
    out.push_str(&format!("Run {} of {orchestra} ({place})\n", m.run_id));
    let status = status_text(run, m);
    match &m.stop_reason {
        Some(reason) => out.push_str(&format!("  status    {status}: {reason}\n")),
        None => out.push_str(&format!("  status    {status}\n")),
    }
    out.push_str(&format!("  goal      {}\n", m.goal.trim()));
    out.push_str(&format!(
        "  started   {} UTC, took {}\n",
        when(&m.started_at),
        duration(m.duration_ms)
    ));
    out.push_str(&format!("  strategy  {}\n", m.strategy));
    out.push_str(&format!("  files     {}\n", display_path(&run.dir)));
    let t = &m.totals;
    out.push_str(&format!(
        "  tasks     {} succeeded, {} failed, {} cached, {} skipped\n",
        t.succeeded, t.failed, t.cached, t.skipped
    ));
    out.push_str(&format!(
        "  usage     {} tokens ({} in, {} out), {} LLM call{}, cost {}\n",
        t.tokens_in + t.tokens_out,
        t.tokens_in,
        t.tokens_out,
        t.llm_calls,
        if t.llm_calls == 1 { "" } else { "s" },
        cost(t.cost_usd)
    ));

    // Each agent's provider and model, in the order they first appear.
    let mut agents: Vec<(String, String)> = Vec::new();
    for task in &m.tasks {
        let model = format!("{} {}", task.provider, task.model);
        if !agents
            .iter()
            .any(|(a, mm)| *a == task.agent && *mm == model)
        {
            agents.push((task.agent.clone(), model));
        }
    }
    if let Some(manager) = &m.manager {
        agents.push((
            format!("{} (manager)", manager.agent),
            format!("{} {}", manager.provider, manager.model),
        ));
    }
    out.push_str("\nAgents\n");
    let agent_width = agents
        .iter()
        .map(|(a, _)| a.chars().count())
        .max()
        .unwrap_or(0);
    for (agent, model) in &agents {
        out.push_str(&format!("  {agent:<agent_width$}  {model}\n"));
    }

    out.push_str("\nTasks\n");
    for task in &m.tasks {
        let mut head = format!(
            "  {} {}  {}",
            mark(task.status),
            task.name,
            task.status.as_str()
        );
        if task.started_unix_ms.is_some() && task.status != TaskStatus::Skipped {
            head.push_str(&format!("  {}", duration(task.duration_ms)));
        }
        let tokens = task.tokens_in + task.tokens_out;
        if tokens > 0 {
            head.push_str(&format!("  {tokens} tokens"));
        }
        if task.cost_usd > 0.0 {
            head.push_str(&format!("  {}", cost(task.cost_usd)));
        }
        head.push_str(&format!("  ({})", task.agent));
        out.push_str(&head);
        out.push('\n');
        if task.status == TaskStatus::Cached {
            out.push_str("      reused from the cache: no call was made\n");
        }
        for attempt in &task.attempts {
            out.push_str(&format!("      {}\n", attempt_line(attempt)));
        }
        if let Some(reason) = &task.reason {
            out.push_str(&format!("      reason: {reason}\n"));
        }
        for (label, path) in task_files(&run.dir, task) {
            out.push_str(&format!("      {label:<8}  {}\n", display_path(&path)));
        }
    }

    if let Some(manager) = &m.manager {
        out.push_str(&format!(
            "\nManager\n  plan      {} assignments, {} dropped\n  reviews   {}\n",
            manager.plan.len(),
            manager.dropped.len(),
            manager.reviews.len()
        ));
        for fallback in &manager.fallbacks {
            out.push_str(&format!("  fallback  {fallback}\n"));
        }
    }

    let result = run.dir.join(crate::workspace::files::FINAL_OUTPUT);
    if let Ok(text) = std::fs::read_to_string(&result) {
        let lines: Vec<&str> = text.lines().collect();
        let shown = lines.len().min(RESULT_LINES);
        out.push_str(&format!(
            "\nFinal result ({}{})\n",
            display_path(&result),
            if lines.len() > shown {
                format!(", the first {shown} of {} lines", lines.len())
            } else {
                String::new()
            }
        ));
        for line in &lines[..shown] {
            out.push_str(&format!("  {line}\n").replace("  \n", "\n"));
        }
    } else {
        out.push_str("\nNo final result.\n");
    }
    out
}

pub fn show(context: &Context, args: &ShowArgs) -> Outcome {
    let (orchestra, root) =
        super::workspace_of(context, &args.orchestra, args.workspace.as_deref())?;
    let runs = super::runs_at(&root)?;
    let run = super::pick(&runs, args.run.as_deref(), &orchestra, &root)?;
    let manifest = super::manifest_of(run)?;
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(manifest).unwrap_or_else(|_| "{}".into())
        ),
        OutputFormat::Text => print!("{}", super::clean(&render(run, manifest, &orchestra))),
    }
    Ok(EXIT_OK)
}
