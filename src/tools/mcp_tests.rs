//! MCP sessions against the REAL reference servers from npm (installed by
//! `scripts/setup-test-deps.sh`): filesystem over stdio, everything over streamable HTTP, and no
//! process left after shutdown. Missing servers: FAIL under CI, else a loud SKIPPED.

use super::mcp::process_alive;
use super::{McpSessions, ToolContext};
use crate::spec::{McpServerSpec, McpTransport};
use std::path::PathBuf;
use std::time::Duration;

/// Where `scripts/setup-test-deps.sh` put the npm servers (`SUPER_TEST_DEPS`, else
/// `~/.cache/super/test-deps`), when they and node are there.
fn test_deps() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/super/test-deps"));
    let dir = std::env::var_os("SUPER_TEST_DEPS")
        .map(PathBuf::from)
        .or(home)?;
    let servers = ["server-filesystem", "server-everything"].map(|s| {
        dir.join(format!(
            "node_modules/@modelcontextprotocol/{s}/dist/index.js"
        ))
    });
    let node = std::process::Command::new("node").arg("--version").output();
    if node.is_ok_and(|o| o.status.success()) && servers.iter().all(|s| s.exists()) {
        return Some(dir);
    }
    let why = format!(
        "the MCP reference servers or node are missing in `{}`: run scripts/setup-test-deps.sh",
        dir.display()
    );
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "{why}, and CI is set"
    );
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
