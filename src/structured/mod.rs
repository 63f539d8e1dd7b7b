//! Structured outputs: a task's JSON Schema (from `output_schema`, `output_schema_file` or its
//! playbook task's `outputs` under `output_format: json`), checked once at load time, then used
//! to validate every reply; and field references (`{design.endpoints}`) in task descriptions.
//!
//! The supported subset is what every provider can enforce, the embedded model's constrained
//! decoding included: `type`, `properties`, `required`, `items`, `enum`, `const`, `anyOf`,
//! `oneOf` (distinguishable branches), `minimum`/`maximum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `additionalProperties`, `$ref` to `#/$defs/...` or
//! `#/definitions/...`, and the annotations `description`, `title`, `default`, `examples`,
//! `$schema`, `$id`, `$comment`.

pub(crate) mod resolve;

use serde_json::Value;
use std::fmt::Write as _;

/// Most validator errors shown to the model in a repair request (and kept in the record).
const MAX_ERRORS_SHOWN: usize = 8;

/// A task's schema, valid and within the supported subset.
pub(crate) struct OutputSchema {
    pub schema: Value,
    /// Where it came from, for the dry run: `output_schema`, a file, the playbook's outputs.
    pub origin: String,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for OutputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSchema")
            .field("schema", &self.schema)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Why a schema cannot be used: the JSON pointer of the offending part ("" for the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaProblem {
    pub pointer: String,
    pub message: String,
}

impl OutputSchema {
    /// Checks `schema` against the supported subset and JSON Schema's own rules.
    pub fn new(schema: Value, origin: impl Into<String>) -> Result<OutputSchema, SchemaProblem> {
        check_subset(&schema)?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| SchemaProblem {
            pointer: e.instance_path().as_str().to_string(),
            message: e.to_string(),
        })?;
        Ok(OutputSchema {
            schema,
            origin: origin.into(),
            validator,
        })
    }

    /// The object a reply holds, or what is wrong with it (every line an error, worded for
    /// the model that must fix it). Code fences and text around one JSON document are allowed.
    pub fn check_reply(&self, reply: &str) -> Result<Value, String> {
        let candidate = json_candidate(reply);
        let value: Value = serde_json::from_str(candidate)
            .map_err(|e| format!("the reply is not valid JSON: {e}"))?;
        let errors: Vec<String> = self
            .validator
            .iter_errors(&value)
            .take(MAX_ERRORS_SHOWN + 1)
            .map(|e| {
                let at = e.instance_path().as_str();
                let at = if at.is_empty() { "/" } else { at };
                format!("at `{at}`: {e}")
            })
            .collect();
        if errors.is_empty() {
            return Ok(value);
        }
        let mut text = String::from("the reply does not match the schema:");
        for error in errors.iter().take(MAX_ERRORS_SHOWN) {
            let _ = write!(text, "\n- {error}");
        }
        if errors.len() > MAX_ERRORS_SHOWN {
            text.push_str("\n- (more errors not shown)");
        }
        Err(text)
    }

    /// The schema on one line, cut at `max` characters.
    pub fn compact(&self, max: usize) -> String {
        let text = self.schema.to_string();
        match text.char_indices().nth(max) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }

    /// Whether `path` (property names, outermost first) names a property the schema defines.
    pub fn defines(&self, path: &[String]) -> bool {
        let mut node = &self.schema;
        for key in path {
            node = self.resolve(node);
            let inner = node.get("properties").and_then(|p| p.get(key)).or_else(|| {
                // A property of any branch of `anyOf`/`oneOf`.
                ["anyOf", "oneOf"].iter().find_map(|k| {
                    node.get(*k)?
                        .as_array()?
                        .iter()
                        .find_map(|b| self.resolve(b).get("properties")?.get(key))
                })
            });
            match inner {
                Some(next) => node = next,
                None => return false,
            }
        }
        true
    }

    /// `node`, or what its local `$ref` points at.
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        node.get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|pointer| self.schema.pointer(pointer))
            .unwrap_or(node)
    }

    /// The instruction put into the system prompt, for every provider (it helps the model pick
    /// good values even where the server enforces the shape).
    pub fn instruction(&self) -> String {
        format!(
            "Answer with one JSON document and nothing else (no prose, no code fence). It must be valid for this JSON Schema:\n{}",
            self.schema
        )
    }

    /// The request that asks the model to fix its reply.
    pub fn repair_message(problems: &str) -> String {
        format!(
            "Your reply cannot be used: {problems}\nReply again with only the corrected JSON document, valid for the schema."
        )
    }
}

