//! Partial files in the model cache: a download or an extraction is written to a hidden
//! `.<name>.partial.<pid>` file beside its destination and renamed into place only once
//! verified, so the cache never holds half a model. Owns creating, removing and committing those
//! files, and sweeping the ones a killed process left behind; must not know what is written.

use super::error::PullError;
use std::path::{Path, PathBuf};

const MARKER: &str = ".partial.";

/// A file being written; removed when dropped unless [`PartialFile::commit`] renamed it.
pub struct PartialFile {
    path: PathBuf,
    committed: bool,
}

impl PartialFile {
    /// Creates `dir/.<stem>.partial.<pid>` (and `dir`) and opens it for writing.
    pub fn create(dir: &Path, stem: &str) -> Result<(PartialFile, std::fs::File), PullError> {
        std::fs::create_dir_all(dir).map_err(|source| write_error(dir, source))?;
        let path = dir.join(format!(".{stem}{MARKER}{}", std::process::id()));
        let file = std::fs::File::create(&path).map_err(|source| write_error(&path, source))?;
        Ok((
            PartialFile {
                path,
                committed: false,
            },
            file,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `target` (same folder, so the rename is atomic).
    pub fn commit(mut self, target: &Path) -> Result<(), PullError> {
        std::fs::rename(&self.path, target).map_err(|source| write_error(target, source))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn write_error(path: &Path, source: std::io::Error) -> PullError {
    PullError::Write {
        path: path.display().to_string(),
        source,
    }
}

/// Removes the partial files in `dir` whose writing process is gone (killed before its guard
/// could clean up). Files of live processes (a concurrent pull) are left alone.
pub fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|rest| rest.rsplit_once(MARKER))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    // Without a cheap liveness check, keep the file: a later pull overwrites nothing of it.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_partial_file_is_removed_and_a_committed_one_is_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (partial, _file) = PartialFile::create(dir.path(), "model.gguf").expect("create");
        let path = partial.path().to_path_buf();
        assert!(path.is_file());
        drop(partial);
        assert!(!path.exists());

        let (partial, _file) = PartialFile::create(dir.path(), "model.gguf").expect("create");
        let target = dir.path().join("model.gguf");
        partial.commit(&target).expect("commit");
        assert!(target.is_file());
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn stale_partial_files_of_dead_processes_are_swept() {
        let dir = tempfile::tempdir().expect("temp dir");
        // No process has pid 4294967 on Linux (pid_max is at most 2^22).
        let stale = dir.path().join(".model.gguf.partial.4294967");
        let mine = dir
            .path()
            .join(format!(".model.gguf.partial.{}", std::process::id()));
        let other = dir.path().join("model.gguf");
        for path in [&stale, &mine, &other] {
            std::fs::write(path, b"x").expect("write");
        }
        sweep_stale(dir.path());
        assert!(!stale.exists());
        assert!(mine.exists());
        assert!(other.exists());
    }
}
