//! Which tools one task may use, and the limits of its tool loop: a pure function of the
//! agent's playbook, the orchestra's `execution.tools` and the task's own `tools:`. Also the
//! validate-time check of the names an orchestra gives. No I/O: MCP tools are matched here by
//! name once their servers have listed them ([`TaskTools::select`]).
//!
//! Order: the playbook's tools (categories, `specific_tools`, `builtin_tools`, the plain list)
//! plus every tool of its enabled MCP servers; then the orchestra's `allow` adds and `deny`
//! removes; then the task's `tools:` list replaces the set, or its `{allow, deny}` adjusts it.
//! `http_get` and `shell` stay out unless the orchestra grants `allow_hosts` / `allow_commands`.

use super::catalog::{self, Lookup, Permissions};
use super::mcp::McpSessions;
use super::tool::{CallLimits, Tool, DEFAULT_OUTPUT_CAP, DEFAULT_TOOL_TIMEOUT};
use crate::diag::Diagnostics;
use crate::names::AgentName;
use crate::spec::tools::{unknown_tool_warning, ToolName};
use crate::spec::{
    AgentSpec, McpServerSpec, OrchestraSpec, OrchestraToolsSpec, TaskSpec, TaskToolsSpec,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The tool loop's default number of model turns with tools.
pub const DEFAULT_MAX_ITERATIONS: u32 = 5;

/// What the executor needs for one task's tool loop.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSettings {
    /// Model turns that may call tools; at the limit the model is asked once more, without tools.
    pub max_iterations: u32,
    /// Tool calls in the whole task, if limited.
    pub max_tool_calls: Option<u32>,
    pub call: CallLimits,
    pub permissions: Permissions,
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings {
            max_iterations: DEFAULT_MAX_ITERATIONS,
            max_tool_calls: None,
            call: CallLimits::default(),
            permissions: Permissions::default(),
        }
    }
}

/// The tools one task may use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskTools {
    /// Built-in tools offered, canonical names, in order.
    pub builtin: Vec<&'static str>,
    /// The agent's MCP servers (started once per run by `McpSessions`).
    pub mcp_servers: Vec<McpServerSpec>,
    /// When set (a task's `tools:` list), only these MCP tool names are offered.
    pub mcp_only: Option<Vec<String>>,
    /// MCP tool names (or `prefix*`) removed.
    pub mcp_deny: Vec<String>,
    /// Names asked for but not offered, with why.
    pub unavailable: Vec<(String, String)>,
    pub settings: ToolSettings,
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

impl TaskTools {
    /// Whether an MCP tool (by its prefixed name) is offered.
    pub fn offers_mcp(&self, name: &str) -> bool {
        if self.mcp_deny.iter().any(|p| matches(p, name)) {
            return false;
        }
        match &self.mcp_only {
            Some(only) => only.iter().any(|p| matches(p, name)),
            None => true,
        }
    }

    /// The tools to offer, from the run's MCP sessions (`None` when the run has no server):
    /// the built-ins, then the tools of this task's agent's servers it may use.
    pub fn offer(&self, sessions: Option<&McpSessions>) -> Vec<Arc<dyn Tool>> {
        let mcp = sessions
            .map(|s| s.tools_for(&self.mcp_servers))
            .unwrap_or_default();
        self.select(&mcp)
    }

    /// The built-ins built with this task's permissions, then those of `mcp_tools` (already
    /// this task's agent's) it may use. A name already taken is skipped.
    pub fn select(&self, mcp_tools: &[Arc<dyn Tool>]) -> Vec<Arc<dyn Tool>> {
        let mut out: Vec<Arc<dyn Tool>> = self
            .builtin
            .iter()
            .filter_map(|name| catalog::build(name, &self.settings.permissions))
            .collect();
        for tool in mcp_tools {
            let name = &tool.definition().name;
            if self.offers_mcp(name) && !out.iter().any(|t| &t.definition().name == name) {
                out.push(Arc::clone(tool));
            }
        }
        out
    }

