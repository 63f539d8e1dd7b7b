//! The tool sections of playbooks and orchestras, read with exact locations: a playbook's
//! `spec.tools` (mapping, plain list) and `spec.builtin_tools`, `spec.react_config`, `spec.mcp`;
//! an orchestra's `execution.tools` and a task's `tools:`. It decodes and warns about names we do
//! not provide; which tools a task gets is `crate::tools::resolve`'s job.

use super::decode::Decoder;
use crate::diag::{did_you_mean, Diagnostic};
use crate::source::{Loc, SourceFile};
use crate::tools::catalog::{self, Lookup};
use crate::yaml::{Node, Value};
use std::sync::Arc;

/// A tool or category name as written, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolName {
    pub name: String,
    pub loc: Loc,
}

/// A playbook's tools: `spec.tools` in any of its forms, plus `spec.builtin_tools`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentToolsSpec {
    pub enabled: bool,
    pub categories: Vec<ToolName>,
    /// `specific_tools`, the plain-list form and `builtin_tools`, in file order.
    pub tools: Vec<ToolName>,
    pub max_iterations: Option<u64>,
}

/// `spec.react_config`: limits of the tool loop. Other keys are kept as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReactConfig {
    pub max_iters: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub other: Vec<(String, serde_json::Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum McpTransport {
    /// Spawn `command args` with `env` added (values may name `${VAR}` of our environment).
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    /// Streamable HTTP at `url`.
    Http { url: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct McpServerSpec {
    pub name: String,
    pub transport: McpTransport,
    /// Put before each of the server's tool names (`fs_` + `read_file`).
    pub tool_prefix: String,
    /// `file:line:col` of the server's entry, for errors at start.
    pub origin: String,
}

impl McpServerSpec {
    /// What the server runs or reaches, for messages (never the env values).
    pub fn describe(&self) -> String {
        match &self.transport {
            McpTransport::Stdio { command, args, .. } => {
                let mut line = command.clone();
                for arg in args {
                    line.push(' ');
                    line.push_str(arg);
                }
                line
            }
            McpTransport::Http { url } => url.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct McpSpec {
    pub enabled: bool,
    pub servers: Vec<McpServerSpec>,
}

/// `execution.tools` of an orchestra: names added or removed for every task, and permissions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrchestraToolsSpec {
    pub allow: Vec<ToolName>,
    pub deny: Vec<ToolName>,
    pub allow_hosts: Vec<String>,
    pub allow_commands: Vec<String>,
    /// One tool call's time limit.
    pub timeout_seconds: Option<u64>,
    pub max_iterations: Option<u64>,
    pub max_tool_calls: Option<u64>,
    /// The most bytes of one tool result handed back to the model.
    pub max_output_bytes: Option<u64>,
}

/// A task's `tools:`: a list is the task's exact set; a mapping adds and removes.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskToolsSpec {
    Exactly(Vec<ToolName>),
    Adjust {
        allow: Vec<ToolName>,
        deny: Vec<ToolName>,
    },
}

const AGENT_TOOLS_KEYS: &[&str] = &[
    "enabled",
    "categories",
    "specific_tools",
    "max_iterations",
    "tools",
    "builtin_tools",
    "custom_tools",
];
const MCP_KEYS: &[&str] = &["enabled", "servers"];
const SERVER_KEYS: &[&str] = &[
    "name",
    "type",
    "config",
    "url",
    "tool_prefix",
    "command",
    "args",
    "env",
    "description",
    "enabled",
];
const SERVER_CONFIG_KEYS: &[&str] = &["command", "args", "env", "url", "cwd", "timeout"];
const EXECUTION_TOOLS_KEYS: &[&str] = &[
    "allow",
    "deny",
    "allow_hosts",
    "allow_commands",
    "timeout_seconds",
    "max_iterations",
    "max_tool_calls",
    "max_output_bytes",
];
const TASK_TOOLS_KEYS: &[&str] = &["allow", "deny"];

/// A list of names: `[a, b]`, `- name: a` mappings, or one name.
pub fn decode_names(d: &mut Decoder<'_>, node: &Node, what: &str) -> Vec<ToolName> {
    if let Some(text) = node.scalar().filter(|_| !node.is_null()) {
        return vec![ToolName {
            name: text.trim().to_string(),
            loc: node.loc,
        }];
    }
    let mut names = Vec::new();
    let Some(items) = d.seq(node, what) else {
        return names;
    };
    for item in items {
        match &item.value {
            Value::Scalar { text, .. } if !item.is_null() => names.push(ToolName {
                name: text.trim().to_string(),
                loc: item.loc,
            }),
            Value::Map(_) => match item.get("name") {
                Some(n) => {
                    // `- name: x, enabled: false` leaves the tool out.
                    let disabled = item
                        .get("enabled")
                        .and_then(|e| d.bool(e, "enabled"))
                        .is_some_and(|e| !e);
                    if let Some(text) = d.string(n, &format!("{what}[].name")) {
                        if !disabled {
                            names.push(ToolName {
                                name: text.trim().to_string(),
                                loc: n.loc,
                            });
                        }
                    }
                }
                None => {
                    d.error(
                        item,
                        format!("an entry of `{what}` has no `name`"),
                        "this entry",
                    )
                    .hint = Some("write `- name: calculator` or `- calculator`".into());
                }
            },
            _ => {
                d.error(
                    item,
                    format!(
                        "wrong type in `{what}`: expected a tool name, found {}",
                        item.kind()
                    ),
                    "expected a name",
                );
            }
        }
    }
    names
}

fn decode_strings(d: &mut Decoder<'_>, node: &Node, what: &str) -> Vec<String> {
    if let Some(text) = node.scalar().filter(|_| !node.is_null()) {
        return vec![text.trim().to_string()];
    }
    let mut out = Vec::new();
    if let Some(items) = d.seq(node, what) {
        for item in items {
            if let Some(s) = d.string(item, what) {
                out.push(s.trim().to_string());
            }
        }
    }
    out
}

/// `spec.tools` (a mapping or a plain list) or `spec.builtin_tools`, merged into `into`.
pub fn decode_agent_tools(d: &mut Decoder<'_>, node: &Node, key: &str, into: &mut AgentToolsSpec) {
    if node.is_null() {
        return;
    }
    match &node.value {
        Value::Map(entries) => {
            let f = d.fields(entries, AGENT_TOOLS_KEYS, &format!("spec.{key}"), true);
            into.enabled = f
                .get("enabled")
                .and_then(|n| d.bool(n, "tools.enabled"))
                .unwrap_or(true);
            if let Some(n) = f.get("categories") {
                into.categories
                    .extend(decode_names(d, n, "tools.categories"));
            }
            for list in ["specific_tools", "tools", "builtin_tools"] {
                if let Some(n) = f.get(list) {
                    into.tools
                        .extend(decode_names(d, n, &format!("tools.{list}")));
                }
            }
            if let Some(n) = f.get("max_iterations") {
                into.max_iterations = d.u64(n, "tools.max_iterations");
            }
        }
        _ => {
            into.enabled = true;
            into.tools
                .extend(decode_names(d, node, &format!("spec.{key}")));
        }
    }
}

pub fn decode_react_config(d: &mut Decoder<'_>, node: &Node) -> ReactConfig {
    let mut config = ReactConfig::default();
    let Some(entries) = d.map(node, "spec.react_config") else {
        return config;
    };
    for (key, value) in entries {
        match key.scalar().unwrap_or_default() {
            "max_iters" | "max_iterations" => {
                config.max_iters = d.u64(value, "react_config.max_iters")
            }
            "max_tool_calls" => config.max_tool_calls = d.u64(value, "react_config.max_tool_calls"),
            other => config.other.push((other.to_string(), value.to_json())),
        }
    }
    config
}

pub fn decode_mcp(d: &mut Decoder<'_>, node: &Node) -> McpSpec {
    let mut spec = McpSpec {
        enabled: true,
        servers: Vec::new(),
    };
    let Some(entries) = d.map(node, "spec.mcp") else {
        return spec;
    };
    let f = d.fields(entries, MCP_KEYS, "spec.mcp", true);
    if let Some(n) = f.get("enabled") {
        spec.enabled = d.bool(n, "mcp.enabled").unwrap_or(true);
    }
    if let Some(n) = f.get("servers") {
        if let Some(items) = d.seq(n, "mcp.servers") {
            for item in items {
                if let Some(server) = decode_server(d, item) {
                    if spec.servers.iter().any(|s| s.name == server.name) {
                        d.error(
                            item,
                            format!("duplicate MCP server name `{}`", server.name),
                            "this name is already taken",
                        );
                        continue;
                    }
                    spec.servers.push(server);
                }
            }
        }
    }
    spec
}

fn decode_server(d: &mut Decoder<'_>, node: &Node) -> Option<McpServerSpec> {
    let entries = d.map(node, "mcp.servers[]")?;
    let f = d.fields(entries, SERVER_KEYS, "mcp.servers[]", true);
    if f.get("enabled")
        .and_then(|n| d.bool(n, "mcp.servers[].enabled"))
        == Some(false)
    {
        return None;
    }
    let Some(name) = f
        .get("name")
        .and_then(|n| d.string(n, "mcp.servers[].name"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    else {
        d.error(node, "an MCP server has no `name`", "this server")
            .hint = Some("add `name: filesystem`".into());
        return None;
    };
    let kind_node = f.get("type");
    let kind = kind_node
        .and_then(|n| d.string(n, "mcp.servers[].type"))
        .map(|s| s.trim().to_ascii_lowercase());
    // `command`/`args`/`env`/`url` sit under `config:` in SuperOptiX; on the entry itself is read too.
    let config = f.get("config");
    let get = |key: &'static str| f.get(key).or_else(|| config.and_then(|c| c.get(key)));
    let command = get("command");
    let args = get("args");
    let env = get("env");
    let url = get("url");
    if let Some(c) = config {
        if let Some(entries) = d.map(c, "mcp.servers[].config") {
            d.fields(entries, SERVER_CONFIG_KEYS, "mcp.servers[].config", true);
        }
    }
    let transport = match kind.as_deref() {
        Some("http" | "streamable_http" | "streamable-http" | "sse") | None if url.is_some() => {
            let url = url.and_then(|n| d.string(n, "mcp.servers[].url"))?;
            McpTransport::Http {
                url: url.trim().to_string(),
            }
        }
        Some("stdio") | None => {
            let Some(command) = command.and_then(|n| d.string(n, "command")) else {
                d.error(
                    node,
                    format!("MCP server `{name}` has no `command`"),
                    "this server",
                )
                .hint = Some("add `config: {command: npx, args: [...]}`".into());
                return None;
            };
            let args = args
                .map(|n| decode_strings(d, n, "mcp.servers[].args"))
                .unwrap_or_default();
            let mut vars = Vec::new();
            if let Some(env) = env {
                if let Some(entries) = d.map(env, "mcp.servers[].env") {
                    for (k, v) in entries {
                        if let (Some(k), Some(v)) = (k.scalar(), d.string(v, "env value")) {
                            vars.push((k.to_string(), v));
                        }
                    }
                }
            }
            McpTransport::Stdio {
                command: command.trim().to_string(),
                args,
                env: vars,
            }
        }
        Some(other) => {
            let node = kind_node.unwrap_or(node);
            let message = if other == "http" {
                format!("MCP server `{name}` has `type: http` but no `url`")
            } else {
                format!("unknown MCP server type `{other}`")
            };
            d.error(node, message, "expected `stdio` or `http`").hint = Some(
                "write `type: stdio` with `config: {command, args}`, or `type: http` with `url`"
                    .into(),
            );
            return None;
        }
    };
    let tool_prefix = f
        .get("tool_prefix")
        .and_then(|n| d.string(n, "tool_prefix"))
        .unwrap_or_default();
    let origin = format!("{}:{}:{}", d.file.display, node.loc.line, node.loc.col + 1);
    Some(McpServerSpec {
        name,
        transport,
        tool_prefix,
        origin,
    })
}

pub fn decode_orchestra_tools(d: &mut Decoder<'_>, node: &Node) -> OrchestraToolsSpec {
    let mut spec = OrchestraToolsSpec::default();
    let Some(entries) = d.map(node, "execution.tools") else {
        return spec;
    };
    let f = d.fields(entries, EXECUTION_TOOLS_KEYS, "execution.tools", true);
    if let Some(n) = f.get("allow") {
        spec.allow = decode_names(d, n, "tools.allow");
    }
    if let Some(n) = f.get("deny") {
        spec.deny = decode_names(d, n, "tools.deny");
    }
    if let Some(n) = f.get("allow_hosts") {
        spec.allow_hosts = decode_strings(d, n, "tools.allow_hosts");
    }
    if let Some(n) = f.get("allow_commands") {
        spec.allow_commands = decode_strings(d, n, "tools.allow_commands");
    }
    for (key, slot) in [
        ("timeout_seconds", &mut spec.timeout_seconds),
        ("max_iterations", &mut spec.max_iterations),
        ("max_tool_calls", &mut spec.max_tool_calls),
        ("max_output_bytes", &mut spec.max_output_bytes),
    ] {
        if let Some(n) = f.get(key) {
            match d.u64(n, &format!("tools.{key}")) {
                Some(0) if key != "max_tool_calls" => {
                    d.error(n, format!("`tools.{key}` must be at least 1"), "zero");
                }
                value => *slot = value,
            }
        }
    }
    spec
}

pub fn decode_task_tools(d: &mut Decoder<'_>, node: &Node) -> TaskToolsSpec {
    match &node.value {
        Value::Map(entries) => {
            let f = d.fields(entries, TASK_TOOLS_KEYS, "tasks[].tools", true);
            TaskToolsSpec::Adjust {
                allow: f
                    .get("allow")
                    .map(|n| decode_names(d, n, "tools.allow"))
                    .unwrap_or_default(),
                deny: f
                    .get("deny")
                    .map(|n| decode_names(d, n, "tools.deny"))
                    .unwrap_or_default(),
            }
        }
        _ => TaskToolsSpec::Exactly(decode_names(d, node, "tasks[].tools")),
    }
}

/// A warning for a tool name we do not provide, or `None` when we do (or when an MCP server
/// with a matching `tool_prefix` may). `where_` says which section named it.
pub fn unknown_tool_warning(
    file: &Arc<SourceFile>,
    name: &ToolName,
    mcp_prefixes: &[&str],
    where_: &str,
) -> Option<Diagnostic> {
    let lookup = catalog::lookup(&name.name);
    if matches!(lookup, Lookup::Builtin(_)) {
        return None;
    }
    if mcp_prefixes
        .iter()
        .any(|p| !p.is_empty() && name.name.starts_with(p))
    {
        return None;
    }
    let diagnostic = match lookup {
        Lookup::External => Diagnostic::warning(format!(
            "tool `{}` in {where_} is not built in: it needs an outside service",
            name.name
        ))
        .at(file, name.loc, "not provided; the agent runs without it")
        .hint("declare an MCP server that provides it under `spec.mcp.servers`"),
        _ => {
            let hint = match did_you_mean(&name.name, catalog::BUILTIN.iter().copied()) {
                Some(close) => format!(
                    "did you mean `{close}`? Built-in tools: {}",
                    catalog::BUILTIN.join(", ")
                ),
                None => format!(
                    "built-in tools: {}; other tools come from MCP servers (`spec.mcp`)",
                    catalog::BUILTIN.join(", ")
                ),
            };
            Diagnostic::warning(format!("unknown tool `{}` in {where_}", name.name))
                .at(file, name.loc, "no such tool; it is not offered")
                .hint(hint)
        }
    };
    Some(diagnostic)
}

/// Warns about each category we have no tools for.
pub fn unknown_category_warning(file: &Arc<SourceFile>, name: &ToolName) -> Option<Diagnostic> {
    if catalog::category(&name.name).is_some() {
        return None;
    }
    Some(
        Diagnostic::warning(format!(
            "tool category `{}` has no built-in tools",
            name.name
        ))
        .at(file, name.loc, "nothing is offered for this category")
        .hint(format!(
            "categories with built-in tools: {}; other tools come from MCP servers",
            catalog::category_names().join(", ")
        )),
    )
}

#[cfg(test)]
mod tests {
    use crate::diag::Diagnostics;
    use crate::source::SourceFile;
    use crate::spec::{AgentSpec, McpTransport, OrchestraSpec, TaskToolsSpec};

    fn agent(spec_body: &str) -> (Option<AgentSpec>, Diagnostics) {
        let text = format!(
            "apiVersion: agent/v1\nkind: AgentSpec\nmetadata: {{id: a}}\nspec:\n{spec_body}"
        );
        let file = SourceFile::new(std::path::Path::new("a_playbook.yaml"), text);
        let root = crate::yaml::parse(&file).unwrap_or_else(|e| panic!("{}", e.message));
        let mut diags = Diagnostics::default();
        (
            crate::spec::decode_agent(&file, &root, "a", &mut diags),
            diags,
        )
    }

    fn orchestra(text: &str) -> (Option<OrchestraSpec>, Diagnostics) {
        let file = SourceFile::new(std::path::Path::new("o_orchestra.yaml"), text.to_string());
        let root = crate::yaml::parse(&file).unwrap_or_else(|e| panic!("{}", e.message));
        let mut diags = Diagnostics::default();
        (
            crate::spec::decode_orchestra(&file, &root, &mut diags),
            diags,
        )
    }

    fn names(agent: &AgentSpec) -> Vec<String> {
        agent
            .tools
            .as_ref()
            .map(|t| t.tools.iter().map(|n| n.name.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_mapping_form() {
        let (a, diags) = agent(
            "  tools:\n    enabled: true\n    categories: [core, utilities]\n    specific_tools: [calculator, date_time]\n    max_iterations: 3\n",
        );
        let a = a.unwrap_or_else(|| panic!("{}", diags.render(false)));
        assert!(diags.items.is_empty(), "{}", diags.render(false));
        let tools = a.tools.clone().unwrap_or_default();
        assert!(tools.enabled);
        assert_eq!(tools.categories.len(), 2);
        assert_eq!(tools.max_iterations, Some(3));
        assert_eq!(names(&a), vec!["calculator", "date_time"]);
        assert!(!a.other_sections.iter().any(|(k, _)| k == "spec.tools"));
        // The located name: line 7 (`specific_tools:` is line 8 of the file: 4 header lines).
        assert_eq!(tools.tools[0].loc.line, 8);
    }

    #[test]
    fn the_plain_list_and_builtin_tools_forms() {
        let (a, diags) = agent(
            "  tools:\n  - calculator\n  - name: text_analyzer\n  - name: json_processor\n    enabled: false\n  builtin_tools:\n  - name: file_reader\n    description: read files\n",
        );
        let a = a.unwrap_or_else(|| panic!("{}", diags.render(false)));
        assert!(diags.items.is_empty(), "{}", diags.render(false));
        assert_eq!(
            names(&a),
            vec!["calculator", "text_analyzer", "file_reader"]
        );
        let (a, _) = agent("  tools:\n    enabled: false\n    specific_tools: [nonsense]\n");
        // A disabled section is read but not checked: nothing is offered from it.
        assert!(a.is_some_and(|a| a.tools.is_some_and(|t| !t.enabled)));
    }

    #[test]
    fn react_config_and_mcp_servers() {
        let (a, diags) = agent(
            "  react_config:\n    max_iters: 8\n    max_tool_calls: 20\n    temperature: 0.2\n  mcp:\n    enabled: true\n    servers:\n    - name: fs\n      type: stdio\n      config:\n        command: npx\n        args: [-y, pkg, /tmp]\n        env: {TOKEN: \"${MY_TOKEN}\"}\n      tool_prefix: fs_\n    - name: remote\n      type: http\n      url: http://127.0.0.1:3001/mcp\n",
        );
        let a = a.unwrap_or_else(|| panic!("{}", diags.render(false)));
        assert!(diags.items.is_empty(), "{}", diags.render(false));
        let react = a.react_config.clone().unwrap_or_default();
        assert_eq!((react.max_iters, react.max_tool_calls), (Some(8), Some(20)));
        assert_eq!(react.other.len(), 1);
        let mcp = a.mcp.clone().unwrap_or_default();
        assert_eq!(mcp.servers.len(), 2);
        assert_eq!(
            mcp.servers[0].transport,
            McpTransport::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "pkg".into(), "/tmp".into()],
                env: vec![("TOKEN".into(), "${MY_TOKEN}".into())],
            }
        );
        assert_eq!(mcp.servers[0].tool_prefix, "fs_");
        assert_eq!(mcp.servers[0].origin, "a_playbook.yaml:12:7");
        assert_eq!(mcp.servers[0].describe(), "npx -y pkg /tmp");
        assert_eq!(
            mcp.servers[1].transport,
            McpTransport::Http {
                url: "http://127.0.0.1:3001/mcp".into()
            }
        );
    }

    #[test]
    fn bad_mcp_servers_are_errors_at_their_place() {
        let (_, diags) = agent(
            "  mcp:\n    servers:\n    - name: a\n      type: http\n    - type: stdio\n      command: x\n    - name: c\n      type: carrier_pigeon\n    - name: d\n      type: stdio\n",
        );
        let text = diags.render(false);
        assert!(
            text.contains("MCP server `a` has `type: http` but no `url`"),
            "{text}"
        );
        assert!(text.contains("a_playbook.yaml:8:13"), "{text}");
        assert!(text.contains("an MCP server has no `name`"), "{text}");
        assert!(
            text.contains("unknown MCP server type `carrier_pigeon`"),
            "{text}"
        );
        assert!(text.contains("MCP server `d` has no `command`"), "{text}");
        assert_eq!(diags.error_count(), 4, "{text}");
    }

    #[test]
    fn unknown_tools_and_categories_warn_with_file_line_col() {
        let (_, diags) = agent(
            "  tools:\n    categories: [core, finance]\n    specific_tools: [calculater, web_search, fs_read_file]\n  mcp:\n    servers:\n    - name: fs\n      command: npx\n      tool_prefix: fs_\n",
        );
        let text = diags.render(false);
        assert_eq!(diags.error_count(), 0, "{text}");
        assert_eq!(diags.warning_count(), 3, "{text}");
        assert!(
            text.contains("tool category `finance` has no built-in tools"),
            "{text}"
        );
        assert!(text.contains("a_playbook.yaml:6:24"), "{text}");
        assert!(text.contains("unknown tool `calculater`"), "{text}");
        assert!(text.contains("did you mean `calculator`?"), "{text}");
        assert!(
            text.contains("tool `web_search` in the playbook's `tools` is not built in"),
            "{text}"
        );
        // `fs_read_file` may come from the `fs_` server: no warning.
        assert!(!text.contains("unknown tool `fs_read_file`"), "{text}");
        let mut strict = diags.clone();
        strict.promote_warnings();
        assert_eq!(strict.error_count(), 3);
    }

    #[test]
    fn execution_tools_and_task_tools() {
        let (o, diags) = orchestra(
            "orchestra:\n  id: o\n  execution:\n    tools:\n      allow: [calculator]\n      deny: shell\n      allow_hosts: [api.example.com]\n      allow_commands: [ls, \"git status\"]\n      timeout_seconds: 0\n      max_tool_calls: 0\n      colour: blue\ntasks:\n- name: a\n  agent: x\n  tools: [date_time]\n- name: b\n  agent: x\n  tools: {allow: [list_files], deny: [calculator]}\n",
        );
        let o = o.unwrap_or_else(|| panic!("{}", diags.render(false)));
        let text = diags.render(false);
        assert!(
            text.contains("`tools.timeout_seconds` must be at least 1"),
            "{text}"
        );
        assert!(text.contains("o_orchestra.yaml:9:24"), "{text}");
        assert!(
            text.contains("unknown key `colour` in `execution.tools`"),
            "{text}"
        );
        let tools = &o.execution.tools;
        assert_eq!(tools.allow[0].name, "calculator");
        assert_eq!(tools.deny[0].name, "shell");
        assert_eq!(tools.allow_hosts, vec!["api.example.com"]);
        assert_eq!(tools.allow_commands, vec!["ls", "git status"]);
        assert_eq!(tools.max_tool_calls, Some(0));
        assert!(
            matches!(&o.tasks[0].tools, Some(TaskToolsSpec::Exactly(n)) if n[0].name == "date_time")
        );
        assert!(matches!(
            &o.tasks[1].tools,
            Some(TaskToolsSpec::Adjust { allow, deny }) if allow[0].name == "list_files" && deny[0].name == "calculator"
        ));
    }
}
