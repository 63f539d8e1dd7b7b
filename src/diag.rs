//! Diagnostics: errors and warnings that point at a file, line and column, and their rendering
//! in the style of rustc and `just` (`--> file:line:col`, the line, a caret under the value, a
//! hint). Errors are collected, never thrown one at a time, so a user sees every problem at once.

use crate::source::{Loc, SourceFile};
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    /// The words under the caret.
    pub label: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            label: String::new(),
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, file: &Arc<SourceFile>, loc: Loc, label: impl Into<String>) -> Diagnostic {
        self.location = Some(Location {
            file: Arc::clone(file),
            loc,
        });
        self.label = label.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col` with a 1-based column, or the empty string.
    pub fn position(&self) -> String {
        match &self.location {
            Some(location) => format!(
                "{}:{}:{}",
                location.file.display,
                location.loc.line,
                location.loc.col + 1
            ),
            None => String::new(),
        }
    }

    pub fn render(&self, color: bool) -> String {
        let (red, yellow, blue, bold, reset) = if color {
            ("\x1b[31m", "\x1b[33m", "\x1b[34m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "", "", "")
        };
        let (word, tint) = match self.severity {
            Severity::Error => ("error", red),
            Severity::Warning => ("warning", yellow),
        };
        let mut out = String::new();
        // What came from a file is shown inert: no escape sequence, no secret value.
        let clean =
            |text: &str| crate::sanitize::terminal(&crate::redact::redact_urls(text)).into_owned();
        let _ = writeln!(
            out,
            "{bold}{tint}{word}{reset}{bold}: {}{reset}",
            clean(&self.message)
        );
        if let Some(location) = &self.location {
            let loc = location.loc;
            let number = loc.line.to_string();
            let gutter = " ".repeat(number.len());
            let _ = writeln!(out, "{gutter}{blue}-->{reset} {}", self.position());
            if let Some(line) = location.file.line_text(loc.line) {
                let shown = clean(&crate::redact::mask_secret_values(line)).replace('\t', " ");
                let width = shown.chars().count();
                let start = loc.col.min(width);
                let len = loc.len.max(1).min(width.saturating_sub(start).max(1));
                let _ = writeln!(out, "{gutter} {blue}|{reset}");
                let _ = writeln!(out, "{blue}{number} |{reset} {shown}");
                let _ = writeln!(
                    out,
                    "{gutter} {blue}|{reset} {}{tint}{}{}{reset}",
                    " ".repeat(start),
                    "^".repeat(len),
                    if self.label.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", clean(&self.label))
                    }
                );
            }
            if let Some(hint) = &self.hint {
                let _ = writeln!(
                    out,
                    "{gutter} {blue}={reset} {bold}hint{reset}: {}",
                    clean(hint)
                );
            }
        } else if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  {blue}={reset} {bold}hint{reset}: {}", clean(hint));
        }
        out
    }
}

/// Every diagnostic found in one pass.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// `--strict`: every warning becomes an error.
    pub fn promote_warnings(&mut self) {
        for item in &mut self.items {
            item.severity = Severity::Error;
        }
    }

    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for item in &self.items {
            out.push_str(&item.render(color));
            out.push('\n');
        }
        out
    }

    /// Diagnostics as JSON values, for `--json`.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        self.items
            .iter()
            .map(|d| {
                serde_json::json!({
                    "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                    "message": d.message,
                    "file": d.location.as_ref().map(|l| l.file.display.clone()),
                    "line": d.location.as_ref().map(|l| l.loc.line),
                    "column": d.location.as_ref().map(|l| l.loc.col + 1),
                    "label": d.label,
                    "hint": d.hint,
                })
            })
            .collect()
    }
}

/// The closest candidate, for "did you mean" hints.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
