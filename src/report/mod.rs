//! Reporters: events to what the user sees (human lines and bars, JSON lines, or both: the
//! human ones on stderr while `--json` holds stdout) and the run's files derived from the
//! manifest (metrics; the trace of a run assembled by `finish`). Plain synchronous code. The
//! run's spans and OTLP metrics are the other consumers of the same work (`telemetry`).

#[cfg(test)]
pub(crate) mod contract_tests;
pub mod files;
pub mod human;
pub mod json;
pub(crate) mod terminal;

use crate::exec::RunEvent;

/// Every reporter of a run, each fed every event.
#[derive(Default)]
pub struct Reporter {
    human: Option<human::HumanReporter>,
    json: Option<json::JsonReporter>,
}

impl Reporter {
    pub fn human(reporter: human::HumanReporter) -> Reporter {
        Reporter {
            human: Some(reporter),
            json: None,
        }
    }

    /// `--json` on stdout (each event stamped with `run_id`), and `human` (writing to stderr)
    /// beside it, if any.
    pub fn json(run_id: String, human: Option<human::HumanReporter>) -> Reporter {
        Reporter {
            human,
            json: Some(json::JsonReporter::new(Some(run_id))),
        }
    }

    pub fn report(&mut self, event: &RunEvent) {
        if let Some(reporter) = &mut self.json {
            reporter.report(event);
        }
        if let Some(reporter) = &mut self.human {
            reporter.report(event);
        }
    }
}
