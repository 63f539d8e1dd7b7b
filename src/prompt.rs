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

/// The prompt as written to `task_outputs/<task>_prompt.md`.
pub fn render_file(task: &str, system: &str, user: &str) -> String {
    format!("# Prompt for `{task}`\n\n## System\n\n{system}\n\n## User\n\n{user}\n")
}
