//! `config show`: each setting a config file may hold, its value and where it comes from (a
//! `SUPER_*` variable, the project's `super.toml`, the user's config, the default), as
//! `git config --show-origin` does.

use super::{env_lookup, Context, Outcome, EXIT_OK, EXIT_USAGE};
use crate::cli::{ConfigCommand, ShowFormat};
use crate::config::{Config, Layer, Origin, PROJECT_FILE};
use crate::diag::Diagnostics;
use crate::source::display_path;

pub fn config(context: &Context, command: &ConfigCommand) -> Outcome {
    match command {
        ConfigCommand::Show { output } => show(context, *output),
    }
}

/// One row: a key, its value (`None`: not set) and where it comes from.
struct Row {
    key: &'static str,
    value: Option<String>,
    origin: String,
    position: Option<String>,
}

fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Project => "project",
        Layer::User => "user",
    }
}

fn from_file(origin: &Origin) -> (String, Option<String>) {
    (
        format!("{} ({})", origin.position(), layer_name(origin.layer)),
        Some(origin.position()),
    )
}

fn show(context: &Context, format: ShowFormat) -> Outcome {
    let project = context.project().ok();
    let root = project.as_ref().map(|p| p.root.as_path());
    let mut diags = Diagnostics::default();
    let config = Config::load(root, &env_lookup, &mut diags);
    context.print_diagnostics(&diags);
    let env = |name: &str| env_lookup(name).filter(|v| !v.trim().is_empty());
    let mut rows: Vec<Row> = Vec::new();
    let mut push = |key: &'static str,
                    variable: Option<&str>,
                    entry: Option<(String, &Origin)>,
                    default: Option<&str>| {
        let row = match (variable.and_then(&env), entry) {
            (Some(value), _) => Row {
                key,
                value: Some(format!("{value:?}")),
                origin: format!("{} (environment)", variable.unwrap_or_default()),
                position: None,
            },
            (None, Some((value, origin))) => {
                let (text, position) = from_file(origin);
                Row {
                    key,
                    value: Some(value),
                    origin: text,
                    position,
                }
            }
            (None, None) => Row {
                key,
                value: default.map(str::to_string),
                origin: if default.is_some() {
                    "default".into()
                } else {
                    "not set".into()
                },
                position: None,
            },
        };
        rows.push(row);
    };
    let entries = config.entries();
    let entry = |key: &str| {
        entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, value, origin)| (value.clone(), *origin))
    };
    push("provider", Some("SUPER_PROVIDER"), entry("provider"), None);
    push("model", Some("SUPER_MODEL"), entry("model"), None);
    push("base_url", Some("SUPER_BASE_URL"), entry("base_url"), None);
    push("timeout", None, entry("timeout"), Some("300"));
    push(
        "threads",
        Some("SUPER_LOCAL_THREADS"),
        entry("threads"),
        Some("1"),
    );
    push("output", None, entry("output"), Some("\"human\""));
    for key in [
        "budget.max_tokens",
        "budget.max_cost_usd",
        "budget.max_llm_calls",
        "budget.max_wall_seconds",
        "budget.max_tool_calls",
    ] {
        push(key, None, entry(key), None);
    }
    // The files looked at, found or not.
    let mut files: Vec<(Layer, String, bool)> = Vec::new();
    if let Some(path) = crate::config::user_file(&env_lookup) {
        let found = config
            .files
            .iter()
            .any(|(l, p)| *l == Layer::User && *p == path);
        files.push((Layer::User, display_path(&path), found));
    }
    if let Some(root) = root {
        let path = root.join(PROJECT_FILE);
        let found = config.files.iter().any(|(l, _)| *l == Layer::Project);
        files.push((Layer::Project, display_path(&path), found));
    }
    match format {
        ShowFormat::Json => {
            let document = serde_json::json!({
                "values": rows.iter().map(|row| serde_json::json!({
                    "key": row.key,
                    "value": row.value,
                    "origin": row.origin,
                    "position": row.position,
                })).collect::<Vec<_>>(),
                "files": files.iter().map(|(layer, path, found)| serde_json::json!({
                    "layer": layer_name(*layer),
                    "path": path,
                    "found": found,
                })).collect::<Vec<_>>(),
                "precedence": PRECEDENCE,
                "diagnostics": diags.to_json(),
            });
            println!("{document}");
        }
        ShowFormat::Text => {
            let key_width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
            let value_width = rows
                .iter()
                .map(|r| r.value.as_deref().unwrap_or("-").chars().count())
                .max()
                .unwrap_or(0);
            for row in &rows {
                shown!(
                    "{:<key_width$}  {:<value_width$}  {}",
                    row.key,
                    row.value.as_deref().unwrap_or("-"),
                    row.origin
                );
            }
            shown!("");
            for (layer, path, found) in &files {
                shown!(
                    "{} config: {path}{}",
                    layer_name(*layer),
                    if *found { "" } else { " (not found)" }
                );
            }
            shown!("precedence: {PRECEDENCE}");
        }
    }
    Ok(if diags.has_errors() {
        EXIT_USAGE
    } else {
        EXIT_OK
    })
}

const PRECEDENCE: &str = "flag > SUPER_* variable > orchestra file and playbooks > project super.toml > user config > default";
