//! Wire-format tests: each protocol, streaming and not, keep-alive, token counts,
//! token limits and the auxiliary endpoints.

mod support;

use llm_stub::{StubConfig, StubServer};
use serde_json::{json, Value};
use support::{openai_stream_content, post, Client};

fn openai_body(stream: bool) -> Value {
    json!({
        "model": "gpt-test",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "Say hello\nto the world"}
        ]
    })
}

#[test]
fn openai_non_stream() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    for (i, path) in ["/v1/chat/completions", "/chat/completions"]
        .iter()
        .enumerate()
    {
        let resp = post(server.port(), path, &openai_body(false));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let v = resp.json();
        let expected = format!("STUB-REPLY-{} for gpt-test: Say hello to the world", i + 1);
        assert_eq!(v["choices"][0]["message"]["content"], expected);
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["object"], "chat.completion");
        // 3 + 2 + 2 + 5 words in.
        assert_eq!(v["usage"]["prompt_tokens"], 12);
        assert_eq!(v["usage"]["completion_tokens"], 8);
        assert_eq!(v["usage"]["total_tokens"], 20);
    }
}

#[test]
fn openai_stream_with_usage() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut body = openai_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = post(server.port(), "/v1/chat/completions", &body);
    assert_eq!(resp.status, 200);
    assert!(resp.complete);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let data = resp.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let (text, chunks) = openai_stream_content(&resp);
    assert_eq!(text, "STUB-REPLY-1 for gpt-test: Say hello to the world");
    // Role chunk, one chunk per word, finish chunk, usage chunk: really streamed.
    assert!(resp.chunks.len() >= 8, "{} chunks", resp.chunks.len());
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 12);
    assert_eq!(usage["usage"]["completion_tokens"], 8);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
}

#[test]
fn openai_stream_without_usage_has_no_usage_chunk() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let resp = post(server.port(), "/v1/chat/completions", &openai_body(true));
    let (_, chunks) = openai_stream_content(&resp);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

fn ollama_body(stream: Option<bool>) -> Value {
    let mut v = json!({
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "why is the sky blue"}]
    });
    if let Some(s) = stream {
        v["stream"] = json!(s);
    }
    v
}

#[test]
fn ollama_non_stream() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let resp = post(server.port(), "/api/chat", &ollama_body(Some(false)));
    assert_eq!(resp.status, 200);
    let v = resp.json();
    assert_eq!(v["model"], "llama3.2");
    assert_eq!(v["message"]["role"], "assistant");
    assert_eq!(
        v["message"]["content"],
        "STUB-REPLY-1 for llama3.2: why is the sky blue"
    );
    assert_eq!(v["done"], true);
    assert_eq!(v["done_reason"], "stop");
    assert_eq!(v["prompt_eval_count"], 7);
    assert_eq!(v["eval_count"], 8);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn ollama_streams_by_default() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    for body in [ollama_body(None), ollama_body(Some(true))] {
        let resp = post(server.port(), "/api/chat", &body);
        assert_eq!(resp.status, 200);
        assert!(resp.complete);
        assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
        let lines = resp.ndjson();
        assert!(lines.len() >= 3);
        let (last, pieces) = lines.split_last().unwrap();
        assert!(pieces.iter().all(|l| l["done"] == false));
        let text: String = pieces
            .iter()
            .map(|l| l["message"]["content"].as_str().unwrap())
            .collect();
        assert!(text.starts_with("STUB-REPLY-"), "{text}");
        assert!(
            text.ends_with("for llama3.2: why is the sky blue"),
            "{text}"
        );
        assert_eq!(last["done"], true);
        assert_eq!(last["prompt_eval_count"], 7);
        assert_eq!(last["eval_count"], 8);
        assert_eq!(last["done_reason"], "stop");
    }
}

fn anthropic_body(stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 1024,
        "stream": stream,
        "system": "You are a poet.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "write a haiku"}]}]
    })
}

#[test]
fn anthropic_non_stream() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let resp = post(server.port(), "/v1/messages", &anthropic_body(false));
    assert_eq!(resp.status, 200);
    let v = resp.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(
        v["content"][0]["text"],
        "STUB-REPLY-1 for claude-test: write a haiku"
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 7);
    assert_eq!(v["usage"]["output_tokens"], 6);
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
}

