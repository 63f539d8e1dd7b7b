//! `--json`: one JSON event per line on stdout, and nothing else there.

use crate::exec::RunEvent;
use std::io::Write;

pub struct JsonReporter {
    out: std::io::Stdout,
}

impl Default for JsonReporter {
    fn default() -> Self {
        JsonReporter {
            out: std::io::stdout(),
        }
    }
}

impl JsonReporter {
    pub fn report(&mut self, event: &RunEvent) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = self.out.lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
