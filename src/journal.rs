//! Append-only JSONL journals written in batches, and the checkpoint that makes them crash-safe
//! (product.md §4).
//!
//! The protocol: lines are buffered per file; [`Journal::commit`] appends each buffer with one
//! write, flushes (and fsyncs when configured), and only then does the caller store a
//! [`Checkpoint`] of the new journal lengths and source offsets (written to a temporary file and
//! renamed, which is atomic). On start, every journal is cut back to the length the checkpoint
//! recorded: whatever lies beyond was written after the last checkpoint, and ingest reads those
//! source lines again from the checkpointed offsets. So a crash at any moment neither loses nor
//! duplicates an accepted line, and a torn last line disappears with the rest of the tail.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ingest::FileOffset;

/// Errors of journals and checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A journal or checkpoint could not be read or written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The checkpoint exists but is not readable JSON.
    #[error("checkpoint {path} is corrupt ({message}); restore it or move the journal folder away")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// Journals exist but no checkpoint says how far they are committed: starting would journal
    /// lines twice.
    #[error(
        "{journal} exists but there is no checkpoint {checkpoint}: move the journal away (or restore the state folder) so that no line is journaled twice"
    )]
    Orphan {
        /// A journal found.
        journal: PathBuf,
        /// The checkpoint expected.
        checkpoint: PathBuf,
    },
    /// The checkpoint belongs to another data or journal folder.
    #[error(
        "state folder {state} was used with data folder {was_data} and journal folder {was_journal}; use another --state (and --journal) for {now_data}"
    )]
    Mismatch {
        /// State folder.
        state: PathBuf,
        /// Data folder recorded.
        was_data: String,
        /// Journal folder recorded.
        was_journal: String,
        /// Data folder now.
        now_data: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What has been committed: journal lengths and source offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// Data folder the offsets refer to.
    pub data_dir: String,
    /// Journal folder the lengths refer to.
    pub journal_dir: String,
    /// Committed length of each journal file, by file name.
    pub journals: BTreeMap<String, u64>,
    /// Resume point of each source file, by path relative to the data folder.
    pub files: BTreeMap<String, FileOffset>,
}

impl Checkpoint {
    /// Name of the ingest checkpoint in the state folder.
    pub const FILE: &'static str = "ingest_checkpoint.json";

