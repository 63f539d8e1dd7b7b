//! A loaded text file and positions inside it. Owns line lookup for diagnostics; knows nothing
//! about YAML or orchestras.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file's text, kept so diagnostics can show the offending line.
#[derive(Debug)]
pub struct SourceFile {
    /// The absolute path, used for reading and hashing.
    pub path: PathBuf,
    /// The path as shown to the user (relative to the current folder when possible).
    pub display: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: path.to_path_buf(),
            display: display_path(path),
            text,
        })
    }

    /// Reads a file; the error names the path.
    pub fn read(path: &Path) -> Result<Arc<SourceFile>, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        Ok(SourceFile::new(path, text))
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.text
            .split('\n')
            .nth(line.checked_sub(1)?)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// A place in a file: 1-based line, 0-based column and length, both in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

/// A path relative to the current folder when it lies inside it, else as given.
pub fn display_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(relative) = path.strip_prefix(&cwd) {
            return relative.display().to_string();
        }
    }
    path.display().to_string()
}
