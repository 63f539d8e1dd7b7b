//! `http_get`: a GET to a host the orchestra lists in `tools.allow_hosts`, with a size cap and a
//! timeout, and redirects followed only within the same host. Offered only when the allow-list
//! is not empty. No credentials are ever added to a request.

use super::tool::{str_arg, Tool, ToolContext, ToolDefinition, ToolError};
use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

const NAME: &str = "http_get";
/// The most bytes of a body handed back.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
const MAX_REDIRECTS: usize = 5;

pub struct HttpGet {
    definition: ToolDefinition,
    allow_hosts: Vec<String>,
    timeout: Duration,
}

/// `host` or `host:port`, lowercased, as written in `allow_hosts`.
fn host_allowed(allow_hosts: &[String], url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let with_port = url.port().map(|p| format!("{host}:{p}"));
    allow_hosts.iter().any(|allowed| {
        let allowed = allowed.trim().to_ascii_lowercase();
        allowed == host || Some(&allowed) == with_port.as_ref()
    })
}

impl HttpGet {
    pub fn new(allow_hosts: Vec<String>, timeout: Duration) -> HttpGet {
        HttpGet {
            definition: ToolDefinition {
                name: NAME.into(),
                description: format!(
                    "Fetches a URL with HTTP GET and returns the status and the body (text, at \
                     most {} KiB). Only these hosts may be reached: {}.",
                    MAX_BODY_BYTES / 1024,
                    allow_hosts.join(", ")
                ),
                parameters: json!({
                    "type": "object",
                    "properties": {"url": {"type": "string", "description": "http:// or https:// URL"}},
                    "required": ["url"],
                    "additionalProperties": false
                }),
            },
            allow_hosts,
            timeout,
        }
    }

    async fn get(&self, raw: &str) -> Result<String, ToolError> {
        let url = reqwest::Url::parse(raw)
            .map_err(|e| ToolError::invalid(NAME, format!("`{raw}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ToolError::Refused(format!(
                "`{raw}`: only http and https URLs are fetched"
            )));
        }
        if !host_allowed(&self.allow_hosts, &url) {
            return Err(ToolError::Refused(format!(
                "the host of `{raw}` is not in `tools.allow_hosts` ({})",
                self.allow_hosts.join(", ")
            )));
        }
        let origin_host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let same = attempt
                .url()
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&origin_host));
            if attempt.previous().len() >= MAX_REDIRECTS || !same {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .timeout(self.timeout)
            .user_agent(concat!("super/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ToolError::Failed(format!("failed to build the HTTP client: {e}")))?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| ToolError::Failed(format!("failed to fetch `{raw}`: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let target = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_string();
            return Err(ToolError::Refused(format!(
                "`{raw}` redirects to `{target}`, another host; redirects leave only within the same host"
            )));
        }
        let mut body = Vec::new();
        let mut truncated = false;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ToolError::Failed(format!("failed to read `{raw}`: {e}")))?;
            let room = MAX_BODY_BYTES - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let mut text = format!(
            "HTTP {}\n\n{}",
            status.as_u16(),
            String::from_utf8_lossy(&body)
        );
        if truncated {
            text.push_str(&format!("\n[body truncated at {MAX_BODY_BYTES} bytes]"));
        }
        Ok(text)
    }
}

impl Tool for HttpGet {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        _context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move { self.get(str_arg(NAME, &arguments, "url")?).await })
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server answering each connection with the next canned response.
    async fn server(responses: Vec<String>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            for response in responses {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn only_listed_hosts_and_no_redirect_elsewhere() {
        let addr = server(vec![
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello".into(),
            "HTTP/1.1 302 Found\r\nlocation: http://example.invalid/x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
        ])
        .await;
        let tool = HttpGet::new(
            vec![format!("127.0.0.1:{}", addr.port())],
            Duration::from_secs(5),
        );
        let ctx = ToolContext::default();
        let ok = tool
            .call(json!({"url": format!("http://{addr}/a")}), &ctx)
            .await;
        assert_eq!(ok.as_deref(), Ok("HTTP 200\n\nhello"));
        let redirect = tool
            .call(json!({"url": format!("http://{addr}/b")}), &ctx)
            .await;
        assert!(
            matches!(&redirect, Err(ToolError::Refused(m)) if m.contains("another host")),
            "{redirect:?}"
        );
        let other = tool.call(json!({"url": "http://localhost:1/"}), &ctx).await;
        assert!(matches!(other, Err(ToolError::Refused(_))));
        let file = tool.call(json!({"url": "file:///etc/passwd"}), &ctx).await;
        assert!(matches!(file, Err(ToolError::Refused(_))));
    }
}
