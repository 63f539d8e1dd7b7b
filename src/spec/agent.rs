//! The agent playbook (SuperSpec `apiVersion: agent/v1`, `kind: AgentSpec`). We read what a run
//! needs (metadata, language model, persona, tasks, fields, and the tool sections `tools`,
//! `builtin_tools`, `react_config`, `mcp`) and keep every other section (agentflow, evaluation,
//! memory, ...) untouched: real playbooks carry many.

use super::decode::Decoder;
use super::tools::{
    decode_agent_tools, decode_mcp, decode_react_config, unknown_category_warning,
    unknown_tool_warning, AgentToolsSpec, McpSpec, ReactConfig,
};
use crate::diag::{Diagnostic, Diagnostics};
use crate::names::AgentName;
use crate::source::{Loc, SourceFile};
use crate::yaml::{Node, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct LanguageModelSpec {
    pub provider: Option<String>,
    pub provider_loc: Option<Loc>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    /// Azure OpenAI's `api-version`.
    pub api_version: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub loc: Loc,
}

#[derive(Debug, Clone, Default)]
pub struct Persona {
    pub name: Option<String>,
    pub role: Option<String>,
    pub goal: Option<String>,
    pub backstory: Option<String>,
    pub traits: Vec<String>,
    /// Other persona keys, kept in file order and shown in the system prompt.
    pub extra: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldSpec {
    pub name: String,
    pub kind: Option<String>,
    pub description: Option<String>,
    #[allow(
        dead_code,
        reason = "read from the file for completeness; nothing acts on it yet"
    )]
    pub required: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AgentTaskSpec {
    pub name: String,
    pub instruction: Option<String>,
    pub description: Option<String>,
    pub inputs: Vec<FieldSpec>,
    pub outputs: Vec<FieldSpec>,
}

#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub file: Arc<SourceFile>,
    pub name: AgentName,
    pub display_name: Option<String>,
    #[allow(
        dead_code,
        reason = "read from the file for completeness; nothing acts on it yet"
    )]
    pub namespace: Option<String>,
    /// `metadata.level`: the SuperOptiX tier (oracles, genies, ...).
    pub level: Option<String>,
    #[allow(
        dead_code,
        reason = "read from the file for completeness; nothing acts on it yet"
    )]
    pub version: Option<String>,
    pub description: Option<String>,
    pub language_model: Option<LanguageModelSpec>,
    pub persona: Persona,
    pub tasks: Vec<AgentTaskSpec>,
    pub input_fields: Vec<FieldSpec>,
    pub output_fields: Vec<FieldSpec>,
    /// `spec.tools` / `spec.builtin_tools`, merged.
    pub tools: Option<AgentToolsSpec>,
    pub react_config: Option<ReactConfig>,
    pub mcp: Option<McpSpec>,
    /// Sections we do not interpret, kept as read.
    pub other_sections: Vec<(String, serde_json::Value)>,
}

impl AgentSpec {
    /// The playbook task an orchestra task runs: the one with the same name, else the first.
    pub fn task_for(&self, orchestra_task: &str) -> Option<&AgentTaskSpec> {
        self.tasks
            .iter()
            .find(|t| t.name == orchestra_task)
            .or_else(|| self.tasks.first())
    }
}

const LANGUAGE_MODEL_KEYS: &[&str] = &[
    "provider",
    "model",
    "api_base",
    "base_url",
    "api_key",
    "temperature",
    "max_tokens",
    "top_p",
    "seed",
    "rpm",
    "tpm",
    "api_version",
    "timeout",
    "num_ctx",
    "context_length",
    // Understood elsewhere or ignored on purpose (docs/migrating.md): Vertex AI's region, the
    // model's family and card, upstream's runtime and gateway switches, its response cache.
    "location",
    "model_type",
    "model_info",
    "runtime_mode",
    "gateway",
    "cache",
];
const PERSONA_KNOWN: &[&str] = &["name", "role", "goal", "backstory", "traits"];

fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        _ if node.is_null() => None,
        Value::Scalar { text, .. } => Some(text.trim().to_string()),
        Value::Seq(items) => Some(
            items
                .iter()
                .filter_map(scalar_text)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::Map(_) => Some(node.to_json().to_string()),
    }
}

