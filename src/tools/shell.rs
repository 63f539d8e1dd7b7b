//! `shell`: runs a command the orchestra lists in `tools.allow_commands`, with the workspace as
//! its folder. No shell ever reads the line: it is split into argv here (quotes group words,
//! nothing else is special), the environment is emptied but for `PATH`, `HOME` and `LANG` (no
//! API key reaches a command), the process runs in its own group and the whole group is killed
//! at the timeout, and its output is capped. Offered only when the allow-list is not empty.

use super::tool::{str_arg, Tool, ToolContext, ToolDefinition, ToolError};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

const NAME: &str = "shell";
/// The most bytes kept of stdout and of stderr.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Splits a command line into words: whitespace separates, `'...'` and `"..."` group, `\`
/// escapes the next character outside single quotes. `|`, `;`, `$`, `>` are plain characters.
pub fn split_argv(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("a `'` is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch) => word.push(ch),
                            None => return Err("a `\\` ends the line".into()),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err("a `\"` is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(ch) => word.push(ch),
                    None => return Err("a `\\` ends the line".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Whether `argv` is allowed: an entry is a program name (`ls`), or a program with leading
/// arguments (`git status`) that argv must start with.
pub fn command_allowed(allow_commands: &[String], argv: &[String]) -> bool {
    allow_commands.iter().any(|entry| {
        let Ok(prefix) = split_argv(entry) else {
            return false;
        };
        !prefix.is_empty() && argv.len() >= prefix.len() && argv[..prefix.len()] == prefix[..]
    })
}

pub struct Shell {
    definition: ToolDefinition,
    allow_commands: Vec<String>,
    timeout: Duration,
}

impl Shell {
    pub fn new(allow_commands: Vec<String>, timeout: Duration) -> Shell {
        Shell {
            definition: ToolDefinition {
                name: NAME.into(),
                description: format!(
                    "Runs a command in the workspace folder (no shell: no pipes, redirections or \
                     variables) and returns its exit code and output. Allowed commands: {}.",
                    allow_commands.join(", ")
                ),
                parameters: json!({
                    "type": "object",
                    "properties": {"command": {"type": "string", "description": "e.g. `ls -la`"}},
                    "required": ["command"],
                    "additionalProperties": false
                }),
            },
            allow_commands,
            timeout,
        }
    }

    async fn run(&self, line: &str, context: &ToolContext) -> Result<String, ToolError> {
        let argv = split_argv(line).map_err(|e| ToolError::invalid(NAME, e))?;
        if argv.is_empty() {
            return Err(ToolError::invalid(NAME, "the command is empty"));
        }
        if !command_allowed(&self.allow_commands, &argv) {
            return Err(ToolError::Refused(format!(
                "`{}` is not in `tools.allow_commands` ({})",
                argv[0],
                self.allow_commands.join(", ")
            )));
        }
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&context.workspace)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for key in ["PATH", "HOME", "LANG"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| ToolError::Failed(format!("failed to start `{}`: {e}", argv[0])))?;
        let pid = child.id();
        let stdout = child.stdout.take().map(|s| tokio::spawn(capped(s)));
        let stderr = child.stderr.take().map(|s| tokio::spawn(capped(s)));
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status
                .map_err(|e| ToolError::Failed(format!("failed to wait for `{}`: {e}", argv[0])))?,
            Err(_) => {
                kill_group(pid);
                let _ = child.kill().await;
                return Err(ToolError::TimedOut {
                    tool: format!("{NAME} `{}`", argv[0]),
                    seconds: self.timeout.as_secs_f64(),
                });
            }
        };
        // The group may have children still holding the pipes: stop them too.
        kill_group(pid);
        let collect = |handle: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>| async move {
            match handle {
                Some(h) => h.await.unwrap_or_default(),
                None => (Vec::new(), false),
            }
        };
        let (out, out_cut) = collect(stdout).await;
        let (err, err_cut) = collect(stderr).await;
        let mut text = format!(
            "exit code: {}\n",
            status
                .code()
                .map_or_else(|| "killed by a signal".to_string(), |c| c.to_string())
        );
        for (label, bytes, cut) in [("stdout", out, out_cut), ("stderr", err, err_cut)] {
            if !bytes.is_empty() {
                text.push_str(&format!("{label}:\n{}", String::from_utf8_lossy(&bytes)));
                if cut {
                    text.push_str(&format!(
                        "\n[{label} truncated at {MAX_OUTPUT_BYTES} bytes]"
                    ));
                }
                text.push('\n');
            }
        }
        Ok(text)
    }
}

fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; the group id is our child's own (process_group(0)).
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// Reads a stream to its end, keeping at most [`MAX_OUTPUT_BYTES`].
async fn capped<R: AsyncRead + Unpin>(mut reader: R) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT_BYTES - kept.len();
                if n > room {
                    kept.extend_from_slice(&buf[..room]);
                    cut = true;
                } else {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
    (kept, cut)
}

impl Tool for Shell {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            self.run(str_arg(NAME, &arguments, "command")?, context)
                .await
        })
    }

    fn timeout(&self) -> Option<Duration> {
        // A little over our own kill, so the kill (and its message) wins.
        Some(self.timeout + Duration::from_secs(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_split_without_a_shell() {
        assert_eq!(
            split_argv(r#"echo "a b" 'c d' e\ f $HOME; rm"#),
            Ok(vec![
                "echo".to_string(),
                "a b".into(),
                "c d".into(),
                "e f".into(),
                "$HOME;".into(),
                "rm".into()
            ])
        );
        assert!(split_argv("echo 'open").is_err());
        let allow = vec!["echo".to_string(), "git status".into()];
        assert!(command_allowed(&allow, &["echo".into(), "hi".into()]));
        assert!(command_allowed(&allow, &["git".into(), "status".into()]));
        assert!(!command_allowed(&allow, &["git".into(), "push".into()]));
        assert!(!command_allowed(&allow, &["rm".into()]));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn runs_allowed_commands_in_the_workspace_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("here.txt"), "x").unwrap_or_default();
        let ctx = ToolContext {
            workspace: dir.path().to_path_buf(),
        };
        let tool = Shell::new(
            vec!["ls".into(), "echo".into(), "sleep".into()],
            Duration::from_millis(300),
        );
        let listed = tool
            .call(json!({"command": "ls"}), &ctx)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(listed.starts_with("exit code: 0"), "{listed}");
        assert!(listed.contains("here.txt"), "{listed}");
        let echoed = tool
            .call(json!({"command": "echo $HOME; rm -rf /"}), &ctx)
            .await
            .unwrap_or_default();
        assert!(echoed.contains("$HOME; rm -rf /"), "{echoed}");
        assert!(matches!(
            tool.call(json!({"command": "rm here.txt"}), &ctx).await,
            Err(ToolError::Refused(_))
        ));
        assert!(dir.path().join("here.txt").exists());
        let started = std::time::Instant::now();
        let slow = tool.call(json!({"command": "sleep 30"}), &ctx).await;
        assert!(matches!(slow, Err(ToolError::TimedOut { .. })), "{slow:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
