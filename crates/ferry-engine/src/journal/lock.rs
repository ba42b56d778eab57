//! One engine per data dir: an OS file lock (`flock` on Unix, `LockFileEx` on Windows) on
//! `<data dir>/journal.lock`, held as long as the journal is open for writing. The holder's pid
//! is written into the file so that a refused second engine can say who has it. The OS drops
//! the lock when the process dies, `kill -9` included.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
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
        let mut file = File::options()
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
                    let holder = holder(&mut file);
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
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(Error::io(format!("writing {}", path.display())))?;
        Ok(Self { _file: file })
    }
}

fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
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
