//! The end-to-end bench's bus reader: a process of its own that stamps each trade the
//! moment it sees it on the shared-memory bus (`trades.ring`).

use anyhow::Context;
use flowcore_shm::{BusReader, ReadFrom};
use std::path::Path;
use std::time::Duration;

/// One trade as the reader saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// The venue's trade id.
    pub trade_id: u64,
    /// The receive stamp of the message behind it (the engine's stage logs are keyed by it).
    pub local_ns: i64,
    /// TSC when the reader saw it.
    pub visible_raw: u64,
}

/// Waits up to 60 s for the bus in `dir`, then reads trades until its writer is gone and
/// everything was read. Between empty polls it yields the core: on 2 cores it shares one
/// with the sender.
///
/// # Errors
/// When the bus never appears or the reader was lapped (records lost to it).
pub fn read_trades(dir: &Path) -> anyhow::Result<Vec<Sighting>> {
    let mut bus = BusReader::open_waiting(dir, ReadFrom::Oldest, Duration::from_secs(60))
        .with_context(|| format!("the bus in {}", dir.display()))?;
    let clock = quanta::Clock::new();
    let mut seen = Vec::with_capacity(1 << 20);
    let mut idle = 0u32;
    let mut writer_gone = false;
    loop {
        let mut moved = false;
        while let Some(t) = bus.trades.try_read() {
            seen.push(Sighting {
                trade_id: t.trade_id,
                local_ns: t.local_ns,
                visible_raw: clock.raw(),
            });
            moved = true;
        }
        if moved {
            idle = 0;
            continue;
        }
        if writer_gone {
            // Read once more after the writer went: nothing is left behind.
            break;
        }
        idle = idle.wrapping_add(1);
        // Whether the writer lives is three syscalls: asked now and then, not per poll.
        if idle.is_multiple_of(4096) {
            writer_gone = !bus.writer_alive();
        }
        if idle > 2 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    let lapped = bus.trades.stats().lapped;
    anyhow::ensure!(lapped == 0, "the reader was lapped {lapped} times");
    Ok(seen)
}

/// `trade_id local_ns visible_raw` a line.
pub fn to_text(seen: &[Sighting]) -> String {
    let mut text = String::with_capacity(seen.len() * 48);
    for s in seen {
        text.push_str(&format!(
            "{} {} {}\n",
            s.trade_id, s.local_ns, s.visible_raw
        ));
    }
    text
}

/// Reads [`to_text`] back.
///
/// # Errors
/// When a line is not three numbers.
pub fn from_text(text: &str) -> anyhow::Result<Vec<Sighting>> {
    text.lines()
        .map(|line| {
            let mut parts = line.split(' ');
            let mut next = || parts.next().context("a sighting line is short");
            Ok(Sighting {
                trade_id: next()?.parse()?,
                local_ns: next()?.parse()?,
                visible_raw: next()?.parse()?,
            })
        })
        .collect()
}
