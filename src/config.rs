//! Defaults from config files, so a user need not repeat `--provider ollama` on every run:
//! `super.toml` at the project root, and the user's own file (`$SUPER_CONFIG`, else
//! `$XDG_CONFIG_HOME/super/config.toml`, else `~/.config/super/config.toml`).
//!
//! Precedence, most specific first: a flag, then its `SUPER_*` variable, then the orchestra
//! file (and its playbooks), then the project's `super.toml`, then the user's config, then the
//! built-in default. A config value is a default: it fills only what the files leave unset (a
//! `provider` applies to agents whose playbook names none). Every key is checked with its
//! `file:line:col`; an unknown key is a warning with "did you mean".

use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::source::{Loc, SourceFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The project's config file, at its root.
pub const PROJECT_FILE: &str = "super.toml";

/// Which file a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    Project,
    User,
}

/// Where a value is written.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub layer: Layer,
    pub file: Arc<SourceFile>,
    pub loc: Loc,
}

impl Origin {
    /// `super.toml:3:1`.
    pub fn position(&self) -> String {
        format!(
            "{}:{}:{}",
            self.file.display,
            self.loc.line,
            self.loc.col + 1
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// How a run reports, when no flag says (`output = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputMode {
    Human,
    Verbose,
    Quiet,
    Json,
}

impl OutputMode {
    pub const NAMES: [&'static str; 4] = ["human", "verbose", "quiet", "json"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn parse(text: &str) -> Option<OutputMode> {
        match text {
            "human" => Some(OutputMode::Human),
            "verbose" => Some(OutputMode::Verbose),
            "quiet" => Some(OutputMode::Quiet),
            "json" => Some(OutputMode::Json),
            _ => None,
        }
    }
}

/// Every value the config files set, each with where it is written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    pub provider: Option<Setting<String>>,
    pub model: Option<Setting<String>>,
    pub base_url: Option<Setting<String>>,
    /// Seconds per attempt, for tasks whose file sets none (as `--timeout`).
    pub timeout: Option<Setting<u64>>,
    pub threads: Option<Setting<usize>>,
    pub output: Option<Setting<OutputMode>>,
    pub max_tokens: Option<Setting<u64>>,
    pub max_cost_usd: Option<Setting<f64>>,
    pub max_llm_calls: Option<Setting<u64>>,
    pub max_wall_seconds: Option<Setting<f64>>,
    pub max_tool_calls: Option<Setting<u64>>,
    /// The files read, user's first.
    pub files: Vec<(Layer, PathBuf)>,
}

/// The keys a config file may hold: top-level, then under `[budget]`.
pub(crate) const KEYS: &[&str] = &[
    "provider", "model", "base_url", "timeout", "threads", "output", "budget",
];
pub(crate) const BUDGET_KEYS: &[&str] = &[
    "max_tokens",
    "max_cost_usd",
    "max_llm_calls",
    "max_wall_seconds",
    "max_tool_calls",
];

/// The user's config file: `$SUPER_CONFIG`, else `$XDG_CONFIG_HOME/super/config.toml`, else
/// `$HOME/.config/super/config.toml`.
pub(crate) fn user_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let given = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(path) = given("SUPER_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = given("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| given("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("super").join("config.toml"))
}

impl Config {
    /// Reads the user's file, then the project's (whose values win). A missing file is no
    /// problem, except one `SUPER_CONFIG` names; every other problem is a diagnostic.
    pub fn load(
        project_root: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        diags: &mut Diagnostics,
    ) -> Config {
        let mut config = Config::default();
        let named = env("SUPER_CONFIG")
            .filter(|v| !v.trim().is_empty())
            .is_some();
        if let Some(path) = user_file(env) {
            config.read(&path, Layer::User, named, diags);
        }
        if let Some(root) = project_root {
            config.read(&root.join(PROJECT_FILE), Layer::Project, false, diags);
        }
        config
    }

    fn read(&mut self, path: &Path, layer: Layer, must_exist: bool, diags: &mut Diagnostics) {
        let file = match SourceFile::read(path) {
            Ok(file) => file,
            Err(crate::source::ReadError::Io(e))
                if e.kind() == std::io::ErrorKind::NotFound && !must_exist =>
            {
                return;
            }
            Err(crate::source::ReadError::Io(e)) => {
                diags.push(
                    Diagnostic::error(format!(
                        "failed to read the config file `{}`: {e}",
                        crate::source::display_path(path)
                    ))
                    .hint(if must_exist {
                        "`SUPER_CONFIG` names this file; fix the path or unset it"
                    } else {
                        "check that the file is readable"
                    }),
                );
                return;
            }
            Err(crate::source::ReadError::NotUtf8 { file, loc, .. }) => {
                diags.push(
                    Diagnostic::error(format!(
                        "the config file `{}` is not UTF-8 text",
                        file.display
                    ))
                    .at(&file, loc, "not UTF-8")
                    .hint("save it as UTF-8"),
                );
                return;
            }
        };
        self.files.push((layer, path.to_path_buf()));
        let document = match toml_edit::Document::parse(file.text.clone()) {
            Ok(document) => document,
            Err(error) => {
                let loc = loc_of(&file, error.span());
                diags.push(
                    Diagnostic::error(format!(
                        "the config file `{}` is not valid TOML: {}",
                        file.display,
                        error.message().trim()
                    ))
                    .at(&file, loc, "here")
                    .hint("see https://toml.io for the syntax"),
                );
                return;
            }
        };
        let mut reader = Reader {
            file: &file,
            layer,
            diags,
        };
        let root = document.as_table();
        reader.unknown(root, KEYS, "");
        if let Some(v) = reader.string(root, "provider") {
            self.provider = Some(v);
        }
        if let Some(v) = reader.string(root, "model") {
            self.model = Some(v);
        }
        if let Some(v) = reader.string(root, "base_url") {
            self.base_url = Some(v);
        }
        if let Some(v) = reader.whole(
            root,
            "timeout",
            1,
            crate::spec::orchestra::limits::MAX_TIMEOUT_SECONDS,
        ) {
            self.timeout = Some(v);
        }
        if let Some(v) = reader.whole(root, "threads", 1, 1024) {
            self.threads = Some(Setting {
                value: v.value as usize,
                origin: v.origin,
            });
        }
        if let Some(v) = reader.string(root, "output") {
            match OutputMode::parse(v.value.trim()) {
                Some(mode) => {
                    self.output = Some(Setting {
                        value: mode,
                        origin: v.origin,
                    });
                }
                None => {
                    let hint = match did_you_mean(v.value.trim(), OutputMode::NAMES) {
                        Some(close) => format!(
                            "did you mean `{close}`? Modes are {}",
                            OutputMode::NAMES.join(", ")
                        ),
                        None => format!("modes are {}", OutputMode::NAMES.join(", ")),
                    };
                    reader.diags.push(
                        Diagnostic::error(format!("unknown output mode `{}`", v.value))
                            .at(&file, v.origin.loc, "not an output mode")
                            .hint(hint),
                    );
                }
            }
        }
        if let Some((key, item)) = root.get_key_value("budget") {
            match item.as_table_like() {
                Some(budget) => {
                    reader.unknown_like(budget, BUDGET_KEYS, "budget.");
                    let limits = crate::spec::orchestra::limits::MAX_TOKENS;
                    if let Some(v) = reader.whole_like(budget, "max_tokens", 1, limits) {
                        self.max_tokens = Some(v);
                    }
                    let calls = crate::spec::orchestra::limits::MAX_CALLS;
                    if let Some(v) = reader.whole_like(budget, "max_llm_calls", 1, calls) {
                        self.max_llm_calls = Some(v);
                    }
                    if let Some(v) = reader.whole_like(budget, "max_tool_calls", 0, calls) {
                        self.max_tool_calls = Some(v);
                    }
                    let usd = crate::spec::orchestra::limits::MAX_USD;
                    if let Some(v) = reader.number_like(budget, "max_cost_usd", usd) {
                        self.max_cost_usd = Some(v);
                    }
                    let wall = crate::spec::orchestra::limits::MAX_WALL_SECONDS;
                    if let Some(v) = reader.number_like(budget, "max_wall_seconds", wall) {
                        self.max_wall_seconds = Some(v);
                    }
                }
                None => {
                    let loc = loc_of(&file, key.span());
                    reader.diags.push(
                        Diagnostic::error("`budget` must be a table")
                            .at(&file, loc, "expected `[budget]`")
                            .hint("write `[budget]` on its own line, then `max_tokens = 100000` and the like"),
                    );
                }
            }
        }
    }

    /// The model defaults for agents whose playbook names no provider.
    pub fn model_defaults(&self) -> crate::provider::ModelOverrides {
        crate::provider::ModelOverrides {
            provider: self.provider.as_ref().map(|s| s.value.clone()),
            model: self.model.as_ref().map(|s| s.value.clone()),
            base_url: self.base_url.as_ref().map(|s| s.value.clone()),
            ..Default::default()
        }
    }

    /// Each value set, as `(key, value as TOML, origin)`, in the keys' order.
    pub fn entries(&self) -> Vec<(&'static str, String, &Origin)> {
        let mut out = Vec::new();
        fn text(s: &Option<Setting<String>>) -> Option<(String, &Origin)> {
            s.as_ref().map(|s| (format!("{:?}", s.value), &s.origin))
        }
        for (key, entry) in [
            ("provider", text(&self.provider)),
            ("model", text(&self.model)),
            ("base_url", text(&self.base_url)),
            (
                "timeout",
                self.timeout
                    .as_ref()
                    .map(|s| (s.value.to_string(), &s.origin)),
            ),
            (
                "threads",
                self.threads
                    .as_ref()
                    .map(|s| (s.value.to_string(), &s.origin)),
            ),
            (
                "output",
                self.output
                    .as_ref()
                    .map(|s| (format!("{:?}", s.value.as_str()), &s.origin)),
            ),
            (
                "budget.max_tokens",
                self.max_tokens
                    .as_ref()
                    .map(|s| (s.value.to_string(), &s.origin)),
            ),
            (
                "budget.max_cost_usd",
                self.max_cost_usd
                    .as_ref()
                    .map(|s| (s.value.to_string(), &s.origin)),
            ),
            (
                "budget.max_llm_calls",
                self.max_llm_calls
                    .as_ref()
                    .map(|s| (s.value.to_string(), &s.origin)),
            ),
            (
                "budget.max_wall_seconds",
                self.max_wall_seconds
                    .as_ref()
                    .map(|s| (s.value.to_string(), &s.origin)),
            ),
            (
                "budget.max_tool_calls",
                self.max_tool_calls
                    .as_ref()
                    .map(|s| (s.value.to_string(), &s.origin)),
            ),
        ] {
            if let Some((value, origin)) = entry {
                out.push((key, value, origin));
            }
        }
        out
    }
}

/// A byte range of a file as a `Loc` (its first line).
fn loc_of(file: &SourceFile, span: Option<std::ops::Range<usize>>) -> Loc {
    let Some(span) = span else {
        return Loc {
            line: 1,
            col: 0,
            len: 1,
        };
    };
    let start = span.start.min(file.text.len());
    let start = (0..=start)
        .rev()
        .find(|&i| file.text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &file.text[..start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let end = span.end.clamp(start, file.text.len());
    let end = (end..=file.text.len())
        .find(|&i| file.text.is_char_boundary(i))
        .unwrap_or(file.text.len());
    let first_line = file.text[start..end].split('\n').next().unwrap_or_default();
    Loc {
        line: before.matches('\n').count() + 1,
        col: before[line_start..].chars().count(),
        len: first_line.chars().count().max(1),
    }
}

/// Reads typed values out of one file's tables, each problem a diagnostic at its place.
struct Reader<'a> {
    file: &'a Arc<SourceFile>,
    layer: Layer,
    diags: &'a mut Diagnostics,
}

impl Reader<'_> {
    fn origin(&self, span: Option<std::ops::Range<usize>>) -> Origin {
        Origin {
            layer: self.layer,
            file: Arc::clone(self.file),
            loc: loc_of(self.file, span),
        }
    }

    fn unknown(&mut self, table: &toml_edit::Table, known: &[&str], prefix: &str) {
        self.unknown_like(table, known, prefix);
    }

    fn unknown_like(&mut self, table: &dyn toml_edit::TableLike, known: &[&str], prefix: &str) {
        for (name, _) in table.iter() {
            if known.contains(&name) {
                continue;
            }
            let span = table.key(name).and_then(toml_edit::Key::span);
            let diagnostic = Diagnostic::warning(format!(
                "unknown key `{prefix}{name}` in the config file `{}`",
                self.file.display
            ))
            .at(
                self.file,
                loc_of(self.file, span),
                "not a key super knows; it is ignored",
            );
            self.diags
                .push(match did_you_mean(name, known.iter().copied()) {
                    Some(close) => diagnostic.hint(format!("did you mean `{prefix}{close}`?")),
                    None => diagnostic.hint(format!(
                        "known keys: {}",
                        known
                            .iter()
                            .map(|k| format!("{prefix}{k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                });
        }
    }

    fn wrong(&mut self, name: &str, item: &toml_edit::Item, expected: &str) {
        let loc = loc_of(self.file, item.span());
        self.diags.push(
            Diagnostic::error(format!(
                "wrong type for `{name}` in the config file: expected {expected}, found {}",
                item.type_name()
            ))
            .at(self.file, loc, format!("expected {expected}")),
        );
    }

    fn string(&mut self, table: &toml_edit::Table, name: &str) -> Option<Setting<String>> {
        let item = table.get(name)?;
        match item.as_str() {
            Some(text) if !text.trim().is_empty() => Some(Setting {
                value: text.trim().to_string(),
                origin: self.origin(item.span()),
            }),
            Some(_) => {
                let loc = loc_of(self.file, item.span());
                self.diags.push(
                    Diagnostic::error(format!("`{name}` is empty in the config file"))
                        .at(self.file, loc, "empty")
                        .hint(format!("remove `{name}` to use the default")),
                );
                None
            }
            None => {
                self.wrong(name, item, "a string");
                None
            }
        }
    }

    fn whole(
        &mut self,
        table: &toml_edit::Table,
        name: &str,
        min: u64,
        max: u64,
    ) -> Option<Setting<u64>> {
        self.whole_like(table, name, min, max)
    }

    fn whole_like(
        &mut self,
        table: &dyn toml_edit::TableLike,
        name: &str,
        min: u64,
        max: u64,
    ) -> Option<Setting<u64>> {
        let item = table.get(name)?;
        let Some(value) = item.as_integer() else {
            self.wrong(name, item, "a whole number");
            return None;
        };
        if value < min as i64 || value as u64 > max {
            let loc = loc_of(self.file, item.span());
            self.diags.push(
                Diagnostic::error(format!("`{name}` must be from {min} to {max}, not {value}")).at(
                    self.file,
                    loc,
                    "out of range",
                ),
            );
            return None;
        }
        Some(Setting {
            value: value as u64,
            origin: self.origin(item.span()),
        })
    }

    fn number_like(
        &mut self,
        table: &dyn toml_edit::TableLike,
        name: &str,
        max: f64,
    ) -> Option<Setting<f64>> {
        let item = table.get(name)?;
        let value = match (item.as_float(), item.as_integer()) {
            (Some(f), _) => f,
            (None, Some(i)) => i as f64,
            _ => {
                self.wrong(name, item, "a number");
                return None;
            }
        };
        if !value.is_finite() || value <= 0.0 || value > max {
            let loc = loc_of(self.file, item.span());
            self.diags.push(
                Diagnostic::error(format!(
                    "`{name}` must be above 0 and at most {max}, not {value}"
                ))
                .at(self.file, loc, "out of range"),
            );
            return None;
        }
        Some(Setting {
            value,
            origin: self.origin(item.span()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_project_file_beats_the_user_file_key_by_key() {
        let dir = tempfile::tempdir().expect("temp");
        let user = dir.path().join("user.toml");
        std::fs::write(
            &user,
            "provider = \"ollama\"\nmodel = \"llama3.2\"\n[budget]\nmax_tokens = 500\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "model = \"qwen\"\ntimeout = 60\n",
        )
        .expect("write");
        let pairs = [("SUPER_CONFIG", user.display().to_string())];
        let mut diags = Diagnostics::default();
        let config = Config::load(Some(dir.path()), &env_with(&pairs), &mut diags);
        assert!(diags.items.is_empty(), "{}", diags.render(false));
        assert_eq!(
            config.provider.as_ref().map(|s| s.origin.layer),
            Some(Layer::User)
        );
        let model = config.model.expect("model");
        assert_eq!(model.value, "qwen");
        assert_eq!(model.origin.layer, Layer::Project);
        assert!(
            model.origin.position().ends_with("super.toml:1:9"),
            "{}",
            model.origin.position()
        );
        assert_eq!(config.timeout.map(|s| s.value), Some(60));
        assert_eq!(config.max_tokens.map(|s| s.value), Some(500));
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_are_errors_at_their_place() {
        let dir = tempfile::tempdir().expect("temp");
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "provder = \"x\"\ntimeout = \"soon\"\noutput = \"jsn\"\n[budget]\nmax_token = 1\n",
        )
        .expect("write");
        let mut diags = Diagnostics::default();
        let pairs: [(&str, String); 0] = [];
        Config::load(Some(dir.path()), &env_with(&pairs), &mut diags);
        let shown = diags.render(false);
        assert_eq!(diags.warning_count(), 2, "{shown}");
        assert_eq!(diags.error_count(), 2, "{shown}");
        assert!(shown.contains("super.toml:1:1"), "{shown}");
        assert!(shown.contains("did you mean `provider`?"), "{shown}");
        assert!(
            shown.contains("did you mean `budget.max_tokens`?"),
            "{shown}"
        );
        assert!(shown.contains("super.toml:2:11"), "{shown}");
        assert!(shown.contains("did you mean `json`?"), "{shown}");
    }

    #[test]
    fn the_user_file_is_found_by_the_usual_variables() {
        let pairs = [
            ("XDG_CONFIG_HOME", "/x".to_string()),
            ("HOME", "/h".to_string()),
        ];
        assert_eq!(
            user_file(&env_with(&pairs)),
            Some(PathBuf::from("/x/super/config.toml"))
        );
        let pairs = [("HOME", "/h".to_string())];
        assert_eq!(
            user_file(&env_with(&pairs)),
            Some(PathBuf::from("/h/.config/super/config.toml"))
        );
        let pairs: [(&str, String); 0] = [];
        assert_eq!(user_file(&env_with(&pairs)), None);
        // A file SUPER_CONFIG names must exist.
        let pairs = [("SUPER_CONFIG", "/nonexistent/super.toml".to_string())];
        let mut diags = Diagnostics::default();
        Config::load(None, &env_with(&pairs), &mut diags);
        assert_eq!(diags.error_count(), 1);
    }
}
