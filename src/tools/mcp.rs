//! MCP servers as tools, through the official Rust SDK (`rmcp`) as a client. [`McpSessions`]
//! starts each declared server once (stdio: the command in a process group of its own, with a
//! small base environment plus its `env`; `type: http`: streamable HTTP to its `url`), lists
//! its tools, exposes each as a [`Tool`] named `tool_prefix + name`, and stops every server at
//! [`McpSessions::shutdown`], or on drop (the whole process group is killed), so no process is
//! left behind on failure. It does not decide which task gets which tool (`resolve` does).

use super::tool::{Tool, ToolContext, ToolDefinition, ToolError};
use crate::spec::{McpServerSpec, McpTransport};
use futures::future::BoxFuture;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RoleClient, RunningService, ServiceExt};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::Value;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How long a server may take to start and list its tools (`npx` may download it first).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful stop may take before the process group is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// The tail of a server's stderr kept for an error message.
const STDERR_TAIL: usize = 2048;
/// The environment a stdio server gets besides its own `env` (no API keys).
const BASE_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TERM",
    "NODE_PATH",
    "NODE_OPTIONS",
    "NODE_EXTRA_CA_CERTS",
    "npm_config_cache",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "SYSTEMROOT",
];

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("failed to start MCP server `{server}` (`{command}`, declared at {origin}): {reason}")]
    Start {
        server: String,
        command: String,
        origin: String,
        reason: String,
    },
    #[error("failed to list the tools of MCP server `{server}` (`{command}`): {reason}")]
    List {
        server: String,
        command: String,
        reason: String,
    },
    #[error(
        "MCP server `{server}`: the environment variable `{name}` named in its `env` is not set"
    )]
    MissingEnv { server: String, name: String },
}

/// Expands `${VAR}` in an `env` value from our environment. The value itself is never shown.
fn expand_env(
    server: &str,
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, McpError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(McpError::MissingEnv {
                    server: server.to_string(),
                    name: name.to_string(),
                })
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One MCP tool, called through its server's session.
pub struct McpTool {
    definition: ToolDefinition,
    /// The name the server knows it by (without our prefix).
    remote_name: String,
    server: String,
    peer: Peer<RoleClient>,
}

impl Tool for McpTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        _context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            let mut params = CallToolRequestParams::new(self.remote_name.clone());
            params.arguments = match arguments {
                Value::Object(map) => Some(map),
                Value::Null => None,
                other => {
                    return Err(ToolError::invalid(
                        &self.definition.name,
                        format!("arguments must be a JSON object, not `{other}`"),
                    ))
                }
            };
            let result = self.peer.call_tool(params).await.map_err(|e| {
                ToolError::Failed(format!(
                    "MCP server `{}` failed to run `{}`: {e}",
                    self.server, self.remote_name
                ))
            })?;
            let mut parts: Vec<String> = Vec::new();
            for block in &result.content {
                match block.as_text() {
                    Some(text) => parts.push(text.text.clone()),
                    None => parts.push(
                        serde_json::to_string(block)
                            .unwrap_or_else(|_| "[non-text content]".into()),
                    ),
                }
            }
            if parts.is_empty() {
                if let Some(structured) = &result.structured_content {
                    parts.push(structured.to_string());
                }
            }
            let text = parts.join("\n");
            if result.is_error == Some(true) {
                return Err(ToolError::Failed(text));
            }
            Ok(text)
        })
    }
}

struct Session {
    spec: McpServerSpec,
    service: Option<RunningService<RoleClient, ()>>,
    /// The stdio server's process group (its leader's pid).
    pgid: Option<u32>,
    tools: Vec<Arc<dyn Tool>>,
}

/// Every MCP server of a run, started once, stopped together.
#[derive(Default)]
pub struct McpSessions {
    sessions: Vec<Session>,
}

impl std::fmt::Debug for McpSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.sessions.iter().map(|s| &s.spec.name))
            .finish()
    }
}