/// The supported subset: the embedded model's constrained decoding defines it, so a schema
/// that validates here runs on every provider.
fn check_subset(schema: &Value) -> Result<(), SchemaProblem> {
    #[cfg(feature = "local")]
    {
        super_local::JsonConstraint::check(schema).map_err(|e| match e {
            super_local::ConstraintError::Schema(problem) => SchemaProblem {
                pointer: problem.pointer,
                message: problem.message,
            },
            other => SchemaProblem {
                pointer: String::new(),
                message: other.to_string(),
            },
        })
    }
    #[cfg(not(feature = "local"))]
    {
        match schema {
            Value::Object(_) => Ok(()),
            other => Err(SchemaProblem {
                pointer: String::new(),
                message: format!("a schema must be an object, not `{other}`"),
            }),
        }
    }
}

/// The JSON document inside a reply: the reply itself, or the inside of a ```json fence, or
/// the span from the first `{`/`[` to the last `}`/`]`.
pub(crate) fn json_candidate(reply: &str) -> &str {
    let trimmed = reply.trim();
    if serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok() {
        return trimmed;
    }
    if let Some(start) = trimmed.find("```") {
        let after = &trimmed[start + 3..];
        let body = after.find('\n').map_or(after, |n| &after[n + 1..]);
        if let Some(end) = body.find("```") {
            return body[..end].trim();
        }
    }
    let open = trimmed.find(['{', '[']);
    let close = trimmed.rfind(['}', ']']);
    match (open, close) {
        (Some(open), Some(close)) if open < close => &trimmed[open..=close],
        _ => trimmed,
    }
}

/// A JSON Schema for a playbook task's `outputs`, for a task whose answer must be JSON
/// (`output_format: json`): one property per output, typed from SuperSpec's type names, every
/// output required, nothing else allowed. `None` when the task declares no outputs.
pub(crate) fn schema_from_outputs(outputs: &[crate::spec::agent::FieldSpec]) -> Option<Value> {
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
        required.push(Value::from(name));
    }
    if properties.is_empty() {
        return None;
    }
    Some(serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

/// SuperSpec's type names (`str`, `int`, `float`, `bool`, `list[str]`, `dict`, ...) as JSON
/// Schema. An untyped list holds strings.
fn json_type(kind: &str) -> Value {
    let kind = kind.trim().to_ascii_lowercase();
    if let Some(inner) = kind
        .strip_prefix("list[")
        .or_else(|| kind.strip_prefix("array["))
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return serde_json::json!({"type": "array", "items": json_type(inner)});
    }
    match kind.as_str() {
        "int" | "integer" => serde_json::json!({"type": "integer"}),
        "float" | "number" | "double" => serde_json::json!({"type": "number"}),
        "bool" | "boolean" => serde_json::json!({"type": "boolean"}),
        "list" | "array" => serde_json::json!({"type": "array", "items": {"type": "string"}}),
        "dict" | "object" | "json" | "map" => serde_json::json!({"type": "object"}),
        _ => serde_json::json!({"type": "string"}),
    }
}

pub(crate) use crate::template::FieldRef;

/// Every `{name}` and `{name.field...}` placeholder of a description except `{goal}` (see
/// `template` for what is a placeholder and how braces are escaped).
pub(crate) fn references(description: &str) -> Vec<FieldRef> {
    let mut refs = crate::template::placeholders(description);
    refs.retain(|r| !r.is_goal());
    refs
}

/// What fills a description's placeholders: the goal, the run's inputs, finished outputs.
pub(crate) struct Values<'a> {
    pub goal: &'a str,
    pub inputs: &'a crate::inputs::InputValues,
    /// A finished task's output by name.
    pub output: &'a dyn Fn(&str) -> Option<String>,
}

