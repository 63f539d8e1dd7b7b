//! The reporter people read: SuperOptiX-style lines (`🔄 Task 2/3: ...`, `✅ Task X completed
//! in 1.23s`, `❌ Task X failed: ...`), a progress bar on a terminal, `--verbose` detail and
//! streamed tokens, and the closing summary table. Everything it prints passes through
//! [`crate::sanitize::terminal`] (no escape sequence from a goal, a name or a reply reaches the
//! terminal) and the run's [`Redactor`] (no credential is shown).

use crate::exec::RunEvent;
use crate::redact::Redactor;
use crate::report::terminal::{paint_lines, Tone};
use crate::workspace::{Manifest, RunStatus, TaskStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;

pub struct HumanReporter {
    verbose: bool,
    quiet: bool,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    running: HashMap<String, ProgressBar>,
    /// The task whose tokens were printed last, so a switch gets a heading.
    streaming: Option<String>,
    /// Tasks may stream at once (any strategy but sequential): each streamed line is printed
    /// whole, prefixed with its task, as `docker compose` does.
    interleaved: bool,
    /// Each task's streamed text not yet ended by a newline (interleaved runs).
    pending_lines: HashMap<String, String>,
    out: Box<dyn Write>,
    redactor: Redactor,
    /// `--print`: the final result, whole, is the only thing on stdout.
    print_result: bool,
    /// `--table full`: every task in the closing table.
    full_table: bool,
    /// Failed rows and the verdict in colour (on a terminal, without NO_COLOR).
    colour: bool,
    /// The history folder the previous run was moved to, named when this one fails.
    previous: Option<String>,
}

impl HumanReporter {
    /// `progress` draws bars (on a terminal, not with NO_COLOR or --quiet).
    pub fn new(verbose: bool, quiet: bool, progress: bool) -> HumanReporter {
        let multi = progress.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        HumanReporter {
            verbose,
            quiet,
            multi,
            overall: None,
            running: HashMap::new(),
            streaming: None,
            interleaved: false,
            pending_lines: HashMap::new(),
            out: Box::new(std::io::stdout()),
            redactor: Redactor::default(),
            print_result: false,
            full_table: false,
            colour: false,
            previous: None,
        }
    }

    /// Colours the closing table's failed rows and the verdict.
    pub fn coloured(mut self, colour: bool) -> HumanReporter {
        self.colour = colour;
        self
    }

    /// `--table full`: the closing table lists every task, however many.
    pub fn full_table(mut self, full: bool) -> HumanReporter {
        self.full_table = full;
        self
    }

    /// `--print`: every line goes to stderr (the command writes the final result to stdout).
    pub fn printing_result(mut self) -> HumanReporter {
        self.out = Box::new(std::io::stderr());
        self.print_result = true;
        self
    }

    /// Hides these secrets (the run's keys and URL credentials) in everything printed.
    pub fn with_redactor(mut self, redactor: Redactor) -> HumanReporter {
        self.redactor = redactor;
        self
    }

    /// Text as it may reach the terminal: credentials hidden, control characters escaped.
    fn shown(&self, text: &str) -> String {
        crate::sanitize::terminal(&self.redactor.redact(text)).into_owned()
    }

    fn line(&mut self, text: &str) {
        let text = &self.shown(text);
        if let Some(multi) = &self.multi {
            let _ = multi.println(text);
        } else {
            let _ = writeln!(self.out, "{text}");
        }
    }

    /// One streamed line of a task, `task | line`, on stderr.
    fn prefixed(&self, task: &str, line: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} | {}",
            self.shown(task),
            self.shown(line)
        );
    }

    fn end_stream(&mut self) {
        if self.streaming.take().is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }

    pub fn report(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted {
                orchestra,
                goal,
                workspace,
                strategy,
                tasks,
                archived_previous,
                ..
            } => {
                self.interleaved = strategy != "sequential";
                self.previous.clone_from(archived_previous);
                if self.quiet {
                    return;
                }
                self.line(&format!(
                    "🎼 Orchestra `{orchestra}`: {} task{}, {strategy}",
                    tasks.len(),
                    if tasks.len() == 1 { "" } else { "s" }
                ));
                self.line(&format!("🎯 Goal: {goal}"));
                if self.verbose {
                    self.line("📋 Execution order:");
                    for (place, task) in tasks.iter().enumerate() {
                        let after = if task.depends_on.is_empty() {
                            String::new()
                        } else {
                            format!(" after {}", task.depends_on.join(", "))
                        };
                        self.line(&format!(
                            "   {}. {} ({}, {}){after}",
                            place + 1,
                            task.name,
                            task.agent,
                            task.model
                        ));
                    }
                    self.line(&format!("📁 Workspace: {}", workspace.display()));
                    if let Some(previous) = archived_previous {
                        self.line(&format!("🗄️  Previous run moved to history/{previous}/"));
                    }
                }
                if let Some(multi) = &self.multi {
                    let bar = multi.add(ProgressBar::new(tasks.len() as u64));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.overall = Some(bar);
                }
            }
            RunEvent::TaskStarted {
                name,
                agent,
                model,
                number,
                total,
                tools,
            } => {
                self.end_stream();
                if !self.quiet {
                    let tools = tools
                        .as_deref()
                        .map(|t| format!(" · {t}"))
                        .unwrap_or_default();
                    self.line(&format!(
                        "🔄 Task {number}/{total}: {name} ({agent}, {model}){tools}"
                    ));
                }
                if let Some(multi) = &self.multi {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_message(self.shown(&format!("{name} ({agent})")));
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.running.insert(name.clone(), bar);
                }
            }
            RunEvent::TaskReused {
                name,
                number,
                total,
                ..
            } => {
                if !self.quiet {
                    self.line(&format!(
                        "♻️  Task {number}/{total}: {name} reused from cache"
                    ));
                }
            }
            RunEvent::ToolCalled {
                name,
                tool,
                duration_ms,
                ok,
            } => {
                if self.verbose {
                    self.end_stream();
                    let outcome = if *ok { "" } else { " (it reported an error)" };
                    let line =
                        format!("🔧 Task {name} called `{tool}` ({duration_ms} ms){outcome}");
                    self.line(&line);
                }
            }
            RunEvent::Token { name, text } => {
                if self.verbose && self.multi.is_none() && self.interleaved {
                    let pending = self.pending_lines.entry(name.clone()).or_default();
                    pending.push_str(text);
                    let mut complete = Vec::new();
                    while let Some(end) = pending.find('\n') {
                        complete.push(pending[..end].to_string());
                        pending.replace_range(..=end, "");
                    }
                    for line in complete {
                        self.prefixed(name, &line);
                    }
                } else if self.verbose && self.multi.is_none() {
                    let text = self.shown(text);
                    let mut err = std::io::stderr();
                    if self.streaming.as_deref() != Some(name.as_str()) {
                        if self.streaming.is_some() {
                            let _ = writeln!(err);
                        }
                        let _ = writeln!(err, "── {} ──", self.shown(name));
                        self.streaming = Some(name.clone());
                    }
                    let _ = write!(err, "{text}");
                    let _ = err.flush();
                } else if let Some(bar) = self.running.get(name) {
                    bar.inc(1);
                }
            }
            RunEvent::AttemptFailed {
                name,
                attempt,
                attempts,
                error,
                retry_in,
                retryable,
            } => {
                self.end_stream();
                if !retryable {
                    // Not worth another try: the task's failure line says why, once.
                    return;
                }
                let next = match retry_in {
                    Some(delay) => format!("; retrying in {:.1}s", delay.as_secs_f64()),
                    None => String::new(),
                };
                self.line(&format!(
                    "⚠️  Task {name}: attempt {attempt}/{attempts} failed: {error}{next}"
                ));
            }
            RunEvent::TaskFinished { record } => {
                if let Some(rest) = self.pending_lines.remove(&record.name) {
                    if !rest.is_empty() {
                        self.prefixed(&record.name, &rest);
                    }
                }
                self.end_stream();
                if let Some(bar) = self.running.remove(&record.name) {
                    bar.finish_and_clear();
                }
                if let Some(bar) = &self.overall {
                    bar.inc(1);
                }
                let seconds = record.duration_ms as f64 / 1000.0;
                match record.status {
                    TaskStatus::Succeeded => {
                        if !self.quiet {
                            self.line(&format!(
                                "✅ Task {} completed in {seconds:.2}s ({} tokens in, {} out)",
                                record.name, record.tokens_in, record.tokens_out
                            ));
                        }
                        if self.verbose {
                            self.line(&format!(
                                "   attempts: {}, output: {}",
                                record.attempts.len(),
                                record.output_file.as_deref().unwrap_or("-")
                            ));
                        }
                    }
                    TaskStatus::Cached => {}
                    _ => {
                        self.line(&format!(
                            "❌ Task {} failed: {}",
                            record.name,
                            record.reason.as_deref().unwrap_or("unknown error")
                        ));
                    }
                }
            }
            RunEvent::TaskSkipped { name, reason } => {
                if let Some(bar) = &self.overall {
                    bar.inc(1);
                }
                if !self.quiet {
                    self.line(&format!("⏭️  Task {name} skipped: {reason}"));
                }
            }
            RunEvent::Stopping { reason } => {
                self.end_stream();
                self.line(&format!("🛑 {reason}"));
            }
            RunEvent::Planned { manager } => {
                self.end_stream();
                if self.quiet {
                    return;
                }
                self.line(&format!(
                    "🧭 Manager ({}, {}/{}) planned {} assignment(s):",
                    manager.agent,
                    manager.provider,
                    manager.model,
                    manager.plan.len()
                ));
                for (n, step) in manager.plan.iter().enumerate() {
                    let added = if step.added { " (new)" } else { "" };
                    let instructions = if step.instructions.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", step.instructions)
                    };
                    self.line(&format!(
                        "   {}. {}{added} → {}{instructions}",
                        n + 1,
                        step.task,
                        step.agent
                    ));
                }
                for step in &manager.dropped {
                    self.line(&format!("   dropped {}: {}", step.task, step.instructions));
                }
                for fallback in &manager.fallbacks {
                    self.line(&format!("⚠️  {fallback}"));
                }
            }
            RunEvent::Reviewed {
                name,
                round,
                verdict,
            } => {
                self.end_stream();
                if !self.quiet {
                    self.line(&format!("🧐 Manager review {round} of {name}: {verdict}"));
                }
            }
            RunEvent::RunFinished { manifest } => {
                self.end_stream();
                for (_, bar) in self.running.drain() {
                    bar.finish_and_clear();
                }
                if let Some(bar) = self.overall.take() {
                    bar.finish_and_clear();
                }
                let preview = !self.quiet && !self.print_result;
                // `--quiet`: nothing for a run that succeeded, only what failed otherwise.
                if !(self.quiet && manifest.status == RunStatus::Succeeded) {
                    let summary =
                        summary(manifest, preview, self.full_table, self.previous.as_deref());
                    let text = self.shown(&summary.text);
                    let text = if self.colour {
                        paint_lines(&text, &summary.tones)
                    } else {
                        text
                    };
                    let _ = write!(self.out, "{text}");
                }
                let _ = self.out.flush();
            }
        }
    }
}

