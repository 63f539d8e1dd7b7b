//! Tests of the `llm-stub` binary: flags, the `listening on` line, serving, and the
//! stats line printed on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;
use support::Client;

#[test]
fn binary_serves_and_reports_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-stub"))
        .args([
            "--port",
            "0",
            "--latency-ms",
            "0",
            "--fail-first",
            "1",
            "--fail-status",
            "429",
        ])
        .args(["--retry-after", "1", "--reply", "bin reply"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();

    let mut client = Client::connect(port);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let r = client.post("/v1/chat/completions", &body);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = client.post("/v1/chat/completions", &body);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "bin reply");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "requests=2 max_in_flight=1");
    assert!(child.wait().unwrap().success());
}

#[test]
fn binary_rejects_unknown_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_llm-stub"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
