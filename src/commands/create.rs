//! `orchestra create NAME`: an orchestra in the seed's layout from the project's agents, one
//! task per playbook task, each building on the one before. Every file it writes passes
//! `validate`, including the one for a project with no agents yet.

use super::{Context, Failure, Outcome, EXIT_OK};
use crate::cli::{CreateArgs, StrategyArg};
use crate::diag::Diagnostics;
use crate::load::load_agent;
use crate::spec::AgentSpec;
use crate::workspace::write_atomic;
use std::fmt::Write as _;

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct PlannedTask {
    name: String,
    agent: String,
    description: String,
}

fn describe(agent: &AgentSpec, task: &crate::spec::AgentTaskSpec) -> String {
    let role = agent
        .persona
        .role
        .clone()
        .unwrap_or_else(|| crate::spec::orchestra::title_case(agent.name.as_str()));
    let what = task
        .description
        .as_deref()
        .or(task.instruction.as_deref())
        .map(clean)
        .unwrap_or_else(|| format!("Carry out `{}`", task.name));
    let what = what.trim_end_matches('.').to_string();
    format!("As the {role}, work towards this goal: '{{goal}}'. {what}.")
}

pub fn create(context: &Context, args: &CreateArgs) -> Outcome {
    let id = args.name.trim().to_lowercase().replace(' ', "_");
    if let Some(reason) = crate::names::unsafe_reason(&id) {
        return Err(Failure::usage(format!(
            "`{}` cannot be an orchestra id: {reason}",
            args.name.escape_debug()
        ))
        .hint("use letters, digits and underscores, for example `sdlc`"));
    }
    if !id
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Failure::usage(format!(
            "`{}` cannot be an orchestra id: use letters, digits, `_` and `-` only",
            args.name
        ))
        .hint("for example `sdlc` or `content_pipeline`"));
    }
    let project = context.project()?;
    let available = project.list_agents();
    let chosen: Vec<(String, std::path::PathBuf)> = if args.agents.is_empty() {
        available.clone()
    } else {
        let mut chosen = Vec::new();
        for raw in &args.agents {
            let name = raw.trim().to_lowercase();
            if name.is_empty() {
                continue;
            }
            match available.iter().find(|(n, _)| *n == name) {
                Some(found) => {
                    if !chosen.iter().any(|(n, _): &(String, _)| *n == name) {
                        chosen.push(found.clone());
                    }
                }
                None => {
                    let hint = if crate::library::find(&name).is_some() {
                        format!(
                            "it is in the built-in library: run `super agent pull {name}` first"
                        )
                    } else if available.is_empty() {
                        "the project has no agents; `super agent list` shows the built-in library"
                            .to_string()
                    } else {
                        format!(
                            "the project's agents are: {}",
                            available
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    return Err(Failure::usage(format!(
                        "agent `{name}` has no playbook in this project"
                    ))
                    .hint(hint));
                }
            }
        }
        chosen
    };

    let mut diags = Diagnostics::default();
    let mut agents: Vec<AgentSpec> = Vec::new();
    for (name, path) in &chosen {
        if let Some(agent) = load_agent(path, name, &mut diags) {
            agents.push(agent);
        }
    }
    if diags.has_errors() {
        context.print_diagnostics(&diags);
        return Err(Failure::usage(
            "an agent's playbook is invalid; fix it before creating an orchestra",
        ));
    }

    let mut tasks: Vec<PlannedTask> = Vec::new();
    for agent in &agents {
        let playbook_tasks: Vec<crate::spec::AgentTaskSpec> = if agent.tasks.is_empty() {
            vec![crate::spec::AgentTaskSpec {
                name: format!("{}_task", agent.name),
                ..Default::default()
            }]
        } else {
            agent.tasks.clone()
        };
        for task in &playbook_tasks {
            let mut name = task.name.trim().to_string();
            if crate::names::unsafe_reason(&name).is_some() {
                name = format!("{}_task", agent.name);
            }
            if tasks.iter().any(|t| t.name == name) {
                name = format!("{}_{name}", agent.name);
            }
            let mut unique = name.clone();
            let mut n = 2;
            while tasks.iter().any(|t| t.name == unique) {
                unique = format!("{name}_{n}");
                n += 1;
            }
            tasks.push(PlannedTask {
                name: unique,
                agent: agent.name.to_string(),
                description: describe(agent, task),
            });
        }
    }

    let file = project
        .default_orchestras_dir()
        .join(format!("{id}_orchestra.yaml"));
    if file.exists() && !args.force {
        return Err(Failure::refused(format!(
            "`{}` already exists; nothing was written",
            crate::source::display_path(&file)
        ))
        .hint("pass `--force` to overwrite it"));
    }
    let strategy = match args.strategy {
        StrategyArg::Sequential => "sequential",
        StrategyArg::Parallel => "parallel",
        StrategyArg::Mixed => "mixed",
        StrategyArg::Hierarchical => {
            return Err(Failure::usage(
                "`orchestra create` writes sequential, parallel or mixed orchestras",
            ));
        }
    };
    let yaml = render(&id, strategy, &agents, &tasks);
    let io =
        |e: std::io::Error| Failure::refused(format!("failed to write `{}`: {e}", file.display()));
    std::fs::create_dir_all(project.default_orchestras_dir()).map_err(io)?;
    write_atomic(&file, yaml.as_bytes()).map_err(io)?;
    let workspace = project.root.join("orchestra_workspaces").join(&id);
    std::fs::create_dir_all(&workspace).map_err(|e| {
        Failure::refused(format!("failed to create `{}`: {e}", workspace.display()))
    })?;

    if agents.is_empty() {
        println!("⚠️  No agents found in the project: wrote an orchestra with no tasks and commented placeholders.");
        println!("   Pull agents from the built-in library: super agent pull developer devops_engineer qa_engineer");
        println!("   then rerun: super orchestra create {id} --force");
    } else {
        println!(
            "🔎 Found {} agent(s): {}",
            agents.len(),
            agents
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "📋 {} task(s): {}",
            tasks.len(),
            tasks
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(" -> ")
        );
    }
    println!("✅ Wrote {}", crate::source::display_path(&file));
    println!("📁 Workspace: {}", crate::source::display_path(&workspace));
    println!("\nNext: super orchestra run {id} --goal \"...\"");
    Ok(EXIT_OK)
}

fn render(id: &str, strategy: &str, agents: &[AgentSpec], tasks: &[PlannedTask]) -> String {
    let name = format!("{} Orchestra", crate::spec::orchestra::title_case(id));
    let description = if agents.is_empty() {
        "An orchestra waiting for agents: pull some with `super agent pull`, then recreate it."
            .to_string()
    } else {
        format!(
            "{} working together on a goal, each building on the previous task's output.",
            agents
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let created_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let max_parallel = if strategy == "sequential" { 1 } else { 3 };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {id}_orchestra.yaml, written by `super orchestra create {id}`."
    );
    let _ = writeln!(
        out,
        "# Edit the task descriptions to fit your goal; `{{goal}}` is replaced at run time."
    );
    let _ = writeln!(out, "# Check it with `super orchestra validate {id}`.\n");
    let _ = writeln!(out, "metadata:");
    let _ = writeln!(out, "  name: {}", quoted(&name));
    let _ = writeln!(out, "  id: {}", quoted(id));
    let _ = writeln!(out, "  version: \"1.0.0\"");
    let _ = writeln!(out, "  kind: \"basic\"");
    let _ = writeln!(out, "  description: {}", quoted(&description));
    let _ = writeln!(out, "  created_at: \"{created_at}\"\n");
    let _ = writeln!(out, "orchestra:");
    let _ = writeln!(out, "  id: {}", quoted(id));
    let _ = writeln!(out, "  name: {}", quoted(&name));
    let _ = writeln!(out, "  description: {}", quoted(&description));
    let _ = writeln!(out, "  workspace:");
    let _ = writeln!(out, "    type: local_fs");
    let _ = writeln!(
        out,
        "    path: {}",
        quoted(&format!("./orchestra_workspaces/{id}"))
    );
    let _ = writeln!(out, "  execution:");
    let _ = writeln!(out, "    strategy: \"{strategy}\"");
    let _ = writeln!(out, "    max_parallel_tasks: {max_parallel}");
    let _ = writeln!(out, "    task_timeout_seconds: 300");
    let _ = writeln!(out, "    retry_strategy: \"exponential_backoff\"");
    let _ = writeln!(out, "    enable_metrics: true");
    let _ = writeln!(out, "    enable_trace: true");
    if strategy == "mixed" && !tasks.is_empty() {
        let _ = writeln!(out, "    task_groups:");
        for agent in agents {
            let names: Vec<String> = tasks
                .iter()
                .filter(|t| t.agent == agent.name.as_str())
                .map(|t| quoted(&t.name))
                .collect();
            if names.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "      - name: {}",
                quoted(&format!("{}_phase", agent.name))
            );
            let _ = writeln!(out, "        tasks: [{}]", names.join(", "));
            let _ = writeln!(out, "        execution_strategy: \"sequential\"");
        }
    }
    out.push('\n');
    if agents.is_empty() {
        let _ = writeln!(
            out,
            "# No agents were found in this project when this file was written."
        );
        let _ = writeln!(
            out,
            "#   super agent pull developer devops_engineer qa_engineer"
        );
        let _ = writeln!(out, "#   super orchestra create {id} --force");
        let _ = writeln!(out, "agents: []\n");
        let _ = writeln!(
            out,
            "# PLACEHOLDER tasks: uncomment and edit them once the project has agents."
        );
        let _ = writeln!(out, "tasks: []");
        let _ = writeln!(
            out,
            "#  - name: first_task            # PLACEHOLDER: a name of your choice"
        );
        let _ = writeln!(
            out,
            "#    agent: developer            # PLACEHOLDER: an agent of this project"
        );
        let _ = writeln!(out, "#    description: \"Work on '{{goal}}'\"");
        let _ = writeln!(out, "#    priority: \"medium\"");
        let _ = writeln!(out, "#    timeout_seconds: 600");
        let _ = writeln!(out, "#  - name: second_task           # PLACEHOLDER");
        let _ = writeln!(out, "#    agent: qa_engineer          # PLACEHOLDER");
        let _ = writeln!(
            out,
            "#    description: \"Review the first task's output for '{{goal}}'\""
        );
        let _ = writeln!(out, "#    context: [\"first_task\"]");
        return out;
    }
    let _ = writeln!(out, "agents:");
    for agent in agents {
        let _ = writeln!(out, "  - {}", agent.name);
    }
    let _ = writeln!(out, "\ntasks:");
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "  - name: {}", quoted(&task.name));
        let _ = writeln!(out, "    agent: {}", task.agent);
        let _ = writeln!(out, "    description: {}", quoted(&task.description));
        if i > 0 {
            let _ = writeln!(out, "    context: [{}]", quoted(&tasks[i - 1].name));
        }
        let _ = writeln!(out, "    priority: \"medium\"");
        let _ = writeln!(out, "    timeout_seconds: 600");
    }
    out
}
