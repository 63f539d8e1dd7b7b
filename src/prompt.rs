//! The prompt a task sends. System: the agent's persona, the instruction of its playbook task,
//! what the task receives (its `inputs`, filled by the goal and the context) and what it must
//! answer (its `outputs`, named, typed and described). User: the task description with `{goal}`, the inputs (`{name}`) and field references filled
//! in, the goal itself, the expected output (goal and inputs filled), then each context task's output under a heading naming the task and its agent.

use crate::spec::{AgentSpec, TaskSpec};
use std::fmt::Write as _;

pub struct ContextOutput<'a> {
    pub task: &'a str,
    pub agent: &'a str,
    pub output: &'a str,
}

/// Who the agent is: name, role, goal, backstory, traits and any other persona fields.
pub fn persona(agent: &AgentSpec) -> String {
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
    out.trim_end().to_string()
}

pub fn system_message(agent: &AgentSpec, task: &TaskSpec) -> String {
    let mut out = persona(agent);
    out.push('\n');
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

/// Finished tasks' outputs by task name, for `{task}` and `{task.field}` in descriptions.
pub type OutputLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn user_message(
    task: &TaskSpec,
    goal: &str,
    inputs: &crate::inputs::InputValues,
    context: &[ContextOutput<'_>],
    outputs: OutputLookup<'_>,
) -> String {
    let mut out = String::new();
    let values = crate::structured::Values {
        goal,
        inputs,
        output: outputs,
    };
    let description = crate::structured::fill(&task.description, &values);
    if !description.trim().is_empty() {
        let _ = writeln!(out, "{}", description.trim());
        out.push('\n');
    }
    let _ = writeln!(out, "Goal: {goal}");
    if let Some(expected) = &task.expected_output {
        // The goal and the inputs; another task's output is not an expectation.
        let expected = crate::structured::fill(
            expected,
            &crate::structured::Values {
                output: &|_| None,
                ..values
            },
        );
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

/// The request a task sends: its prompts, its model and sampling, and the schema its answer
/// must follow (asked for natively, and stated in the system prompt).
pub fn chat_request(
    agent: &AgentSpec,
    task: &TaskSpec,
    settings: &crate::settings::TaskSettings,
    goal: &str,
    inputs: &crate::inputs::InputValues,
    context: &[ContextOutput<'_>],
    outputs: OutputLookup<'_>,
) -> crate::provider::ChatRequest {
    let model = &settings.model;
    let mut system = system_message(agent, task);
    if let Some(schema) = &settings.output_schema {
        system.push_str("\n\n");
        system.push_str(&schema.instruction());
    }
    let mut request = crate::provider::ChatRequest::new(
        model.model.clone(),
        system,
        user_message(task, goal, inputs, context, outputs),
    );
    request.response_format =
        settings
            .output_schema
            .as_ref()
            .map(|schema| crate::provider::ResponseFormat {
                name: "answer".into(),
                schema: schema.schema.clone(),
            });
    request.sampling = model.sampling();
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
