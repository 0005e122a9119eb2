//! The end-to-end bench's sender: a recording's WebSocket frames sent to one client at a
//! fixed open-loop rate, each at its planned time whatever the client does, and the
//! recording's REST depth snapshot to whoever asks over HTTP on the same port.
//!
//! Open loop: frame `i` is due `i / rate` after the start. A sender that falls behind (the
//! machine busy elsewhere) sends the late frames at once, and the bench measures each
//! frame's latency from when it was *due*, not from when it went out: the delay a
//! closed-loop sender would hide (coordinated omission) is counted.
//!
//! Stamps are raw TSC readings (`quanta::Clock::raw`), the counter every process of the
//! machine shares; the bench turns their differences into nanoseconds.

use anyhow::Context;
use flowcore_feeds::recording::RecordingReader;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// What the sender plays.
#[derive(Debug, Clone)]
pub struct SendPlan {
    /// The WebSocket frames, in order.
    pub frames: Vec<String>,
    /// The REST depth snapshot of the recording, answered to any HTTP GET.
    pub snapshot: Option<String>,
}

impl SendPlan {
    /// The first `limit` stream frames of a recording (`<ns> <json>` lines, gzip or not),
    /// and its depth snapshot (`{"lastUpdateId":...}`), which is not a frame.
    ///
    /// # Errors
    /// When the recording cannot be read.
    pub fn from_recording(path: &Path, limit: usize) -> anyhow::Result<Self> {
        let mut reader = RecordingReader::open(path).with_context(|| path.display().to_string())?;
        let (mut frames, mut snapshot) = (Vec::new(), None);
        while let Some((_, json)) = reader.next_line()? {
            let text = std::str::from_utf8(json).context("a recording line is not UTF-8")?;
            if text.starts_with("{\"lastUpdateId\"") {
                snapshot.get_or_insert_with(|| text.to_string());
            } else if frames.len() < limit {
                frames.push(text.to_string());
            }
        }
        Ok(Self { frames, snapshot })
    }
}

/// How close to a frame's due time the sender stops yielding and spins.
const SPIN_NS: u64 = 1_000;

/// When the frames were due and when each went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendStamps {
    /// TSC at the plan's start: frame `i` was due `i * period_raw` ticks after it.
    pub start_raw: u64,
    /// Ticks between frames.
    pub period_raw: u64,
    /// TSC when each frame's send began.
    pub sent_raw: Vec<u64>,
    /// TSC when each frame's write returned: the frame encoded and written through the
    /// kernel's loopback into the client's socket. 0 for a frame that went out in one write
    /// with the frames after it (a late sender catching up), whose write is theirs.
    pub written_raw: Vec<u64>,
}

impl SendStamps {
    /// The tick at which frame `i` was due.
    pub fn due_raw(&self, i: usize) -> u64 {
        self.start_raw + i as u64 * self.period_raw
    }

    /// `start_raw period_raw` on the first line, then `sent_raw written_raw` a line.
    pub fn to_text(&self) -> String {
        let mut text = format!("{} {}\n", self.start_raw, self.period_raw);
        for (s, w) in self.sent_raw.iter().zip(&self.written_raw) {
            text.push_str(&format!("{s} {w}\n"));
        }
        text
    }

    /// Reads [`Self::to_text`] back.
    ///
    /// # Errors
    /// When the text is not in that shape.
    pub fn from_text(text: &str) -> anyhow::Result<Self> {
        let mut lines = text.lines();
        let head = lines.next().context("empty send stamps")?;
        let (start, period) = head.split_once(' ').context("send stamps: no head line")?;
        let (mut sent_raw, mut written_raw) = (Vec::new(), Vec::new());
        for line in lines {
            let (sent, written) = line.split_once(' ').context("send stamps: a short line")?;
            sent_raw.push(sent.parse()?);
            written_raw.push(written.parse()?);
        }
        Ok(Self {
            start_raw: start.parse()?,
            period_raw: period.parse()?,
            sent_raw,
            written_raw,
        })
    }
}

