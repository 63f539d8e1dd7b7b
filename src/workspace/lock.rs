//! One run per workspace at a time: an OS advisory lock (`flock`) on `.lock`, held for the
//! run's lifetime and released by the kernel when the process ends, however it ends. The pid in
//! the file is information only (for the "in use by pid N" message and the take-over warning);
//! it never decides who holds the lock, so a reused pid never blocks a workspace.
//! Must not remove the lock file: a removed file lets a second run lock a fresh one.

use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the workspace `{path}` is in use by another run{}; wait for it to end or stop it", holder_text(*.pid))]
    Busy { path: String, pid: Option<u32> },
    #[error("failed to use the workspace `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

#[derive(Debug)]
pub struct WorkspaceLock {
    /// Holds the `flock`; closing it (on drop or process exit) releases the lock.
    file: std::fs::File,
    /// The pid recorded by an earlier run that ended without releasing its record (a crash,
    /// kill -9): its lock is gone, so the workspace was taken over.
    pub taken_over_from: Option<u32>,
}

/// `flock(LOCK_EX)`, without waiting unless `wait`: `Ok(true)` when this process now holds the
/// lock, `Ok(false)` when another open file description holds it (only without `wait`).
fn try_flock(file: &std::fs::File, wait: bool) -> std::io::Result<bool> {
    let operation = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
        let result = unsafe { libc::flock(file.as_raw_fd(), operation) };
        if result == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) if !wait => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

fn read_pid(file: &mut std::fs::File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse::<u32>().ok()
}

impl WorkspaceLock {
    pub fn acquire(workspace: &Path) -> Result<WorkspaceLock, LockError> {
        std::fs::create_dir_all(workspace).map_err(|source| LockError::Io {
            path: crate::source::display_path(workspace),
            source,
        })?;
        Self::lock(&workspace.join(".lock"), workspace, None)
    }

    /// The lock of `path` (a task's lock file, in a folder that exists), waiting while another
    /// process holds it; `waiting` is told once, with that process's pid, before the wait.
    pub(crate) fn wait_for(
        path: &Path,
        waiting: &mut dyn FnMut(Option<u32>),
    ) -> Result<WorkspaceLock, LockError> {
        Self::lock(path, path, Some(waiting))
    }

    /// Locks `path`; busy without `waiting`, else waits. `shown` names it in errors.
    fn lock(
        path: &Path,
        shown: &Path,
        waiting: Option<&mut dyn FnMut(Option<u32>)>,
    ) -> Result<WorkspaceLock, LockError> {
        let io = |source| LockError::Io {
            path: crate::source::display_path(shown),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if !try_flock(&file, false).map_err(io)? {
            let holder = read_pid(&mut file);
            match waiting {
                None => {
                    return Err(LockError::Busy {
                        path: crate::source::display_path(shown),
                        pid: holder,
                    })
                }
                Some(waiting) => {
                    waiting(holder);
                    try_flock(&file, true).map_err(io)?;
                }
            }
        }
        let taken_over_from = read_pid(&mut file).filter(|pid| *pid != std::process::id());
        let record = (|| {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(std::process::id().to_string().as_bytes())
        })();
        record.map_err(io)?;
        Ok(WorkspaceLock {
            file,
            taken_over_from,
        })
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        // Still holding the lock: clear the pid, so the next run sees a clean end. The kernel
        // releases the lock when the file closes.
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_workspace_is_busy_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = WorkspaceLock::acquire(dir.path()).expect("first");
        match WorkspaceLock::acquire(dir.path()) {
            Err(LockError::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected busy, got {other:?}"),
        }
        drop(first);
        let again = WorkspaceLock::acquire(dir.path()).expect("free again");
        assert_eq!(again.taken_over_from, None);
    }

    #[test]
    fn a_task_lock_waits_for_its_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(".task.lock");
        let first =
            WorkspaceLock::wait_for(&path, &mut |_| panic!("nobody holds it")).expect("first");
        let (sender, receiver) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut told = None;
                let lock =
                    WorkspaceLock::wait_for(&path, &mut |pid| told = Some(pid)).expect("second");
                sender.send(told).expect("send");
                drop(lock);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            receiver.try_recv().is_err(),
            "the second waits while the first holds it"
        );
        drop(first);
        let told = receiver.recv().expect("the second got the lock");
        assert_eq!(told, Some(Some(std::process::id())));
        waiter.join().expect("join");
    }

    #[test]
    fn a_reused_pid_in_the_file_never_blocks() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(".lock"), "1").expect("write");
        let lock = WorkspaceLock::acquire(dir.path()).expect("pid 1 does not hold the lock");
        assert_eq!(lock.taken_over_from, Some(1));
    }
}
