//! Why a journal could not be written or read.

use std::path::{Path, PathBuf};

/// Why a journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file or the folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A segment whose header this build does not read.
    #[error("{}: {source}", path.display())]
    Header {
        /// The segment.
        path: PathBuf,
        /// What was wrong.
        source: super::format::HeaderError,
    },
    /// A segment damaged before its end.
    #[error("{}: damaged at byte {offset}: {why}", path.display())]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What was found.
        why: &'static str,
    },
    /// A folder with no segment in it.
    #[error("{}: no journal segment (NNNNNNNN.fcj or .fcj.zst) in it", .0.display())]
    Empty(PathBuf),
    /// A segment size outside what the format holds.
    #[error("segment size {0} bytes: expected 64 KiB up to 4 GiB")]
    SegmentSize(usize),
}

impl JournalError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(super) fn header(path: &Path, source: super::format::HeaderError) -> Self {
        Self::Header {
            path: path.to_path_buf(),
            source,
        }
    }
}
