//! A tiny blocking HTTP/1.1 client for the tests: keep-alive requests, Content-Length
//! and chunked response bodies (chunks kept separately), and detection of cut replies.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The chunked-transfer frames, one per streamed event.
    pub chunks: Vec<String>,
    /// False if the connection closed before the body was complete.
    pub complete: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// SSE `data:` payloads, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(str::to_string)
            .collect()
    }

    /// SSE `event:` names, in order.
    pub fn sse_events(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .map(str::to_string)
            .collect()
    }

    /// Non-empty NDJSON lines.
    pub fn ndjson(&self) -> Vec<Value> {
        self.body
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
            .collect()
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.stream()
            .write_all(req.as_bytes())
            .expect("write request");
    }

    pub fn post(&mut self, path: &str, body: &Value) -> Response {
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        self.read_response()
    }

    pub fn post_with(&mut self, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
        self.send("POST", path, headers, &body.to_string());
        self.read_response()
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, &[], "");
        self.read_response()
    }

    /// True if the server closed the connection (EOF with nothing more to read).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }

    pub fn read_response(&mut self) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 "), "bad status line: {line:?}");
        let status: u16 = line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').expect("header colon");
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            headers,
            body: String::new(),
            chunks: Vec::new(),
            complete: true,
        };
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().unwrap();
            let mut body = Vec::new();
            let got = (&mut self.reader)
                .take(len as u64)
                .read_to_end(&mut body)
                .unwrap_or(0);
            resp.complete = got == len;
            resp.body = String::from_utf8_lossy(&body).into_owned();
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                line.clear();
                match self.reader.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        resp.complete = false;
                        break;
                    }
                    Ok(_) => {}
                }
                let size = usize::from_str_radix(line.trim_end(), 16).expect("chunk size");
                let mut data = vec![0u8; size + 2];
                if self.reader.read_exact(&mut data).is_err() {
                    resp.complete = false;
                    break;
                }
                assert_eq!(&data[size..], b"\r\n");
                if size == 0 {
                    break;
                }
                let chunk = String::from_utf8(data[..size].to_vec()).unwrap();
                resp.body.push_str(&chunk);
                resp.chunks.push(chunk);
            }
        }
        resp
    }
}

/// One request on a fresh connection.
pub fn post(port: u16, path: &str, body: &Value) -> Response {
    Client::connect(port).post(path, body)
}

/// The concatenated content of an OpenAI SSE stream, and its parsed chunks.
pub fn openai_stream_content(resp: &Response) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut chunks = Vec::new();
    for data in resp.sse_data() {
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(c);
        }
        chunks.push(v);
    }
    (text, chunks)
}
