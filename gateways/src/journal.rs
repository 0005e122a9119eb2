//! The gateway's journal: an append-only file of what it saw, decided and sent, one record
//! per line as `CRC32 JSON` (the CRC-32 of the JSON in 8 hex digits), flushed per
//! [`FsyncPolicy`]. An order's intent is written (and flushed) before its request leaves,
//! so after a crash the gateway knows every request that may have reached the executor.
//!
//! On open the file is read back into a [`JournalState`]: which signals were seen (never
//! acted on twice), which entries are open, and which intents have no result (in doubt:
//! the gateway asks FreqTrade by `entry_tag` and never sends them again). A torn last line
//! (a crash mid-write) is cut off; a bad line anywhere else is corruption and refuses to
//! open, naming the line.

use crate::config::FsyncPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The journal file's name in the journal directory.
pub const JOURNAL_FILE: &str = "gateway.journal";

/// Signal fingerprints kept per bus (see [`JournalState::recent`]).
pub const RECENT: usize = 1024;

/// A signal's identity in the journal: its bus directory, writer epoch and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JournalKey {
    /// The bus directory as configured.
    pub bus: String,
    /// Writer epoch.
    pub epoch: u64,
    /// Signal id.
    pub id: u64,
}

/// One line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum JournalRecord {
    /// A signal read and what the risk engine made of it (`order` or a rejection's name).
    Decision {
        /// The signal.
        key: JournalKey,
        /// `venue:SYMBOL`.
        symbol: String,
        /// Strategy id.
        strategy: u32,
        /// `enter_long`, `enter_short`, `exit`.
        action: String,
        /// `order` or the rejection.
        outcome: String,
        /// The signal's `local_ns`: with the id, its fingerprint across writer epochs.
        #[serde(default)]
        local_ns: i64,
        /// Gateway clock, ns.
        ts_ns: i64,
    },
    /// An order about to be sent (flushed before the request).
    Intent {
        /// The signal that asked for it.
        key: JournalKey,
        /// `enter` or `exit`.
        kind: String,
        /// For an exit: the entry signal of the position it closes.
        entry: Option<JournalKey>,
        /// `venue:SYMBOL`.
        symbol: String,
        /// The executor's pair.
        pair: String,
        /// `long` or `short`.
        side: String,
        /// Strategy id of the signal.
        strategy: u32,
        /// Stake, quote currency (decimal text).
        stake: String,
        /// Base quantity (decimal text).
        qty: String,
        /// Price it was sized at.
        price: String,
        /// FreqTrade's `entry_tag` (the signal id in decimal).
        tag: String,
        /// Gateway clock, ns.
        ts_ns: i64,
    },
    /// What the executor answered to an intent.
    Result {
        /// The intent's signal.
        key: JournalKey,
        /// Whether the order happened.
        ok: bool,
        /// FreqTrade's trade id, when known.
        trade_id: Option<u64>,
        /// Filled quantity.
        qty: Option<String>,
        /// Fill price.
        price: Option<String>,
        /// Realised profit (exits).
        pnl: Option<String>,
        /// Why not.
        error: Option<String>,
        /// Gateway clock, ns.
        ts_ns: i64,
    },
    /// A position found closed (or never opened) when reconciling with the executor.
    Settled {
        /// The entry signal of the position.
        entry: JournalKey,
        /// Whether the position had opened at all.
        opened: bool,
        /// Why (`not in /status`, ...).
        why: String,
        /// Gateway clock, ns.
        ts_ns: i64,
    },
}

/// A journaled entry and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryState {
    /// Its intent.
    pub intent: JournalRecord,
    /// `None` while in doubt (no result), `Some(true)` open, `Some(false)` never happened.
    pub opened: Option<bool>,
    /// Trade id, when known.
    pub trade_id: Option<u64>,
    /// Filled quantity and price.
    pub fill: Option<(String, String)>,
    /// Closed by an exit result.
    pub closed: bool,
    /// An exit was sent for it and not answered (in doubt).
    pub exit_in_doubt: Option<JournalKey>,
}

/// What the journal says, read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalState {
    /// Per (bus, epoch): the highest signal id seen.
    pub seen: BTreeMap<(String, u64), u64>,
    /// Per bus: the (id, local_ns) of the last [`RECENT`] signals seen, whatever their
    /// epoch. A bus whose writer carries signals into a new epoch (`flowcore signal` does)
    /// shows them again under the new epoch; these fingerprints say they were seen.
    pub recent: BTreeMap<String, Vec<(u64, i64)>>,
    /// Every entry intent, by its signal.
    pub entries: BTreeMap<JournalKey, EntryState>,
    /// Records read.
    pub records: u64,
    /// Bytes of a torn last line cut off at open.
    pub truncated_bytes: u64,
}

