//! `agent list | pull | show | compile | optimize`. Agents are named by folder, `metadata.id` or
//! slugged `metadata.name` (the project's `AgentIndex`); the library by its names. `show --tools`
//! lists what the agent is offered, MCP tools included.

use super::{Context, Failure, Outcome, EXIT_OK};
use crate::cli::AgentCommand;
use crate::diag::Diagnostics;
use crate::library;
use crate::load::load_agent;
use crate::source::{display_path, SourceFile};
use crate::spec::{decode_agent, AgentSpec};
use crate::tools::{resolve_agent_tools, McpError, McpSessions};
use crate::workspace::write_atomic;

pub fn agent(context: &Context, command: AgentCommand) -> Outcome {
    match command {
        AgentCommand::List { library, output } => {
            if output == crate::cli::OutputFormat::Json {
                list_json(context, library)
            } else {
                list(context, library)
            }
        }
        AgentCommand::Pull { names, force } => pull(context, &names, force),
        AgentCommand::Show { name, tools } => show(context, &name, tools),
        AgentCommand::Compile { name, all: _ } => compile(context, name.as_deref()),
        AgentCommand::Evaluate(args) => super::evaluate::evaluate(context, &args),
        AgentCommand::Optimize { name } => optimize(context, &name),
    }
}

fn list(context: &Context, library_only: bool) -> Outcome {
    let project = context.project().ok();
    let index = project
        .as_ref()
        .map(|p| p.agent_index())
        .unwrap_or_default();
    if !library_only {
        match &project {
            Some(p) => shown!("Project agents ({}):", display_path(&p.root)),
            None => shown!("Project agents: (no project here)"),
        }
        if index.entries.is_empty() {
            shown!("  (none: pull some with `super agent pull NAME`)");
        }
        for entry in &index.entries {
            let id = match &entry.id {
                Some(id) if crate::project::slug(id) != entry.folder => format!(" (id `{id}`)"),
                _ => String::new(),
            };
            shown!(
                "  [project] {:<18} {}{id}",
                entry.folder,
                display_path(&entry.path)
            );
        }
        println!();
    }
    shown!(
        "Built-in library ({} agents; `super agent pull NAME` copies one into the project):",
        library::AGENTS.len()
    );
    let mut categories: Vec<&str> = library::AGENTS.iter().map(library::category).collect();
    categories.sort_unstable();
    categories.dedup();
    for category in categories {
        shown!("  {category}:");
        for agent in library::AGENTS
            .iter()
            .filter(|a| library::category(a) == category)
        {
            let mut diags = Diagnostics::default();
            let spec = library_spec(agent, &mut diags);
            let role = spec
                .as_ref()
                .and_then(|s| s.persona.role.clone())
                .unwrap_or_default();
            let pulled = if matches!(index.resolve(agent.name), Ok(Some(_))) {
                "  (in project)"
            } else {
                ""
            };
            shown!("    [library] {:<22} {role}{pulled}", agent.name);
        }
    }
    Ok(EXIT_OK)
}

/// `agent list -o json`: `{"project": [...], "library": [...]}` (`project` absent with
/// `--library`, empty outside a project).
fn list_json(context: &Context, library_only: bool) -> Outcome {
    let project = context.project().ok();
    let index = project
        .as_ref()
        .map(|p| p.agent_index())
        .unwrap_or_default();
    let mut document = serde_json::Map::new();
    if !library_only {
        let agents: Vec<serde_json::Value> = index
            .entries
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "folder": entry.folder,
                    "id": entry.id,
                    "path": entry.path.display().to_string(),
                })
            })
            .collect();
        document.insert("project".into(), serde_json::Value::from(agents));
    }
    let agents: Vec<serde_json::Value> = library::AGENTS
        .iter()
        .map(|agent| {
            let mut diags = Diagnostics::default();
            let role = library_spec(agent, &mut diags).and_then(|s| s.persona.role.clone());
            serde_json::json!({
                "name": agent.name,
                "category": library::category(agent),
                "role": role,
                "in_project": matches!(index.resolve(agent.name), Ok(Some(_))),
            })
        })
        .collect();
    document.insert("library".into(), serde_json::Value::from(agents));
    println!(
        "{}",
        serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".into())
    );
    Ok(EXIT_OK)
}

