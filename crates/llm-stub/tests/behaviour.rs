//! Behaviour-control tests: every `Step`, fail_first with Retry-After, the content rule,
//! auth, latency, the request log, in-flight counting, disconnects and shutdown.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_stub::{Step, StubConfig, StubServer};
use serde_json::{json, Value};
use support::{openai_stream_content, post, Client};

fn chat(content: &str, stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": content}]})
}

fn content(resp: &support::Response) -> String {
    resp.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn fail_first_with_retry_after() {
    let server =
        StubServer::start_background(StubConfig::default().fail_first(2, 429).retry_after("1"))
            .unwrap();
    let mut client = Client::connect(server.port());
    for _ in 0..2 {
        let resp = client.post("/v1/chat/completions", &chat("hi", false));
        assert_eq!(resp.status, 429);
        assert_eq!(resp.header("retry-after"), Some("1"));
        let err = &resp.json()["error"];
        assert!(err["message"].is_string());
        assert_eq!(err["type"], "rate_limit_error");
        assert!(err["code"].is_string());
    }
    let ok = client.post("/v1/chat/completions", &chat("hi", false));
    assert_eq!(ok.status, 200);
    assert!(ok.header("retry-after").is_none());
    assert_eq!(content(&ok), "STUB-REPLY-3 for m: hi");
}

#[test]
fn error_shapes_per_protocol() {
    let step = Step::Status {
        code: 500,
        retry_after: None,
        message: "boom".into(),
    };
    let server = StubServer::start_background(StubConfig::default().script(vec![step; 3])).unwrap();
    let o = post(server.port(), "/v1/chat/completions", &chat("x", false));
    assert_eq!(o.status, 500);
    assert_eq!(o.json()["error"]["message"], "boom");
    assert_eq!(o.json()["error"]["type"], "server_error");
    let a = post(server.port(), "/v1/messages", &chat("x", false));
    assert_eq!(a.status, 500);
    assert_eq!(
        a.json(),
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    );
    let l = post(server.port(), "/api/chat", &chat("x", false));
    assert_eq!(l.status, 500);
    assert_eq!(l.json(), json!({"error": "boom"}));
    // Script used up: back to normal.
    assert_eq!(
        post(server.port(), "/api/chat", &chat("x", false)).status,
        200
    );
}

#[test]
fn script_steps_in_arrival_order() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::rate_limited("2"),
        Step::Text("fixed words here".into()),
        Step::Empty,
        Step::Ok,
    ]))
    .unwrap();
    let mut client = Client::connect(server.port());
    let r1 = client.post("/v1/chat/completions", &chat("a", false));
    assert_eq!(r1.status, 429);
    assert_eq!(r1.header("retry-after"), Some("2"));
    let r2 = client.post("/v1/chat/completions", &chat("b", false));
    assert_eq!(content(&r2), "fixed words here");
    assert_eq!(r2.json()["usage"]["completion_tokens"], 3);
    let r3 = client.post("/v1/chat/completions", &chat("c", false));
    assert_eq!(r3.status, 200);
    assert_eq!(content(&r3), "");
    assert_eq!(r3.json()["usage"]["completion_tokens"], 0);
    let r4 = client.post("/v1/chat/completions", &chat("d", false));
    assert_eq!(content(&r4), "STUB-REPLY-4 for m: d");
    assert_eq!(server.remaining_steps(), 0);
}

#[test]
fn text_and_empty_steps_stream() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::text("streamed fixed text"),
        Step::Empty,
        Step::Empty,
    ]))
    .unwrap();
    let r = post(server.port(), "/v1/chat/completions", &chat("a", true));
    assert_eq!(openai_stream_content(&r).0, "streamed fixed text");
    let r = post(server.port(), "/v1/chat/completions", &chat("a", true));
    assert!(r.complete);
    assert_eq!(openai_stream_content(&r).0, "");
    let r = post(server.port(), "/v1/messages", &chat("a", true));
    assert!(r.complete);
    assert_eq!(
        r.sse_events().last().map(String::as_str),
        Some("message_stop")
    );
}

#[test]
fn malformed_non_stream() {
    let server =
        StubServer::start_background(StubConfig::default().script(vec![Step::Malformed; 3]))
            .unwrap();
    let mut client = Client::connect(server.port());
    for path in ["/v1/chat/completions", "/v1/messages", "/api/chat"] {
        let r = client.post(path, &chat("a", false));
        assert_eq!(r.status, 200);
        assert!(r.complete, "framing stays correct");
        assert!(
            serde_json::from_str::<Value>(&r.body).is_err(),
            "{}",
            r.body
        );
    }
    // Same connection still works.
    assert_eq!(client.post("/api/chat", &chat("a", false)).status, 200);
}

