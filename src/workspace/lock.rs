//! One run per workspace at a time: `.lock` holds the running process's pid. A lock whose
//! process is gone (a crash, kill -9) is taken over with a warning.

use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the workspace `{path}` is in use by another run (pid {pid}); wait for it to end or stop it")]
    Busy { path: String, pid: u32 },
    #[error("failed to lock the workspace `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug)]
pub struct WorkspaceLock {
    path: PathBuf,
    /// The pid of a dead run whose lock was taken over.
    pub taken_over_from: Option<u32>,
}

fn alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    let result = unsafe { libc::kill(pid as i32, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl WorkspaceLock {
    pub fn acquire(workspace: &Path) -> Result<WorkspaceLock, LockError> {
        let path = workspace.join(".lock");
        let io = |source| LockError::Io {
            path: crate::source::display_path(workspace),
            source,
        };
        std::fs::create_dir_all(workspace).map_err(io)?;
        let mut taken_over_from = None;
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(std::process::id().to_string().as_bytes())
                        .map_err(io)?;
                    return Ok(WorkspaceLock {
                        path,
                        taken_over_from,
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if alive(pid) && pid != std::process::id() => {
                            return Err(LockError::Busy {
                                path: crate::source::display_path(workspace),
                                pid,
                            })
                        }
                        other => {
                            taken_over_from = other;
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(error) => return Err(io(error)),
            }
        }
        Err(io(std::io::Error::other("the lock file keeps reappearing")))
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
