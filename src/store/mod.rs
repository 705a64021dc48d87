//! The bottom layer of state (layer 1 in README, "The module map"). Here:
//! files in the data directory (the lock that keeps a second server out,
//! and atomic writes — temporary file in the same directory, fsync, rename,
//! fsync of the directory — so a crash leaves the old file or the new one);
//! `Document<T>`, the one JSON-file back end every area's store trait is
//! implemented on; `StoreError`, what any back end reports; `Versioned<T>`
//! for compare-and-swap; and, in tests, the conformance suite of each trait.
//!
//! The traits themselves live beside their records, in the areas:
//! `auth::user_store::UserStore`, `auth::dashboard_keys::KeyStore`,
//! `auth::activity_store::ActivityStore`, `auth::session_store::SessionPurge`
//! (with actix-session's `SessionStore`) and `workspaces::WorkspaceStore`.
//! Nothing here imports an area, except the test-only conformance suites.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

mod document;
mod error;
mod json;
mod probe;
pub mod redis;
pub use document::Document;
pub use error::{from_redis, is_unavailable, StoreError};
pub use json::{read_json, write_json};
pub use probe::{StoreProbe, StoreState};

#[cfg(test)]
pub mod conformance;

/// A collection as a back end held it, with its version: every successful
/// write changes the version, so a write made on the strength of a read
/// can ask for "still this version" (compare-and-swap) and get
/// `StoreError::Conflict` otherwise. A file back end keeps the version in
/// memory (one process owns the data directory); a shared back end keeps
/// it beside the data.
///
/// As a `Document` value it is stored as the bare value (the file format
/// does not change) and loads at version 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

impl<T: serde::Serialize> serde::Serialize for Versioned<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Versioned<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self {
            version: 0,
            value: T::deserialize(deserializer)?,
        })
    }
}

impl<T> Versioned<T> {
    /// Applies `change` when the version is still `expected`, and moves the
    /// version on; `Conflict` otherwise.
    pub fn change_at<R>(
        &mut self,
        expected: u64,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R, StoreError> {
        if self.version != expected {
            return Err(StoreError::Conflict);
        }
        Ok(self.change(change))
    }

    /// Applies `change` and moves the version on.
    pub fn change<R>(&mut self, change: impl FnOnce(&mut T) -> R) -> R {
        self.version += 1;
        change(&mut self.value)
    }
}

const LOCK_FILE: &str = ".portico.lock";

/// Mode of every file Portico writes: they may hold hashes and secrets.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the data directory: nothing below it is reachable by another
/// user, whatever mode a file or clone inside was given.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create or open the data directory {path}: {source}; check DATA_DIR and its permissions")]
    Create { path: PathBuf, source: io::Error },
    #[error(
        "another Portico server is already using the data directory {path}; \
         stop it first, or give this one its own DATA_DIR"
    )]
    InUse { path: PathBuf },
}

/// The data directory, held exclusively while this value lives (file
/// store), or only created (Redis: the shared state is elsewhere, and the
/// directory holds this instance's clones and caches).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: Option<File>,
}

impl DataDir {
    pub fn open(path: &Path) -> Result<Self, DataDirError> {
        Self::create(path)?;
        let create_error = |source| DataDirError::Create {
            path: path.to_owned(),
            source,
        };
        let lock_path = path.join(LOCK_FILE);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&lock_path)
            .map_err(create_error)?;
        // Held open read-only: a lock needs no write access, and an open
        // writer would keep the file system from being remounted read-only.
        let lock = File::open(&lock_path).map_err(create_error)?;
        match lock.try_lock_exclusive() {
            Ok(true) => {}
            Ok(false) => {
                return Err(DataDirError::InUse {
                    path: path.to_owned(),
                })
            }
            Err(err) => return Err(create_error(err)),
        }
        remove_stale_temporaries(path);
        Ok(Self {
            path: path.to_owned(),
            _lock: Some(lock),
        })
    }

    /// The directory without the lock: with Redis several instances and
    /// the command line work at once, each on its own copy of the clones.
    pub fn open_unlocked(path: &Path) -> Result<Self, DataDirError> {
        Self::create(path)?;
        Ok(Self {
            path: path.to_owned(),
            _lock: None,
        })
    }

    fn create(path: &Path) -> Result<(), DataDirError> {
        let create_error = |source| DataDirError::Create {
            path: path.to_owned(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(path)
            .map_err(create_error)?;
        // An existing directory is tightened too: it may come from an older
        // version, or from a `mkdir` under a permissive umask.
        fs::set_permissions(path, Permissions::from_mode(PRIVATE_DIR_MODE)).map_err(create_error)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Temporary files of writes cut short by a crash; only the holder of the
/// lock writes here, so none of them is in use.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

const TEMP_SUFFIX: &str = ".tmp";

/// Directories whose writes fail on purpose: how the storage-fault tests
/// simulate a full or read-only disk where they cannot mount a small one.
/// Only in builds with the `fault-injection` feature (the test builds): a
/// release build has no such hook and checks nothing on a write.
#[cfg(feature = "fault-injection")]
static INJECTED_FAULTS: parking_lot::Mutex<Vec<PathBuf>> = parking_lot::Mutex::new(Vec::new());

/// Makes every write below `dir` fail (`true`) or work again (`false`).
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub fn inject_write_fault(dir: &Path, failing: bool) {
    let mut faults = INJECTED_FAULTS.lock();
    faults.retain(|d| d != dir);
    if failing {
        faults.push(dir.to_owned());
    }
}

#[cfg(feature = "fault-injection")]
fn injected_fault(path: &Path) -> bool {
    INJECTED_FAULTS
        .lock()
        .iter()
        .any(|dir| path.starts_with(dir))
}

#[cfg(not(feature = "fault-injection"))]
fn injected_fault(_path: &Path) -> bool {
    false
}

/// Replaces `path` with `contents` atomically, mode 0600.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let result = replace_file(path, contents);
    if result.is_err() {
        crate::metrics::store_error();
    }
    result
}

fn replace_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    if injected_fault(path) {
        return Err(io::Error::other("injected write fault"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let suffix: u64 = rand::random();
    let temp = dir.join(format!(
        ".{}.{suffix:016x}{TEMP_SUFFIX}",
        name.to_string_lossy()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_with_mode_0600_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        write_atomic(&path, b"[1]").unwrap();
        write_atomic(&path, b"[2]").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"[2]");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_data_dir_is_created_0700_and_an_existing_one_is_tightened() {
        let parent = tempfile::tempdir().unwrap();
        let fresh = parent.path().join("fresh");
        drop(DataDir::open(&fresh).unwrap());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), 0o700);
        let existing = parent.path().join("existing");
        fs::create_dir(&existing).unwrap();
        fs::set_permissions(&existing, Permissions::from_mode(0o755)).unwrap();
        drop(DataDir::open(&existing).unwrap());
        assert_eq!(mode(&existing), 0o700);
    }

    #[test]
    fn a_second_holder_of_the_data_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        assert!(matches!(
            DataDir::open(dir.path()),
            Err(DataDirError::InUse { .. })
        ));
        drop(first);
        assert!(DataDir::open(dir.path()).is_ok());
    }
}
