//! `orchestra list | validate | graph`.

use super::{env_lookup, Context, Failure, Outcome, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::cli::{GraphArgs, GraphFormat, ListArgs, OutputFormat, ValidateArgs};
use crate::load::{load_orchestra, LoadOptions, Loaded};
use crate::source::display_path;

pub fn list(context: &Context, args: &ListArgs) -> Outcome {
    let project = context.project()?;
    let files = project.list_orchestras();
    if args.output == OutputFormat::Json {
        return list_json(&project, &files);
    }
    if files.is_empty() {
        shown!("No orchestras in {}.", display_path(&project.root));
        shown!("Create one with `super orchestra create <name>`.");
        return Ok(EXIT_OK);
    }
    let options = LoadOptions::default();
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut broken = Vec::new();
    for file in &files {
        match load_orchestra(Some(&project), file, &options, &env_lookup) {
            Ok(loaded) => {
                let agents: Vec<String> = loaded.agents.keys().map(|a| a.to_string()).collect();
                rows.push([
                    loaded.spec.id.to_string(),
                    loaded.spec.name.clone(),
                    shorten(&loaded.spec.description, 50),
                    shorten(&agents.join(", "), 60),
                    loaded.spec.tasks.len().to_string(),
                ]);
            }
            Err(diags) => {
                let id = crate::spec::orchestra::file_stem_id(file);
                let first = diags
                    .items
                    .iter()
                    .find(|d| d.severity == crate::diag::Severity::Error);
                let error = first
                    .map(|d| format!("{} {}", d.position(), d.message))
                    .unwrap_or_default();
                rows.push([
                    id,
                    "(invalid)".into(),
                    shorten(error.trim(), 70),
                    "-".into(),
                    "-".into(),
                ]);
                broken.push(display_path(file));
            }
        }
    }
    let headers = ["ID", "Name", "Description", "Agents", "Tasks"];
    let mut widths = crate::report::terminal::column_widths(&headers, &rows);
    // On a terminal (or with COLUMNS), the description and agents give way so lines fit.
    if let Some(columns) = crate::report::terminal::stdout_width() {
        const DESCRIPTION: usize = 2;
        const AGENTS: usize = 3;
        crate::report::terminal::fit_columns(&mut widths, &[DESCRIPTION, AGENTS], columns, 12);
        for row in &mut rows {
            for column in [DESCRIPTION, AGENTS] {
                row[column] = shorten(&row[column], widths[column]);
            }
        }
    }
    let line = |cells: &[String]| crate::report::terminal::table_row(cells, &widths);
    shown!("{}", line(&headers.map(str::to_string)));
    shown!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for row in &rows {
        shown!("{}", line(row));
    }
    if !broken.is_empty() {
        eprintln!(
            "\n{} invalid: {}; run `super orchestra validate <file>` for details",
            broken.len(),
            broken.join(", ")
        );
    }
    Ok(EXIT_OK)
}

/// `orchestra list -o json`: one object per orchestra file; an invalid one has `valid: false`
/// and its first error.
fn list_json(project: &crate::project::Project, files: &[std::path::PathBuf]) -> Outcome {
    let options = LoadOptions::default();
    let items: Vec<serde_json::Value> = files
        .iter()
        .map(|file| match load_orchestra(Some(project), file, &options, &env_lookup) {
            Ok(loaded) => serde_json::json!({
                "id": loaded.spec.id.to_string(),
                "name": loaded.spec.name,
                "description": loaded.spec.description,
                "file": display_path(file),
                "valid": true,
                "strategy": loaded.plan.strategy.as_str(),
                "agents": loaded.agents.keys().map(|a| a.to_string()).collect::<Vec<_>>(),
                "tasks": loaded.spec.tasks.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
            }),
            Err(diags) => {
                let first = diags
                    .items
                    .iter()
                    .find(|d| d.severity == crate::diag::Severity::Error)
                    .map(|d| format!("{} {}", d.position(), d.message).trim().to_string());
                serde_json::json!({
                    "id": crate::spec::orchestra::file_stem_id(file),
                    "file": display_path(file),
                    "valid": false,
                    "error": first,
                })
            }
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into())
    );
    Ok(EXIT_OK)
}

fn shorten(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!(
            "{}…",
            flat.chars().take(max.saturating_sub(1)).collect::<String>()
        )
    }
}