impl McpSessions {
    /// Starts every server and lists its tools. On the first failure, the servers already
    /// started are stopped and the error names the server and its command.
    pub async fn start(servers: &[McpServerSpec]) -> Result<McpSessions, McpError> {
        Self::start_with_env(servers, &|name| std::env::var(name).ok()).await
    }

    pub async fn start_with_env(
        servers: &[McpServerSpec],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<McpSessions, McpError> {
        let mut sessions = McpSessions::default();
        for spec in servers {
            // Two agents declaring the same server share it; the same name with another
            // command is another server.
            if sessions.sessions.iter().any(|s| &s.spec == spec) {
                continue;
            }
            match start_one(spec, env).await {
                Ok(session) => sessions.sessions.push(session),
                Err(error) => {
                    sessions.shutdown().await;
                    return Err(error);
                }
            }
        }
        Ok(sessions)
    }

    /// Every tool of every server, prefixed.
    #[cfg(test)]
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.sessions
            .iter()
            .flat_map(|s| s.tools.iter().cloned())
            .collect()
    }

    /// The tools of the given servers (a task's agent's), in their order.
    pub fn tools_for(&self, servers: &[McpServerSpec]) -> Vec<Arc<dyn Tool>> {
        servers
            .iter()
            .flat_map(|spec| self.sessions.iter().filter(move |s| &s.spec == spec))
            .flat_map(|s| s.tools.iter().cloned())
            .collect()
    }

    /// The process ids of the stdio servers (their process groups), for checks.
    #[cfg(test)]
    pub fn pids(&self) -> Vec<u32> {
        self.sessions.iter().filter_map(|s| s.pgid).collect()
    }

    /// Stops every server: a graceful close, then the whole process group is killed.
    pub async fn shutdown(&mut self) {
        for session in &mut self.sessions {
            if let Some(mut service) = session.service.take() {
                let _ = service.close_with_timeout(STOP_TIMEOUT).await;
            }
            if let Some(pgid) = session.pgid.take() {
                kill_group(pgid);
                wait_gone(pgid).await;
            }
        }
        self.sessions.clear();
    }
}

impl Drop for McpSessions {
    fn drop(&mut self) {
        // Not shut down (a failure, a panic, Ctrl-C): kill what is left, synchronously.
        for session in &mut self.sessions {
            if let Some(pgid) = session.pgid.take() {
                kill_group(pgid);
            }
        }
    }
}