    /// Loads the checkpoint of `state_dir`, or `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`JournalError`] when it exists but cannot be read or parsed.
    pub fn load(state_dir: &Path) -> Result<Option<Checkpoint>, JournalError> {
        let path = state_dir.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                JournalError::CorruptCheckpoint {
                    path,
                    message: e.to_string(),
                }
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Stores the checkpoint atomically (temporary file, then rename).
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] when the state folder cannot be written.
    pub fn store(&self, state_dir: &Path, fsync: bool) -> Result<(), JournalError> {
        std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
        let path = state_dir.join(Self::FILE);
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        write_file_atomic(&path, &bytes, fsync).map_err(io(&path))
    }
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it, optionally fsynced,
/// then a rename, so a crash leaves either the old content or the new, never a torn file.
///
/// # Errors
///
/// The I/O error of the write or the rename.
pub fn write_file_atomic(path: &Path, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    if fsync {
        file.sync_data()?;
    }
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Bytes of buffer a journal file keeps between commits.
const KEEP_BUFFER: usize = 1 << 16;

struct Open {
    file: File,
    len: u64,
    pending: Vec<u8>,
    /// Written since the last fsync.
    unsynced: bool,
}

/// A set of append-only JSONL files in one folder, written in batches.
pub struct Journal {
    dir: PathBuf,
    fsync: bool,
    files: BTreeMap<String, Open>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("files", &self.lengths())
            .finish()
    }
}

impl Journal {
    /// Opens the journal folder and cuts every journal back to its committed length.
    ///
    /// With a checkpoint, a journal longer than recorded is cut to the recorded length and a
    /// journal it does not list is emptied (both hold only uncommitted lines). Without one, any
    /// existing journal is an error: its offsets are unknown.
    ///
    /// # Errors
    ///
    /// [`JournalError`] on I/O failure or an orphan journal.
    pub fn open(
        dir: &Path,
        checkpoint: Option<&Checkpoint>,
        state_dir: &Path,
        fsync: bool,
    ) -> Result<Journal, JournalError> {
        let mut journal = Journal::create(dir, fsync)?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.starts_with("mia_") && n.ends_with(".jsonl"))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let len = std::fs::metadata(&path).map_err(io(&path))?.len();
            let Some(checkpoint) = checkpoint else {
                if len == 0 {
                    continue;
                }
                return Err(JournalError::Orphan {
                    journal: path,
                    checkpoint: state_dir.join(Checkpoint::FILE),
                });
            };
            let committed = checkpoint.journals.get(&name).copied().unwrap_or(0);
            let keep = if len >= committed {
                committed
            } else {
                // Shorter than committed: only possible with fsync off and a power cut. Keep what
                // is there, minus a torn last line.
                tracing::error!(journal = %path.display(), len, committed, "journal is shorter than its checkpoint: lines were lost in a power cut");
                last_newline_end(&path, len)?
            };
            if keep != len {
                tracing::info!(journal = %path.display(), from = len, to = keep, "cutting uncommitted tail");
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io(&path))?;
                file.set_len(keep).map_err(io(&path))?;
            }
            journal.open_file(&name)?;
        }
        Ok(journal)
    }

    /// Opens a folder for journals that need no cut-back (replay outputs, which are rewritten
    /// whole): files are created or appended to as they are first buffered.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] when the folder cannot be created.
    pub fn create(dir: &Path, fsync: bool) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(Journal {
            dir: dir.to_owned(),
            fsync,
            files: BTreeMap::new(),
        })
    }

    fn open_file(&mut self, name: &str) -> Result<&mut Open, JournalError> {
        if !self.files.contains_key(name) {
            let path = self.dir.join(name);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io(&path))?;
            let len = file.metadata().map_err(io(&path))?.len();
            self.files.insert(
                name.to_owned(),
                Open {
                    file,
                    len,
                    pending: Vec::new(),
                    unsynced: false,
                },
            );
        }
        Ok(self.files.get_mut(name).expect("inserted above"))
    }

    /// Returns the buffer of the journal `name`, to append complete lines to (each ending in
    /// `\n`). Nothing reaches the file before [`Journal::commit`].
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] when the file cannot be created.
    pub fn buffer(&mut self, name: &str) -> Result<&mut Vec<u8>, JournalError> {
        Ok(&mut self.open_file(name)?.pending)
    }

    /// Buffers `value` as one JSON line of the file `name` (written at the next commit).
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] when the file cannot be created or the value cannot be serialized.
    pub fn append_json(
        &mut self,
        name: &str,
        value: &impl serde::Serialize,
    ) -> Result<(), JournalError> {
        let buf = self.buffer(name)?;
        serde_json::to_writer(&mut *buf, value).map_err(|e| JournalError::Io {
            path: name.into(),
            source: e.into(),
        })?;
        buf.push(b'\n');
        Ok(())
    }

    /// Writes every buffer with one write per file, flushes and, when configured, fsyncs.
    /// Returns the number of bytes written.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`]; the buffers are kept so that a later commit can retry.
    pub fn commit(&mut self) -> Result<u64, JournalError> {
        let written = self.write()?;
        self.sync()?;
        Ok(written)
    }

    /// Writes every buffer with one write per file: the lines are in the files, for readers and
    /// across a crash of this process, but not yet on the disk. [`Journal::sync`] puts them
    /// there; [`Journal::commit`] does both.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`]; the buffers are kept so that a later commit can retry.
    pub fn write(&mut self) -> Result<u64, JournalError> {
        let mut written = 0;
        for (name, open) in &mut self.files {
            if open.pending.is_empty() {
                // A file not written to (yesterday's, say) gives back the buffer of its last
                // batch, however large that was.
                open.pending.shrink_to(KEEP_BUFFER);
                continue;
            }
            let path = self.dir.join(name);
            open.file.write_all(&open.pending).map_err(io(&path))?;
            open.file.flush().map_err(io(&path))?;
            open.unsynced = true;
            open.len += open.pending.len() as u64;
            written += open.pending.len() as u64;
            let used = open.pending.len();
            open.pending.clear();
            // A burst (a restart catching up, a slow disk) can grow a buffer to many MB: keep
            // about what the batches need now, not the largest batch ever, for each file of
            // each day. Steady large batches keep their buffer (no reallocation per commit).
            let keep = used.max(KEEP_BUFFER);
            if open.pending.capacity() > 4 * keep {
                open.pending.shrink_to(keep);
            }
        }
        Ok(written)
    }

    /// When configured, fsyncs every file written since its last sync.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`]; the files stay marked, so that a later sync retries.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        for (name, open) in &mut self.files {
            if open.unsynced && self.fsync {
                open.file.sync_data().map_err(io(&self.dir.join(name)))?;
            }
            open.unsynced = false;
        }
        Ok(())
    }

    /// Returns the committed length of every journal file.
    pub fn lengths(&self) -> BTreeMap<String, u64> {
        self.files.iter().map(|(n, o)| (n.clone(), o.len)).collect()
    }

    /// Returns the folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Cuts a torn last line (bytes after the last `\n`, left by a crash in the middle of a
