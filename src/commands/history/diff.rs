//! `orchestra diff NAME RUN_A RUN_B`: which tasks' prompts, models or outputs changed between
//! two runs, with a unified diff of each changed output.
//!
//! A prompt is compared by its file (`<task>_prompt.md`) when both runs wrote one; a task
//! reused from the cache writes none, so then by the key of its inputs (`cache_key`: the
//! model, the whole request and its context's hashes), which is equal exactly when the
//! request is. `succeeded` and `cached` count as the same outcome.

use super::logs::TaskFiles;
use crate::cli::{DiffArgs, OutputFormat};
use crate::commands::{Context, Outcome, EXIT_OK};
use crate::workspace::history::RunEntry;
use crate::workspace::{Manifest, TaskRecord};
use serde::Serialize;

/// What changed about one task.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub(crate) struct TaskChange {
    pub task: String,
    /// `changed`, `added` (only in B), `removed` (only in A) or `same`.
    pub change: &'static str,
    pub prompt_changed: bool,
    /// `provider model` in A and in B, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<(String, String)>,
    /// The status in A and in B, when one has an output and the other not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<(String, String)>,
    pub output_changed: bool,
    /// The unified diff of the outputs, when they changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_diff: Option<String>,
}

/// Two runs compared.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunDiff {
    pub run_a: String,
    pub run_b: String,
    /// The goals, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<(String, String)>,
    /// The orchestra file changed between the runs (its sha256).
    pub orchestra_changed: bool,
    pub tasks: Vec<TaskChange>,
}

fn model(record: &TaskRecord) -> String {
    format!("{} {}", record.provider, record.model)
}

/// Compares one task present in both runs.
fn compare(
    a: &TaskRecord,
    b: &TaskRecord,
    files_a: &TaskFiles,
    files_b: &TaskFiles,
    labels: (&str, &str),
) -> TaskChange {
    let prompt_changed = match (&files_a.prompt, &files_b.prompt) {
        (Some((_, pa)), Some((_, pb))) => pa != pb,
        _ => match (&a.cache_key, &b.cache_key) {
            (Some(ka), Some(kb)) => ka != kb,
            _ => false,
        },
    };
    let model = (model(a) != model(b)).then(|| (model(a), model(b)));
    let status = (a.status.has_output() != b.status.has_output())
        .then(|| (a.status.as_str().to_string(), b.status.as_str().to_string()));
    let out_a = files_a.output.as_ref().map(|(_, t)| t.as_str());
    let out_b = files_b.output.as_ref().map(|(_, t)| t.as_str());
    let output_changed = out_a != out_b;
    let output_diff = output_changed.then(|| {
        similar::TextDiff::from_lines(out_a.unwrap_or(""), out_b.unwrap_or(""))
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("{}/{}", labels.0, a.name),
                &format!("{}/{}", labels.1, b.name),
            )
            .to_string()
    });
    let changed = prompt_changed || model.is_some() || status.is_some() || output_changed;
    TaskChange {
        task: a.name.clone(),
        change: if changed { "changed" } else { "same" },
        prompt_changed,
        model,
        status,
        output_changed,
        output_diff,
    }
}

/// Compares two runs task by task: B's tasks in its order, then those only A ran.
pub(crate) fn diff(run_a: &RunEntry, a: &Manifest, run_b: &RunEntry, b: &Manifest) -> RunDiff {
    let labels = (a.run_id.as_str(), b.run_id.as_str());
    let mut tasks = Vec::new();
    for tb in &b.tasks {
        let files_b = TaskFiles::read(&run_b.dir, &tb.name);
        match a.tasks.iter().find(|t| t.name == tb.name) {
            Some(ta) => {
                let files_a = TaskFiles::read(&run_a.dir, &ta.name);
                tasks.push(compare(ta, tb, &files_a, &files_b, labels));
            }
            None => tasks.push(TaskChange {
                task: tb.name.clone(),
                change: "added",
                ..TaskChange::default()
            }),
        }
    }
    for ta in &a.tasks {
        if !b.tasks.iter().any(|t| t.name == ta.name) {
            tasks.push(TaskChange {
                task: ta.name.clone(),
                change: "removed",
                ..TaskChange::default()
            });
        }
    }
    RunDiff {
        run_a: a.run_id.clone(),
        run_b: b.run_id.clone(),
        goal: (a.goal != b.goal).then(|| (a.goal.clone(), b.goal.clone())),
        orchestra_changed: a.orchestra.sha256 != b.orchestra.sha256,
        tasks,
    }
}

/// The comparison in words, then each changed output's diff.
pub(crate) fn render(diff: &RunDiff) -> String {
    let mut out = format!(
        "Comparing run {} (A) with run {} (B)\n",
        diff.run_a, diff.run_b
    );
    match &diff.goal {
        Some((a, b)) => out.push_str(&format!("  goal       changed: `{a}` -> `{b}`\n")),
        None => out.push_str("  goal       the same\n"),
    }
    out.push_str(if diff.orchestra_changed {
        "  orchestra  the file changed between the runs\n"
    } else {
        "  orchestra  the same file\n"
    });
    let changed: Vec<&TaskChange> = diff.tasks.iter().filter(|t| t.change != "same").collect();
    let same: Vec<&str> = diff
        .tasks
        .iter()
        .filter(|t| t.change == "same")
        .map(|t| t.task.as_str())
        .collect();
    if changed.is_empty() {
        out.push_str("\nNo task changed.\n");
    } else {
        out.push_str(&format!(
            "\nChanged ({} of {} tasks)\n",
            changed.len(),
            diff.tasks.len()
        ));
        let width = changed
            .iter()
            .map(|t| t.task.chars().count())
            .max()
            .unwrap_or(0);
        for t in &changed {
            let mut what = Vec::new();
            match t.change {
                "added" => what.push("only in B".to_string()),
                "removed" => what.push("only in A".to_string()),
                _ => {}
            }
            if t.prompt_changed {
                what.push("prompt".into());
            }
            if let Some((a, b)) = &t.model {
                what.push(format!("model {a} -> {b}"));
            }
            if let Some((a, b)) = &t.status {
                what.push(format!("status {a} -> {b}"));
            }
            if t.output_changed {
                what.push("output".into());
            }
            out.push_str(&format!("  {:<width$}  {}\n", t.task, what.join(", ")));
        }
    }
    if !same.is_empty() {
        out.push_str(&format!("\nUnchanged: {}\n", same.join(", ")));
    }
    for t in &changed {
        if let Some(text) = &t.output_diff {
            out.push_str(&format!("\n── output of {} ──\n", t.task));
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

pub fn diff_runs(context: &Context, args: &DiffArgs) -> Outcome {
    let (orchestra, root) =
        super::workspace_of(context, &args.orchestra, args.workspace.as_deref())?;
    let runs = super::runs_at(&root)?;
    let run_a = super::pick(&runs, Some(&args.run_a), &orchestra, &root)?;
    let run_b = super::pick(&runs, Some(&args.run_b), &orchestra, &root)?;
    let a = super::manifest_of(run_a)?;
    let b = super::manifest_of(run_b)?;
    let result = diff(run_a, a, run_b, b);
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_else(|_| "{}".into())
        ),
        OutputFormat::Text => print!("{}", super::clean(&render(&result))),
    }
    Ok(EXIT_OK)
}