    /// One line for the task's start: what it may use and what it asked for but lacks.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.builtin.is_empty() {
            parts.push(self.builtin.join(", "));
        }
        for server in &self.mcp_servers {
            parts.push(format!("MCP `{}`", server.name));
        }
        let mut line = if parts.is_empty() {
            "no tools".to_string()
        } else {
            format!("tools: {}", parts.join(", "))
        };
        if !self.unavailable.is_empty() {
            let missing: Vec<String> = self
                .unavailable
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect();
            line.push_str(&format!("; not available: {}", missing.join(", ")));
        }
        line
    }

    pub fn is_empty(&self) -> bool {
        self.builtin.is_empty() && self.mcp_servers.is_empty()
    }
}

/// A growing set of names: built-ins, and others kept for MCP matching.
#[derive(Default)]
struct Set {
    builtin: Vec<&'static str>,
    others: Vec<String>,
    unavailable: Vec<(String, String)>,
}

impl Set {
    fn add(&mut self, name: &str, has_mcp: bool) {
        match catalog::lookup(name) {
            Lookup::Builtin(b) => {
                if !self.builtin.contains(&b) {
                    self.builtin.push(b);
                }
            }
            Lookup::External if !has_mcp => self.missing(
                name,
                "needs an outside service; declare an MCP server that provides it",
            ),
            Lookup::Unknown if !has_mcp => self.missing(name, "no such tool"),
            _ => {
                if !self.others.iter().any(|o| o == name) {
                    self.others.push(name.to_string());
                }
            }
        }
    }

    fn missing(&mut self, name: &str, why: &str) {
        if !self.unavailable.iter().any(|(n, _)| n == name) {
            self.unavailable.push((name.to_string(), why.to_string()));
        }
    }

