//! Observability: `tracing` inside, OpenTelemetry out.
//!
//! One global subscriber per process (`init`): diagnostic logs on stderr through an `EnvFilter`
//! (`SUPER_LOG`, else `RUST_LOG`, else `-v`/`-vv`), and, for the commands that run tasks, a
//! `tracing-opentelemetry` layer over one tracer provider. That provider's processor is bound
//! when a run starts (`start_run`): `trace.jsonl` (each span written as it ends) and, when an
//! endpoint is configured, a batch exporter to an OTLP collector plus OTLP metrics. The trace
//! id derives from the run id (a `run-task` process of the same run joins the same trace), and
//! `TRACEPARENT` makes the run a child of the caller's span. Nothing about OTLP is set up
//! unless an endpoint is configured; before a run starts, spans are disabled by one flag.

mod file;
mod metrics;
pub(crate) mod otlp;
pub(crate) mod spans;

use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracerProvider,
    SpanData, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

/// The target prefix of every span and log line of this crate.
const TARGET: &str = "super_orchestra";

/// The longest a run's end waits for its exports (a dead collector delays exit this much at
/// most, on top of one export timeout already under way).
pub(crate) const FLUSH_BOUND: Duration = Duration::from_secs(5);

/// Spans reach the tracer only once a run has bound its sinks.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// What a run's spans go to, bound once per process.
#[derive(Debug, Default)]
struct Sinks {
    file: Option<file::TraceFile>,
    batch: Option<BatchSpanProcessor>,
}

/// The processor of the process's tracer provider: forwards to the run's sinks.
#[derive(Debug, Clone, Default)]
struct RunProcessor(Arc<OnceLock<Sinks>>);

impl SpanProcessor for RunProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        let Some(sinks) = self.0.get() else { return };
        if let Some(file) = &sinks.file {
            file.write(&span);
        }
        if let Some(batch) = &sinks.batch {
            batch.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self.0.get().and_then(|s| s.batch.as_ref()) {
            Some(batch) => batch.force_flush(),
            None => Ok(()),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self.0.get().and_then(|s| s.batch.as_ref()) {
            Some(batch) => batch.shutdown_with_timeout(timeout),
            None => Ok(()),
        }
    }
}

/// Trace ids from the run id; span ids at random.
#[derive(Debug, Default)]
struct RunIds {
    trace: Arc<OnceLock<TraceId>>,
    random: RandomIdGenerator,
}

impl IdGenerator for RunIds {
    fn new_trace_id(&self) -> TraceId {
        match self.trace.get() {
            Some(id) => *id,
            None => self.random.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

/// The trace id of a run: the first 16 bytes of the sha256 of its id.
pub(crate) fn trace_id_of(run_id: &str) -> TraceId {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(run_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    TraceId::from_bytes(bytes)
}

/// The caller's span from `TRACEPARENT` (and `TRACESTATE`), when it is a valid one.
pub(crate) fn traceparent() -> Option<opentelemetry::Context> {
    use opentelemetry::propagation::TextMapPropagator as _;
    let parent = std::env::var("TRACEPARENT").ok()?;
    let mut carrier = std::collections::HashMap::new();
    carrier.insert("traceparent".to_string(), parent.trim().to_string());
    if let Ok(state) = std::env::var("TRACESTATE") {
        carrier.insert("tracestate".to_string(), state);
    }
    let context = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// The tracer provider, its sinks and resource, when this process traces.
struct Installed {
    provider: SdkTracerProvider,
    sinks: Arc<OnceLock<Sinks>>,
    trace_id: Arc<OnceLock<TraceId>>,
    resource: Resource,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// The log filter: `SUPER_LOG`, else `RUST_LOG`, else the verbosity (`-v` info, `-vv` debug,
/// `-vvv` trace; warnings otherwise), for this crate's targets (`super...`).
fn log_filter(verbosity: u8) -> tracing_subscriber::EnvFilter {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let default = format!("{TARGET}={level}");
    let given = ["SUPER_LOG", "RUST_LOG"].iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*name, v))
    });
    if let Some((name, directives)) = given {
        match tracing_subscriber::EnvFilter::builder().parse(&directives) {
            Ok(filter) => return filter,
            Err(error) => eprintln!(
                "warning: {name}=`{}` is not a log filter ({error}); using `{default}`",
                crate::sanitize::terminal(&directives)
            ),
        }
    }
    tracing_subscriber::EnvFilter::new(default)
}

/// The service's resource: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` when set, else
/// `service.name=super`; `service.version` always.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let mut builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if !named {
        builder = builder.with_service_name("super");
    }
    builder.build()
}

/// Installs the process's subscriber: logs on stderr (`color`: ANSI colours), and when `traced`
/// the OpenTelemetry layer a run binds with `start_run`. Called once, before the command runs.
pub(crate) fn init(verbosity: u8, color: bool, traced: bool) {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_filter(log_filter(verbosity));
    let registry = tracing_subscriber::registry().with(logs);
    if !traced {
        let _ = registry.try_init();
        return;
    }
    let sinks: Arc<OnceLock<Sinks>> = Arc::default();
    let trace_id: Arc<OnceLock<TraceId>> = Arc::default();
    let resource = resource();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(RunProcessor(Arc::clone(&sinks)))
        .with_id_generator(RunIds {
            trace: Arc::clone(&trace_id),
            random: RandomIdGenerator::default(),
        })
        .with_resource(resource.clone())
        .build();
    let tracer = provider.tracer("super");
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        // Parents come from the `tracing` span tree and `set_parent`, never from an attached
        // context; attaching one on every poll of every instrumented future was the largest
        // single cost of a 10,000-task run.
        .with_context_activation(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            ACTIVE.load(Ordering::Relaxed)
                && meta.target().starts_with(TARGET)
                && (meta.is_span() || *meta.level() <= tracing::Level::INFO)
        }));
    if registry.with(spans).try_init().is_ok() {
        let _ = INSTALLED.set(Installed {
            provider,
            sinks,
            trace_id,
            resource,
        });
    }
}

