//! `orchestra runs [NAME]`: the runs of an orchestra (or of every orchestra), newest first.

use super::{cost, cut, duration, status_text, when};
use crate::cli::{OutputFormat, RunsArgs};
use crate::commands::{Context, Outcome, EXIT_OK};
use crate::source::display_path;
use crate::workspace::history::RunEntry;
use serde::Serialize;

/// One line of the listing (and one object of `-o json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct RunSummary {
    pub orchestra: String,
    pub run_id: String,
    /// `running`, `succeeded`, `failed`, `interrupted`, `stopped` (its process is gone) or
    /// `unreadable` (see `error`).
    pub status: String,
    /// The run at the top of the workspace, not one under `history/`.
    pub current: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub succeeded: usize,
    pub failed: usize,
    pub cached: usize,
    pub skipped: usize,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub goal: String,
    /// The folder holding the run's files.
    pub dir: String,
    /// Why its `run.json` cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub(crate) fn summary(orchestra: &str, run: &RunEntry) -> RunSummary {
    let dir = display_path(&run.dir);
    match &run.manifest {
        Ok(m) => RunSummary {
            orchestra: orchestra.to_string(),
            run_id: run.id.clone(),
            status: status_text(run, m).to_string(),
            current: run.current,
            started_at: Some(m.started_at.clone()),
            duration_ms: Some(m.duration_ms),
            succeeded: m.totals.succeeded,
            failed: m.totals.failed,
            cached: m.totals.cached,
            skipped: m.totals.skipped,
            tokens_in: m.totals.tokens_in,
            tokens_out: m.totals.tokens_out,
            cost_usd: m.totals.cost_usd,
            goal: m.goal.clone(),
            dir,
            error: None,
        },
        Err(error) => RunSummary {
            orchestra: orchestra.to_string(),
            run_id: run.id.clone(),
            status: "unreadable".into(),
            current: run.current,
            started_at: None,
            duration_ms: None,
            succeeded: 0,
            failed: 0,
            cached: 0,
            skipped: 0,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            goal: String::new(),
            dir,
            error: Some(error.to_string()),
        },
    }
}

/// The table of one orchestra's runs; the goal column takes what `width` leaves.
pub(crate) fn render(runs: &[RunSummary], width: Option<usize>) -> String {
    let headers = [
        "RUN",
        "STATUS",
        "STARTED (UTC)",
        "TOOK",
        "OK",
        "FAILED",
        "CACHED",
        "TOKENS",
        "COST",
    ];
    let rows: Vec<[String; 9]> = runs
        .iter()
        .map(|r| {
            let id = if r.current {
                format!("{} *", r.run_id)
            } else {
                r.run_id.clone()
            };
            let unknown = r.error.is_some();
            let number = |n: usize| {
                if unknown {
                    "-".to_string()
                } else {
                    n.to_string()
                }
            };
            [
                id,
                r.status.clone(),
                r.started_at
                    .as_deref()
                    .map(when)
                    .unwrap_or_else(|| "-".into()),
                r.duration_ms.map(duration).unwrap_or_else(|| "-".into()),
                number(r.succeeded),
                number(r.failed),
                number(r.cached),
                if unknown {
                    "-".into()
                } else {
                    (r.tokens_in + r.tokens_out).to_string()
                },
                cost(r.cost_usd),
            ]
        })
        .collect();
    let widths = crate::report::terminal::column_widths(&headers, &rows);
    // Padded whole (the goal column follows).
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let used: usize = widths.iter().sum::<usize>() + 2 * widths.len();
    let goal_width = width.map(|w| w.saturating_sub(used).max(10));
    let goal = |text: &str| match goal_width {
        Some(w) => cut(text, w),
        None => cut(text, usize::MAX),
    };
    let mut out = String::new();
    out.push_str(&format!("{}  GOAL\n", line(&headers.map(str::to_string))));
    for (row, run) in rows.iter().zip(runs) {
        let last = match &run.error {
            Some(error) => goal(&format!("({error})")),
            None => goal(&run.goal),
        };
        out.push_str(format!("{}  {last}", line(row)).trim_end());
        out.push('\n');
    }
    out
}

pub fn runs(context: &Context, args: &RunsArgs) -> Outcome {
    // The orchestras to list: the one named, else every one of the project.
    let mut targets: Vec<(String, std::path::PathBuf)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    match &args.orchestra {
        Some(name) => targets.push(super::workspace_of(
            context,
            name,
            args.workspace.as_deref(),
        )?),
        None => {
            let project = context.project()?;
            for (id, path) in project.orchestra_ids() {
                match super::workspace_of_file(&path, Some(&project), None) {
                    Ok(target) => targets.push(target),
                    Err(failure) => problems.push(format!("{id}: {}", failure.message)),
                }
            }
        }
    }
    let mut all = Vec::new();
    let mut text = String::new();
    let several = args.orchestra.is_none();
    for (id, root) in &targets {
        let summaries: Vec<RunSummary> = super::runs_at(root)?
            .iter()
            .map(|run| summary(id, run))
            .collect();
        if several {
            if summaries.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("{id} ({})\n", display_path(root)));
        } else if summaries.is_empty() {
            text.push_str(&format!(
                "No runs of `{id}` in {} yet; start one with `super orchestra run {id} --goal \"...\"`.\n",
                display_path(root)
            ));
        }
        if !summaries.is_empty() {
            text.push_str(&render(&summaries, super::width()));
        }
        all.extend(summaries);
    }
    if several && all.is_empty() && args.output == OutputFormat::Text {
        text.push_str("No runs in this project yet.\n");
    }
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&all).unwrap_or_else(|_| "[]".into())
        ),
        OutputFormat::Text => {
            print!("{}", super::clean(&text));
            if all.iter().any(|r| r.current) {
                println!("* the current run (the others are under history/)");
            }
        }
    }
    for problem in problems {
        eprintln!("warning: {}", super::clean(&problem));
    }
    Ok(EXIT_OK)
}
