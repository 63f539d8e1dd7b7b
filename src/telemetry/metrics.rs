//! Metrics over OTLP, from the run's events (the same events the reporters print): tokens and
//! call durations under the GenAI metric names (`gen_ai.client.token.usage`,
//! `gen_ai.client.operation.duration`), and the run's own counters and histograms: cost, task
//! durations, tasks by status, retries.

use crate::exec::RunEvent;
use crate::workspace::TaskRecord;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::KeyValue;

pub(crate) struct Recorder {
    tokens: Histogram<u64>,
    duration: Histogram<f64>,
    cost: Counter<f64>,
    task_duration: Histogram<f64>,
    tasks: Counter<u64>,
    retries: Counter<u64>,
}

impl Recorder {
    pub(crate) fn new(meter: &Meter) -> Recorder {
        Recorder {
            tokens: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Tokens used per LLM call, by gen_ai.token.type")
                .with_boundaries(vec![
                    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0,
                    1048576.0,
                ])
                .build(),
            duration: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_description("Duration of each LLM call")
                .with_boundaries(vec![
                    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92,
                ])
                .build(),
            cost: meter
                .f64_counter("super.cost")
                .with_unit("USD")
                .with_description("Estimated cost of the LLM calls")
                .build(),
            task_duration: meter
                .f64_histogram("super.task.duration")
                .with_unit("s")
                .with_description("Wall time of each task, all attempts included")
                .build(),
            tasks: meter
                .u64_counter("super.tasks")
                .with_unit("{task}")
                .with_description("Tasks ended, by super.task.status")
                .build(),
            retries: meter
                .u64_counter("super.retries")
                .with_unit("{retry}")
                .with_description("Failed attempts that are tried again")
                .build(),
        }
    }

    pub(crate) fn observe(&self, event: &RunEvent) {
        match event {
            RunEvent::TaskFinished { record } => self.task(record),
            RunEvent::AttemptFailed {
                name,
                retry_in: Some(_),
                ..
            } => self
                .retries
                .add(1, &[KeyValue::new("super.task", name.clone())]),
            _ => {}
        }
    }

    fn task(&self, record: &TaskRecord) {
        let status = [
            KeyValue::new("super.task", record.name.clone()),
            KeyValue::new("super.task.status", record.status.as_str()),
        ];
        self.tasks.add(1, &status[1..]);
        self.task_duration
            .record(record.duration_ms as f64 / 1000.0, &status);
        for call in record.attempts.iter().flat_map(|a| &a.calls) {
            let mut attributes = vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", record.provider.clone()),
                KeyValue::new("gen_ai.request.model", record.model.clone()),
            ];
            if let Some(model) = &call.response_model {
                attributes.push(KeyValue::new("gen_ai.response.model", model.clone()));
            }
            let mut timed = attributes.clone();
            if call.error.is_some() {
                timed.push(KeyValue::new(
                    "error.type",
                    call.http_status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "error".into()),
                ));
            }
            self.duration
                .record(call.duration_ms as f64 / 1000.0, &timed);
            if call.error.is_none() {
                for (kind, count) in [("input", call.tokens_in), ("output", call.tokens_out)] {
                    let mut with_type = attributes.clone();
                    with_type.push(KeyValue::new("gen_ai.token.type", kind));
                    self.tokens.record(count, &with_type);
                }
                self.cost.add(call.cost_usd, &attributes[1..]);
            }
        }
    }
}