/// What a run's telemetry needs.
pub(crate) struct RunTrace<'a> {
    pub run_id: &'a str,
    /// `trace.jsonl`, when the orchestra keeps a trace.
    pub file: Option<PathBuf>,
    pub otlp: Option<otlp::OtlpConfig>,
    /// `--trace-content`: prompts and completions as span attributes.
    pub content: bool,
    pub redactor: crate::redact::Redactor,
}

/// The OTLP side of a running export.
struct Export {
    runtime: tokio::runtime::Runtime,
    meters: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
    failure: otlp::Failure,
    shown: String,
}

/// A run's telemetry: its metrics recorder and exports, ended by `finish`.
#[derive(Default)]
pub(crate) struct RunTelemetry {
    export: Option<Export>,
    metrics: Option<metrics::Recorder>,
    /// Why OTLP could not start (reported once, the run goes on).
    warning: Option<String>,
}

/// How a run's telemetry ended.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    /// `trace.jsonl` could not be written: the run's files are incomplete.
    pub file_error: Option<String>,
    /// The export failed: one warning, the run's outcome unchanged.
    pub warning: Option<String>,
}

/// Binds the run's sinks: the trace file (created now) and the OTLP export. A trace file that
/// cannot be created is an error; an export that cannot start is a warning at the end.
pub(crate) fn start_run(trace: RunTrace<'_>) -> Result<RunTelemetry, String> {
    spans::record_content(trace.content);
    let Some(installed) = INSTALLED.get() else {
        return Ok(RunTelemetry::default());
    };
    let _ = installed.trace_id.set(trace_id_of(trace.run_id));
    let file = match &trace.file {
        Some(path) => Some(
            file::TraceFile::create(path, trace.redactor.clone())
                .map_err(|e| format!("failed to create `{}`: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut telemetry = RunTelemetry::default();
    let mut batch = None;
    if let Some(config) = &trace.otlp {
        match start_export(config, trace.redactor.clone(), &installed.resource) {
            Ok((export, processor)) => {
                if let Some(meters) = &export.meters {
                    use opentelemetry::metrics::MeterProvider as _;
                    telemetry.metrics = Some(metrics::Recorder::new(&meters.meter("super")));
                }
                batch = Some(processor);
                telemetry.export = Some(export);
            }
            Err(error) => {
                telemetry.warning = Some(format!(
                    "warning: no telemetry is exported to {}: {error}",
                    config.shown
                ))
            }
        }
    }
    // One run per process: the sinks are set once (a second run in the same process, which no
    // command makes, would keep the first run's).
    let _ = installed.sinks.set(Sinks { file, batch });
    ACTIVE.store(true, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
    Ok(telemetry)
}

fn start_export(
    config: &otlp::OtlpConfig,
    redactor: crate::redact::Redactor,
    resource: &Resource,
) -> Result<(Export, BatchSpanProcessor), String> {
    let runtime = otlp::runtime()?;
    let failure = otlp::Failure::default();
    let exporter = otlp::span_exporter(config, &runtime, redactor, Arc::clone(&failure))?;
    let mut processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_secs(2))
                .build(),
        )
        .build();
    processor.set_resource(resource);
    let meters = otlp::metric_exporter(config, &runtime)?.map(|exporter| {
        let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
            .with_interval(Duration::from_secs(30))
            .build();
        opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(reader)
            .build()
    });
    Ok((
        Export {
            runtime,
            meters,
            failure,
            shown: config.shown.clone(),
        },
        processor,
    ))
}

impl RunTelemetry {
    /// Feeds the metrics from a run event.
    pub(crate) fn observe(&self, event: &crate::exec::RunEvent) {
        if let Some(metrics) = &self.metrics {
            metrics.observe(event);
        }
    }

    /// Flushes and stops the exports within `FLUSH_BOUND`; the trace file is already whole.
    /// Call once every span of the run has ended.
    pub(crate) fn finish(self) -> Ended {
        let mut ended = Ended {
            warning: self.warning,
            ..Ended::default()
        };
        let Some(installed) = INSTALLED.get() else {
            return ended;
        };
        ACTIVE.store(false, Ordering::Relaxed);
        if let Some(sinks) = installed.sinks.get() {
            ended.file_error = sinks.file.as_ref().and_then(file::TraceFile::failure);
        }
        if let Some(export) = self.export {
            if let Err(error) = installed.provider.shutdown_with_timeout(FLUSH_BOUND) {
                otlp::note_failure(&export.failure, error);
            }
            if let Some(meters) = &export.meters {
                if let Err(error) = meters.shutdown_with_timeout(FLUSH_BOUND) {
                    otlp::note_failure(&export.failure, error);
                }
            }
            export.runtime.shutdown_timeout(Duration::from_millis(500));
            let failure = export
                .failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(error) = failure {
                ended.warning.get_or_insert(format!(
                    "warning: the run's telemetry could not be exported to {}: {} (the run's outcome is unchanged)",
                    export.shown,
                    crate::redact::redact_urls(&error)
                ));
            }
        }
        ended
    }
}
