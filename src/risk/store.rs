//! Where the kill switch keeps its state: the one piece of I/O of the risk layer, behind
//! [`KillSwitchStore`] so that the switch itself is tested without files.
//!
//! [`FileStore`] uses three files in the state folder:
//!
//! - `kill_switch.json`: the current [`Status`], replaced atomically (written to
//!   `kill_switch.json.tmp`, flushed, then renamed over the old one), so a crash leaves either the
//!   old state or the new one, never half a file;
//! - `kill_switch.jsonl`: the journal, one [`Change`] per line, appended and flushed before the
//!   state is replaced;
//! - `KILL`: created by a person (any content); while it exists the switch is in `EMERGENCY`
//!   and cannot be reset.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::kill_switch::{Change, Status};

/// File name of the stored state.
pub const STATE_FILE: &str = "kill_switch.json";
/// File name of the journal of changes.
pub const JOURNAL_FILE: &str = "kill_switch.jsonl";
/// File name whose presence engages the switch.
pub const KILL_FILE: &str = "KILL";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("kill switch: {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The stored state is not a valid state.
    #[error("kill switch: {} is not a valid state: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Storage of the kill switch.
pub trait KillSwitchStore {
    /// Returns the stored state, `None` when nothing was ever stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when it cannot be parsed, [`StoreError::Io`] when unreadable.
    fn load(&self) -> Result<Option<Status>, StoreError>;

    /// Replaces the stored state.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when it cannot be written.
    fn save(&mut self, status: &Status) -> Result<(), StoreError>;

    /// Appends a change to the journal.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when it cannot be written.
    fn append_change(&mut self, change: &Change) -> Result<(), StoreError>;

    /// Returns the `KILL` file when it is present.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when its presence cannot be checked.
    fn kill_file(&self) -> Result<Option<PathBuf>, StoreError>;
}

/// The kill switch's files in a state folder.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Uses `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Returns the state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the path of the stored state.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Returns the path of the journal.
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// Returns the path of the `KILL` file.
    pub fn kill_path(&self) -> PathBuf {
        self.dir.join(KILL_FILE)
    }

    fn create_dir(&self) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| StoreError::Io {
            op: "creating",
            path: self.dir.clone(),
            source,
        })
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

impl KillSwitchStore for FileStore {
    fn load(&self) -> Result<Option<Status>, StoreError> {
        let path = self.state_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("reading", &path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path,
                message: e.to_string(),
            })
    }

    fn save(&mut self, status: &Status) -> Result<(), StoreError> {
        self.create_dir()?;
        let path = self.state_path();
        let mut text = serde_json::to_string_pretty(status).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        text.push('\n');
        crate::journal::write_file_atomic(&path, text.as_bytes(), true)
            .map_err(io("writing", &path))
    }

    fn append_change(&mut self, change: &Change) -> Result<(), StoreError> {
        self.create_dir()?;
        let path = self.journal_path();
        let mut line = serde_json::to_string(change).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("opening", &path))?;
        file.write_all(line.as_bytes())
            .map_err(io("appending to", &path))?;
        file.sync_data().map_err(io("flushing", &path))
    }

    fn kill_file(&self) -> Result<Option<PathBuf>, StoreError> {
        let path = self.kill_path();
        match path.try_exists() {
            Ok(true) => Ok(Some(path)),
            Ok(false) => Ok(None),
            Err(e) => Err(io("checking", &path)(e)),
        }
    }
}

/// A store in memory, for tests and for replay (where no state must outlive the run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStore {
    /// The stored state.
    pub status: Option<Status>,
    /// The journal.
    pub changes: Vec<Change>,
    /// Whether a `KILL` file is "present".
    pub kill_file: bool,
}

impl KillSwitchStore for MemoryStore {
    fn load(&self) -> Result<Option<Status>, StoreError> {
        Ok(self.status.clone())
    }

    fn save(&mut self, status: &Status) -> Result<(), StoreError> {
        self.status = Some(status.clone());
        Ok(())
    }

    fn append_change(&mut self, change: &Change) -> Result<(), StoreError> {
        self.changes.push(change.clone());
        Ok(())
    }

    fn kill_file(&self) -> Result<Option<PathBuf>, StoreError> {
        Ok(self.kill_file.then(|| PathBuf::from(KILL_FILE)))
    }
}