#[test]
fn malformed_stream() {
    let server =
        StubServer::start_background(StubConfig::default().script(vec![Step::Malformed; 3]))
            .unwrap();
    let mut client = Client::connect(server.port());

    let r = client.post("/v1/chat/completions", &chat("a", true));
    assert!(r.complete);
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let broken = data
        .iter()
        .filter(|d| *d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(broken, 1);

    let r = client.post("/v1/messages", &chat("a", true));
    assert!(r.complete);
    let broken = r
        .sse_data()
        .iter()
        .filter(|d| serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(broken, 1);

    let r = client.post("/api/chat", &chat("a", true));
    assert!(r.complete);
    let bad_lines = r
        .body
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .count();
    assert_eq!(bad_lines, 1);
}

#[test]
fn close_mid_body_non_stream() {
    let server =
        StubServer::start_background(StubConfig::default().script(vec![Step::CloseMidBody; 3]))
            .unwrap();
    for path in ["/v1/chat/completions", "/v1/messages", "/api/chat"] {
        let mut client = Client::connect(server.port());
        let r = client.post(path, &chat("a", false));
        assert_eq!(r.status, 200);
        assert!(!r.complete, "{path}: body should be cut");
        assert!(!r.body.is_empty());
    }
    assert_eq!(
        post(server.port(), "/api/chat", &chat("a", false)).status,
        200
    );
}

#[test]
fn close_mid_body_stream() {
    let server =
        StubServer::start_background(StubConfig::default().script(vec![Step::CloseMidBody; 3]))
            .unwrap();
    for path in ["/v1/chat/completions", "/v1/messages", "/api/chat"] {
        let mut client = Client::connect(server.port());
        let r = client.post(path, &chat("several words in this reply", true));
        assert_eq!(r.status, 200);
        assert!(!r.complete, "{path}: stream should be cut");
        assert!(!r.chunks.is_empty(), "{path}: some events arrive");
        assert!(!r.body.contains("[DONE]") && !r.body.contains("message_stop"));
        assert!(!r.body.contains("\"done\":true"));
    }
}

#[test]
fn delay_step_waits() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Delay(Duration::from_millis(200))]),
    )
    .unwrap();
    let t = Instant::now();
    let r = post(server.port(), "/v1/chat/completions", &chat("slow", false));
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(content(&r), "STUB-REPLY-1 for m: slow");
    let t = Instant::now();
    post(server.port(), "/v1/chat/completions", &chat("fast", false));
    assert!(t.elapsed() < Duration::from_millis(150));
}

