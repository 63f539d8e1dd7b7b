//! Load time: each task's output schema, from where it is written, checked once; every problem
//! a diagnostic at the file, line and column of the offending keyword. Then the field
//! references of descriptions against the schemas they read.

use super::{references, schema_from_outputs, OutputSchema, SchemaProblem};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::names::AgentName;
use crate::source::{Loc, SourceFile};
use crate::spec::{AgentSpec, OrchestraSpec, OutputFormat, TaskSpec};
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub(crate) type Schemas = Vec<Option<Arc<OutputSchema>>>;

const SUPPORTED: &str = "supported keywords: type, properties, required, items, enum, const, anyOf, oneOf, minimum, maximum, minLength, maxLength, minItems, maxItems, additionalProperties, $ref (to #/$defs/...), and the annotations description, title, default, examples";

/// Every task's schema (by task index), then the checks of `{task.field}` references.
/// `root` is the folder `output_schema_file` paths are relative to (the project root).
pub(crate) fn resolve_schemas(
    spec: &OrchestraSpec,
    agents: &BTreeMap<AgentName, AgentSpec>,
    root: &Path,
    diags: &mut Diagnostics,
) -> Schemas {
    let schemas: Schemas = spec
        .tasks
        .iter()
        .map(|task| task_schema(spec, task, agents, root, diags).map(Arc::new))
        .collect();
    check_references(spec, &schemas, diags);
    schemas
}

fn task_schema(
    spec: &OrchestraSpec,
    task: &TaskSpec,
    agents: &BTreeMap<AgentName, AgentSpec>,
    root: &Path,
    diags: &mut Diagnostics,
) -> Option<OutputSchema> {
    let output = &task.output;
    if let Some(node) = &output.schema {
        return from_node(&spec.file, node, "output_schema".into(), diags);
    }
    if let Some((relative, loc)) = &output.schema_file {
        let path = root.join(relative);
        return match crate::load::read_yaml(&path) {
            Ok((file, node)) => from_node(&file, &node, format!("`{relative}`"), diags),
            Err(mut problem) if problem.location.is_some() => {
                // Not YAML or JSON: the reader's own diagnostic points into the schema file.
                problem.message = format!(
                    "task `{}`: its `output_schema_file` is not valid YAML or JSON: {}",
                    task.name, problem.message
                );
                diags.push(problem);
                None
            }
            Err(problem) => {
                diags.push(
                    Diagnostic::error(format!(
                        "task `{}`: failed to read its `output_schema_file` `{relative}`",
                        task.name
                    ))
                    .at(&spec.file, *loc, "this file")
                    .hint(format!(
                        "{}; the path is relative to the project root `{}`",
                        problem.message,
                        crate::source::display_path(root)
                    )),
                );
                None
            }
        };
    }
    let (OutputFormat::Json, format_loc) = output.format? else {
        return None;
    };
    let outputs = agents
        .get(&task.agent)
        .and_then(|agent| agent.task_for(task.name.as_str()))
        .map(|t| t.outputs.as_slice())
        .unwrap_or_default();
    let Some(schema) = schema_from_outputs(outputs) else {
        diags.push(
            Diagnostic::error(format!(
                "task `{}` asks for `output_format: json`, but has no `output_schema` and its playbook task declares no `outputs`",
                task.name
            ))
            .at(&spec.file, format_loc, "json here")
            .hint("add `output_schema:` (a JSON Schema) to the task, or `outputs:` (name, type) to the agent's playbook task"),
        );
        return None;
    };
    match OutputSchema::new(schema, "the playbook task's `outputs`") {
        Ok(schema) => Some(schema),
        Err(problem) => {
            diags.push(
                Diagnostic::error(format!(
                    "task `{}`: the schema made from its playbook task's `outputs` is invalid at `{}`: {}",
                    task.name, problem.pointer, problem.message
                ))
                .at(&spec.file, format_loc, "json here"),
            );
            None
        }
    }
}

