//! The `llm-stub` binary: parses flags into a `StubConfig`, serves on 127.0.0.1 until
//! SIGTERM / Ctrl-C (or stdin closing, with `--exit-on-stdin-close`), then prints stats.

use std::io::Write;
use std::process::ExitCode;

use llm_stub::{Step, StubConfig, StubServer};

const USAGE: &str = "\
llm-stub: a loopback LLM server (OpenAI, Ollama, Anthropic chat protocols)

USAGE: llm-stub [OPTIONS]

OPTIONS:
  --port N                  port on 127.0.0.1 (default 0: any free port)
  --latency-ms N            delay before each response's headers
  --chunk-delay-ms N        delay between streamed events
  --fail-first N            the first N requests get --fail-status
  --fail-status CODE        status for --fail-first (default 500)
  --retry-after VALUE       Retry-After header for --fail-first errors
  --reply TEXT              fixed reply text (default: STUB-REPLY-{seq} for {model}: ...)
  --fail-when-contains S    requests whose body contains S get --fail-when-status
  --fail-when-status CODE   status for --fail-when-contains (default 500)
  --require-bearer KEY      require 'Authorization: Bearer KEY', else 401
  --require-api-key KEY     require 'x-api-key: KEY', else 401
  --record                  keep the request log (off: the binary never reads it)
  --exit-on-stdin-close     stop when stdin reaches end of file
  -h, --help                this help

Prints 'listening on http://127.0.0.1:PORT' once ready; on exit prints
'requests=N max_in_flight=M'.";

struct Cli {
    config: StubConfig,
    exit_on_stdin_close: bool,
}

fn parse_args(args: Vec<String>) -> Result<Option<Cli>, String> {
    let mut config = StubConfig::default().record_requests(false);
    let mut exit_on_stdin_close = false;
    let mut fail_when: Option<String> = None;
    let mut fail_when_status = 500u16;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => config = config.port(num(&flag, value(&flag)?)?),
            "--latency-ms" => config = config.latency(num::<u64>(&flag, value(&flag)?)?),
            "--chunk-delay-ms" => config = config.chunk_delay(num::<u64>(&flag, value(&flag)?)?),
            "--fail-first" => config.fail_first = num(&flag, value(&flag)?)?,
            "--fail-status" => config.fail_status = num(&flag, value(&flag)?)?,
            "--retry-after" => config = config.retry_after(value(&flag)?),
            "--reply" => config = config.reply(value(&flag)?),
            "--fail-when-contains" => fail_when = Some(value(&flag)?),
            "--fail-when-status" => fail_when_status = num(&flag, value(&flag)?)?,
            "--require-bearer" => config = config.require_bearer(value(&flag)?),
            "--require-api-key" => config = config.require_api_key(value(&flag)?),
            "--record" => config = config.record_requests(true),
            "--exit-on-stdin-close" => exit_on_stdin_close = true,
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if let Some(needle) = fail_when {
        config = config.fail_when_contains(needle, Step::status(fail_when_status));
    }
    Ok(Some(Cli {
        config,
        exit_on_stdin_close,
    }))
}

async fn wait_for_stop(exit_on_stdin_close: bool) {
    let (stdin_tx, stdin_rx) = tokio::sync::oneshot::channel::<()>();
    if exit_on_stdin_close {
        // A plain thread: a blocking stdin read must not hold up runtime shutdown.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = stdin_tx.send(());
        });
    } else {
        std::mem::forget(stdin_tx);
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let sigterm = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = sigterm => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = stdin_rx => {}
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = stdin_rx => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("llm-stub: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match StubServer::start(cli.config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("llm-stub: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", server.base_url());
    let _ = out.flush();

    wait_for_stop(cli.exit_on_stdin_close).await;

    let _ = writeln!(
        out,
        "requests={} max_in_flight={}",
        server.request_count(),
        server.max_in_flight()
    );
    let _ = out.flush();
    server.stop().await;
    // Do not wait for a stdin reader thread.
    std::process::exit(0);
}