fn decode_fields(d: &mut Decoder<'_>, node: &Node, what: &str) -> Vec<FieldSpec> {
    let mut fields = Vec::new();
    let Some(items) = d.seq(node, what) else {
        return fields;
    };
    for item in items {
        match &item.value {
            Value::Scalar { text, .. } => fields.push(FieldSpec {
                name: text.clone(),
                ..FieldSpec::default()
            }),
            Value::Map(_) => fields.push(FieldSpec {
                name: item.get("name").and_then(scalar_text).unwrap_or_default(),
                kind: item.get("type").and_then(scalar_text),
                description: item.get("description").and_then(scalar_text),
                required: item
                    .get("required")
                    .and_then(|n| n.scalar())
                    .and_then(crate::yaml::parse_bool)
                    .unwrap_or(false),
            }),
            Value::Seq(_) => {
                d.error(
                    item,
                    format!("wrong type in `{what}`: expected a field mapping, found a list"),
                    "expected `- name: ...`",
                );
            }
        }
    }
    fields
}

/// Reads a playbook. `fallback_name` (the agent folder's name) is used when `metadata.id` is absent.
pub fn decode_agent(
    file: &Arc<SourceFile>,
    root: &Node,
    fallback_name: &str,
    diags: &mut Diagnostics,
) -> Option<AgentSpec> {
    let mut d = Decoder::new(file, diags);
    let Value::Map(entries) = &root.value else {
        d.error(
            root,
            format!("a playbook must be a mapping, found {}", root.kind()),
            "expected `apiVersion:`, `kind:`, `metadata:` and `spec:`",
        );
        return None;
    };
    if let Some(kind) = root.get("kind") {
        if let Some(text) = kind.scalar() {
            if text != "AgentSpec" {
                d.diags.push(
                    Diagnostic::warning(format!("playbook kind is `{text}`, expected `AgentSpec`"))
                        .at(file, kind.loc, "unexpected kind")
                        .hint("SuperSpec agent playbooks have `kind: AgentSpec`"),
                );
            }
        }
    }
    let mut other_sections = Vec::new();
    for (key, value) in entries {
        if let Some(k) = key.scalar() {
            if !matches!(k, "apiVersion" | "kind" | "metadata" | "spec") {
                other_sections.push((k.to_string(), value.to_json()));
            }
        }
    }

    let metadata = root.get("metadata");
    let meta = |key: &str| metadata.and_then(|m| m.get(key)).and_then(scalar_text);
    if let Some(m) = metadata {
        d.map(m, "metadata");
    }
    let raw_name = meta("id").unwrap_or_else(|| fallback_name.to_string());
    let name = match AgentName::parse(&raw_name) {
        Ok(name) => name,
        Err(reason) => {
            let node = metadata.and_then(|m| m.get("id")).unwrap_or(root);
            d.error(
                node,
                format!(
                    "agent id `{}` cannot be used: {reason}",
                    raw_name.escape_debug()
                ),
                "unsafe agent id",
            );
            return None;
        }
    };

    let mut agent = AgentSpec {
        file: Arc::clone(file),
        name,
        display_name: meta("name"),
        namespace: meta("namespace"),
        level: meta("level"),
        version: meta("version"),
        description: meta("description"),
        language_model: None,
        persona: Persona::default(),
        tasks: Vec::new(),
        input_fields: Vec::new(),
        output_fields: Vec::new(),
        tools: None,
        react_config: None,
        mcp: None,
        other_sections,
    };

    let Some(spec) = root.get("spec") else {
        return Some(agent);
    };
    let Some(spec_entries) = d.map(spec, "spec") else {
        return Some(agent);
    };
    for (key, value) in spec_entries {
        match key.scalar().unwrap_or_default() {
            "language_model" => agent.language_model = decode_language_model(&mut d, value),
            "persona" => agent.persona = decode_persona(&mut d, value),
            "tasks" => {
                if let Some(items) = d.seq(value, "spec.tasks") {
                    for item in items {
                        if d.map(item, "spec.tasks[]").is_none() {
                            continue;
                        }
                        let task_name = item.get("name").and_then(scalar_text).unwrap_or_default();
                        if task_name.is_empty() {
                            d.error(item, "a playbook task has no `name`", "this task");
                            continue;
                        }
                        agent.tasks.push(AgentTaskSpec {
                            name: task_name,
                            instruction: item.get("instruction").and_then(scalar_text),
                            description: item.get("description").and_then(scalar_text),
                            inputs: item
                                .get("inputs")
                                .map(|n| decode_fields(&mut d, n, "spec.tasks[].inputs"))
                                .unwrap_or_default(),
                            outputs: item
                                .get("outputs")
                                .map(|n| decode_fields(&mut d, n, "spec.tasks[].outputs"))
                                .unwrap_or_default(),
                        });
                    }
                }
            }
            "input_fields" => {
                agent.input_fields = decode_fields(&mut d, value, "spec.input_fields")
            }
            "output_fields" => {
                agent.output_fields = decode_fields(&mut d, value, "spec.output_fields")
            }
            key @ ("tools" | "builtin_tools") => decode_agent_tools(
                &mut d,
                value,
                key,
                agent.tools.get_or_insert_with(AgentToolsSpec::default),
            ),
            "react_config" => agent.react_config = Some(decode_react_config(&mut d, value)),
            "mcp" => agent.mcp = Some(decode_mcp(&mut d, value)),
            other => agent
                .other_sections
                .push((format!("spec.{other}"), value.to_json())),
        }
    }
    warn_unknown_tools(&mut d, &agent);
    Some(agent)
}

