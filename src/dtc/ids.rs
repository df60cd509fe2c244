//! ClientOrderIDs that are never reused within Sierra's trading day, also across restarts.
//!
//! An id is `YYYYMMDD-<prefix>-<n>` (31 characters at most, the binary field's limit). The next
//! `n` is written to `dtc_ids_<prefix>.json` in the state folder, atomically (temporary file,
//! fsync, rename), *before* the id is handed out: a crash can skip numbers but never repeat one.
//! The date is part of the id, so ids of different days never collide even though `n` restarts
//! at 1 each day.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DtcError;

/// Hands out ClientOrderIDs.
#[derive(Debug)]
pub struct IdAllocator {
    path: PathBuf,
    prefix: String,
    date: String,
    next: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    date: String,
    next: u64,
}

impl IdAllocator {
    /// Opens the counter of `prefix` in `state_dir` (created if needed).
    ///
    /// # Errors
    ///
    /// [`DtcError::Io`] when the folder or the file cannot be read; a corrupt file is an error
    /// too, because guessing could reuse an id.
    pub fn open(state_dir: &Path, prefix: &str) -> Result<IdAllocator, DtcError> {
        let io = |e: std::io::Error| DtcError::Io(format!("{}: {e}", state_dir.display()));
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let path = state_dir.join(format!("dtc_ids_{prefix}.json"));
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<Stored>(&text).map_err(|e| {
                DtcError::Io(format!(
                    "{}: {e}; fix or delete it only if no order was sent today",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored {
                date: String::new(),
                next: 1,
            },
            Err(e) => return Err(io(e)),
        };
        Ok(IdAllocator {
            path,
            prefix: prefix.to_owned(),
            date: stored.date,
            next: stored.next,
        })
    }

    /// The next id for trading day `date` (`YYYYMMDD`).
    ///
    /// # Errors
    ///
    /// [`DtcError::Io`] when the counter cannot be stored; no id is handed out then.
    pub fn next(&mut self, date: &str) -> Result<String, DtcError> {
        if date != self.date {
            self.date = date.to_owned();
            self.next = 1;
        }
        let n = self.next;
        let stored = Stored {
            date: self.date.clone(),
            next: n + 1,
        };
        let bytes = serde_json::to_vec(&stored).unwrap_or_default();
        crate::journal::write_file_atomic(&self.path, &bytes, true)
            .map_err(|e| DtcError::Io(format!("{}: {e}", self.path.display())))?;
        self.next = n + 1;
        Ok(format!("{}-{}-{n}", self.date, self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_restart_and_restart_each_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = IdAllocator::open(dir.path(), "ES").unwrap();
        assert_eq!(a.next("20251124").unwrap(), "20251124-ES-1");
        assert_eq!(a.next("20251124").unwrap(), "20251124-ES-2");
        drop(a);
        let mut b = IdAllocator::open(dir.path(), "ES").unwrap();
        assert_eq!(b.next("20251124").unwrap(), "20251124-ES-3");
        assert_eq!(b.next("20251125").unwrap(), "20251125-ES-1");
        let mut nq = IdAllocator::open(dir.path(), "NQ").unwrap();
        assert_eq!(nq.next("20251125").unwrap(), "20251125-NQ-1");
    }

    #[test]
    fn a_corrupt_counter_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dtc_ids_ES.json"), "{").unwrap();
        assert!(IdAllocator::open(dir.path(), "ES").is_err());
    }
}
