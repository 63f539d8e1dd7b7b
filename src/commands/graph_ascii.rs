//! `orchestra graph --format ascii`: the task graph drawn in the terminal. Tasks in start
//! order, each indented by its depth (the longest chain of prerequisites before it) under a
//! `└─▶`, with what it waits for when that is not obvious from the line above; with `--run`,
//! each task's status and duration.

use super::orchestra::RunStates;
use crate::load::Loaded;

fn mark(class: &str) -> &'static str {
    match class {
        "succeeded" => "✓",
        "cached" => "↺",
        "failed" => "✗",
        "skipped" => "-",
        "running" => "…",
        _ => "·",
    }
}

/// The drawing; `run` adds each task's status and duration.
pub(crate) fn render(loaded: &Loaded, run: Option<&RunStates>) -> String {
    let tasks = &loaded.spec.tasks;
    let plan = &loaded.plan;
    let mut depth = vec![0usize; tasks.len()];
    for &i in &plan.order {
        depth[i] = plan.deps[i]
            .iter()
            .map(|&j| depth[j] + 1)
            .max()
            .unwrap_or(0);
    }
    let names: Vec<String> = plan
        .order
        .iter()
        .map(|&i| {
            let name = tasks[i].name.as_str();
            match depth[i] {
                0 => name.to_string(),
                d => format!("{}└─▶ {name}", "    ".repeat(d - 1)),
            }
        })
        .collect();
    let details: Vec<String> = plan
        .order
        .iter()
        .map(|&i| {
            let task = &tasks[i];
            match run {
                Some(run) => format!(
                    "{} {}",
                    mark(run.class(task.name.as_str())),
                    run.label(task.name.as_str())
                ),
                None => format!("{} · {}", task.agent, task.priority.as_str()),
            }
        })
        .collect();
    let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let detail_width = details.iter().map(|d| d.chars().count()).max().unwrap_or(0);
    let mut out = match run {
        Some(run) => format!("{} (run {})\n", loaded.spec.id, run.run_id),
        None => format!("{}\n", loaded.spec.id),
    };
    let mut previous: Option<usize> = None;
    for (row, &i) in plan.order.iter().enumerate() {
        // Its prerequisites are spelled out unless it has one, drawn just above it.
        let deps = &plan.deps[i];
        let obvious = deps.is_empty() || (deps.len() == 1 && previous == Some(deps[0]));
        let after = if obvious {
            String::new()
        } else {
            let list: Vec<&str> = deps.iter().map(|&j| tasks[j].name.as_str()).collect();
            format!("  ◀ after {}", list.join(", "))
        };
        let line = format!(
            "  {:<name_width$}  {:<detail_width$}{after}",
            names[row], details[row]
        );
        out.push_str(line.trim_end());
        out.push('\n');
        previous = Some(i);
    }
    out
}
