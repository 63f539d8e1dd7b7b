//! `json_processor`: parse (and pretty-print) JSON text, query a path such as `a.b[0].c`, and
//! validate a document against a JSON Schema with the `jsonschema` crate (no remote or file
//! `$ref` is ever fetched: those features are off).

use super::tool::{opt_str, str_arg, Tool, ToolContext, ToolDefinition, ToolError};
use futures::future::BoxFuture;
use serde_json::{json, Value};

const NAME: &str = "json_processor";

/// One step of a path: a key or an index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Reads `a.b[0].c`, `$.a`, `items[2]`, `["odd key"]`.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let chars: Vec<char> = path.trim().chars().collect();
    let mut i = 0;
    if chars.first() == Some(&'$') {
        i = 1;
    }
    let mut key = String::new();
    let flush = |key: &mut String, steps: &mut Vec<Step>| {
        if !key.is_empty() {
            steps.push(Step::Key(std::mem::take(key)));
        }
    };
    while i < chars.len() {
        match chars[i] {
            '.' => {
                flush(&mut key, &mut steps);
                i += 1;
            }
            '[' => {
                flush(&mut key, &mut steps);
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|p| p + i)
                    .ok_or_else(|| format!("`[` at position {} is not closed", i + 1))?;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if let Some(quoted) = inner
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                {
                    steps.push(Step::Key(quoted.to_string()));
                } else {
                    let index = inner
                        .parse::<usize>()
                        .map_err(|_| format!("`[{inner}]` is not an index"))?;
                    steps.push(Step::Index(index));
                }
                i = close + 1;
            }
            c => {
                key.push(c);
                i += 1;
            }
        }
    }
    flush(&mut key, &mut steps);
    Ok(steps)
}

/// The value at `path`, or a message saying where the path stopped matching.
pub fn query<'v>(document: &'v Value, path: &str) -> Result<&'v Value, String> {
    let mut current = document;
    for step in parse_path(path)? {
        current = match (&step, current) {
            (Step::Key(k), Value::Object(map)) => map
                .get(k)
                .ok_or_else(|| format!("no key `{k}` (keys here: {})", keys(map)))?,
            (Step::Index(n), Value::Array(items)) => items.get(*n).ok_or_else(|| {
                format!("index {n} is out of range (the list has {})", items.len())
            })?,
            // A numeric key on an array, as in `a.0.b`.
            (Step::Key(k), Value::Array(items)) if k.parse::<usize>().is_ok() => {
                let n = k.parse::<usize>().unwrap_or(usize::MAX);
                items
                    .get(n)
                    .ok_or_else(|| format!("index {n} is out of range"))?
            }
            (step, other) => {
                return Err(format!(
                    "cannot take {} of {}",
                    match step {
                        Step::Key(k) => format!("key `{k}`"),
                        Step::Index(n) => format!("index {n}"),
                    },
                    kind(other)
                ))
            }
        };
    }
    Ok(current)
}

fn keys(map: &serde_json::Map<String, Value>) -> String {
    let mut list: Vec<&str> = map.keys().map(String::as_str).take(20).collect();
    if list.is_empty() {
        list.push("none");
    }
    list.join(", ")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The document: `data` as JSON text, or any JSON value given directly.
fn document(arguments: &Value, key: &str) -> Result<Value, ToolError> {
    match arguments.get(key) {
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| {
            ToolError::Failed(format!(
                "failed to parse `{key}` as JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ))
        }),
        Some(value) => Ok(value.clone()),
        None => Err(ToolError::invalid(NAME, format!("`{key}` is required"))),
    }
}

/// Every way `instance` breaks `schema`, one line each, or `valid`.
pub fn validate(schema: &Value, instance: &Value) -> Result<String, ToolError> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| ToolError::Failed(format!("the schema is invalid: {e}")))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(20)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("- at `{}`: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    if errors.is_empty() {
        Ok("valid".into())
    } else {
        Ok(format!("invalid:\n{}", errors.join("\n")))
    }
}