pub fn validate(context: &Context, args: &ValidateArgs) -> Outcome {
    let given = super::given::inputs(context, &args.inputs)?;
    let (path, project) = context.orchestra(&args.orchestra)?;
    let config = super::run::load_config(context, project.as_ref())?;
    let options = LoadOptions {
        defaults: config.model_defaults(),
        strict: args.strict,
        check_environment: true,
        model_download_offered: false,
        overrides: args.model.overrides(),
        // With no `--var`, an input without a default is a warning naming `--var`; given
        // inputs are checked as a run would check them.
        require_inputs: !given.is_empty(),
        inputs: given,
        ..LoadOptions::default()
    };
    let result = load_orchestra(project.as_ref(), &path, &options, &env_lookup);
    let diags = match &result {
        Ok(loaded) => loaded.warnings.clone(),
        Err(diags) => diags.clone(),
    };
    if args.json {
        let document = serde_json::json!({
            "file": display_path(&path),
            "valid": result.is_ok(),
            "diagnostics": diags.to_json(),
        });
        println!("{document}");
    } else {
        context.print_diagnostics(&diags);
    }
    match result {
        Ok(loaded) => {
            if !args.json {
                shown!("{}", valid_line(&loaded, &path));
            }
            if args.check_providers {
                return check_providers(&loaded);
            }
            Ok(EXIT_OK)
        }
        Err(diags) => {
            if !args.json {
                eprintln!(
                    "❌ {} is invalid: {} error{}, {} warning{}",
                    display_path(&path),
                    diags.error_count(),
                    if diags.error_count() == 1 { "" } else { "s" },
                    diags.warning_count(),
                    if diags.warning_count() == 1 { "" } else { "s" }
                );
            }
            Ok(EXIT_USAGE)
        }
    }
}

pub fn valid_line(loaded: &Loaded, path: &std::path::Path) -> String {
    format!(
        "✅ {} is valid: orchestra `{}`, {} tasks, {} agents, strategy {}{}",
        display_path(path),
        loaded.spec.id,
        loaded.spec.tasks.len(),
        loaded.agents.len(),
        loaded.plan.strategy.as_str(),
        match loaded.warnings.warning_count() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        }
    )
}

pub fn graph(context: &Context, args: &GraphArgs) -> Outcome {
    let (path, project) = context.orchestra(&args.orchestra)?;
    let options = LoadOptions::default();
    let loaded = match load_orchestra(project.as_ref(), &path, &options, &env_lookup) {
        Ok(loaded) => loaded,
        Err(diags) => {
            context.print_diagnostics(&diags);
            return Err(Failure::usage(format!(
                "`{}` is invalid; nothing to draw",
                display_path(&path)
            )));
        }
    };
    let run = match &args.run {
        Some(given) => Some(run_states(&path, project.as_ref(), args, given)?),
        None => {
            if args.workspace.is_some() {
                return Err(Failure::usage("`--workspace` needs `--run RUN`"));
            }
            None
        }
    };
    let text = match args.format {
        GraphFormat::Ascii => super::graph_ascii::render(&loaded, run.as_ref()),
        format => render_graph(&loaded, format, run.as_ref()),
    };
    print!("{}", crate::sanitize::terminal(&text));
    Ok(EXIT_OK)
}

/// Each task's status and duration in a run, by task name, and the run's id.
pub(crate) struct RunStates {
    pub run_id: String,
    pub tasks: std::collections::HashMap<String, (crate::workspace::TaskStatus, Option<u64>)>,
}

impl RunStates {
    /// `succeeded 1.2s`, `skipped`, `not in this run`.
    pub(crate) fn label(&self, task: &str) -> String {
        match self.tasks.get(task) {
            Some((status, Some(ms))) => {
                format!("{} {}", status.as_str(), super::history::duration(*ms))
            }
            Some((status, None)) => status.as_str().to_string(),
            None => "not in this run".to_string(),
        }
    }

    pub(crate) fn class(&self, task: &str) -> &'static str {
        match self.tasks.get(task) {
            Some((status, _)) => status.as_str(),
            None => "absent",
        }
    }
}

fn run_states(
    path: &std::path::Path,
    project: Option<&crate::project::Project>,
    args: &GraphArgs,
    given: &str,
) -> Result<RunStates, Failure> {
    let (orchestra, root) =
        super::history::workspace_of_file(path, project, args.workspace.as_deref())?;
    let runs = super::history::runs_at(&root)?;
    let run = super::history::pick(&runs, Some(given), &orchestra, &root)?;
    let manifest = super::history::manifest_of(run)?;
    Ok(RunStates {
        run_id: manifest.run_id.clone(),
        tasks: manifest
            .tasks
            .iter()
            .map(|t| {
                let ran = t.started_unix_ms.is_some()
                    && t.status != crate::workspace::TaskStatus::Skipped;
                (t.name.clone(), (t.status, ran.then_some(t.duration_ms)))
            })
            .collect(),
    })
}

