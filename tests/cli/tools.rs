//! Tools: playbooks with `tools:`, `react_config:` and `mcp:` sections through the real binary
//! (`orchestra validate --strict`, `agent show --tools`), and MCP against the REAL reference
//! server from npm (installed by `scripts/setup-test-deps.sh`). The MCP sessions themselves are
//! tested inside the crate (`src/tools/mcp_tests.rs`).

use super::support::{code, stderr, stdout, Project};
use std::path::PathBuf;

/// The folder `scripts/setup-test-deps.sh` installs into, if the servers are there. Missing:
/// FAIL under CI, else a loud SKIPPED.
fn test_deps() -> Option<PathBuf> {
    let dir = std::env::var_os("SUPER_TEST_DEPS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/super/test-deps"))
        })?;
    let needed = [
        "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
        "node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    ];
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node && needed.iter().all(|n| dir.join(n).exists()) {
        return Some(dir);
    }
    let why = format!(
        "the MCP reference servers are not installed in `{}` (or node is missing): run scripts/setup-test-deps.sh",
        dir.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

const TOOLS_PLAYBOOK: &str = "apiVersion: agent/v1
kind: AgentSpec
metadata:
  name: Researcher
  id: researcher
  version: 0.1.0
spec:
  persona:
    role: Researcher
    goal: Find things out.
  tasks:
  - name: research
    instruction: Research the goal.
  tools:
    enabled: true
    categories: [core]
    specific_tools: [calculator, file_writer]
    max_iterations: 4
  react_config:
    max_iters: 6
    max_tool_calls: 12
  mcp:
    enabled: true
    servers:
    - name: filesystem
      type: stdio
      config:
        command: node
        args: [FS_SERVER, FOLDER]
      tool_prefix: fs_
  language_model:
    provider: openai
    model: test-model
    api_base: http://127.0.0.1:9/v1
";

const TOOLS_ORCHESTRA: &str = "orchestra:
  id: research
  execution:
    strategy: sequential
    tools:
      allow: [list_files]
      deny: [fs_write_file]
      allow_commands: [ls]
agents: [researcher]
tasks:
- name: research
  agent: researcher
  description: Research the goal.
  tools:
    allow: [shell]
";

fn tools_project(deps: Option<&std::path::Path>) -> Project {
    let project = Project::empty();
    let fs_server = deps
        .map(|d| {
            d.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js")
                .display()
                .to_string()
        })
        .unwrap_or_else(|| "missing.js".into());
    let playbook = TOOLS_PLAYBOOK
        .replace("FS_SERVER", &fs_server)
        .replace("FOLDER", &project.root().display().to_string());
    project.agent("researcher", &playbook);
    project.orchestra("research", TOOLS_ORCHESTRA);
    project
}

#[test]
fn a_playbook_with_tools_react_config_and_mcp_validates_strictly() {
    let project = tools_project(None);
    let output = project.run(&["orchestra", "validate", "research", "--strict"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
}

#[test]
fn unknown_tools_are_warnings_with_their_place_and_errors_under_strict() {
    let project = Project::empty();
    let playbook = TOOLS_PLAYBOOK
        .replace(
            "specific_tools: [calculator, file_writer]",
            "specific_tools: [calculater, web_search]",
        )
        .replace("  mcp:\n", "  other_mcp:\n");
    project.agent("researcher", &playbook);
    project.orchestra(
        "research",
        &TOOLS_ORCHESTRA.replace("allow: [list_files]", "allow: [list_files, teleport]"),
    );
    let output = project.run(&["orchestra", "validate", "research"]);
    let text = stderr(&output);
    assert_eq!(code(&output), 0, "{}{text}", stdout(&output));
    assert!(
        text.contains("warning: unknown tool `calculater` in the playbook's `tools`"),
        "{text}"
    );
    assert!(text.contains("researcher_playbook.yaml:17:22"), "{text}");
    assert!(text.contains("did you mean `calculator`?"), "{text}");
    assert!(
        text.contains("tool `web_search` in the playbook's `tools` is not built in"),
        "{text}"
    );
    assert!(text.contains("MCP server"), "{text}");
    assert!(
        text.contains("unknown tool `teleport` in `execution.tools.allow`"),
        "{text}"
    );
    assert!(text.contains("research_orchestra.yaml:6:27"), "{text}");

    let strict = project.run(&["orchestra", "validate", "research", "--strict"]);
    assert_eq!(code(&strict), 2, "{}", stderr(&strict));
    assert!(
        stderr(&strict).contains("error: unknown tool `calculater`"),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn agent_show_tools_lists_builtin_and_mcp_tools_and_stops_the_server() {
    let Some(deps) = test_deps() else { return };
    let project = tools_project(Some(&deps));
    let output = project.run(&["agent", "show", "researcher", "--tools"]);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}{}", stderr(&output));
    assert!(
        text.contains("Tools (at most 6 tool turns, 12 tool calls)"),
        "{text}"
    );
    for name in [
        "calculator",
        "date_time",
        "file_reader",
        "file_writer",
        "json_processor",
    ] {
        assert!(text.contains(&format!("  {name} ")), "{name} in {text}");
    }
    assert!(text.contains("MCP server `filesystem` (node "), "{text}");
    assert!(text.contains("fs_read_file"), "{text}");
    assert!(text.contains("fs_list_directory"), "{text}");
}

#[test]
fn agent_show_tools_names_a_server_that_cannot_start() {
    let project = Project::empty();
    let playbook = TOOLS_PLAYBOOK
        .replace("command: node", "command: /nonexistent/mcp-server")
        .replace("FS_SERVER", "x")
        .replace("FOLDER", "y");
    project.agent("researcher", &playbook);
    let output = project.run(&["agent", "show", "researcher", "--tools"]);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let text = stderr(&output);
    assert!(
        text.contains("failed to start MCP server `filesystem` (`/nonexistent/mcp-server x y`"),
        "{text}"
    );
    assert!(text.contains("researcher_playbook.yaml:25:"), "{text}");
}
