//! Tools: playbooks with `tools:`, `react_config:` and `mcp:` sections through the real binary
//! (`orchestra validate --strict`, `agent show --tools`), and MCP against the REAL reference
//! servers from npm (installed by `scripts/setup-test-deps.sh`): filesystem over stdio,
//! everything over streamable HTTP, and no process left after shutdown.

use super::support::{code, stderr, stdout, Project};
use std::path::PathBuf;
use std::time::Duration;
use super_orchestra::spec::{McpServerSpec, McpTransport};
use super_orchestra::tools::mcp::process_alive;
use super_orchestra::tools::{McpSessions, ToolContext};

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

fn filesystem_server(deps: &std::path::Path, folder: &std::path::Path) -> McpServerSpec {
    McpServerSpec {
        name: "filesystem".into(),
        transport: McpTransport::Stdio {
            command: "node".into(),
            args: vec![
                deps.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js")
                    .display()
                    .to_string(),
                folder.display().to_string(),
            ],
            env: Vec::new(),
        },
        tool_prefix: "fs_".into(),
        origin: "test".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_filesystem_server_lists_calls_and_stops() {
    let Some(deps) = test_deps() else { return };
    let folder = tempfile::tempdir().expect("temp dir");
    let folder_path = std::fs::canonicalize(folder.path()).expect("canonical");
    std::fs::write(folder_path.join("hello.txt"), "hello from the workspace\n").expect("write");
    let mut sessions = McpSessions::start(&[filesystem_server(&deps, &folder_path)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tools = sessions.tools();
    let names: Vec<String> = tools.iter().map(|t| t.definition().name.clone()).collect();
    assert!(names.contains(&"fs_read_file".to_string()), "{names:?}");
    assert!(
        names.contains(&"fs_list_directory".to_string()),
        "{names:?}"
    );
    let schema = &tools
        .iter()
        .find(|t| t.definition().name == "fs_read_file")
        .expect("read_file")
        .definition()
        .parameters;
    assert_eq!(schema["type"], "object", "{schema}");

    let context = ToolContext::default();
    let call = |name: &str| {
        tools
            .iter()
            .find(|t| t.definition().name == name)
            .cloned()
            .expect("tool")
    };
    let read = call("fs_read_file")
        .call(
            serde_json::json!({"path": folder_path.join("hello.txt").display().to_string()}),
            &context,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read.trim(), "hello from the workspace");
    let listing = call("fs_list_directory")
        .call(
            serde_json::json!({"path": folder_path.display().to_string()}),
            &context,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(listing.contains("[FILE] hello.txt"), "{listing}");
    // A path outside the allowed folder is the server's error, returned as a tool error.
    let outside = call("fs_read_file")
        .call(serde_json::json!({"path": "/etc/hostname"}), &context)
        .await;
    assert!(outside.is_err(), "{outside:?}");

    let pids = sessions.pids();
    assert_eq!(pids.len(), 1);
    assert!(process_alive(pids[0]));
    sessions.shutdown().await;
    assert!(
        !process_alive(pids[0]),
        "the server process {} is still running",
        pids[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_sessions_kills_the_server() {
    let Some(deps) = test_deps() else { return };
    let folder = tempfile::tempdir().expect("temp dir");
    let sessions = McpSessions::start(&[filesystem_server(&deps, folder.path())])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = sessions.pids()[0];
    drop(sessions);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while process_alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !process_alive(pid),
        "the server process {pid} outlived the sessions"
    );
}

/// A free loopback port (there is a small race between closing it and the server binding it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_everything_server_echoes() {
    let Some(deps) = test_deps() else { return };
    let port = free_port();
    let mut server = tokio::process::Command::new("node")
        .arg(deps.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start server-everything");
    // Wait until it accepts connections.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "server-everything did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spec = McpServerSpec {
        name: "everything".into(),
        transport: McpTransport::Http {
            url: format!("http://127.0.0.1:{port}/mcp"),
        },
        tool_prefix: "ev_".into(),
        origin: "test".into(),
    };
    let mut sessions = McpSessions::start(&[spec])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let echo = sessions
        .tools()
        .into_iter()
        .find(|t| t.definition().name == "ev_echo")
        .expect("server-everything offers echo");
    let answer = echo
        .call(
            serde_json::json!({"message": "over streamable HTTP"}),
            &ToolContext::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.contains("over streamable HTTP"), "{answer}");
    sessions.shutdown().await;
    let _ = server.kill().await;
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