#[test]
fn anthropic_stream() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let resp = post(server.port(), "/v1/messages", &anthropic_body(true));
    assert_eq!(resp.status, 200);
    assert!(resp.complete);
    let events = resp.sse_events();
    let data: Vec<Value> = resp
        .sse_data()
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), data.len());
    for (e, d) in events.iter().zip(&data) {
        assert_eq!(&d["type"], e.as_str());
    }
    let named: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| *e != "ping" && *e != "content_block_delta")
        .collect();
    assert_eq!(
        named,
        [
            "message_start",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 7);
    let text: String = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "STUB-REPLY-1 for claude-test: write a haiku");
    assert!(
        events
            .iter()
            .filter(|e| *e == "content_block_delta")
            .count()
            >= 5
    );
    let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 6);
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut client = Client::connect(server.port());
    for i in 1..=50 {
        let mut body = openai_body(i % 2 == 0);
        body["messages"][3]["content"] = json!(format!("question {i}"));
        let resp = client.post("/v1/chat/completions", &body);
        assert_eq!(resp.status, 200);
        assert!(resp.header("connection").is_none());
        let text = if i % 2 == 0 {
            openai_stream_content(&resp).0
        } else {
            resp.json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(text, format!("STUB-REPLY-{i} for gpt-test: question {i}"));
    }
    assert_eq!(server.request_count(), 50);
    assert_eq!(server.requests().len(), 50);
}

#[test]
fn connection_close_is_honoured() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut client = Client::connect(server.port());
    client.send(
        "POST",
        "/v1/chat/completions",
        &[("Connection", "close")],
        &openai_body(false).to_string(),
    );
    let resp = client.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(client.is_closed());
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = StubServer::start_background(StubConfig::default().latency(30u64)).unwrap();
    let mut client = Client::connect(server.port());
    let mut a = openai_body(false);
    a["messages"][3]["content"] = json!("alpha");
    let mut b = openai_body(false);
    b["messages"][3]["content"] = json!("beta");
    client.send("POST", "/v1/chat/completions", &[], &a.to_string());
    client.send("POST", "/v1/chat/completions", &[], &b.to_string());
    let ra = client.read_response().json();
    let rb = client.read_response().json();
    assert_eq!(
        ra["choices"][0]["message"]["content"],
        "STUB-REPLY-1 for gpt-test: alpha"
    );
    assert_eq!(
        rb["choices"][0]["message"]["content"],
        "STUB-REPLY-2 for gpt-test: beta"
    );
}

#[test]
fn max_tokens_cuts_the_reply() {
    let server =
        StubServer::start_background(StubConfig::default().reply("one two three four five"))
            .unwrap();
    let mut body = openai_body(false);
    body["max_tokens"] = json!(3);
    let v = post(server.port(), "/v1/chat/completions", &body).json();
    assert_eq!(v["choices"][0]["message"]["content"], "one two three");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);

    let mut body = anthropic_body(false);
    body["max_tokens"] = json!(2);
    let v = post(server.port(), "/v1/messages", &body).json();
    assert_eq!(v["content"][0]["text"], "one two");
    assert_eq!(v["stop_reason"], "max_tokens");

    let mut body = ollama_body(Some(false));
    body["options"] = json!({"num_predict": 4});
    let v = post(server.port(), "/api/chat", &body).json();
    assert_eq!(v["message"]["content"], "one two three four");
    assert_eq!(v["done_reason"], "length");
}

#[test]
fn long_user_messages_are_cut_to_80_chars() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let long = "x".repeat(200);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": long}]});
    let v = post(server.port(), "/v1/chat/completions", &body).json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("STUB-REPLY-1 for m: {}", "x".repeat(80))
    );
}

#[test]
fn auxiliary_endpoints_and_unknown_paths() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut client = Client::connect(server.port());
    let models = client.get("/v1/models");
    assert_eq!(models.status, 200);
    assert_eq!(models.json()["object"], "list");
    assert_eq!(client.get("/api/tags").status, 200);
    let missing = client.get("/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]["message"].is_string());
    let wrong_method = client.get("/v1/chat/completions");
    assert_eq!(wrong_method.status, 405);
    let bad = {
        client.send("POST", "/v1/messages", &[], "not json");
        client.read_response()
    };
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["type"], "error");
    // The connection is still usable, and everything was recorded.
    assert_eq!(
        client.post("/api/chat", &ollama_body(Some(false))).status,
        200
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 6);
    assert_eq!(reqs[4].body, json!("not json"));
}

#[test]
fn malformed_http_gets_400_and_close() {
    let server = StubServer::start_background(StubConfig::default()).unwrap();
    let mut client = Client::connect(server.port());
    use std::io::Write;
    client.stream().write_all(b"garbage\r\n\r\n").unwrap();
    let resp = client.read_response();
    assert_eq!(resp.status, 400);
    assert!(client.is_closed());
    // The server keeps serving.
    assert_eq!(
        post(server.port(), "/api/chat", &ollama_body(Some(false))).status,
        200
    );
}