#[test]
fn client_disconnect_during_delay_is_survived() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Delay(Duration::from_secs(30))]),
    )
    .unwrap();
    {
        let mut client = Client::connect(server.port());
        client.send(
            "POST",
            "/v1/chat/completions",
            &[],
            &chat("gone", false).to_string(),
        );
        let t = Instant::now();
        while server.in_flight() == 0 {
            assert!(t.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The server notices the client left and stops counting it.
    let t = Instant::now();
    while server.in_flight() != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "disconnect not noticed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = post(server.port(), "/v1/chat/completions", &chat("next", false));
    assert_eq!(content(&r), "STUB-REPLY-2 for m: next");
}

#[test]
fn fail_when_contains_hits_every_time() {
    let server = StubServer::start_background(
        StubConfig::default()
            .fail_when_contains("TASK-B", Step::status(500))
            .script(vec![Step::Text("scripted".into())]),
    )
    .unwrap();
    let mut client = Client::connect(server.port());
    for _ in 0..3 {
        let r = client.post("/v1/chat/completions", &chat("do TASK-B now", false));
        assert_eq!(r.status, 500);
    }
    // The rule consumed no script step.
    let r = client.post("/v1/chat/completions", &chat("do TASK-A now", false));
    assert_eq!(content(&r), "scripted");
    // Matching also works on text that JSON escapes.
    let server = StubServer::start_background(
        StubConfig::default().fail_when_contains("line1\nline2", Step::status(503)),
    )
    .unwrap();
    assert_eq!(
        post(server.port(), "/api/chat", &chat("x line1\nline2 y", false)).status,
        503
    );
}

#[test]
fn bearer_auth() {
    let server =
        StubServer::start_background(StubConfig::default().require_bearer("sk-test")).unwrap();
    let mut client = Client::connect(server.port());
    let r = client.post("/v1/chat/completions", &chat("a", false));
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"].is_string());
    let r = client.post_with(
        "/v1/chat/completions",
        &[("Authorization", "Bearer wrong")],
        &chat("a", false),
    );
    assert_eq!(r.status, 401);
    let r = client.post_with(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-test")],
        &chat("a", false),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn api_key_auth() {
    let server = StubServer::start_background(StubConfig::default().require_api_key("ak")).unwrap();
    let r = post(server.port(), "/v1/messages", &chat("a", false));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = Client::connect(server.port()).post_with(
        "/v1/messages",
        &[("X-Api-Key", "ak")],
        &chat("a", false),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn reply_fn_sees_the_request() {
    let server = StubServer::start_background(StubConfig::default().reply_fn(|req| {
        format!(
            "{} {} {}",
            req.seq,
            req.path,
            req.last_user_message().unwrap_or_default()
        )
    }))
    .unwrap();
    let r = post(server.port(), "/v1/chat/completions", &chat("ping", false));
    assert_eq!(content(&r), "1 /v1/chat/completions ping");
}

#[test]
fn request_log_records_everything() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut client = Client::connect(server.port());
    client.post_with(
        "/v1/chat/completions",
        &[("X-Custom", "yes")],
        &chat("one", false),
    );
    client.send("POST", "/api/chat?x=1", &[], "raw text");
    client.read_response();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].seq, 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].header("x-custom"), Some("yes"));
    assert_eq!(reqs[0].body["messages"][0]["content"], "one");
    assert_eq!(reqs[0].model(), Some("m"));
    assert_eq!(reqs[1].seq, 2);
    assert_eq!(reqs[1].path, "/api/chat?x=1");
    assert_eq!(reqs[1].body, Value::String("raw text".into()));
    assert!(reqs[1].received_at >= reqs[0].received_at);
    assert!(reqs[1].since_start >= reqs[0].since_start);
}

#[test]
fn latency_applies_to_every_response() {
    let server =
        StubServer::start_background(StubConfig::default().latency(Duration::from_millis(100)))
            .unwrap();
    let t = Instant::now();
    post(server.port(), "/api/chat", &chat("a", false));
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[test]
fn chunk_delay_spaces_stream_events() {
    let server =
        StubServer::start_background(StubConfig::default().reply("a b c d").chunk_delay(40u64))
            .unwrap();
    let t = Instant::now();
    let r = post(server.port(), "/v1/chat/completions", &chat("x", true));
    assert_eq!(openai_stream_content(&r).0, "a b c d");
    // Role + 4 pieces + finish + [DONE] = 7 events, 6 gaps.
    assert!(
        t.elapsed() >= Duration::from_millis(240),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn five_concurrent_slow_requests_are_all_in_flight() {
    let server = Arc::new(
        StubServer::start_background(StubConfig::default().latency(Duration::from_millis(300)))
            .unwrap(),
    );
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let port = server.port();
            std::thread::spawn(move || {
                post(port, "/v1/chat/completions", &chat(&format!("q{i}"), false))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().status, 200);
    }
    assert_eq!(server.max_in_flight(), 5);
    // The server leaves "in flight" just after the client has its reply.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while server.in_flight() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(server.in_flight(), 0);
    assert_eq!(server.request_count(), 5);
    let mut replies: Vec<usize> = server.requests().iter().map(|r| r.seq).collect();
    replies.sort();
    assert_eq!(replies, [1, 2, 3, 4, 5]);
}

#[test]
fn sequential_requests_keep_max_in_flight_at_one() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut client = Client::connect(server.port());
    for _ in 0..20 {
        client.post("/api/chat", &chat("a", false));
    }
    assert_eq!(server.max_in_flight(), 1);
}

#[test]
fn shutdown_closes_the_listener() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let port = server.port();
    let mut idle = Client::connect(port);
    assert_eq!(idle.post("/api/chat", &chat("a", false)).status, 200);
    server.shutdown();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // Open connections are closed too.
    assert!(idle.is_closed());
}

#[test]
fn push_step_while_running() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    server.push_step(Step::status(503));
    assert_eq!(
        post(server.port(), "/api/chat", &chat("a", false)).status,
        503
    );
    assert_eq!(
        post(server.port(), "/api/chat", &chat("a", false)).status,
        200
    );
}

#[test]
fn expect_continue_is_answered() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut client = Client::connect(server.port());
    let body = chat("hello", false).to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.stream().write_all(head.as_bytes()).unwrap();
    let interim = client.read_response();
    assert_eq!(interim.status, 100);
    client.stream().write_all(body.as_bytes()).unwrap();
    assert_eq!(client.read_response().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_start_inside_a_runtime() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = StubServer::start(StubConfig::default().reply("async ok"))
        .await
        .unwrap();
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        server.openai_base_url(),
        format!("{}/v1", server.base_url())
    );
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    let body = chat("x", false).to_string();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(out.contains("\"content\":\"async ok\""));
    let port = server.port();
    server.stop().await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}

#[test]
fn raw_step_sends_exactly_its_bytes_then_closes() {
    use std::io::Read;
    let bytes = b"HTTP/1.1 200 OK\r\nx-evil: \x1b[31m\r\n\r\ngarbage".to_vec();
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::raw(bytes.clone()), Step::raw(Vec::new())]),
    )
    .unwrap();
    for expected in [bytes, Vec::new()] {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        let body = chat("a", false).to_string();
        write!(
            stream,
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        assert_eq!(got, expected);
    }
    assert_eq!(server.request_count(), 2);
}