/// write) off the journal at `path`. Returns the number of bytes cut. Journals that are not
/// cut back to a checkpoint (the engine's decisions, orders and trades) call this on start, so
/// that every line in them is whole.
///
/// # Errors
///
/// [`JournalError::Io`] when the file cannot be read or cut.
pub fn cut_torn_tail(path: &Path) -> Result<u64, JournalError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    if len == 0 {
        return Ok(0);
    }
    // The common case, a whole last line, costs one byte of reading.
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1)).map_err(io(path))?;
    file.read_exact(&mut last).map_err(io(path))?;
    if last[0] == b'\n' {
        return Ok(0);
    }
    let keep = last_newline_end(path, len)?;
    tracing::warn!(journal = %path.display(), cut = len - keep, "cutting a torn last line");
    file.set_len(keep).map_err(io(path))?;
    Ok(len - keep)
}

fn last_newline_end(path: &Path, len: u64) -> Result<u64, JournalError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let len = (len as usize).min(bytes.len());
    Ok(memchr::memrchr(b'\n', &bytes[..len]).map_or(0, |i| i as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst must not stay allocated for the rest of the run: the file's next commit (or
    /// the next commit of others, while it is idle) gives the buffer back.
    #[test]
    fn a_burst_buffer_is_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), false).unwrap();
        let capacity = |j: &Journal, name: &str| j.files[name].pending.capacity();
        let burst = vec![b'x'; 4 << 20];
        for name in ["a.jsonl", "b.jsonl"] {
            j.buffer(name).unwrap().extend_from_slice(&burst);
        }
        j.commit().unwrap();
        assert!(
            capacity(&j, "a.jsonl") >= 4 << 20,
            "the burst's own commit keeps it"
        );
        j.buffer("a.jsonl").unwrap().extend_from_slice(b"{}\n");
        j.commit().unwrap();
        assert!(
            capacity(&j, "a.jsonl") <= KEEP_BUFFER,
            "a small batch after it"
        );
        assert!(capacity(&j, "b.jsonl") <= KEEP_BUFFER, "an idle file");
        assert_eq!(
            std::fs::metadata(dir.path().join("a.jsonl")).unwrap().len(),
            (4 << 20) + 3
        );
    }

    #[test]
    fn written_lines_are_in_the_file_before_the_sync() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), true).unwrap();
        j.buffer("a.jsonl").unwrap().extend_from_slice(b"{}\n");
        assert_eq!(j.write().unwrap(), 3);
        assert_eq!(std::fs::read(dir.path().join("a.jsonl")).unwrap(), b"{}\n");
        assert_eq!(j.lengths()["a.jsonl"], 3);
        assert!(j.files["a.jsonl"].unsynced);
        j.sync().unwrap();
        assert!(!j.files["a.jsonl"].unsynced);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_whole_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions_20250919.jsonl");
        for (content, want) in [
            ("", ""),
            ("{\"a\":1}\n", "{\"a\":1}\n"),
            ("{\"a\":1}\n{\"b\":", "{\"a\":1}\n"),
            ("{\"b\":", ""),
        ] {
            std::fs::write(&path, content).unwrap();
            let cut = cut_torn_tail(&path).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want, "{content:?}");
            assert_eq!(cut as usize, content.len() - want.len());
        }
    }

    #[test]
    fn cuts_back_to_the_checkpoint_and_empties_unlisted_journals() {
        let dir = tempfile::tempdir().unwrap();
        let (jdir, sdir) = (dir.path().join("j"), dir.path().join("s"));
        let mut j = Journal::open(&jdir, None, &sdir, false).unwrap();
        j.buffer("mia_unified_20250919.jsonl")
            .unwrap()
            .extend_from_slice(b"{\"a\":1}\n");
        j.commit().unwrap();
        let cp = Checkpoint {
            journals: j.lengths(),
            ..Checkpoint::default()
        };
        cp.store(&sdir, false).unwrap();
        // Uncommitted tail plus a torn line, and a journal the checkpoint never saw.
        j.buffer("mia_unified_20250919.jsonl")
            .unwrap()
            .extend_from_slice(b"{\"a\":2}\n{\"a\"");
        j.buffer("mia_unified_20250920.jsonl")
            .unwrap()
            .extend_from_slice(b"{\"b\":1}\n");
        j.commit().unwrap();
        drop(j);

        let cp = Checkpoint::load(&sdir).unwrap().unwrap();
        let j = Journal::open(&jdir, Some(&cp), &sdir, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(jdir.join("mia_unified_20250919.jsonl")).unwrap(),
            "{\"a\":1}\n"
        );
        assert_eq!(
            std::fs::read_to_string(jdir.join("mia_unified_20250920.jsonl")).unwrap(),
            ""
        );
        assert_eq!(j.lengths()["mia_unified_20250919.jsonl"], 8);
    }

    #[test]
    fn a_journal_without_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mia_unified_20250919.jsonl"), "{}\n").unwrap();
        let err = Journal::open(dir.path(), None, &dir.path().join("state"), false).unwrap_err();
        assert!(matches!(err, JournalError::Orphan { .. }), "{err}");
    }
}