/// Tasks a run may have before its table is shortened.
const SHORT_TABLE_ROWS: usize = 30;
/// Succeeded tasks shown in a shortened table, slowest first.
const SLOWEST_SHOWN: usize = 10;

/// Lines of the final result shown after a successful run.
const PREVIEW_LINES: usize = 12;

/// The closing table and verdict, and which of its lines to colour.
pub(crate) struct Summary {
    pub text: String,
    /// (line index, tone): failed and skipped rows, the verdict.
    pub tones: Vec<(usize, Tone)>,
}

/// The index the next line pushed onto `text` (which ends with a newline) will have.
fn next_line(text: &str) -> usize {
    text.matches('\n').count()
}

/// The closing table and verdict; with `preview`, the final result's first lines; `previous`,
/// the history folder the run before this one was moved to.
pub(crate) fn summary(
    manifest: &Manifest,
    preview: bool,
    full_table: bool,
    previous: Option<&str>,
) -> Summary {
    let mut tones = Vec::new();
    // A large run's table shows what went wrong and the slowest tasks; the rest is counted.
    let shown_tasks: Vec<&crate::workspace::TaskRecord> =
        if full_table || manifest.tasks.len() <= SHORT_TABLE_ROWS {
            manifest.tasks.iter().collect()
        } else {
            let mut slowest: Vec<&crate::workspace::TaskRecord> = manifest
                .tasks
                .iter()
                .filter(|t| matches!(t.status, TaskStatus::Succeeded | TaskStatus::Cached))
                .collect();
            slowest.sort_by_key(|t| std::cmp::Reverse(t.duration_ms));
            slowest.truncate(SLOWEST_SHOWN);
            manifest
                .tasks
                .iter()
                .filter(|t| {
                    !matches!(t.status, TaskStatus::Succeeded | TaskStatus::Cached)
                        || slowest.iter().any(|s| std::ptr::eq(*s, *t))
                })
                .collect()
        };
    let hidden = manifest.tasks.len() - shown_tasks.len();
    let headers = [
        "Task",
        "Agent",
        "Status",
        "Attempts",
        "Time",
        "Tokens in/out",
    ];
    let rows: Vec<[String; 6]> = shown_tasks
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                t.agent.clone(),
                t.status.as_str().to_string(),
                t.attempts.len().to_string(),
                format!("{:.2}s", t.duration_ms as f64 / 1000.0),
                format!("{}/{}", t.tokens_in, t.tokens_out),
            ]
        })
        .collect();
    let widths = crate::report::terminal::column_widths(&headers, &rows);
    let format_row = |cells: &[String]| crate::report::terminal::table_row(cells, &widths);
    let mut out = String::from("\n");
    out.push_str(&format_row(&headers.map(str::to_string)));
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for (row, task) in rows.iter().zip(&shown_tasks) {
        match task.status {
            TaskStatus::Failed => tones.push((next_line(&out), Tone::Bad)),
            TaskStatus::Skipped => tones.push((next_line(&out), Tone::Warn)),
            _ => {}
        }
        out.push_str(&format_row(row));
        out.push('\n');
    }
    if hidden > 0 {
        out.push_str(&format!(
            "… {hidden} more succeeded (the failed and the {SLOWEST_SHOWN} slowest are shown; `--table full` shows every task)\n"
        ));
    }
    let totals = &manifest.totals;
    let seconds = manifest.duration_ms as f64 / 1000.0;
    out.push('\n');
    tones.push((
        next_line(&out),
        match manifest.status {
            RunStatus::Succeeded => Tone::Good,
            RunStatus::Interrupted => Tone::Warn,
            _ => Tone::Bad,
        },
    ));
    match manifest.status {
        RunStatus::Succeeded => out.push_str(&format!(
            "✅ Orchestra `{}` completed in {seconds:.2}s: {} succeeded, {} cached; {} tokens in, {} out\n",
            manifest.orchestra.id, totals.succeeded, totals.cached, totals.tokens_in, totals.tokens_out
        )),
        RunStatus::Interrupted => out.push_str(&format!(
            "🛑 Orchestra `{}` interrupted after {seconds:.2}s: {} succeeded, {} cached, {} failed, {} skipped\n",
            manifest.orchestra.id, totals.succeeded, totals.cached, totals.failed, totals.skipped
        )),
        _ => out.push_str(&format!(
            "❌ Orchestra `{}` failed after {seconds:.2}s: {} succeeded, {} cached, {} failed, {} skipped\n",
            manifest.orchestra.id, totals.succeeded, totals.cached, totals.failed, totals.skipped
        )),
    }
    if let Some(reason) = &manifest.stop_reason {
        out.push_str(&format!("   reason: {reason}\n"));
    }
    if manifest.status != RunStatus::Succeeded {
        // Where to read what went wrong, and how to go on without redoing finished work.
        for task in manifest
            .tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Failed)
        {
            let log = std::path::Path::new(&manifest.workspace)
                .join(crate::workspace::files::TASK_OUTPUTS)
                .join(format!("{}_error.txt", task.name));
            if log.is_file() {
                out.push_str(&format!("🔎 `{}` failed: {}\n", task.name, log.display()));
            }
        }
        if let Some(previous) = previous {
            let earlier = std::path::Path::new(&manifest.workspace)
                .join(crate::workspace::files::HISTORY)
                .join(previous)
                .join(crate::workspace::files::FINAL_OUTPUT);
            if earlier.is_file() {
                out.push_str(&format!(
                    "🗄️  The previous run's result is kept: {}\n",
                    earlier.display()
                ));
            }
        }
        out.push_str(&format!(
            "↻ To go on from here, reusing every finished task: super orchestra run {} --goal \"...\" --resume\n",
            manifest.orchestra.id
        ));
    }
    out.push_str(&format!("📁 Workspace: {}\n", manifest.workspace));
    let final_output =
        std::path::Path::new(&manifest.workspace).join(crate::workspace::files::FINAL_OUTPUT);
    if final_output.is_file() {
        out.push_str(&format!("📄 Final result: {}\n", final_output.display()));
        if preview && manifest.status == RunStatus::Succeeded {
            if let Ok(text) = std::fs::read_to_string(&final_output) {
                let lines: Vec<&str> = text.trim_end().lines().collect();
                out.push('\n');
                for line in lines.iter().take(PREVIEW_LINES) {
                    out.push_str(&format!("   {line}\n"));
                }
                if lines.len() > PREVIEW_LINES {
                    out.push_str(&format!(
                        "   … {} more line(s) in {}\n",
                        lines.len() - PREVIEW_LINES,
                        final_output.display()
                    ));
                }
                out.push('\n');
            }
        }
    }
    if manifest.status == RunStatus::Succeeded {
        // Upstream's last line on success; users' scripts grep for it.
        out.push_str(&format!("{COMPLETED_LINE}\n"));
    }
    Summary { text: out, tones }
}

/// The final line of a successful run, exactly as upstream prints it.
pub const COMPLETED_LINE: &str = "🎉 Orchestra completed successfully!";