fn kill_group(pgid: u32) {
    #[cfg(unix)]
    if let Ok(pgid) = i32::try_from(pgid) {
        // SAFETY: killpg only sends a signal, to the group our own child leads.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pgid;
}

/// Waits (briefly) until the process has gone or is a zombie waiting to be reaped.
async fn wait_gone(pid: u32) {
    for _ in 0..50 {
        if !process_alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process is running (a zombie is not).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the command name in parentheses.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

async fn start_one(
    spec: &McpServerSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Session, McpError> {
    let start_error = |reason: String| McpError::Start {
        server: spec.name.clone(),
        command: spec.describe(),
        origin: spec.origin.clone(),
        reason,
    };
    let mut pgid = None;
    let mut stderr_tail: Option<Arc<Mutex<Vec<u8>>>> = None;
    let started = match &spec.transport {
        McpTransport::Stdio {
            command,
            args,
            env: vars,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).env_clear();
            for key in BASE_ENV {
                if let Some(value) = env(key) {
                    cmd.env(key, value);
                }
            }
            for (key, value) in vars {
                cmd.env(key, expand_env(&spec.name, value, env)?);
            }
            let mut wrapped = process_wrap::tokio::CommandWrap::from(cmd);
            #[cfg(unix)]
            wrapped.wrap(process_wrap::tokio::ProcessGroup::leader());
            wrapped.wrap(process_wrap::tokio::KillOnDrop);
            let (transport, stderr) = TokioChildProcess::builder(wrapped)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| start_error(e.to_string()))?;
            pgid = transport.id();
            if let Some(mut stderr) = stderr {
                let tail = Arc::new(Mutex::new(Vec::new()));
                stderr_tail = Some(Arc::clone(&tail));
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stderr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if let Ok(mut kept) = tail.lock() {
                            kept.extend_from_slice(&buf[..n]);
                            let excess = kept.len().saturating_sub(STDERR_TAIL);
                            kept.drain(..excess);
                        }
                    }
                });
            }
            tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await
        }
        McpTransport::Http { url } => {
            // rmcp's HTTP client is built on rustls without a default crypto provider: ours is ring.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let transport = StreamableHttpClientTransport::from_uri(url.as_str());
            tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await
        }
    };
    let with_stderr = |reason: String| -> String {
        let tail = stderr_tail
            .as_ref()
            .and_then(|t| {
                t.lock()
                    .ok()
                    .map(|k| String::from_utf8_lossy(&k).trim().to_string())
            })
            .unwrap_or_default();
        if tail.is_empty() {
            reason
        } else {
            format!("{reason}; its stderr ends with: {tail}")
        }
    };
    let service = match started {
        Ok(Ok(service)) => service,
        Ok(Err(e)) => {
            if let Some(p) = pgid {
                kill_group(p);
            }
            // Give the stderr reader a moment to collect the server's last words.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(start_error(with_stderr(e.to_string())));
        }
        Err(_) => {
            if let Some(p) = pgid {
                kill_group(p);
            }
            return Err(start_error(with_stderr(format!(
                "no answer within {} s",
                START_TIMEOUT.as_secs()
            ))));
        }
    };
    let listed = match tokio::time::timeout(START_TIMEOUT, service.list_all_tools()).await {
        Ok(Ok(tools)) => tools,
        other => {
            let reason = match other {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {} s", START_TIMEOUT.as_secs()),
            };
            let mut service = service;
            let _ = service.close_with_timeout(STOP_TIMEOUT).await;
            if let Some(p) = pgid {
                kill_group(p);
            }
            return Err(McpError::List {
                server: spec.name.clone(),
                command: spec.describe(),
                reason,
            });
        }
    };
    let peer = service.peer().clone();
    let tools = listed
        .into_iter()
        .map(|tool| {
            let remote_name = tool.name.to_string();
            Arc::new(McpTool {
                definition: ToolDefinition {
                    name: format!("{}{}", spec.tool_prefix, remote_name),
                    description: tool.description.as_deref().unwrap_or_default().to_string(),
                    parameters: Value::Object((*tool.input_schema).clone()),
                },
                remote_name,
                server: spec.name.clone(),
                peer: peer.clone(),
            }) as Arc<dyn Tool>
        })
        .collect();
    Ok(Session {
        spec: spec.clone(),
        service: Some(service),
        pgid,
        tools,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_expand_from_our_environment() {
        let lookup = |name: &str| (name == "TOKEN").then(|| "abc".to_string());
        assert_eq!(
            expand_env("s", "Bearer ${TOKEN}!", &lookup).ok().as_deref(),
            Some("Bearer abc!")
        );
        assert_eq!(
            expand_env("s", "plain", &lookup).ok().as_deref(),
            Some("plain")
        );
        let err = expand_env("s", "${MISSING}", &lookup)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`MISSING`"), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_cannot_start_is_a_clear_error() {
        let spec = McpServerSpec {
            name: "ghost".into(),
            transport: McpTransport::Stdio {
                command: "/nonexistent/super-mcp-server".into(),
                args: vec!["--flag".into()],
                env: Vec::new(),
            },
            tool_prefix: String::new(),
            origin: "a.yaml:3:5".into(),
        };
        let err = McpSessions::start(&[spec])
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("failed to start MCP server `ghost` (`/nonexistent/super-mcp-server --flag`, declared at a.yaml:3:5)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_server_that_exits_at_once_is_a_clear_error_with_its_stderr() {
        let spec = McpServerSpec {
            name: "broken".into(),
            transport: McpTransport::Stdio {
                command: "sh".into(),
                args: vec!["-c".into(), "echo boom >&2; exit 3".into()],
                env: Vec::new(),
            },
            tool_prefix: String::new(),
            origin: "a.yaml:1:1".into(),
        };
        let err = McpSessions::start(&[spec])
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("failed to start MCP server `broken`"), "{err}");
    }
}