/// A schema written in YAML (or JSON, which our YAML reader also reads), checked, with any
/// problem pointed at its own keyword.
fn from_node(
    file: &Arc<SourceFile>,
    node: &Node,
    origin: String,
    diags: &mut Diagnostics,
) -> Option<OutputSchema> {
    match OutputSchema::new(node.to_json(), origin) {
        Ok(schema) => Some(schema),
        Err(SchemaProblem { pointer, message }) => {
            let loc = locate(node, &pointer);
            let mut diagnostic = Diagnostic::error(format!("invalid output schema: {message}")).at(
                file,
                loc,
                if pointer.is_empty() {
                    "this schema".to_string()
                } else {
                    format!("at `{pointer}`")
                },
            );
            if message.contains("unsupported") || message.contains("not supported") {
                diagnostic = diagnostic.hint(SUPPORTED);
            }
            diags.push(diagnostic);
            None
        }
    }
}

/// The place of a JSON pointer inside a node tree: the key of the last step when it is a
/// mapping key (so an unsupported keyword is pointed at), else the deepest node reached.
fn locate(node: &Node, pointer: &str) -> Loc {
    let mut here = node;
    let mut loc = node.loc;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        let next = match &here.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(token.as_str()))
                .map(|(k, v)| {
                    loc = k.loc;
                    v
                }),
            Value::Seq(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Scalar { .. } => None,
        };
        match next {
            Some(next) => {
                here = next;
                if !matches!(here.value, Value::Scalar { .. }) {
                    loc = here.loc;
                }
            }
            None => break,
        }
    }
    loc
}

/// `{task.field}` needs `task` to answer in JSON with a schema that defines `field`.
fn check_references(spec: &OrchestraSpec, schemas: &Schemas, diags: &mut Diagnostics) {
    for task in &spec.tasks {
        for reference in references(&task.description) {
            if reference.path.is_empty() {
                continue;
            }
            let Some(j) = spec
                .tasks
                .iter()
                .position(|t| t.name.as_str() == reference.task)
            else {
                continue; // the plan reports unknown tasks
            };
            let written = reference.written();
            match &schemas[j] {
                None => diags.push(
                    Diagnostic::error(format!(
                        "task `{}` uses `{written}`, but task `{}` has no output schema, so its output has no fields",
                        task.name, reference.task
                    ))
                    .at(&spec.file, reference_loc(spec, task, &written), "this field")
                    .hint(format!(
                        "give `{}` an `output_schema` (or `output_format: json` with playbook `outputs`), or use `{{{}}}` for its whole output",
                        reference.task, reference.task
                    )),
                ),
                Some(schema) if !schema.defines(&reference.path) => {
                    let fields: Vec<&str> = schema
                        .schema
                        .get("properties")
                        .and_then(|p| p.as_object())
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let wanted = reference.path.join(".");
                    let hint = match did_you_mean(&reference.path[0], fields.iter().copied()) {
                        Some(close) if reference.path.len() == 1 => format!("did you mean `{{{}.{close}}}`?", reference.task),
                        _ if fields.is_empty() => format!("`{}`'s schema defines no properties", reference.task),
                        _ => format!("`{}`'s schema defines: {}", reference.task, fields.join(", ")),
                    };
                    diags.push(
                        Diagnostic::error(format!(
                            "task `{}` uses `{written}`, but the output schema of `{}` defines no field `{wanted}`",
                            task.name, reference.task
                        ))
                        .at(&spec.file, reference_loc(spec, task, &written), "not a field of the schema")
                        .hint(hint),
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// Where a reference is written in a task's description (the description itself when it is
/// folded across lines in a way that splits the reference).
pub(crate) fn reference_loc(spec: &OrchestraSpec, task: &TaskSpec, written: &str) -> Loc {
    let lines = task.description.lines().count().saturating_add(2);
    spec.file
        .find_from(task.description_loc, written, lines)
        .unwrap_or(task.description_loc)
}
