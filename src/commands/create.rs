//! `orchestra create NAME`: an orchestra in the seed's layout from the project's agents, one
//! task per playbook task, each building on the one before. Every file it writes passes
//! `validate`: each agent is written under a name that finds it (folder, `metadata.id` or slugged
//! `metadata.name`), and a project with no agents gets an error, not an orchestra with no tasks.

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
    let index = project.agent_index();
    let available: Vec<&crate::project::AgentEntry> = index.entries.iter().collect();
    if available.is_empty() {
        return Err(Failure::usage(
            "the project has no agents; an orchestra needs at least one task",
        )
        .hint(format!(
            "pull agents from the built-in library first: `super agent pull developer devops_engineer qa_engineer`, then `super orchestra create {id}` (`super agent list --library` shows them all)"
        )));
    }
    let chosen: Vec<&crate::project::AgentEntry> = if args.agents.is_empty() {
        available.clone()
    } else {
        let mut chosen: Vec<&crate::project::AgentEntry> = Vec::new();
        for raw in &args.agents {
            let name = raw.trim();
            if name.is_empty() {
                continue;
            }
            match index.resolve(name) {
                Ok(Some(found)) => {
                    if !chosen.iter().any(|c| c.path == found.path) {
                        chosen.push(found);
                    }
                }
                Err(ambiguous) => {
                    return Err(Failure::usage(ambiguous.to_string()).hint(
                        "name the agent by its folder, or give the two playbooks different `metadata.id`s",
                    ))
                }
                Ok(None) => {
                    let hint = if crate::library::find(name).is_some() {
                        format!(
                            "it is in the built-in library: run `super agent pull {name}` first"
                        )
                    } else {
                        format!(
                            "the project's agents are: {}",
                            available
                                .iter()
                                .map(|entry| entry.folder.as_str())
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

    // Each agent under the name that finds it, so the file always validates.
    let mut diags = Diagnostics::default();
    let mut agents: Vec<(AgentSpec, String)> = Vec::new();
    for entry in &chosen {
        let Some(written) = index.resolving_name(entry) else {
            let clash = entry
                .keys()
                .into_iter()
                .find_map(|key| index.resolve(&key).err());
            let mut failure = Failure::usage(format!(
                "agent `{}` cannot be named unambiguously: every name it answers to is shared",
                entry.folder
            ));
            if let Some(clash) = clash {
                failure.message.push_str(&format!(" ({clash})"));
            }
            return Err(failure.hint("give the playbooks different `metadata.id`s or folders"));
        };
        if let Some(agent) = load_agent(&entry.path, &entry.folder, &mut diags) {
            agents.push((agent, written));
        }
    }
    if diags.has_errors() {
        context.print_diagnostics(&diags);
        return Err(Failure::usage(
            "an agent's playbook is invalid; fix it before creating an orchestra",
        ));
    }

    // Under the hierarchical strategy a manager-like agent of the project manages; it runs no
    // task of its own.
    let manager: Option<String> = (args.strategy == StrategyArg::Hierarchical)
        .then(|| {
            agents
                .iter()
                .map(|(_, written)| written.clone())
                .find(|w| w.contains("manager"))
        })
        .flatten();
    let mut tasks: Vec<PlannedTask> = Vec::new();
    for (agent, written) in &agents {
        if manager.as_deref() == Some(written.as_str()) && agents.len() > 1 {
            continue;
        }
        let playbook_tasks: Vec<crate::spec::AgentTaskSpec> = if agent.tasks.is_empty() {
            vec![crate::spec::AgentTaskSpec {
                name: format!("{written}_task"),
                ..Default::default()
            }]
        } else {
            agent.tasks.clone()
        };
        for task in &playbook_tasks {
            let mut name = task.name.trim().to_string();
            if crate::names::unsafe_reason(&name).is_some() {
                name = format!("{written}_task");
            }
            if tasks.iter().any(|t| t.name == name) {
                name = format!("{written}_{name}");
            }
            let mut unique = name.clone();
            let mut n = 2;
            while tasks.iter().any(|t| t.name == unique) {
                unique = format!("{name}_{n}");
                n += 1;
            }
            tasks.push(PlannedTask {
                name: unique,
                agent: written.clone(),
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
        StrategyArg::Hierarchical => "hierarchical",
    };
    let names: Vec<String> = agents.iter().map(|(_, written)| written.clone()).collect();
    let mut yaml = render(&id, strategy, &names, &tasks);
    if strategy == "hierarchical" {
        let block = match &manager {
            Some(name) => format!("    manager: {}\n", quoted(name)),
            None => "    # manager: project_manager   # an agent of the project (`super agent pull project_manager`); without it the built-in manager plans\n".to_string(),
        };
        let limits = format!(
            "{block}    max_delegations: {}         # worker runs the manager may cause\n    max_review_rounds: 1        # revisions per task (0: no review)\n    allow_new_tasks: false      # may the manager add sub-tasks\n",
            2 * tasks.len().max(1)
        );
        yaml = yaml.replacen(
            "    enable_trace: true\n",
            &format!("    enable_trace: true\n{limits}"),
            1,
        );
    }
    let io =
        |e: std::io::Error| Failure::refused(format!("failed to write `{}`: {e}", file.display()));
    std::fs::create_dir_all(project.default_orchestras_dir()).map_err(io)?;
    write_atomic(&file, yaml.as_bytes()).map_err(io)?;
    let workspace = project.root.join("orchestra_workspaces").join(&id);
    std::fs::create_dir_all(&workspace).map_err(|e| {
        Failure::refused(format!("failed to create `{}`: {e}", workspace.display()))
    })?;

    println!("🔎 Found {} agent(s): {}", agents.len(), names.join(", "));
    println!(
        "📋 {} task(s): {}",
        tasks.len(),
        tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(" -> ")
    );
    println!("✅ Wrote {}", crate::source::display_path(&file));
    println!("📁 Workspace: {}", crate::source::display_path(&workspace));
    println!("\nNext: super orchestra run {id} --goal \"...\"");
    Ok(EXIT_OK)
}

fn render(id: &str, strategy: &str, agents: &[String], tasks: &[PlannedTask]) -> String {
    let name = format!("{} Orchestra", crate::spec::orchestra::title_case(id));
    let description = format!(
        "{} working together on a goal, each building on the previous task's output.",
        agents.join(", ")
    );
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
                .filter(|t| t.agent == *agent)
                .map(|t| quoted(&t.name))
                .collect();
            if names.is_empty() {
                continue;
            }
            let _ = writeln!(out, "      - name: {}", quoted(&format!("{agent}_phase")));
            let _ = writeln!(out, "        tasks: [{}]", names.join(", "));
            let _ = writeln!(out, "        execution_strategy: \"sequential\"");
        }
    }
    out.push('\n');
    let _ = writeln!(out, "agents:");
    for agent in agents {
        let _ = writeln!(out, "  - {agent}");
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