/// The description with `{goal}`, every input and every reference to a finished task filled
/// in, and `{{`/`}}` escapes undone: `{task}` is its whole output, `{task.field}` one value of
/// its JSON object (a string as it is, anything else as compact JSON). A placeholder with no
/// value stays as written.
pub(crate) fn fill(description: &str, values: &Values<'_>) -> String {
    crate::template::render(description, &|reference| {
        if reference.is_goal() {
            return Some(values.goal.to_string());
        }
        if reference.path.is_empty() {
            if let Some(value) = values.inputs.get(&reference.task) {
                return Some(value.clone());
            }
        }
        let text = (values.output)(&reference.task)?;
        if reference.path.is_empty() {
            return Some(text);
        }
        let v = serde_json::from_str::<Value>(json_candidate(&text)).ok()?;
        let mut node = &v;
        for key in &reference.path {
            node = node.get(key)?;
        }
        Some(match node {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::agent::FieldSpec;
    use serde_json::json;

    fn field(name: &str, kind: &str, description: &str) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind: Some(kind.into()),
            description: Some(description.into()),
            required: false,
        }
    }

    #[test]
    fn outputs_become_a_strict_json_schema_that_every_provider_can_enforce() {
        let schema = schema_from_outputs(&[
            field("summary", "str", "One paragraph."),
            field("score", "float", ""),
            field("steps", "list[str]", "Numbered steps."),
            field("count", "int", ""),
            field("ok", "bool", ""),
            field("tags", "list", ""),
            field("extra", "dict", ""),
        ])
        .expect("a schema");
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "summary": {"type": "string", "description": "One paragraph."},
                    "score": {"type": "number"},
                    "steps": {"type": "array", "items": {"type": "string"}, "description": "Numbered steps."},
                    "count": {"type": "integer"},
                    "ok": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "extra": {"type": "object"},
                },
                "required": ["summary", "score", "steps", "count", "ok", "tags", "extra"],
                "additionalProperties": false,
            })
        );
        OutputSchema::new(schema, "outputs").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(schema_from_outputs(&[]).is_none());
    }

    #[test]
    fn unsupported_keywords_and_bad_schemas_name_their_place() {
        let problem = OutputSchema::new(
            json!({"type": "object", "properties": {"name": {"type": "string", "pattern": "a+"}}}),
            "t",
        )
        .expect_err("pattern is not supported");
        assert_eq!(problem.pointer, "/properties/name/pattern");
        assert!(problem.message.contains("pattern"), "{problem:?}");
        let problem = OutputSchema::new(json!({"$ref": "#/$defs/missing"}), "t")
            .expect_err("a dangling $ref");
        assert!(problem.message.contains("missing"), "{problem:?}");
        let problem =
            OutputSchema::new(json!({"type": "strin"}), "t").expect_err("an unknown type");
        assert!(problem.message.contains("strin"), "{problem:?}");
        let problem = OutputSchema::new(json!({"type": "integer", "minimum": "zero"}), "t")
            .expect_err("a minimum that is not a number");
        assert_eq!(problem.pointer, "/minimum");
    }

    #[test]
    fn replies_are_parsed_out_of_fences_and_validated_with_every_error() {
        let schema = OutputSchema::new(
            json!({"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}, "s": {"enum": ["a", "b"]}}, "required": ["n", "s"], "additionalProperties": false}),
            "t",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            schema.check_reply("```json\n{\"n\": 3, \"s\": \"a\"}\n```"),
            Ok(json!({"n": 3, "s": "a"}))
        );
        assert_eq!(
            schema.check_reply("Here it is: {\"n\": 1, \"s\": \"b\"} Done."),
            Ok(json!({"n": 1, "s": "b"}))
        );
        let errors = schema
            .check_reply("{\"n\": 9, \"s\": \"c\", \"x\": 1}")
            .expect_err("three problems");
        assert!(errors.contains("at `/n`"), "{errors}");
        assert!(errors.contains("at `/s`"), "{errors}");
        assert!(errors.contains("x"), "{errors}");
        let not_json = schema.check_reply("no json here").expect_err("not JSON");
        assert!(
            not_json.starts_with("the reply is not valid JSON"),
            "{not_json}"
        );
    }

    #[test]
    fn defines_follows_properties_refs_and_branches() {
        let schema = OutputSchema::new(
            json!({
                "type": "object",
                "properties": {
                    "api": {"$ref": "#/$defs/api"},
                    "owner": {"anyOf": [{"type": "object", "properties": {"name": {"type": "string"}}}, {"type": "null"}]}
                },
                "$defs": {"api": {"type": "object", "properties": {"endpoints": {"type": "array", "items": {"type": "string"}}}}}
            }),
            "t",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(schema.defines(&path(&["api"])));
        assert!(schema.defines(&path(&["api", "endpoints"])));
        assert!(schema.defines(&path(&["owner", "name"])));
        assert!(!schema.defines(&path(&["api", "routes"])));
        assert!(!schema.defines(&path(&["nothing"])));
    }

    #[test]
    fn references_are_found_and_filled() {
        let text = "Use {design.endpoints} and {design} for {goal}; keep {not a ref} and {x.}.";
        let refs = references(text);
        assert_eq!(
            refs.iter().map(FieldRef::written).collect::<Vec<_>>(),
            ["{design.endpoints}", "{design}"]
        );
        let output = |name: &str| {
            (name == "design").then(|| "{\"endpoints\": [\"/login\"], \"name\": \"x\"}".to_string())
        };
        let inputs = crate::inputs::InputValues::from([("topic".to_string(), "AI".to_string())]);
        let values = Values {
            goal: "a login page",
            inputs: &inputs,
            output: &output,
        };
        assert_eq!(
            fill(text, &values),
            "Use [\"/login\"] and {\"endpoints\": [\"/login\"], \"name\": \"x\"} for a login page; keep {not a ref} and {x.}."
        );
        assert_eq!(
            fill(
                "{design.name} by {other.field} on {topic}, {{topic}}",
                &values
            ),
            "x by {other.field} on AI, {topic}"
        );
    }
}