/// Serves `plan` on `listener`: waits for the WebSocket client, waits `warm_up` (the
/// client's subscriptions settle, readers attach), sends every frame at `rate` frames a
/// second, then closes the connection. Snapshots are answered all along on other
/// connections.
///
/// # Errors
/// When the WebSocket client cannot be accepted or the connection fails mid-send.
pub fn serve(
    listener: TcpListener,
    plan: SendPlan,
    rate: u64,
    warm_up: Duration,
) -> anyhow::Result<SendStamps> {
    anyhow::ensure!(rate > 0, "the rate must be above 0");
    let snapshot = plan.snapshot.clone();
    let (client_tx, client_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("e2e-sender-accept".into())
        .spawn(move || accept_loop(listener, snapshot, client_tx))?;
    let stream = client_rx
        .recv_timeout(Duration::from_secs(30))
        .context("no WebSocket client came within 30 s")?;
    stream.set_nodelay(true)?;
    let mut ws = tungstenite::accept(stream).map_err(|e| anyhow::anyhow!("handshake: {e}"))?;
    std::thread::sleep(warm_up);
    let clock = quanta::Clock::new();
    let ticks_per_ns = ticks_per_ns(&clock);
    // The schedule is in raw ticks: the bench measures each frame from its due tick, and
    // nanoseconds from one process's calibration are not another's (a few parts per million
    // apart, microseconds over a run of seconds).
    let period_raw = ((1e9 / rate as f64) * ticks_per_ns).round().max(1.0) as u64;
    let mut sent_raw = Vec::with_capacity(plan.frames.len());
    let mut written_raw = Vec::with_capacity(plan.frames.len());
    let start_raw = clock.raw();
    let frames = plan.frames.len();
    for (i, frame) in plan.frames.into_iter().enumerate() {
        let due = start_raw + i as u64 * period_raw;
        loop {
            let now = clock.raw();
            if now >= due {
                break;
            }
            // Long waits sleep; shorter ones yield, so that a reader sharing this core gets
            // it (on 2 cores, spinning here starves it); the last microseconds spin, or the
            // frame would go out a scheduler round late. Measured against a real-time
            // sender (`chrt -f`) that slept until each frame: its wake-ups came 10 µs late
            // and its p99 was milliseconds, where this one's is tens of µs.
            match ((due - now) as f64 / ticks_per_ns) as u64 {
                left if left > 2_000_000 => {
                    std::thread::sleep(Duration::from_nanos(left - 1_000_000));
                }
                left if left > SPIN_NS => std::thread::yield_now(),
                _ => std::hint::spin_loop(),
            }
        }
        let now = clock.raw();
        sent_raw.push(now);
        ws.write(tungstenite::Message::text(frame))
            .context("sending a frame")?;
        // Frames already due go out in one write, as a venue's stream does under load: a
        // sender behind its schedule catches up instead of paying a syscall per frame.
        let next_due = start_raw + (i as u64 + 1) * period_raw;
        if next_due > now || i + 1 == frames {
            ws.flush().context("sending a frame")?;
            written_raw.push(clock.raw());
        } else {
            written_raw.push(0);
        }
    }
    let _ = ws.close(None);
    // The client answers the close; read until it does or the connection ends.
    while ws.read().is_ok() {}
    Ok(SendStamps {
        start_raw,
        period_raw,
        sent_raw,
        written_raw,
    })
}

/// Raw ticks a nanosecond, from quanta's own calibration (1 where it reads the monotonic
/// clock).
fn ticks_per_ns(clock: &quanta::Clock) -> f64 {
    1e9 / clock.delta_as_nanos(0, 1_000_000_000) as f64
}

/// Hands the first WebSocket upgrade to the sender; answers every plain HTTP request with
/// the snapshot (or 404) and closes it.
fn accept_loop(
    listener: TcpListener,
    snapshot: Option<String>,
    client: std::sync::mpsc::Sender<TcpStream>,
) {
    let mut client = Some(client);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let mut head = [0u8; 2048];
        let n = stream.peek(&mut head).unwrap_or(0);
        let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
        if head.contains("upgrade: websocket") {
            if let Some(client) = client.take() {
                let _ = client.send(stream);
            }
        } else {
            let snapshot = snapshot.clone();
            std::thread::spawn(move || answer_http(stream, snapshot.as_deref()));
        }
    }
}

fn answer_http(mut stream: TcpStream, snapshot: Option<&str>) {
    // Read the request head (a GET carries no body).
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let answer = match snapshot {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
    };
    let _ = stream.write_all(answer.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_their_text() {
        let stamps = SendStamps {
            start_raw: 12,
            period_raw: 100_000,
            sent_raw: vec![13, 20, 31],
            written_raw: vec![15, 0, 40],
        };
        assert_eq!(SendStamps::from_text(&stamps.to_text()).unwrap(), stamps);
        assert!(SendStamps::from_text("12\n").is_err());
        assert!(SendStamps::from_text("12 100\n13\n").is_err());
    }

    #[test]
    fn the_plan_takes_frames_and_keeps_the_snapshot_apart() {
        let dir = std::env::temp_dir().join(format!("flowcore-e2e-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rec.txt");
        std::fs::write(
            &path,
            "1 {\"stream\":\"a\"}\n2 {\"lastUpdateId\":5}\n3 {\"stream\":\"b\"}\n4 {\"stream\":\"c\"}\n",
        )
        .unwrap();
        let plan = SendPlan::from_recording(&path, 2).unwrap();
        assert_eq!(plan.frames, ["{\"stream\":\"a\"}", "{\"stream\":\"b\"}"]);
        assert_eq!(plan.snapshot.as_deref(), Some("{\"lastUpdateId\":5}"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
