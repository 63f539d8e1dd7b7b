//! Reporters: events to what the user sees (human lines and bars, or JSON lines) and the run's
//! files derived from the manifest (metrics, trace). Plain synchronous code.

#[cfg(test)]
pub(crate) mod contract_tests;
pub mod files;
pub mod human;
pub mod json;
pub(crate) mod terminal;

use crate::exec::RunEvent;

pub enum Reporter {
    Human(Box<human::HumanReporter>),
    Json(json::JsonReporter),
}

impl Reporter {
    pub fn report(&mut self, event: &RunEvent) {
        match self {
            Reporter::Human(reporter) => reporter.report(event),
            Reporter::Json(reporter) => reporter.report(event),
        }
    }
}