impl JournalState {
    /// Whether a signal was seen before.
    pub fn seen(&self, bus: &str, epoch: u64, id: u64) -> bool {
        self.seen
            .get(&(bus.to_string(), epoch))
            .is_some_and(|&max| id <= max)
    }

    /// Entries that are (or may be) open: opened and not closed, or in doubt.
    pub fn open_entries(&self) -> impl Iterator<Item = (&JournalKey, &EntryState)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.opened != Some(false) && !e.closed)
    }

    fn apply(&mut self, r: &JournalRecord) {
        self.records += 1;
        match r {
            JournalRecord::Decision { key, local_ns, .. } => {
                let max = self.seen.entry((key.bus.clone(), key.epoch)).or_insert(0);
                *max = (*max).max(key.id);
                let recent = self.recent.entry(key.bus.clone()).or_default();
                if recent.len() == RECENT {
                    recent.remove(0);
                }
                recent.push((key.id, *local_ns));
            }
            JournalRecord::Intent {
                key, kind, entry, ..
            } => {
                if kind == "enter" {
                    self.entries.insert(
                        key.clone(),
                        EntryState {
                            intent: r.clone(),
                            opened: None,
                            trade_id: None,
                            fill: None,
                            closed: false,
                            exit_in_doubt: None,
                        },
                    );
                } else if let Some(e) = entry.as_ref().and_then(|e| self.entries.get_mut(e)) {
                    e.exit_in_doubt = Some(key.clone());
                }
            }
            JournalRecord::Settled { entry, opened, .. } => {
                if let Some(e) = self.entries.get_mut(entry) {
                    if e.opened.is_none() {
                        e.opened = Some(*opened);
                    }
                    e.closed = true;
                    e.exit_in_doubt = None;
                }
            }
            JournalRecord::Result {
                key,
                ok,
                trade_id,
                qty,
                price,
                ..
            } => {
                if let Some(e) = self.entries.get_mut(key) {
                    e.opened = Some(*ok);
                    e.trade_id = *trade_id;
                    if let (Some(q), Some(p)) = (qty, price) {
                        e.fill = Some((q.clone(), p.clone()));
                    }
                    return;
                }
                // An exit's result: find the entry whose exit this was.
                if let Some(e) = self
                    .entries
                    .values_mut()
                    .find(|e| e.exit_in_doubt.as_ref() == Some(key))
                {
                    e.exit_in_doubt = None;
                    if *ok {
                        e.closed = true;
                    }
                }
            }
        }
    }
}

/// A bad journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system said no.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line before the last is damaged: the journal cannot be trusted.
    #[error("journal {path}: line {line} is damaged ({why}); refusing to start on it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: u64,
        /// What is wrong.
        why: String,
    },
}

/// The open journal, for appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    fsync: FsyncPolicy,
    line: Vec<u8>,
    written: u64,
}

fn parse_line(line: &[u8]) -> Result<JournalRecord, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (crc, json) = text.split_once(' ').ok_or("no checksum")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field".to_string())?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("bad record: {e}"))
}

impl Journal {
    /// Opens (creating) `dir/gateway.journal`, reads it back, cuts a torn tail.
    ///
    /// # Errors
    /// [`JournalError`].
    pub fn open(dir: &Path, fsync: FsyncPolicy) -> Result<(Self, JournalState), JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut state = JournalState::default();
        let mut good_end = 0u64;
        let mut pending_error: Option<(u64, String)> = None;
        {
            let mut reader = BufReader::new(&mut file);
            let mut buf = Vec::new();
            let mut line_no = 0u64;
            loop {
                buf.clear();
                let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                if let Some((line, why)) = pending_error.take() {
                    // A bad line followed by more lines: not a torn tail.
                    return Err(JournalError::Corrupt { path, line, why });
                }
                let complete = buf.last() == Some(&b'\n');
                let body = if complete { &buf[..n - 1] } else { &buf[..] };
                match (complete, parse_line(body)) {
                    (true, Ok(r)) => {
                        state.apply(&r);
                        good_end += n as u64;
                    }
                    (true, Err(why)) => pending_error = Some((line_no, why)),
                    (false, _) => pending_error = Some((line_no, "torn".into())),
                }
            }
        }
        let len = file.metadata().map_err(io)?.len();
        if len > good_end {
            // The last line is torn or damaged: a crash mid-write. Cut it.
            state.truncated_bytes = len - good_end;
            file.set_len(good_end).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((
            Self {
                file,
                path,
                fsync,
                line: Vec::with_capacity(1024),
                written: 0,
            },
            state,
        ))
    }

    /// Appends one record; flushes it to the disk when the policy says so.
    ///
    /// # Errors
    /// The write or the flush failed.
    pub fn append(&mut self, r: &JournalRecord) -> Result<(), JournalError> {
        self.append_all(std::slice::from_ref(r))
    }

