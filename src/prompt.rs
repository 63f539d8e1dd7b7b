//! The prompt a task sends. System: the agent's persona, the instruction of its playbook task,
//! what the task receives (its `inputs`, filled by the goal and the context) and what it must
//! answer (its `outputs`, named, typed and described). User: the task description with `{goal}` filled in, the goal itself, the expected
//! output, then each context task's output under a heading naming the task and its agent.

use crate::spec::{AgentSpec, TaskSpec};
use std::fmt::Write as _;

pub struct ContextOutput<'a> {
    pub task: &'a str,
    pub agent: &'a str,
    pub output: &'a str,
}

pub fn system_message(agent: &AgentSpec, task: &TaskSpec) -> String {
    let persona = &agent.persona;
    let mut out = String::new();
    match (&persona.name, &persona.role) {
        (Some(name), Some(role)) => {
            let _ = writeln!(out, "You are {name}, a {role}.");
        }
        (None, Some(role)) => {
            let _ = writeln!(out, "You are a {role}.");
        }
        (Some(name), None) => {
            let _ = writeln!(out, "You are {name}.");
        }
        (None, None) => {
            let who = agent.display_name.as_deref().unwrap_or(agent.name.as_str());
            let _ = writeln!(out, "You are {who}.");
        }
    }
    if let Some(goal) = &persona.goal {
        let _ = writeln!(out, "Your goal: {goal}");
    }
    if let Some(backstory) = &persona.backstory {
        let _ = writeln!(out, "Background: {backstory}");
    }
    if !persona.traits.is_empty() {
        let _ = writeln!(out, "Traits: {}", persona.traits.join(", "));
    }
    for (key, value) in &persona.extra {
        let _ = writeln!(out, "{}: {value}", key.replace('_', " "));
    }
    if let Some(playbook_task) = agent.task_for(task.name.as_str()) {
        let instruction = playbook_task
            .instruction
            .as_deref()
            .or(playbook_task.description.as_deref());
        if let Some(instruction) = instruction {
            let _ = write!(out, "\nInstruction: {}\n", instruction.trim());
        }
        if !playbook_task.inputs.is_empty() {
            let _ = write!(
                out,
                "\nYou receive (from the goal and the earlier tasks' outputs in the message):\n"
            );
            for field in &playbook_task.inputs {
                let _ = writeln!(out, "{}", field_line(field));
            }
        }
        if !playbook_task.outputs.is_empty() {
            let _ = write!(out, "\nAnswer with:\n");
            for field in &playbook_task.outputs {
                let _ = writeln!(out, "{}", field_line(field));
            }
        }
    }
    out.trim_end().to_string()
}

/// `- name (type): description`, leaving out what the playbook does not say.
fn field_line(field: &crate::spec::agent::FieldSpec) -> String {
    let mut line = format!("- {}", field.name.trim());
    if let Some(kind) = field.kind.as_deref().filter(|k| !k.trim().is_empty()) {
        let _ = write!(line, " ({})", kind.trim());
    }
    if let Some(description) = field
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        let _ = write!(line, ": {}", description.trim());
    }
    line
}