    fn remove(&mut self, name: &str) {
        if let Lookup::Builtin(b) = catalog::lookup(name) {
            self.builtin.retain(|x| *x != b);
        }
        self.builtin.retain(|x| !matches(name, x));
        self.others.retain(|x| x != name);
    }
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The tools and limits of `task`, run by `agent`, in `orchestra`.
pub fn resolve_task_tools(
    agent: &AgentSpec,
    orchestra: &OrchestraSpec,
    task: &TaskSpec,
) -> TaskTools {
    resolve(agent, &orchestra.execution.tools, task.tools.as_ref())
}

/// What an agent is offered on its own (no orchestra grants, no task narrowing): for
/// `super agent show NAME --tools`.
pub fn resolve_agent_tools(agent: &AgentSpec) -> TaskTools {
    resolve(agent, &OrchestraToolsSpec::default(), None)
}

fn resolve(
    agent: &AgentSpec,
    execution: &OrchestraToolsSpec,
    task_tools: Option<&TaskToolsSpec>,
) -> TaskTools {
    let mcp_servers: Vec<McpServerSpec> = agent
        .mcp
        .iter()
        .filter(|m| m.enabled)
        .flat_map(|m| m.servers.iter().cloned())
        .collect();
    let has_mcp = !mcp_servers.is_empty();
    let mut set = Set::default();
    let agent_tools = agent.tools.as_ref().filter(|t| t.enabled);
    if let Some(tools) = agent_tools {
        for category in &tools.categories {
            match catalog::category(&category.name) {
                Some(names) => names.iter().for_each(|n| set.add(n, has_mcp)),
                None => set.missing(&category.name, "a category with no built-in tools"),
            }
        }
        for name in &tools.tools {
            set.add(&name.name, has_mcp);
        }
    }
    for name in &execution.allow {
        set.add(&name.name, has_mcp);
    }
    let mut mcp_deny: Vec<String> = Vec::new();
    for name in &execution.deny {
        set.remove(&name.name);
        mcp_deny.push(name.name.clone());
    }
    let mut mcp_only = None;
    match task_tools {
        Some(TaskToolsSpec::Exactly(names)) => {
            let unavailable = std::mem::take(&mut set.unavailable);
            set = Set::default();
            for name in names {
                set.add(&name.name, has_mcp);
            }
            // What the task names itself is what counts as missing.
            set.unavailable.extend(
                unavailable
                    .into_iter()
                    .filter(|(n, _)| names.iter().any(|x| &x.name == n)),
            );
            mcp_only = Some(set.others.clone());
        }
        Some(TaskToolsSpec::Adjust { allow, deny }) => {
            for name in allow {
                set.add(&name.name, has_mcp);
            }
            for name in deny {
                set.remove(&name.name);
                mcp_deny.push(name.name.clone());
            }
        }
        None => {}
    }
    // Deny wins over allow at the same level and below.
    for name in &execution.deny {
        set.remove(&name.name);
    }

    let permissions = Permissions {
        allow_hosts: execution.allow_hosts.clone(),
        allow_commands: execution.allow_commands.clone(),
        http_timeout: execution.timeout_seconds.map(Duration::from_secs),
        shell_timeout: execution.timeout_seconds.map(Duration::from_secs),
    };
    let mut unavailable = set.unavailable;
    let builtin: Vec<&'static str> = set
        .builtin
        .into_iter()
        .filter(
            |name| match catalog::unavailable_reason(name, &permissions) {
                Some(why) => {
                    unavailable.push((name.to_string(), why.to_string()));
                    false
                }
                None => true,
            },
        )
        .collect();

    let react = agent.react_config.as_ref();
    let max_iterations = execution
        .max_iterations
        .or(react.and_then(|r| r.max_iters))
        .or(agent_tools.and_then(|t| t.max_iterations))
        .map(clamp_u32)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_ITERATIONS);
    let max_tool_calls = execution
        .max_tool_calls
        .or(react.and_then(|r| r.max_tool_calls))
        .map(clamp_u32);
    let call = CallLimits {
        timeout: execution
            .timeout_seconds
            .map_or(DEFAULT_TOOL_TIMEOUT, Duration::from_secs),
        output_cap: execution.max_output_bytes.map_or(DEFAULT_OUTPUT_CAP, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
    };
    TaskTools {
        builtin,
        mcp_servers: if mcp_only.as_ref().is_some_and(|o| o.is_empty()) {
            Vec::new()
        } else {
            mcp_servers
        },
        mcp_only,
        mcp_deny,
        unavailable,
        settings: ToolSettings {
            max_iterations,
            max_tool_calls,
            call,
            permissions,
        },
    }
}

/// Every MCP server a run needs (each once), to start before the first task.
pub fn run_servers<'a>(tasks: impl IntoIterator<Item = &'a TaskTools>) -> Vec<McpServerSpec> {
    let mut servers: Vec<McpServerSpec> = Vec::new();
    for task in tasks {
        for server in &task.mcp_servers {
            if !servers.contains(server) {
                servers.push(server.clone());
            }
        }
    }
    servers
}