/// "did you mean ...?" for a name that is not in the library, else every name.
fn library_hint(name: &str) -> String {
    let close = library::suggestions(name);
    if close.is_empty() {
        format!("agents are: {}", library::names().join(", "))
    } else {
        format!(
            "did you mean {}? `super agent list --library` shows all {}",
            close
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            library::AGENTS.len()
        )
    }
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
                .hint(library_hint(raw)))
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

fn show(context: &Context, name: &str, tools: bool) -> Outcome {
    let mut diags = Diagnostics::default();
    let project = context.project().ok();
    let found =
        match project.as_ref().map(|p| p.find_agent(name)) {
            Some(Err(ambiguous)) => return Err(Failure::usage(ambiguous.to_string()).hint(
                "name the agent by its folder, or give the two playbooks different `metadata.id`s",
            )),
            Some(Ok(found)) => found,
            None => None,
        };
    let (spec, origin) = match (&found, library::find(name)) {
        (Some(entry), _) => (
            load_agent(&entry.path, &entry.folder, &mut diags),
            display_path(&entry.path),
        ),
        (None, Some(agent)) => (
            library_spec(agent, &mut diags),
            "built-in library (not in this project)".to_string(),
        ),
        (None, None) => {
            let known: Vec<String> = project
                .as_ref()
                .map(|p| p.list_agents().into_iter().map(|(n, _)| n).collect())
                .unwrap_or_default();
            let hint = match crate::diag::did_you_mean(name, known.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`? (in this project)"),
                None if known.is_empty() => library_hint(name),
                None => format!(
                    "the project's agents are: {}; {}",
                    known.join(", "),
                    library_hint(name)
                ),
            };
            return Err(Failure::usage(format!("no agent named `{name}`")).hint(hint));
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
    if tools {
        show_tools(&spec)?;
    }
    Ok(EXIT_OK)
}

/// `agent compile [--all | NAME]`: upstream compiles playbooks into Python pipelines; `super`
/// reads them as they are, so this checks them (as a run would) and says so.
fn compile(context: &Context, name: Option<&str>) -> Outcome {
    let project = context.project()?;
    let index = project.agent_index();
    let entries: Vec<&crate::project::AgentEntry> = match name {
        None => index.entries.iter().collect(),
        Some(name) => match index.resolve(name) {
            Ok(Some(entry)) => vec![entry],
            Ok(None) => return Err(Failure::usage(format!(
                "no agent named `{name}` in this project"
            ))
            .hint(if library::find(name).is_some() {
                format!("it is in the built-in library: run `super agent pull {name}` first")
            } else {
                "`super agent list` shows the project's agents".to_string()
            })),
            Err(ambiguous) => return Err(Failure::usage(ambiguous.to_string())),
        },
    };
    if entries.is_empty() {
        return Err(Failure::usage("the project has no agents to check")
            .hint("pull some with `super agent pull NAME`"));
    }
    println!(
        "ℹ️  `super` needs no compile step: it runs playbooks as they are. Checking them instead."
    );
    let mut invalid = 0;
    for entry in &entries {
        let mut diags = Diagnostics::default();
        let spec = load_agent(&entry.path, &entry.folder, &mut diags);
        if let Some(spec) = &spec {
            match crate::provider::resolve(
                spec.language_model.as_ref(),
                &Default::default(),
                &super::env_lookup,
            ) {
                Ok(_) => {}
                // Keys and endpoints are the run's business (`orchestra validate` checks them).
                Err(
                    crate::provider::ResolveError::MissingKey { .. }
                    | crate::provider::ResolveError::MissingBaseUrl { .. },
                ) => {}
                Err(error) => {
                    let mut diagnostic = crate::diag::Diagnostic::error(format!(
                        "agent `{}`: {}",
                        spec.name,
                        error.message()
                    ))
                    .hint(error.hint());
                    if let Some(lm) = &spec.language_model {
                        diagnostic = diagnostic.at(
                            &spec.file,
                            lm.provider_loc.unwrap_or(lm.loc),
                            "this provider",
                        );
                    }
                    diags.push(diagnostic);
                }
            }
        }
        context.print_diagnostics(&diags);
        if spec.is_none() || diags.has_errors() {
            invalid += 1;
            println!("❌ {:<20} {}", entry.folder, display_path(&entry.path));
        } else {
            let tasks = spec.as_ref().map(|s| s.tasks.len()).unwrap_or(0);
            println!(
                "✅ {:<20} {} ({tasks} task{})",
                entry.folder,
                display_path(&entry.path),
                if tasks == 1 { "" } else { "s" }
            );
        }
    }
    if invalid > 0 {
        return Err(Failure::usage(format!(
            "{invalid} of {} playbooks are invalid",
            entries.len()
        )));
    }
    println!(
        "✅ {} playbook{} valid; nothing to compile. Next: `super orchestra create NAME` or `super orchestra run NAME --goal \"...\"`",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    );
    Ok(EXIT_OK)
}

/// `agent optimize NAME`: upstream tunes prompts with DSPy optimizers; `super` does not.
fn optimize(context: &Context, name: &str) -> Outcome {
    let project = context.project()?;
    let entry = match project.find_agent(name) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return Err(
                Failure::usage(format!("no agent named `{name}` in this project"))
                    .hint("`super agent list` shows the project's agents"),
            )
        }
        Err(ambiguous) => return Err(Failure::usage(ambiguous.to_string())),
    };
    Err(Failure::refused(format!(
        "`super agent optimize` is not provided: `super` does not rewrite prompts automatically, and `{}` was left unchanged",
        display_path(&entry.path)
    ))
    .hint(
        "improve an agent by hand: run it on a few goals (`super orchestra run ... --goal`), edit the playbook's persona and task instructions, run the same goals again and compare; `super agent compile NAME` checks the edited playbook",
    ))
}

