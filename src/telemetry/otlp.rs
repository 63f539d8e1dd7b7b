//! The OTLP export: where to (`--otlp-endpoint` or the standard `OTEL_EXPORTER_OTLP_*`
//! variables), over which protocol (HTTP/protobuf or gRPC), and the exporters. Exports run on a
//! small runtime of their own (one worker thread, started only when an endpoint is set), so the
//! run's current-thread runtime never waits on a collector; every span passes the run's
//! redactor before it leaves, and the first failure is kept for one warning at the end.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one export may take before it is abandoned.
pub(crate) const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    HttpProtobuf,
    Grpc,
}

/// Where and how the run exports; `None` from [`config`] when no endpoint is set.
#[derive(Debug, Clone)]
pub(crate) struct OtlpConfig {
    pub protocol: Protocol,
    /// From `--otlp-endpoint`: the traces and metrics URLs. `None`: the exporter reads the
    /// standard variables itself.
    pub traces: Option<String>,
    pub metrics: Option<String>,
    /// Metrics are exported when a base endpoint (or a metrics endpoint) is known.
    pub export_metrics: bool,
    /// The endpoint as messages show it (credentials hidden).
    pub shown: String,
}

fn set(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

/// The export settings from `--otlp-endpoint` and the environment, or why they are wrong.
pub(crate) fn config(
    flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<OtlpConfig>, String> {
    if set(env, "OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let protocol_var = if set(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").is_some() {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    } else {
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    };
    let protocol = match set(env, protocol_var).as_deref().map(str::trim) {
        None | Some("http/protobuf") => Protocol::HttpProtobuf,
        Some("grpc") => Protocol::Grpc,
        Some(other) => {
            return Err(format!(
                "{protocol_var}=`{other}` is not supported: use `http/protobuf` (the default) or `grpc`"
            ))
        }
    };
    let flag = flag.map(str::trim).filter(|f| !f.is_empty());
    if let Some(base) = flag {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "--otlp-endpoint `{}`: not an http:// or https:// URL",
                crate::redact::redact_urls(base)
            ));
        }
        let base = base.trim_end_matches('/');
        let (traces, metrics) = match protocol {
            Protocol::HttpProtobuf => (format!("{base}/v1/traces"), format!("{base}/v1/metrics")),
            Protocol::Grpc => (base.to_string(), base.to_string()),
        };
        return Ok(Some(OtlpConfig {
            protocol,
            shown: crate::redact::redact_urls(&traces).into_owned(),
            traces: Some(traces),
            metrics: Some(metrics),
            export_metrics: true,
        }));
    }
    let base = set(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
    let traces = set(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let Some(shown) = traces.clone().or_else(|| base.clone()) else {
        return Ok(None);
    };
    Ok(Some(OtlpConfig {
        protocol,
        shown: crate::redact::redact_urls(&shown).into_owned(),
        traces: None,
        metrics: None,
        export_metrics: base.is_some() || set(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some(),
    }))
}

/// The runtime the exporters' I/O runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("super-otlp")
        .enable_all()
        .build()
        .map_err(|e| format!("failed to start the OTLP exporter's runtime: {e}"))
}

/// OTLP/HTTP through the project's reqwest, each request run on the exporter's runtime (the
/// SDK's export threads have none).
#[derive(Debug, Clone)]
struct HttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, opentelemetry_http::HttpError>(out)
        });
        task.await
            .map_err(|e| opentelemetry_http::HttpError::from(e.to_string()))?
    }
}

fn http_client(runtime: &tokio::runtime::Handle, url: &str) -> Result<HttpClient, String> {
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .connect_timeout(EXPORT_TIMEOUT)
        // The system's certificates only for an https collector.
        .tls_built_in_root_certs(url.starts_with("https://"))
        .build()
        .map_err(|e| format!("failed to build the OTLP HTTP client: {e}"))?;
    Ok(HttpClient {
        client,
        runtime: runtime.clone(),
    })
}

/// The span exporter for `config`, built inside `runtime` (gRPC's channel lives there).
pub(crate) fn span_exporter(
    config: &OtlpConfig,
    runtime: &tokio::runtime::Runtime,
    redactor: crate::redact::Redactor,
    failure: Failure,
) -> Result<Guarded<opentelemetry_otlp::SpanExporter>, String> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let _entered = runtime.enter();
    let built = match config.protocol {
        Protocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(EXPORT_TIMEOUT)
                .with_http_client(http_client(
                    runtime.handle(),
                    config.traces.as_deref().unwrap_or(&config.shown),
                )?);
            if let Some(url) = &config.traces {
                builder = builder.with_endpoint(url.clone());
            }
            builder.build()
        }
        Protocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_timeout(EXPORT_TIMEOUT);
            if let Some(url) = &config.traces {
                builder = builder.with_endpoint(url.clone());
            }
            builder.build()
        }
    };
    let inner = built.map_err(|e| format!("the OTLP trace exporter: {e}"))?;
    Ok(Guarded {
        inner: Arc::new(inner),
        runtime: runtime.handle().clone(),
        redactor,
        failure,
    })
}