/// Validate-time check of the tool names an orchestra writes (`execution.tools.allow`/`deny`,
/// each task's `tools:`): a name we do not provide, and no MCP server of the agents may
/// provide, is a warning at its line. Playbooks check their own names when decoded.
pub fn check_orchestra_tools(
    spec: &OrchestraSpec,
    agents: &BTreeMap<AgentName, AgentSpec>,
    diags: &mut Diagnostics,
) {
    let prefixes_of = |agent: &AgentSpec| -> Vec<String> {
        agent
            .mcp
            .iter()
            .filter(|m| m.enabled)
            .flat_map(|m| m.servers.iter().map(|s| s.tool_prefix.clone()))
            .collect()
    };
    let all: Vec<String> = agents.values().flat_map(prefixes_of).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let check = |names: &[ToolName], prefixes: &[&str], what: &str, diags: &mut Diagnostics| {
        for name in names {
            // `prefix*` patterns in deny lists are MCP names by construction.
            if name.name.ends_with('*') {
                continue;
            }
            if let Some(d) = unknown_tool_warning(&spec.file, name, prefixes, what) {
                diags.push(d);
            }
        }
    };
    let tools = &spec.execution.tools;
    check(&tools.allow, &all, "`execution.tools.allow`", diags);
    check(&tools.deny, &all, "`execution.tools.deny`", diags);
    for task in &spec.tasks {
        let Some(task_tools) = &task.tools else {
            continue;
        };
        let own = agents.get(&task.agent).map(prefixes_of).unwrap_or_default();
        let own: Vec<&str> = own.iter().map(String::as_str).collect();
        let what = format!("the `tools` of task `{}`", task.name);
        match task_tools {
            TaskToolsSpec::Exactly(names) => check(names, &own, &what, diags),
            TaskToolsSpec::Adjust { allow, deny } => {
                check(allow, &own, &what, diags);
                check(deny, &own, &what, diags);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn load(agent_yaml: &str, orchestra_yaml: &str) -> (AgentSpec, OrchestraSpec, Diagnostics) {
        let mut diags = Diagnostics::default();
        let file = SourceFile::new(std::path::Path::new("a.yaml"), agent_yaml.to_string());
        let root = crate::yaml::parse(&file).unwrap_or_else(|e| panic!("{}", e.message));
        let agent = crate::spec::decode_agent(&file, &root, "helper", &mut diags)
            .unwrap_or_else(|| panic!("agent: {}", diags.render(false)));
        let file = SourceFile::new(
            std::path::Path::new("t_orchestra.yaml"),
            orchestra_yaml.to_string(),
        );
        let root = crate::yaml::parse(&file).unwrap_or_else(|e| panic!("{}", e.message));
        let orchestra = crate::spec::decode_orchestra(&file, &root, &mut diags)
            .unwrap_or_else(|| panic!("orchestra: {}", diags.render(false)));
        (agent, orchestra, diags)
    }

    const AGENT: &str = "apiVersion: agent/v1
kind: AgentSpec
metadata: {id: helper}
spec:
  tools:
    enabled: true
    categories: [core]
    specific_tools: [calculator, web_search, shell]
    max_iterations: 4
  react_config: {max_iters: 7, max_tool_calls: 9}
  mcp:
    enabled: true
    servers:
    - name: fs
      type: stdio
      config: {command: npx, args: [-y, server]}
      tool_prefix: fs_
";

    fn orchestra(execution_tools: &str, task_tools: &str) -> String {
        format!(
            "orchestra:
  id: t
  execution:
    strategy: sequential
{execution_tools}
agents: [helper]
tasks:
- name: one
  agent: helper
  description: Do it.
{task_tools}
- name: two
  agent: helper
  description: Do it again.
"
        )
    }

    #[test]
    fn the_playbook_alone() {
        let (agent, spec, _) = load(AGENT, &orchestra("", ""));
        let tools = resolve_task_tools(&agent, &spec, &spec.tasks[0]);
        assert_eq!(
            tools.builtin,
            vec![
                "calculator",
                "date_time",
                "file_reader",
                "text_analyzer",
                "json_processor"
            ]
        );
        // With an MCP server declared, `web_search` may come from it; `shell` needs a grant.
        assert!(tools
            .unavailable
            .iter()
            .any(|(n, why)| n == "shell" && why.contains("allow_commands")));
        assert_eq!(tools.mcp_servers.len(), 1);
        assert_eq!(tools.settings.max_iterations, 7);
        assert_eq!(tools.settings.max_tool_calls, Some(9));
        assert!(tools.offers_mcp("fs_read_file"));
        assert!(tools.summary().starts_with("tools: calculator"));
    }

    #[test]
    fn the_orchestra_widens_narrows_and_grants() {
        let execution = "    tools:
      allow: [file_writer, shell]
      deny: [calculator, fs_write*]
      allow_commands: [ls]
      max_iterations: 3
      timeout_seconds: 12";
        let (agent, spec, diags) = load(AGENT, &orchestra(execution, ""));
        assert!(!diags.has_errors(), "{}", diags.render(false));
        let tools = resolve_task_tools(&agent, &spec, &spec.tasks[0]);
        assert!(!tools.builtin.contains(&"calculator"));
        assert!(tools.builtin.contains(&"file_writer"));
        assert!(tools.builtin.contains(&"shell"));
        assert!(!tools.offers_mcp("fs_write_file"));
        assert!(tools.offers_mcp("fs_read_file"));
        assert_eq!(tools.settings.max_iterations, 3);
        assert_eq!(tools.settings.call.timeout, Duration::from_secs(12));
        assert_eq!(tools.settings.permissions.allow_commands, vec!["ls"]);
    }

    #[test]
    fn a_task_list_is_exact_and_a_mapping_adjusts() {
        let exact = "  tools: [calculator, fs_read_file]";
        let (agent, spec, _) = load(AGENT, &orchestra("", exact));
        let one = resolve_task_tools(&agent, &spec, &spec.tasks[0]);
        assert_eq!(one.builtin, vec!["calculator"]);
        assert!(one.offers_mcp("fs_read_file"));
        assert!(!one.offers_mcp("fs_list_directory"));
        // The other task keeps the playbook's.
        let two = resolve_task_tools(&agent, &spec, &spec.tasks[1]);
        assert_eq!(two.builtin.len(), 5);

        let only_builtin = "  tools: [date_time]";
        let (agent, spec, _) = load(AGENT, &orchestra("", only_builtin));
        let one = resolve_task_tools(&agent, &spec, &spec.tasks[0]);
        assert_eq!(one.builtin, vec!["date_time"]);
        assert!(one.mcp_servers.is_empty());

        let adjust = "  tools:\n    allow: [list_files]\n    deny: [core_missing, date_time]";
        let (agent, spec, diags) = load(AGENT, &orchestra("", adjust));
        let one = resolve_task_tools(&agent, &spec, &spec.tasks[0]);
        assert!(one.builtin.contains(&"list_files"));
        assert!(!one.builtin.contains(&"date_time"));
        let mut diags = diags;
        let agents = BTreeMap::from([(agent.name.clone(), agent.clone())]);
        check_orchestra_tools(&spec, &agents, &mut diags);
        let text = diags.render(false);
        assert!(
            text.contains("unknown tool `core_missing` in the `tools` of task `one`"),
            "{text}"
        );
        assert!(text.contains("t_orchestra.yaml:13:"), "{text}");
    }

    #[test]
    fn a_run_starts_each_server_once_and_offers_none_without_sessions() {
        let (agent, spec, _) = load(AGENT, &orchestra("", ""));
        let tasks: Vec<TaskTools> = spec
            .tasks
            .iter()
            .map(|t| resolve_task_tools(&agent, &spec, t))
            .collect();
        let servers = run_servers(&tasks);
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].name, "fs");
        let offered: Vec<String> = tasks[0]
            .offer(None)
            .iter()
            .map(|t| t.definition().name.clone())
            .collect();
        assert_eq!(offered.len(), 5, "{offered:?}");
    }

    #[test]
    fn no_tools_section_means_no_tools() {
        let agent = "apiVersion: agent/v1\nkind: AgentSpec\nmetadata: {id: helper}\nspec: {}\n";
        let (agent, spec, _) = load(agent, &orchestra("", ""));
        let tools = resolve_task_tools(&agent, &spec, &spec.tasks[0]);
        assert!(tools.is_empty());
        assert_eq!(tools.settings.max_iterations, DEFAULT_MAX_ITERATIONS);
        assert_eq!(tools.summary(), "no tools");
    }
}