/// The first line of a description, at most `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= width {
        return line.to_string();
    }
    let cut: String = line.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// One MCP server's tools, as listed: (name, first line of its description).
struct ServerListing {
    name: String,
    command: String,
    tools: Vec<(String, String)>,
}

/// `--tools`: the built-in tools, then each MCP server's (started briefly, then stopped).
fn show_tools(spec: &AgentSpec) -> Result<(), Failure> {
    let resolved = resolve_agent_tools(spec);
    let settings = &resolved.settings;
    println!(
        "\nTools (at most {} tool turns{})",
        settings.max_iterations,
        settings
            .max_tool_calls
            .map(|n| format!(", {n} tool calls"))
            .unwrap_or_default()
    );
    let builtin = resolved.select(&[]);
    if builtin.is_empty() && resolved.mcp_servers.is_empty() {
        println!("  (none: the playbook declares no `tools` and no `mcp` servers)");
    }
    for tool in &builtin {
        let d = tool.definition();
        println!("  {:<22} {}", d.name, one_line(&d.description, 70));
    }
    if !resolved.mcp_servers.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::refused(format!("failed to start the async runtime: {e}")))?;
        let listed: Result<Vec<ServerListing>, McpError> = runtime.block_on(async {
            let mut sessions = McpSessions::start(&resolved.mcp_servers).await?;
            let mut out = Vec::new();
            for server in &resolved.mcp_servers {
                let tools = sessions
                    .tools_for(std::slice::from_ref(server))
                    .iter()
                    .filter(|t| resolved.offers_mcp(&t.definition().name))
                    .map(|t| {
                        let d = t.definition();
                        (d.name.clone(), one_line(&d.description, 70))
                    })
                    .collect();
                out.push(ServerListing {
                    name: server.name.clone(),
                    command: server.describe(),
                    tools,
                });
            }
            sessions.shutdown().await;
            Ok(out)
        });
        let listed = listed.map_err(|e| {
            Failure::refused(e.to_string())
                .hint("check the server's `command` and `args` (or `url`) in `spec.mcp.servers`")
        })?;
        for ServerListing {
            name: server,
            command,
            tools,
        } in listed
        {
            println!("  MCP server `{server}` ({command}): {} tools", tools.len());
            for (name, description) in tools {
                println!("    {name:<20} {description}");
            }
        }
    }
    if !resolved.unavailable.is_empty() {
        println!("Not available");
        for (name, why) in &resolved.unavailable {
            let why = why.replace("the orchestra lists no", "needs the orchestra's");
            println!("  {name:<22} {why}");
        }
    }
    Ok(())
}