pub struct JsonProcessor {
    definition: ToolDefinition,
}

impl JsonProcessor {
    pub fn new() -> JsonProcessor {
        JsonProcessor {
            definition: ToolDefinition {
                name: NAME.into(),
                description: "JSON: operation `parse` (check and pretty-print `data`), `query` \
                              (the value at `path` such as `a.b[0].c` in `data`), `validate` \
                              (`data` against a JSON Schema `schema`)."
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "operation": {"type": "string", "enum": ["parse", "query", "validate"]},
                        "data": {"description": "JSON text, or a JSON value"},
                        "path": {"type": "string"},
                        "schema": {"description": "a JSON Schema, as JSON text or a value"}
                    },
                    "required": ["operation", "data"],
                    "additionalProperties": false
                }),
            },
        }
    }
}

impl Default for JsonProcessor {
    fn default() -> Self {
        JsonProcessor::new()
    }
}

impl Tool for JsonProcessor {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        _context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            let data = document(&arguments, "data")?;
            match opt_str(&arguments, "operation").unwrap_or("parse") {
                "parse" => serde_json::to_string_pretty(&data)
                    .map_err(|e| ToolError::Failed(e.to_string())),
                "query" => {
                    let path = str_arg(NAME, &arguments, "path")?;
                    let found = query(&data, path)
                        .map_err(|e| ToolError::Failed(format!("failed to query `{path}`: {e}")))?;
                    Ok(match found {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                }
                "validate" => validate(&document(&arguments, "schema")?, &data),
                other => Err(ToolError::invalid(
                    NAME,
                    format!("unknown operation `{other}` (use parse, query or validate)"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_and_followed() {
        let doc = json!({"a": {"b": [{"c": 7}, {"c": 8}]}, "odd key": true});
        assert_eq!(query(&doc, "a.b[0].c"), Ok(&json!(7)));
        assert_eq!(query(&doc, "$.a.b[1].c"), Ok(&json!(8)));
        assert_eq!(query(&doc, "a.b.1.c"), Ok(&json!(8)));
        assert_eq!(query(&doc, "[\"odd key\"]"), Ok(&json!(true)));
        assert!(query(&doc, "a.x").unwrap_err().contains("no key `x`"));
        assert!(query(&doc, "a.b[5]").unwrap_err().contains("out of range"));
        assert!(query(&doc, "a.b[0].c.d").unwrap_err().contains("a number"));
        assert!(query(&doc, "a[").is_err());
    }

    #[tokio::test]
    async fn parse_query_and_validate_through_the_tool() {
        let tool = JsonProcessor::new();
        let ctx = ToolContext::default();
        let got = tool
            .call(
                json!({"operation": "query", "data": "{\"x\": {\"y\": \"hi\"}}", "path": "x.y"}),
                &ctx,
            )
            .await;
        assert_eq!(got.as_deref(), Ok("hi"));
        let bad = tool
            .call(json!({"operation": "parse", "data": "{\"x\": "}), &ctx)
            .await
            .unwrap_err();
        assert!(bad.to_string().contains("line 1"), "{bad}");
        let schema = json!({"type": "object", "required": ["name"], "properties": {"age": {"type": "integer"}}});
        let ok = tool
            .call(
                json!({"operation": "validate", "data": {"name": "a", "age": 3}, "schema": schema}),
                &ctx,
            )
            .await;
        assert_eq!(ok.as_deref(), Ok("valid"));
        let invalid = tool
            .call(
                json!({"operation": "validate", "data": {"age": "old"}, "schema": schema}),
                &ctx,
            )
            .await
            .unwrap_or_default();
        assert!(invalid.starts_with("invalid:"), "{invalid}");
        assert!(invalid.contains("/age"), "{invalid}");
        assert!(invalid.contains("name"), "{invalid}");
    }
}
