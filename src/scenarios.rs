//! A playbook's evaluation scenarios (`feature_specifications.scenarios`: a name, a
//! description, `input` fields, `expected_output` fields), the prompt each one sends, and how a
//! reply is scored: token-overlap F1 against the expected text, or a judge's 0–1 score.

use crate::spec::AgentSpec;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// One scenario as the playbook writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scenario {
    pub name: String,
    pub description: String,
    /// `input` fields in file order, as text.
    pub input: Vec<(String, String)>,
    /// `expected_output` fields in file order, as text.
    pub expected: Vec<(String, String)>,
}

impl Scenario {
    /// The expected text the reply is compared with: every expected field's value.
    pub fn expected_text(&self) -> String {
        self.expected
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The playbook's scenarios, or why there are none to run.
pub(crate) fn scenarios(agent: &AgentSpec) -> Result<Vec<Scenario>, String> {
    let section = agent
        .other_sections
        .iter()
        .find(|(name, _)| name == "spec.feature_specifications" || name == "feature_specifications")
        .map(|(_, value)| value)
        .ok_or_else(|| {
            format!(
                "the playbook of `{}` has no `feature_specifications` section",
                agent.name
            )
        })?;
    let items = section
        .get("scenarios")
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty())
        .ok_or_else(|| {
            format!(
                "the playbook of `{}` has no `feature_specifications.scenarios` (a list of {{name, input, expected_output}})",
                agent.name
            )
        })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("scenario_{}", i + 1));
            let fields = |key: &str| -> Result<Vec<(String, String)>, String> {
                match item.get(key) {
                    Some(Value::Object(map)) => {
                        Ok(map.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                    }
                    Some(Value::Null) | None => Err(format!(
                        "scenario `{name}` (number {}) has no `{key}` fields",
                        i + 1
                    )),
                    Some(other) => Ok(vec![(key.to_string(), text(other))]),
                }
            };
            Ok(Scenario {
                description: item
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                input: fields("input")?,
                expected: fields("expected_output")?,
                name,
            })
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The system and user prompts of a scenario: the agent's persona and first task's
/// instruction, then the scenario's input fields and the names of the expected fields.
pub(crate) fn prompts(agent: &AgentSpec, scenario: &Scenario) -> (String, String) {
    let mut system = crate::prompt::persona(agent);
    if let Some(task) = agent.tasks.first() {
        if let Some(instruction) = task.instruction.as_deref().or(task.description.as_deref()) {
            let _ = write!(system, "\n\nInstruction: {}", instruction.trim());
        }
    }
    let mut user = String::new();
    if !scenario.description.trim().is_empty() {
        let _ = writeln!(user, "{}\n", scenario.description.trim());
    }
    for (name, value) in &scenario.input {
        let _ = writeln!(user, "{}: {}", name.replace('_', " "), value.trim());
    }
    let names: Vec<String> = scenario
        .expected
        .iter()
        .map(|(n, _)| n.replace('_', " "))
        .collect();
    let _ = write!(user, "\nAnswer with: {}", names.join(", "));
    (system, user)
}

/// Lower-cased words (letters, digits), for the overlap score.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Token-overlap F1 of `reply` against `expected` (SQuAD-style: words counted with
/// multiplicity); 0 when either is empty.
pub(crate) fn f1(reply: &str, expected: &str) -> f64 {
    let reply = words(reply);
    let expected = words(expected);
    if reply.is_empty() || expected.is_empty() {
        return 0.0;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for word in &expected {
        *counts.entry(word.as_str()).or_default() += 1;
    }
    let mut common = 0usize;
    for word in &reply {
        if let Some(n) = counts.get_mut(word.as_str()).filter(|n| **n > 0) {
            *n -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / reply.len() as f64;
    let recall = common as f64 / expected.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// The judge's answer schema.
pub(crate) fn judge_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {"type": "string", "maxLength": 400}
        },
        "required": ["score", "reason"]
    })
}

/// The judge's prompts for one reply.
pub(crate) fn judge_prompts(scenario: &Scenario, user: &str, reply: &str) -> (String, String) {
    let system = "You are a strict, fair evaluator. You score how well an answer meets what was expected, from 0 (misses it) to 1 (fully meets it), and give a one-sentence reason.".to_string();
    let prompt = format!(
        "## The request\n\n{user}\n\n## What was expected\n\n{}\n\n## The answer\n\n{}\n\nScore the answer from 0 to 1 against what was expected.",
        scenario.expected_text(),
        reply.trim_end()
    );
    (system, prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_counts_shared_words_once_each() {
        assert_eq!(f1("", "a b"), 0.0);
        assert_eq!(f1("x y", "a b"), 0.0);
        assert!((f1("A b", "a b") - 1.0).abs() < 1e-9);
        // reply: a a c (3 words), expected: a b (2): common 1 -> p 1/3, r 1/2, f1 0.4
        assert!((f1("a a c", "a b") - 0.4).abs() < 1e-9);
        assert!(
            (f1("Return True, else False!", "return true false") - (2.0 * 0.75 * 1.0 / 1.75)).abs()
                < 1e-9
        );
    }
}
