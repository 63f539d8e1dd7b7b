//! Minimal HTTP/1.1 wire handling: parsing a request head, and formatting response heads
//! and chunked-transfer frames. No I/O happens here.

/// Largest accepted request head.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// A parsed request line and headers.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub content_length: usize,
    pub chunked: bool,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub http10: bool,
}

impl Head {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Syntax error.
    Bad,
    /// Head or body too large.
    TooLarge,
}

/// Position just past the `\r\n\r\n` ending the head, searching from `from`.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    buf.get(start..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| start + p + 4)
}

/// Parses `buf[..len]`, which ends with the blank line.
pub fn parse_head(buf: &[u8], len: usize) -> Result<Head, HeadError> {
    let text = std::str::from_utf8(&buf[..len - 4]).map_err(|_| HeadError::Bad)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(HeadError::Bad)?;
    let mut parts = request_line.split(' ');
    let method = parts
        .next()
        .filter(|m| !m.is_empty())
        .ok_or(HeadError::Bad)?;
    let target = parts
        .next()
        .filter(|t| !t.is_empty())
        .ok_or(HeadError::Bad)?;
    let version = parts.next().ok_or(HeadError::Bad)?;
    if parts.next().is_some() {
        return Err(HeadError::Bad);
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(HeadError::Bad),
    };
    let mut head = Head {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::new(),
        content_length: 0,
        chunked: false,
        keep_alive: !http10,
        expect_continue: false,
        http10,
    };
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(HeadError::Bad)?;
        let name = name.trim();
        let value = value.trim();
        if name.is_empty() {
            return Err(HeadError::Bad);
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| HeadError::Bad)?;
            if n > MAX_BODY {
                return Err(HeadError::TooLarge);
            }
            head.content_length = n;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
        head.headers.push((name.to_string(), value.to_string()));
    }
    Ok(head)
}

pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// How a response's connection header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnHeader {
    /// HTTP/1.1 default: nothing written.
    None,
    KeepAlive,
    Close,
}

/// Extra header lines for a response head.
pub struct HeadSpec<'a> {
    pub status: u16,
    pub content_type: &'a str,
    /// `Some(n)`: `content-length: n`; `None`: `transfer-encoding: chunked`.
    pub content_length: Option<usize>,
    pub retry_after: Option<&'a str>,
    pub request_id: usize,
    pub conn: ConnHeader,
}

/// Appends a response head to `out`.
pub fn write_head(out: &mut Vec<u8>, spec: &HeadSpec<'_>) {
    use std::io::Write;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\nx-request-id: stub-{}\r\n",
        spec.status,
        reason(spec.status),
        spec.content_type,
        spec.request_id
    );
    match spec.content_length {
        Some(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        None => out.extend_from_slice(b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n"),
    }
    if let Some(ra) = spec.retry_after {
        let _ = write!(out, "retry-after: {ra}\r\n");
    }
    match spec.conn {
        ConnHeader::None => {}
        ConnHeader::KeepAlive => out.extend_from_slice(b"connection: keep-alive\r\n"),
        ConnHeader::Close => out.extend_from_slice(b"connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunked-transfer frame holding `data` (which must not be empty).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write;
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The terminating chunk.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head() {
        let raw = b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbody";
        let end = find_head_end(raw, 0).unwrap();
        assert_eq!(&raw[end..], b"body");
        let head = parse_head(raw, end).unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.path(), "/v1/chat/completions");
        assert_eq!(head.content_length, 12);
        assert!(!head.keep_alive);
        assert_eq!(head.headers[0], ("Host".to_string(), "a".to_string()));
    }

    #[test]
    fn rejects_garbage() {
        let raw = b"NONSENSE\r\n\r\n";
        assert_eq!(parse_head(raw, raw.len()).unwrap_err(), HeadError::Bad);
    }

    #[test]
    fn finds_end_across_reads() {
        let raw = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(find_head_end(raw, 16), Some(raw.len()));
        assert_eq!(find_head_end(&raw[..17], 0), None);
    }
}