pub fn user_message(task: &TaskSpec, goal: &str, context: &[ContextOutput<'_>]) -> String {
    let mut out = String::new();
    let description = task.description.replace("{goal}", goal);
    if !description.trim().is_empty() {
        let _ = writeln!(out, "{}", description.trim());
        out.push('\n');
    }
    let _ = writeln!(out, "Goal: {goal}");
    if let Some(expected) = &task.expected_output {
        let _ = writeln!(out, "\nExpected output: {expected}");
    }
    for item in context {
        let _ = write!(
            out,
            "\n## Output of `{}` ({})\n\n{}\n",
            item.task,
            item.agent,
            item.output.trim_end()
        );
    }
    // Small models follow whatever they read last: after the context, restate the task.
    if !context.is_empty() && !description.trim().is_empty() {
        let _ = write!(out, "\n## Your task\n\n{}\n", description.trim());
    }
    out.trim_end().to_string()
}

/// The request a task sends: its prompts, its model and sampling.
pub fn chat_request(
    agent: &AgentSpec,
    task: &TaskSpec,
    model: &crate::provider::ModelChoice,
    goal: &str,
    context: &[ContextOutput<'_>],
) -> crate::provider::ChatRequest {
    let mut request = crate::provider::ChatRequest::new(
        model.model.clone(),
        system_message(agent, task),
        user_message(task, goal, context),
    );
    request.sampling = crate::provider::Sampling {
        temperature: model.temperature,
        max_tokens: model.max_tokens,
        top_p: model.top_p,
        seed: model.seed,
    };
    request
}

/// The conversation as written to `task_outputs/<task>_prompt.md`.
pub fn render_request(task: &str, request: &crate::provider::ChatRequest) -> String {
    let mut out = format!("# Prompt for `{task}`\n");
    for message in &request.messages {
        let heading = match message.role {
            crate::provider::Role::System => "System",
            crate::provider::Role::User => "User",
            crate::provider::Role::Assistant => "Assistant",
            crate::provider::Role::Tool => "Tool",
        };
        let _ = write!(out, "\n## {heading}\n\n{}\n", message.content);
        for call in &message.tool_calls {
            let _ = writeln!(out, "\n(call `{}` with `{}`)", call.name, call.arguments);
        }
    }
    out
}

/// A JSON Schema for a playbook task's `outputs`, for a task whose answer must be JSON
/// (`output_format: json`): one property per output, typed from SuperSpec's type names, every
/// output required, nothing else allowed. `None` when the task declares no outputs.
pub fn output_schema(outputs: &[crate::spec::agent::FieldSpec]) -> Option<serde_json::Value> {
    if outputs.is_empty() {
        return None;
    }
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for field in outputs {
        let name = field.name.trim();
        if name.is_empty() {
            continue;
        }
        let mut schema = json_type(field.kind.as_deref().unwrap_or("str"));
        if let (Some(description), Some(object)) = (
            field
                .description
                .as_deref()
                .filter(|d| !d.trim().is_empty()),
            schema.as_object_mut(),
        ) {
            object.insert("description".into(), description.trim().into());
        }
        properties.insert(name.to_string(), schema);
        required.push(serde_json::Value::from(name));
    }
    Some(serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

/// SuperSpec's type names (`str`, `int`, `float`, `bool`, `list[str]`, `dict`, ...) as JSON Schema.
fn json_type(kind: &str) -> serde_json::Value {
    let kind = kind.trim().to_ascii_lowercase();
    if let Some(inner) = kind
        .strip_prefix("list[")
        .or_else(|| kind.strip_prefix("array["))
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return serde_json::json!({"type": "array", "items": json_type(inner)});
    }
    let name = match kind.as_str() {
        "int" | "integer" => "integer",
        "float" | "number" | "double" => "number",
        "bool" | "boolean" => "boolean",
        "list" | "array" => "array",
        "dict" | "object" | "json" | "map" => "object",
        _ => "string",
    };
    serde_json::json!({ "type": name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::agent::FieldSpec;

    fn field(name: &str, kind: &str, description: &str) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind: Some(kind.into()),
            description: Some(description.into()),
            required: false,
        }
    }

    #[test]
    fn outputs_become_a_strict_json_schema() {
        let schema = output_schema(&[
            field("summary", "str", "One paragraph."),
            field("score", "float", ""),
            field("steps", "list[str]", "Numbered steps."),
            field("count", "int", ""),
        ])
        .expect("a schema");
        assert_eq!(
            schema,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "summary": {"type": "string", "description": "One paragraph."},
                    "score": {"type": "number"},
                    "steps": {"type": "array", "items": {"type": "string"}, "description": "Numbered steps."},
                    "count": {"type": "integer"},
                },
                "required": ["summary", "score", "steps", "count"],
                "additionalProperties": false,
            })
        );
        assert!(output_schema(&[]).is_none());
    }
}