/// The metric exporter for `config`, when metrics are exported.
pub(crate) fn metric_exporter(
    config: &OtlpConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<opentelemetry_otlp::MetricExporter>, String> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    if !config.export_metrics {
        return Ok(None);
    }
    let _entered = runtime.enter();
    let built = match config.protocol {
        Protocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(EXPORT_TIMEOUT)
                .with_http_client(http_client(
                    runtime.handle(),
                    config.metrics.as_deref().unwrap_or(&config.shown),
                )?);
            if let Some(url) = &config.metrics {
                builder = builder.with_endpoint(url.clone());
            }
            builder.build()
        }
        Protocol::Grpc => {
            let mut builder = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_timeout(EXPORT_TIMEOUT);
            if let Some(url) = &config.metrics {
                builder = builder.with_endpoint(url.clone());
            }
            builder.build()
        }
    };
    built
        .map(Some)
        .map_err(|e| format!("the OTLP metric exporter: {e}"))
}

/// The first export failure of a run, shared by the exporters.
pub(crate) type Failure = Arc<Mutex<Option<String>>>;

pub(crate) fn note_failure(failure: &Failure, error: impl std::fmt::Display) {
    failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(|| error.to_string());
}

/// An exporter whose spans are redacted before they leave, whose exports run on the
/// exporter's runtime (gRPC and HTTP clients need one; the SDK's thread has none), and whose
/// first failure is kept.
#[derive(Debug)]
pub(crate) struct Guarded<E> {
    inner: Arc<E>,
    runtime: tokio::runtime::Handle,
    redactor: crate::redact::Redactor,
    failure: Failure,
}

fn redact_value(redactor: &crate::redact::Redactor, value: &mut opentelemetry::Value) {
    if let opentelemetry::Value::String(text) = value {
        if let std::borrow::Cow::Owned(clean) = redactor.redact(text.as_str()) {
            *value = opentelemetry::Value::String(clean.into());
        }
    }
}

impl<E: SpanExporter + 'static> SpanExporter for Guarded<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        for span in &mut batch {
            for kv in &mut span.attributes {
                redact_value(&self.redactor, &mut kv.value);
            }
            for event in &mut span.events.events {
                for kv in &mut event.attributes {
                    redact_value(&self.redactor, &mut kv.value);
                }
            }
            if let opentelemetry::trace::Status::Error { description } = &mut span.status {
                let clean = self.redactor.redact(description.as_ref()).into_owned();
                *description = clean.into();
            }
        }
        let inner = Arc::clone(&self.inner);
        let result = match self
            .runtime
            .spawn(async move { inner.export(batch).await })
            .await
        {
            Ok(result) => result,
            Err(error) => Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                error.to_string(),
            )),
        };
        if let Err(error) = &result {
            note_failure(&self.failure, error);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        // Before the first export the exporter is not shared yet.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_set_means_no_export() {
        assert!(config(None, &env(&[])).expect("ok").is_none());
    }

    #[test]
    fn the_flag_is_a_base_url() {
        let c = config(Some("http://127.0.0.1:4318/"), &env(&[]))
            .expect("ok")
            .expect("some");
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        assert_eq!(c.traces.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(
            c.metrics.as_deref(),
            Some("http://127.0.0.1:4318/v1/metrics")
        );
        let grpc = config(
            Some("http://collector:4317"),
            &env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
        )
        .expect("ok")
        .expect("some");
        assert_eq!(grpc.protocol, Protocol::Grpc);
        assert_eq!(grpc.traces.as_deref(), Some("http://collector:4317"));
    }

    #[test]
    fn the_standard_variables_enable_it() {
        let c = config(
            None,
            &env(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://x:4318/v1/traces",
            )]),
        )
        .expect("ok")
        .expect("some");
        assert!(c.traces.is_none() && !c.export_metrics);
        let c = config(
            None,
            &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318")]),
        )
        .expect("ok")
        .expect("some");
        assert!(c.export_metrics);
        assert!(config(
            None,
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ])
        )
        .expect("ok")
        .is_none());
    }

    #[test]
    fn bad_settings_are_named() {
        let error = config(
            Some("http://x"),
            &env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
        )
        .expect_err("json");
        assert!(error.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && error.contains("http/json"));
        let error = config(Some("collector:4317"), &env(&[])).expect_err("scheme");
        assert!(error.contains("--otlp-endpoint"), "{error}");
    }
}
