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
    pub fn read(path: &Path) -> Result<Arc<SourceFile>, ReadError> {
        let bytes = std::fs::read(path).map_err(ReadError::Io)?;
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(path, text)),
            Err(error) => {
                let bytes = error.as_bytes();
                let offset = error.utf8_error().valid_up_to();
                let before = &bytes[..offset];
                let line_start = before
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1);
                let col = String::from_utf8_lossy(&before[line_start..])
                    .chars()
                    .count();
                Err(ReadError::NotUtf8 {
                    byte: bytes.get(offset).copied().unwrap_or(0),
                    offset,
                    loc: Loc {
                        line: before.iter().filter(|b| **b == b'\n').count() + 1,
                        col,
                        len: 1,
                    },
                    // The text with the bad bytes replaced, so the line can be shown.
                    file: SourceFile::new(path, String::from_utf8_lossy(bytes).into_owned()),
                })
            }
        }
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.text
            .split('\n')
            .nth(line.checked_sub(1)?)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }

    /// The first place `needle` (on one line) is written at or after `from`, within the next
    /// `lines` lines: how a diagnostic points at a word inside a longer value.
    pub fn find_from(&self, from: Loc, needle: &str, lines: usize) -> Option<Loc> {
        for line in from.line..from.line.saturating_add(lines) {
            let text = self.line_text(line)?;
            let skip = if line == from.line { from.col } else { 0 };
            let start = text.char_indices().nth(skip).map_or(text.len(), |(i, _)| i);
            if let Some(at) = text[start..].find(needle) {
                return Some(Loc {
                    line,
                    col: text[..start + at].chars().count(),
                    len: needle.chars().count(),
                });
            }
        }
        None
    }
}

/// Why a file could not be read as text.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// The byte at `offset` (0-based, at `loc`) starts no valid UTF-8 sequence.
    NotUtf8 {
        byte: u8,
        offset: usize,
        loc: Loc,
        file: Arc<SourceFile>,
    },
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