    /// Appends records with one `write` (and at most one flush): a decision and the intent
    /// it makes reach the disk together, before the request.
    ///
    /// # Errors
    /// The write or the flush failed.
    pub fn append_all(&mut self, records: &[JournalRecord]) -> Result<(), JournalError> {
        self.line.clear();
        for r in records {
            let json = serde_json::to_string(r).expect("journal records serialise");
            writeln!(self.line, "{:08x} {json}", crc32fast::hash(json.as_bytes()))
                .expect("vec write");
        }
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.line).map_err(io)?;
        self.written += records.len() as u64;
        let flush = match self.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Intent => records
                .iter()
                .any(|r| !matches!(r, JournalRecord::Decision { .. })),
            FsyncPolicy::Never => false,
        };
        if flush {
            self.file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    /// Records appended since open.
    pub fn written(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u64) -> JournalKey {
        JournalKey {
            bus: "/dev/shm/x".into(),
            epoch: 9,
            id,
        }
    }

    fn intent(id: u64, kind: &str, entry: Option<JournalKey>) -> JournalRecord {
        JournalRecord::Intent {
            key: key(id),
            kind: kind.into(),
            entry,
            symbol: "binance-spot:BTCUSDT".into(),
            pair: "BTC/USDT".into(),
            side: "long".into(),
            strategy: 1,
            stake: "100".into(),
            qty: "0.001".into(),
            price: "60000".into(),
            tag: id.to_string(),
            ts_ns: 5,
        }
    }

    fn result(id: u64, ok: bool) -> JournalRecord {
        JournalRecord::Result {
            key: key(id),
            ok,
            trade_id: Some(3),
            qty: None,
            price: None,
            pnl: None,
            error: None,
            ts_ns: 6,
        }
    }

    fn decision(id: u64) -> JournalRecord {
        JournalRecord::Decision {
            key: key(id),
            symbol: "binance-spot:BTCUSDT".into(),
            strategy: 1,
            action: "enter_long".into(),
            outcome: "order".into(),
            local_ns: 3,
            ts_ns: 4,
        }
    }

    /// A scratch directory, removed when the test ends (failed or not).
    struct Tmp(PathBuf);

    impl std::ops::Deref for Tmp {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(name: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("fc-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Tmp(d)
    }

    #[test]
    fn state_comes_back_after_reopen() {
        let dir = tmp("reopen");
        let (mut j, s) = Journal::open(&dir, FsyncPolicy::Never).unwrap();
        assert_eq!(s, JournalState::default());
        for r in [decision(1), intent(1, "enter", None), result(1, true)] {
            j.append(&r).unwrap();
        }
        for r in [decision(2), intent(2, "enter", None)] {
            j.append(&r).unwrap();
        }
        drop(j);
        let (_, s) = Journal::open(&dir, FsyncPolicy::Never).unwrap();
        assert!(s.seen("/dev/shm/x", 9, 2) && !s.seen("/dev/shm/x", 9, 3));
        assert!(
            !s.seen("/dev/shm/x", 10, 1),
            "another epoch is another signal"
        );
        let open: Vec<_> = s.open_entries().map(|(k, e)| (k.id, e.opened)).collect();
        assert_eq!(
            open,
            vec![(1, Some(true)), (2, None)],
            "entry 2 is in doubt"
        );
        // Entry 1 closes through an exit signal 3.
        let (mut j, _) = Journal::open(&dir, FsyncPolicy::Never).unwrap();
        j.append(&intent(3, "exit", Some(key(1)))).unwrap();
        j.append(&result(3, true)).unwrap();
        drop(j);
        let (_, s) = Journal::open(&dir, FsyncPolicy::Never).unwrap();
        let open: Vec<_> = s.open_entries().map(|(k, _)| k.id).collect();
        assert_eq!(open, vec![2]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_damage_before_it_refuses() {
        let dir = tmp("torn");
        let (mut j, _) = Journal::open(&dir, FsyncPolicy::Always).unwrap();
        j.append(&decision(1)).unwrap();
        drop(j);
        let path = dir.join(JOURNAL_FILE);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, [&good[..], b"0badc0de {\"t\":\"dec"].concat()).unwrap();
        let (_, s) = Journal::open(&dir, FsyncPolicy::Never).unwrap();
        assert_eq!((s.records, s.truncated_bytes), (1, 18));
        assert_eq!(std::fs::read(&path).unwrap(), good);
        // A flipped byte in the first of two lines is corruption, not a torn tail.
        let mut bad = [&good[..], &good[..]].concat();
        bad[12] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let e = Journal::open(&dir, FsyncPolicy::Never)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("checksum"), "{e}");
    }
}
