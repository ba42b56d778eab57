//! One engine per data dir: an OS file lock (`flock` on Unix, `LockFileEx` on Windows) on
//! `<data dir>/journal.lock`, held as long as the journal is open for writing. The holder's pid
//! is written beside it, in `journal.lock.pid` (a locked file cannot be read on Windows), so
//! that a refused second engine can say who has it. The OS drops the lock when the process
//! dies, `kill -9` included.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a lock held by this very process is waited for: an engine being closed here (its
/// tasks ending) hands the data dir over within milliseconds.
const HANDOVER: Duration = Duration::from_secs(3);

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of the data dir holding `journal`.
    pub(crate) fn acquire(journal: &Path) -> Result<Self> {
        let path = journal.with_extension("lock");
        let pid_file = pid_path(&path);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = holder(&pid_file);
                    let ours = holder == Some(std::process::id());
                    if !ours || started.elapsed() > HANDOVER {
                        return Err(Error::DataDirInUse { pid: holder });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(Error::io(format!("locking {}", path.display()))(err));
                }
            }
        }
        std::fs::write(&pid_file, std::process::id().to_string())
            .map_err(Error::io(format!("writing {}", pid_file.display())))?;
        Ok(Self { _file: file })
    }
}

fn pid_path(lock: &Path) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

fn holder(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.db");
        let first = DirLock::acquire(&journal).unwrap();
        // Held by this process: waited for, then refused with our own pid.
        let refused = DirLock::acquire(&journal).unwrap_err();
        assert!(
            matches!(refused, Error::DataDirInUse { pid: Some(pid) } if pid == std::process::id()),
            "{refused:?}"
        );
        drop(first);
        DirLock::acquire(&journal).unwrap();
    }
}