/// Fill colours by status, for Mermaid's `classDef` and DOT's `fillcolor`.
const STATUS_COLOURS: &[(&str, &str)] = &[
    ("succeeded", "#c8e6c9"),
    ("cached", "#bbdefb"),
    ("failed", "#ffcdd2"),
    ("skipped", "#eeeeee"),
    ("running", "#fff9c4"),
    ("pending", "#ffffff"),
    ("absent", "#ffffff"),
];

fn quote_label(text: &str) -> String {
    text.replace('"', "'")
}

pub fn render_graph(loaded: &Loaded, format: GraphFormat, run: Option<&RunStates>) -> String {
    let tasks = &loaded.spec.tasks;
    let plan = &loaded.plan;
    let mut out = String::new();
    // The second line of a node: agent and priority, or its status and duration in the run.
    let detail = |task: &crate::spec::TaskSpec| match run {
        Some(run) => run.label(task.name.as_str()),
        None => format!("{} · {}", task.agent.as_str(), task.priority.as_str()),
    };
    match format {
        GraphFormat::Mermaid | GraphFormat::Ascii => {
            out.push_str("graph TD\n");
            for &i in &plan.order {
                let task = &tasks[i];
                out.push_str(&format!(
                    "    {}[\"{}<br/>{}\"]\n",
                    node_id(i),
                    quote_label(task.name.as_str()),
                    quote_label(&detail(task)),
                ));
            }
            for &i in &plan.order {
                for &j in &plan.deps[i] {
                    let arrow = if plan.context[i].contains(&j) {
                        "-->"
                    } else {
                        "-.->"
                    };
                    out.push_str(&format!("    {} {arrow} {}\n", node_id(j), node_id(i)));
                }
            }
            if let Some(run) = run {
                for (class, colour) in STATUS_COLOURS {
                    let members: Vec<String> = plan
                        .order
                        .iter()
                        .filter(|&&i| run.class(tasks[i].name.as_str()) == *class)
                        .map(|&i| node_id(i))
                        .collect();
                    if !members.is_empty() {
                        out.push_str(&format!("    classDef {class} fill:{colour}\n"));
                        out.push_str(&format!("    class {} {class}\n", members.join(",")));
                    }
                }
            }
        }
        GraphFormat::Dot => {
            out.push_str(&format!(
                "digraph \"{}\" {{\n    rankdir=TB;\n    node [shape=box];\n",
                quote_label(loaded.spec.id.as_str())
            ));
            for &i in &plan.order {
                let task = &tasks[i];
                let fill = run
                    .map(|run| {
                        let class = run.class(task.name.as_str());
                        let colour = STATUS_COLOURS
                            .iter()
                            .find(|(c, _)| *c == class)
                            .map_or("#ffffff", |(_, colour)| colour);
                        format!(", style=filled, fillcolor=\"{colour}\"")
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "    \"{}\" [label=\"{}\\n{}\"{fill}];\n",
                    quote_label(task.name.as_str()),
                    quote_label(task.name.as_str()),
                    quote_label(&detail(task)),
                ));
            }
            for &i in &plan.order {
                for &j in &plan.deps[i] {
                    let style = if plan.context[i].contains(&j) {
                        ""
                    } else {
                        " [style=dashed]"
                    };
                    out.push_str(&format!(
                        "    \"{}\" -> \"{}\"{style};\n",
                        quote_label(tasks[j].name.as_str()),
                        quote_label(tasks[i].name.as_str())
                    ));
                }
            }
            out.push_str("}\n");
        }
    }
    out
}

fn node_id(index: usize) -> String {
    format!("t{index}")
}

/// `validate --check-providers`: one model listing per endpoint, each printed with its
/// verdict and, when it fails, what to do; exit 1 when any fails.
fn check_providers(loaded: &crate::load::Loaded) -> Outcome {
    let limits = crate::settings::CallLimits::from_env(&env_lookup);
    let transport = crate::provider::http::HttpTransport::new(limits.max_reply_bytes)
        .map_err(Failure::refused)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::refused(format!("failed to start the async runtime: {e}")))?;
    let mut seen: Vec<(&crate::provider::Endpoint, &str)> = Vec::new();
    let models = loaded
        .models
        .iter()
        .chain(loaded.manager.as_ref().map(|m| &m.model));
    let mut failed = false;
    for choice in models {
        let key = (&choice.endpoint, choice.model.as_str());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let verdict = runtime.block_on(crate::provider::hints::probe(
            &transport,
            &choice.endpoint,
            &choice.model,
        ));
        let at = crate::redact::redact_urls(&choice.endpoint.base_url).into_owned();
        let place = if at.is_empty() {
            String::new()
        } else {
            format!(" at {at}")
        };
        match verdict {
            Ok(what) => shown!("✅ {}{place}: {what}", choice.label()),
            Err(why) => {
                failed = true;
                shown!("❌ {}{place}: {why}", choice.label());
            }
        }
    }
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}
