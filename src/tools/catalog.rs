//! The built-in tool catalogue: our names, the SuperOptiX names and categories mapped onto
//! them, the tools that need an outside service (offered through MCP, never built in), and the
//! construction of a built-in tool from the run's permissions. Pure lookups, no I/O.

use super::calculator::Calculator;
use super::datetime::DateTimeTool;
use super::files::{FileReader, FileWriter, ListFiles};
use super::http::HttpGet;
use super::json::JsonProcessor;
use super::shell::Shell;
use super::text::TextAnalyzer;
use super::tool::Tool;
use std::sync::Arc;
use std::time::Duration;

/// Every built-in tool, by its name.
pub const BUILTIN: &[&str] = &[
    "calculator",
    "date_time",
    "text_analyzer",
    "json_processor",
    "file_reader",
    "file_writer",
    "list_files",
    "http_get",
    "shell",
];

/// SuperOptiX (and common) names for tools we provide under another name.
const ALIASES: &[(&str, &str)] = &[
    ("calculate", "calculator"),
    ("math", "calculator"),
    ("datetime", "date_time"),
    ("date_time_tool", "date_time"),
    ("text_analysis", "text_analyzer"),
    ("json_parser", "json_processor"),
    ("json_tool", "json_processor"),
    ("read_file", "file_reader"),
    ("file_read", "file_reader"),
    ("write_file", "file_writer"),
    ("file_write", "file_writer"),
    ("list_directory", "list_files"),
    ("directory_lister", "list_files"),
    ("http_request", "http_get"),
    ("web_fetch", "http_get"),
    ("api_call", "http_get"),
    ("shell_command", "shell"),
    ("terminal", "shell"),
];

/// Tools SuperOptiX playbooks name that need an outside service or account: never built in.
const EXTERNAL: &[&str] = &[
    "web_search",
    "search",
    "wikipedia",
    "code_formatter",
    "git_tool",
    "sql_query",
    "email_sender",
    "slack",
    "github",
    "weather",
    "stock_price",
    "image_generator",
    "translator",
];

/// SuperOptiX tool categories and the built-in tools each gives.
const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "calculator",
            "date_time",
            "file_reader",
            "text_analyzer",
            "json_processor",
        ],
    ),
    (
        "utilities",
        &["calculator", "date_time", "text_analyzer", "json_processor"],
    ),
    ("files", &["file_reader", "file_writer", "list_files"]),
    (
        "file_operations",
        &["file_reader", "file_writer", "list_files"],
    ),
    ("data", &["json_processor", "text_analyzer"]),
    ("text", &["text_analyzer"]),
    ("web", &["http_get"]),
    ("system", &["shell"]),
    (
        "development",
        &["shell", "file_reader", "list_files", "json_processor"],
    ),
];

/// What a name in a playbook or orchestra means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// One of ours (the canonical name).
    Builtin(&'static str),
    /// A tool that needs an outside service: reach it through an MCP server.
    External,
    Unknown,
}

pub fn lookup(name: &str) -> Lookup {
    let key = name.trim().to_ascii_lowercase().replace('-', "_");
    if let Some(found) = BUILTIN.iter().find(|b| **b == key) {
        return Lookup::Builtin(found);
    }
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == key) {
        return Lookup::Builtin(to);
    }
    if EXTERNAL.contains(&key.as_str()) {
        return Lookup::External;
    }
    Lookup::Unknown
}

/// The built-in tools of a SuperOptiX category, or `None` for a category we have no tools for.
pub fn category(name: &str) -> Option<&'static [&'static str]> {
    let key = name.trim().to_ascii_lowercase();
    CATEGORIES
        .iter()
        .find(|(c, _)| *c == key)
        .map(|(_, tools)| *tools)
}

pub fn category_names() -> Vec<&'static str> {
    CATEGORIES.iter().map(|(c, _)| *c).collect()
}

/// What the orchestra grants the two tools that reach outside.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    pub allow_hosts: Vec<String>,
    pub allow_commands: Vec<String>,
    pub http_timeout: Option<Duration>,
    pub shell_timeout: Option<Duration>,
}

/// Why a built-in tool is not offered, when it is not.
pub fn unavailable_reason(name: &str, permissions: &Permissions) -> Option<&'static str> {
    match name {
        "http_get" if permissions.allow_hosts.is_empty() => {
            Some("not offered: the orchestra lists no `tools.allow_hosts`")
        }
        "shell" if permissions.allow_commands.is_empty() => {
            Some("not offered: the orchestra lists no `tools.allow_commands`")
        }
        _ => None,
    }
}

/// A built-in tool, built with the run's permissions; `None` for an unknown name or one whose
/// allow-list is empty.
pub fn build(name: &str, permissions: &Permissions) -> Option<Arc<dyn Tool>> {
    if unavailable_reason(name, permissions).is_some() {
        return None;
    }
    let default_timeout = Duration::from_secs(30);
    Some(match name {
        "calculator" => Arc::new(Calculator::new()),
        "date_time" => Arc::new(DateTimeTool::new()),
        "text_analyzer" => Arc::new(TextAnalyzer::new()),
        "json_processor" => Arc::new(JsonProcessor::new()),
        "file_reader" => Arc::new(FileReader::new()),
        "file_writer" => Arc::new(FileWriter::new()),
        "list_files" => Arc::new(ListFiles::new()),
        "http_get" => Arc::new(HttpGet::new(
            permissions.allow_hosts.clone(),
            permissions.http_timeout.unwrap_or(default_timeout),
        )),
        "shell" => Arc::new(Shell::new(
            permissions.allow_commands.clone(),
            permissions.shell_timeout.unwrap_or(default_timeout),
        )),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_and_categories() {
        assert_eq!(lookup("calculator"), Lookup::Builtin("calculator"));
        assert_eq!(lookup("DateTime"), Lookup::Builtin("date_time"));
        assert_eq!(lookup("read-file"), Lookup::Builtin("file_reader"));
        assert_eq!(lookup("web_search"), Lookup::External);
        assert_eq!(lookup("teleporter"), Lookup::Unknown);
        assert_eq!(category("core").map(|c| c.len()), Some(5));
        assert_eq!(category("finance"), None);
        for name in BUILTIN {
            let permissions = Permissions {
                allow_hosts: vec!["example.com".into()],
                allow_commands: vec!["ls".into()],
                ..Permissions::default()
            };
            let tool = build(name, &permissions);
            assert_eq!(
                tool.map(|t| t.definition().name.clone()).as_deref(),
                Some(*name)
            );
        }
        assert!(build("http_get", &Permissions::default()).is_none());
        assert!(build("shell", &Permissions::default()).is_none());
    }
}
