//! `agent list | pull | show`.

use super::{Context, Failure, Outcome, EXIT_OK};
use crate::cli::AgentCommand;
use crate::diag::Diagnostics;
use crate::library;
use crate::load::load_agent;
use crate::source::{display_path, SourceFile};
use crate::spec::{decode_agent, AgentSpec};
use crate::workspace::write_atomic;

pub fn agent(context: &Context, command: AgentCommand) -> Outcome {
    match command {
        AgentCommand::List => list(context),
        AgentCommand::Pull { names, force } => pull(context, &names, force),
        AgentCommand::Show { name } => show(context, &name),
    }
}

fn list(context: &Context) -> Outcome {
    let project = context.project().ok();
    let project_agents = project
        .as_ref()
        .map(|p| p.list_agents())
        .unwrap_or_default();
    match &project {
        Some(p) => shown!("Project agents ({}):", display_path(&p.root)),
        None => shown!("Project agents: (no project here)"),
    }
    if project_agents.is_empty() {
        shown!("  (none: pull some with `super agent pull NAME`)");
    }
    for (name, path) in &project_agents {
        shown!("  [project] {name:<18} {}", display_path(path));
    }
    shown!("\nBuilt-in library:");
    for agent in library::AGENTS {
        let mut diags = Diagnostics::default();
        let spec = library_spec(agent, &mut diags);
        let role = spec
            .as_ref()
            .and_then(|s| s.persona.role.clone())
            .unwrap_or_default();
        let pulled = if project_agents.iter().any(|(n, _)| n == agent.name) {
            "  (in project)"
        } else {
            ""
        };
        shown!("  [library] {:<18} {role}{pulled}", agent.name);
    }
    Ok(EXIT_OK)
}

fn library_spec(agent: &library::LibraryAgent, diags: &mut Diagnostics) -> Option<AgentSpec> {
    let file = SourceFile::new(
        std::path::Path::new(&format!("<built-in>/{}.yaml", agent.name)),
        agent.yaml.to_string(),
    );
    let root = crate::yaml::parse(&file).ok()?;
    decode_agent(&file, &root, agent.name, diags)
}

fn pull(context: &Context, names: &[String], force: bool) -> Outcome {
    let project = context.project()?;
    // Check every name before writing anything.
    let mut chosen = Vec::new();
    for raw in names {
        match library::find(raw.trim()) {
            Some(agent) => chosen.push(agent),
            None => {
                return Err(Failure::usage(format!(
                    "no agent named `{raw}` in the built-in library"
                ))
                .hint(format!("agents are: {}", library::names().join(", "))))
            }
        }
    }
    let dir = project.default_agents_dir();
    let mut existing = Vec::new();
    for agent in &chosen {
        let path = dir
            .join(agent.name)
            .join("playbook")
            .join(format!("{}_playbook.yaml", agent.name));
        if path.exists() && !force {
            existing.push(display_path(&path));
        }
    }
    if !existing.is_empty() {
        return Err(Failure::refused(format!(
            "already in the project: {}; nothing was written",
            existing.join(", ")
        ))
        .hint("pass `--force` to overwrite"));
    }
    for agent in chosen {
        let folder = dir.join(agent.name).join("playbook");
        let path = folder.join(format!("{}_playbook.yaml", agent.name));
        let io = |e: std::io::Error| {
            Failure::refused(format!("failed to write `{}`: {e}", path.display()))
        };
        std::fs::create_dir_all(&folder).map_err(io)?;
        write_atomic(&path, agent.yaml.as_bytes()).map_err(io)?;
        shown!("✅ Pulled `{}` -> {}", agent.name, display_path(&path));
    }
    Ok(EXIT_OK)
}

fn show(context: &Context, name: &str) -> Outcome {
    let mut diags = Diagnostics::default();
    let project = context.project().ok();
    let found = project.as_ref().and_then(|p| p.find_agent(name));
    let (spec, origin) = match (&found, library::find(name)) {
        (Some(path), _) => (
            load_agent(path, &name.to_lowercase(), &mut diags),
            display_path(path),
        ),
        (None, Some(agent)) => (
            library_spec(agent, &mut diags),
            "built-in library (not in this project)".to_string(),
        ),
        (None, None) => {
            let mut known: Vec<String> = project
                .as_ref()
                .map(|p| p.list_agents().into_iter().map(|(n, _)| n).collect())
                .unwrap_or_default();
            known.extend(library::names().into_iter().map(str::to_string));
            known.sort();
            known.dedup();
            return Err(Failure::usage(format!("no agent named `{name}`"))
                .hint(format!("agents are: {}", known.join(", "))));
        }
    };
    context.print_diagnostics(&diags);
    let Some(spec) = spec else {
        return Err(Failure::usage(format!(
            "the playbook of `{name}` is invalid"
        )));
    };
    let persona = &spec.persona;
    shown!(
        "Agent:     {}{}",
        spec.name,
        spec.display_name
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    shown!("File:      {origin}");
    if let Some(description) = &spec.description {
        shown!("About:     {description}");
    }
    let model = match crate::provider::resolve(
        spec.language_model.as_ref(),
        &Default::default(),
        &super::env_lookup,
    ) {
        Ok(choice) => format!(
            "{} ({})",
            choice.label(),
            if spec.language_model.is_some() {
                "from the playbook"
            } else {
                "default: the embedded model"
            }
        ),
        Err(error) => format!("{} ({})", error.message(), error.hint()),
    };
    shown!("Model:     {model}");
    shown!("\nPersona");
    for (label, value) in [
        ("name", &persona.name),
        ("role", &persona.role),
        ("goal", &persona.goal),
        ("backstory", &persona.backstory),
    ] {
        if let Some(value) = value {
            shown!("  {label:<10} {value}");
        }
    }
    if !persona.traits.is_empty() {
        shown!("  {:<10} {}", "traits", persona.traits.join(", "));
    }
    for (key, value) in &persona.extra {
        shown!("  {key:<10} {value}");
    }
    shown!("\nTasks");
    for task in &spec.tasks {
        shown!("  - {}", task.name);
        if let Some(instruction) = task.instruction.as_deref().or(task.description.as_deref()) {
            shown!(
                "    {}",
                instruction.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
        let inputs: Vec<&str> = task.inputs.iter().map(|f| f.name.as_str()).collect();
        let outputs: Vec<&str> = task.outputs.iter().map(|f| f.name.as_str()).collect();
        if !inputs.is_empty() || !outputs.is_empty() {
            shown!(
                "    inputs: {}  outputs: {}",
                inputs.join(", "),
                outputs.join(", ")
            );
        }
    }
    if !spec.other_sections.is_empty() {
        shown!(
            "\nOther sections kept: {}",
            spec.other_sections
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(EXIT_OK)
}
