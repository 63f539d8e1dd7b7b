//! A small load generator for the stub: C keep-alive connections each sending N
//! non-streaming OpenAI requests; prints throughput and per-request latency.
//!
//! `cargo run --release -p llm-stub --example load -- [CONNECTIONS] [REQUESTS_PER_CONN] [stream]`

use std::time::{Duration, Instant};

use llm_stub::{StubConfig, StubServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn one_connection(port: u16, n: usize, stream: bool) -> Vec<Duration> {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut s = BufReader::new(s);
    let body = format!(
        r#"{{"model":"m","stream":{stream},"messages":[{{"role":"user","content":"hello there"}}]}}"#
    );
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut times = Vec::with_capacity(n);
    let mut line = String::new();
    for _ in 0..n {
        let t = Instant::now();
        s.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut len = None;
        let mut chunked = false;
        loop {
            line.clear();
            s.read_line(&mut line).await.unwrap();
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length: ") {
                len = Some(v.parse::<usize>().unwrap());
            }
            chunked |= l == "transfer-encoding: chunked";
        }
        if let Some(len) = len {
            let mut buf = vec![0u8; len];
            s.read_exact(&mut buf).await.unwrap();
        } else if chunked {
            loop {
                line.clear();
                s.read_line(&mut line).await.unwrap();
                let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
                let mut buf = vec![0u8; size + 2];
                s.read_exact(&mut buf).await.unwrap();
                if size == 0 {
                    break;
                }
            }
        }
        times.push(t.elapsed());
    }
    times
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let conns: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let per: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let stream = args.get(2).is_some_and(|a| a == "stream");
    let server =
        StubServer::start_background(StubConfig::default().record_requests(false)).unwrap();
    let port = server.port();
    let t = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(one_connection(port, per, stream)))
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = t.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() - 1) as f64 * p) as usize];
    println!(
        "{} requests in {:.3}s: {:.0} req/s; latency p50 {:?} p99 {:?} max {:?}; server saw {}, max in flight {}",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        all.last().unwrap(),
        server.request_count(),
        server.max_in_flight()
    );
}