/// A tool or category we do not provide is a warning at its own line (an error under
/// `--strict`), unless one of the agent's MCP servers may provide it through its prefix.
fn warn_unknown_tools(d: &mut Decoder<'_>, agent: &AgentSpec) {
    let Some(tools) = agent.tools.as_ref().filter(|t| t.enabled) else {
        return;
    };
    let prefixes: Vec<&str> = agent
        .mcp
        .iter()
        .filter(|m| m.enabled)
        .flat_map(|m| m.servers.iter().map(|s| s.tool_prefix.as_str()))
        .collect();
    let mut found = Vec::new();
    for category in &tools.categories {
        found.extend(unknown_category_warning(d.file, category));
    }
    for name in &tools.tools {
        found.extend(unknown_tool_warning(
            d.file,
            name,
            &prefixes,
            "the playbook's `tools`",
        ));
    }
    for diagnostic in found {
        d.diags.push(diagnostic);
    }
}

fn decode_language_model(d: &mut Decoder<'_>, node: &Node) -> Option<LanguageModelSpec> {
    if node.is_null() {
        return None;
    }
    let entries = d.map(node, "spec.language_model")?;
    let f = d.fields(entries, LANGUAGE_MODEL_KEYS, "spec.language_model", true);
    let provider_node = f.get("provider");
    let base_url = f
        .get("base_url")
        .or_else(|| f.get("api_base"))
        .and_then(|n| d.string(n, "base_url"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let mut spec = LanguageModelSpec {
        provider: provider_node
            .and_then(|n| d.string(n, "provider"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        provider_loc: provider_node.map(|n| n.loc),
        model: f
            .get("model")
            .and_then(|n| d.string(n, "model"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        base_url,
        api_key: f.get("api_key").and_then(|n| d.string(n, "api_key")),
        api_version: f
            .get("api_version")
            .and_then(|n| d.string(n, "api_version"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        temperature: f.get("temperature").and_then(|n| d.f64(n, "temperature")),
        max_tokens: f.get("max_tokens").and_then(|n| {
            d.u64_in(
                n,
                "max_tokens",
                1,
                super::orchestra::limits::MAX_REPLY_TOKENS,
            )
        }),
        top_p: f.get("top_p").and_then(|n| d.f64(n, "top_p")),
        seed: f.get("seed").and_then(|n| d.u64(n, "seed")),
        rpm: f
            .get("rpm")
            .and_then(|n| d.u64_in(n, "rpm", 0, super::orchestra::limits::MAX_RPM))
            .filter(|v| *v > 0),
        tpm: f
            .get("tpm")
            .and_then(|n| d.u64_in(n, "tpm", 0, super::orchestra::limits::MAX_TPM))
            .filter(|v| *v > 0),
        loc: node.loc,
    };
    if let Some(t) = spec.temperature {
        if !(0.0..=2.0).contains(&t) {
            if let Some(n) = f.get("temperature") {
                d.error(
                    n,
                    format!("temperature {t} is out of range"),
                    "expected 0 to 2",
                );
            }
            spec.temperature = None;
        }
    }
    if let Some(p) = spec.top_p {
        if !(0.0..=1.0).contains(&p) || p == 0.0 {
            if let Some(n) = f.get("top_p") {
                d.error(
                    n,
                    format!("top_p {p} is out of range"),
                    "expected a number above 0 and at most 1",
                );
            }
            spec.top_p = None;
        }
    }
    Some(spec)
}

fn decode_persona(d: &mut Decoder<'_>, node: &Node) -> Persona {
    let mut persona = Persona::default();
    let Some(entries) = d.map(node, "spec.persona") else {
        return persona;
    };
    for (key, value) in entries {
        let Some(k) = key.scalar() else { continue };
        match k {
            "name" => persona.name = scalar_text(value),
            "role" => persona.role = scalar_text(value),
            "goal" => persona.goal = scalar_text(value),
            "backstory" => persona.backstory = scalar_text(value),
            "traits" => {
                persona.traits = match &value.value {
                    Value::Seq(items) => items.iter().filter_map(scalar_text).collect(),
                    _ => scalar_text(value).into_iter().collect(),
                }
            }
            other if !PERSONA_KNOWN.contains(&other) => {
                if let Some(text) = scalar_text(value) {
                    persona.extra.push((other.to_string(), text));
                }
            }
            _ => {}
        }
    }
    persona
}
