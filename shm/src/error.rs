//! Why a bus file could not be created, opened or read.

use std::path::PathBuf;

/// Errors of the shared-memory bus. Readers get these instead of misreading memory.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A system call on a path failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation (`open`, `map`, `rename`...).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `fallocate` refused: the file system (usually `/dev/shm`) has no room.
    #[error("cannot reserve {bytes} bytes for {path}: {source} (is /dev/shm full or too small?)")]
    NoSpace {
        /// The file that was being created.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another live process holds the directory's writer lock.
    #[error("another writer holds {0} (its writer.lock is locked)")]
    WriterActive(PathBuf),
    /// A capacity that is zero, not a power of two (rings) or too large.
    #[error("{stream}: bad capacity {capacity} (rings need a power of two)")]
    BadCapacity {
        /// File name of the stream.
        stream: &'static str,
        /// The refused capacity.
        capacity: u64,
    },
    /// The file is shorter than its header says.
    #[error("{path} is truncated: {size} bytes")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its size on disk.
        size: u64,
    },
    /// The file was written by another ABI version.
    #[error("{path} has ABI version {found}; this reader supports version {supported} only")]
    AbiVersion {
        /// The file.
        path: PathBuf,
        /// Version in the header.
        found: u32,
        /// Version this code reads.
        supported: u32,
    },
    /// The header is not a valid flowcore header for this stream.
    #[error("{path}: {why}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The bus files belong to different writer starts (a restart is under way).
    #[error("{0}: files of different writer epochs (writer restarting?)")]
    MixedEpochs(PathBuf),
    /// A symbol id or table key outside the table.
    #[error("key {key} is outside the table of {capacity}")]
    KeyOutOfRange {
        /// The key.
        key: u64,
        /// Table capacity.
        capacity: u64,
    },
}
