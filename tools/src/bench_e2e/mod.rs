//! `flowcore bench e2e`: wire to shared memory, as processes, against a conventional stack.
//!
//! ```text
//! sender process (open loop, R frames/s) --ws--> engine process --shm--> reader process
//!   stamps when each frame was due              flowcore run (io_uring,    stamps each
//!   and sent                                    pinned), stage log         trade seen
//! ```
//! The same sender and the same frames (the bundled USD-M BTC recording: trades, book
//! tickers, depth diffs) go to the conventional stack too: tokio-tungstenite + serde_json +
//! rust_decimal + a tokio mpsc + Redis pub/sub to a subscriber process, against a real
//! `redis-server` the bench starts ([`conventional`]).
//!
//! Every stamp is a raw TSC reading, the counter all processes of the machine share, so
//! one process's stamps line up with another's. Latency is measured from when a frame was
//! *due*, not when it went out (open loop: a late sender counts against the stack, which
//! is the correction for coordinated omission). The path measured is a trade's, from its
//! frame's due time to the reader seeing the trade; flowcore's stage log splits it into
//! wire (due -> frame decoded), parse, the hand-off to the engine (a ring between threads in
//! threaded mode), the engine (book, bars, strategies, the trade published) and the bus hop
//! (published -> seen).
//!
//! On 2 cores the sender and reader share core 0 (pinned) in every stack. flowcore inline
//! has core 1 to itself; threaded puts its feed thread on core 1 and its core thread on
//! core 0 beside them; the conventional stack's threads and redis-server are left to the
//! scheduler, as such a stack is deployed.

pub mod conventional;
pub mod page;
pub mod results;
pub mod sender;
pub mod shm_reader;

pub use results::{E2eOptions, EngineSetup, RunResult, StageStats};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use results::{histogram, stats, SENT_TO_VISIBLE, TOTAL};
use sender::{SendPlan, SendStamps};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Trade id -> frame index, from the frames' JSON (`data.e == "trade"`, `data.t`).
fn trade_frames(frames: &[String]) -> HashMap<u64, usize> {
    let mut map = HashMap::new();
    for (i, frame) in frames.iter().enumerate() {
        let Ok(v) = serde_json::from_str::<Json>(frame) else {
            continue;
        };
        let data = &v["data"];
        if data["e"] == "trade" {
            if let Some(t) = data["t"].as_u64() {
                map.insert(t, i);
            }
        }
    }
    map
}

/// Runs every stack at every rate; writes `e2e.json` and `e2e.html` into `options.out`.
///
/// # Errors
/// When a process cannot start or fails, or its files cannot be read.
pub fn run_bench(options: &E2eOptions) -> anyhow::Result<Vec<RunResult>> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let plan = SendPlan::from_recording(&options.recording, options.messages)?;
    let trades = trade_frames(&plan.frames);
    anyhow::ensure!(!trades.is_empty(), "the recording's frames carry no trade");
    let redis = if options.conventional {
        Some(RedisServer::start(&options.out)?)
    } else {
        None
    };
    // The sender processes read the frames from here; each run's own files go once it was
    // read (a failed run's stay, to look at).
    let frames = options.out.join("frames.txt");
    write_frames(&plan, &frames)?;
    let mut results = Vec::new();
    for &rate in &options.rates {
        for engine in &options.engines {
            let r = run_flowcore(options, &plan, &frames, &trades, rate, engine)
                .with_context(|| format!("{} at {rate}/s", engine.name()))?;
            print_result(&r);
            results.push(r);
        }
        if let Some(redis) = &redis {
            let r = run_conventional_stack(options, &plan, &frames, &trades, rate, redis.port)
                .with_context(|| format!("the conventional stack at {rate}/s"))?;
            print_result(&r);
            results.push(r);
        }
    }
    drop(redis);
    let _ = std::fs::remove_file(&frames);
    print_ratios(&results);
    let json = page::results_json(options, &results);
    let json_path = options.out.join("e2e.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
        .with_context(|| json_path.display().to_string())?;
    let html_path = options.out.join("e2e.html");
    std::fs::write(&html_path, page::html(&json))
        .with_context(|| html_path.display().to_string())?;
    println!(
        "e2e: wrote {} and {}",
        json_path.display(),
        html_path.display()
    );
    Ok(results)
}

/// A started sender: its process, the port it said on stdout, and where it writes its stamps.
struct SenderProcess {
    child: Helper,
    port: u16,
    stamps: PathBuf,
}

fn start_sender(
    options: &E2eOptions,
    dir: &Path,
    rate: u64,
    frames_file: &Path,
) -> anyhow::Result<SenderProcess> {
    let stamps = dir.join("sent.txt");
    let mut child = Command::new(&options.exe)
        .args(["bench-part", "sender", "--frames"])
        .arg(frames_file)
        .args(["--rate", &rate.to_string()])
        .args(["--warm-up-ms", &options.warm_up.as_millis().to_string()])
        .arg("--stamps")
        .arg(&stamps)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the sender")?;
    let stdout = child.stdout.take().context("sender stdout")?;
    let child = Helper(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("the sender said {line:?}, not its port"))?;
    Ok(SenderProcess {
        child,
        port,
        stamps,
    })
}

/// A helper process of a run (the sender, a reader): killed when the run fails before it
/// ends on its own, so none is left waiting for a peer that is gone.
struct Helper(Child);

impl Helper {
    /// Waits for it to end; an error unless it succeeded.
    fn wait_ok(mut self, what: &str) -> anyhow::Result<()> {
        let status = self.0.wait()?;
        anyhow::ensure!(status.success(), "{what} failed: {status}");
        Ok(())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Ended already, after `wait_ok`: both calls are then no-ops.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The frames of a plan in a file for the sender process: the snapshot first (`S ` line),
/// then a frame a line.
fn write_frames(plan: &SendPlan, path: &Path) -> anyhow::Result<()> {
    let mut text = String::new();
    if let Some(s) = &plan.snapshot {
        text.push_str("S ");
        text.push_str(s);
        text.push('\n');
    }
    for f in &plan.frames {
        text.push_str("F ");
        text.push_str(f);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| path.display().to_string())
}

/// Reads [`write_frames`] back.
///
/// # Errors
/// When the file cannot be read or a line is neither kind.
pub fn read_frames(path: &Path) -> anyhow::Result<SendPlan> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut plan = SendPlan {
        frames: Vec::new(),
        snapshot: None,
    };
    for line in text.lines() {
        match line.split_at_checked(2) {
            Some(("S ", s)) => plan.snapshot = Some(s.to_string()),
            Some(("F ", f)) => plan.frames.push(f.to_string()),
            _ => bail!("{}: not a frames file", path.display()),
        }
    }
    Ok(plan)
}

fn run_dir(options: &E2eOptions, stack: &str, rate: u64) -> anyhow::Result<PathBuf> {
    let dir = options.out.join(format!("{stack}-{rate}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(dir)
}

fn run_flowcore(
    options: &E2eOptions,
    plan: &SendPlan,
    frames_file: &Path,
    trades: &HashMap<u64, usize>,
    rate: u64,
    engine: &EngineSetup,
) -> anyhow::Result<RunResult> {
    let dir = run_dir(
        options,
        &format!("flowcore-{}-{}", engine.mode, engine.idle),
        rate,
    )?;
    let sender = start_sender(options, &dir, rate, frames_file)?;
    let shm = crate::demo::private_bus_dir(&format!("e2e-{}-{rate}", std::process::id()));
    let _ = std::fs::remove_dir_all(&shm);
    let (feed_cpu, core_cpu) = if engine.mode == "inline" {
        (String::new(), "core_cpu = 1\n")
    } else {
        ("cpu = 1\n".to_string(), "core_cpu = 0\n")
    };
    let mut config = format!(
        "[pipeline]\nmode = \"{}\"\nidle = \"{}\"\ntransport = \"io_uring\"\n{core_cpu}\
         [[feed]]\nvenue = \"binance-usdm\"\nsymbols = [\"BTCUSDT\"]\n\
         ws_url = \"ws://127.0.0.1:{port}/public\"\nrest_url = \"http://127.0.0.1:{port}\"\n\
         stall_timeout_ms = 60000\n{feed_cpu}",
        engine.mode,
        engine.idle,
        port = sender.port
    );
    if let Some(s) = &options.strategies {
        config.push('\n');
        config.push_str(&std::fs::read_to_string(s).with_context(|| s.display().to_string())?);
    }
    let config_path = dir.join("run.toml");
    std::fs::write(&config_path, config)?;
    let sightings = dir.join("seen.txt");
    let reader = Command::new(&options.exe)
        .args(["bench-part", "shm-reader", "--shm"])
        .arg(&shm)
        .arg("--out")
        .arg(&sightings)
        .spawn()
        .map(Helper)
        .context("starting the bus reader")?;
    let stages = dir.join("stages");
    std::fs::create_dir_all(&stages)?;
    let run = Command::new(&options.exe)
        .args(["run", "--exit-on-close", "--config"])
        .arg(&config_path)
        .arg("--shm")
        .arg(&shm)
        .arg("--stage-log")
        .arg(&stages)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting flowcore run")?;
    let out = run.wait_with_output()?;
    let summary = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        bail!(
            "flowcore run failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    sender.child.wait_ok("the sender")?;
    reader.wait_ok("the bus reader")?;
    let _ = std::fs::remove_dir_all(&shm);
    let sent = SendStamps::from_text(&std::fs::read_to_string(&sender.stamps)?)?;
    let seen = shm_reader::from_text(&std::fs::read_to_string(&sightings)?)?;
    use flowcore_runtime::stages::{core_log, feed_log, read_stage_log};
    let feed = read_stage_log(&feed_log(&stages, 0))?;
    let core = read_stage_log(&core_log(&stages))?;
    let result = flowcore_stages(&sent, &seen, &feed, &core, trades, plan.frames.len())?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(RunResult {
        stack: engine.name(),
        rate,
        frames: plan.frames.len(),
        trades_sent: trades.len(),
        trades_seen: seen.len(),
        stages: result,
        engine_summary: summary,
    })
}

/// Nanoseconds from `a` to `b`, two raw TSC readings (0 when `b` is earlier).
fn ns(clock: &quanta::Clock, a: u64, b: u64) -> u64 {
    if b <= a {
        return 0;
    }
    clock.delta_as_nanos(a, b)
}

/// flowcore's stages for each trade seen: the sender's due time, the feed's stamps (a row a
/// frame, in frame order), the engine's (a row a trade) and the reader's sighting.
fn flowcore_stages(
    sent: &SendStamps,
    seen: &[shm_reader::Sighting],
    feed: &[(i64, u64, u64)],
    core: &[(i64, u64, u64)],
    trades: &HashMap<u64, usize>,
    frames: usize,
) -> anyhow::Result<Vec<StageStats>> {
    anyhow::ensure!(
        feed.len() == frames,
        "the feed stamped {} frames of {frames} sent",
        feed.len()
    );
    let clock = quanta::Clock::new();
    let frame_of: HashMap<i64, usize> = feed.iter().enumerate().map(|(i, r)| (r.0, i)).collect();
    let engine_of: HashMap<i64, (u64, u64)> = core.iter().map(|r| (r.0, (r.1, r.2))).collect();
    let names = [
        TOTAL,
        SENT_TO_VISIBLE,
        "wire -> decoded (socket)",
        "decoded -> parsed",
        "parsed -> engine (hand-off)",
        "engine: book, bars, strategies, on the bus",
        "on the bus -> seen by the reader",
    ];
    let mut h: Vec<Histogram<u64>> = names.iter().map(|_| histogram()).collect();
    for s in seen {
        let Some(&i) = trades.get(&s.trade_id) else {
            bail!("the reader saw trade {}, which was not sent", s.trade_id);
        };
        let frame = *frame_of
            .get(&s.local_ns)
            .with_context(|| format!("trade {}: no feed stamp", s.trade_id))?;
        anyhow::ensure!(
            frame == i,
            "trade {} came in frame {frame}, sent as {i}",
            s.trade_id
        );
        let (_, received, parsed) = feed[i];
        let (picked, applied) = *engine_of
            .get(&s.local_ns)
            .with_context(|| format!("trade {}: no engine stamp", s.trade_id))?;
        let due = sent.due_raw(i);
        let marks = [
            ns(&clock, due, s.visible_raw),
            ns(&clock, sent.sent_raw[i], s.visible_raw),
            ns(&clock, due, received),
            ns(&clock, received, parsed),
            ns(&clock, parsed, picked),
            ns(&clock, picked, applied),
            ns(&clock, applied, s.visible_raw),
        ];
        for (h, v) in h.iter_mut().zip(marks) {
            h.record(v.max(1))?;
        }
    }
    let mut out: Vec<StageStats> = names.iter().zip(&h).map(|(n, h)| stats(n, h)).collect();
    out.extend(sender_stages(sent, &clock)?);
    Ok(out)
}

/// The sender's own part of every stack's wire stage: how late it began each frame, and
/// how long the frame's write took (encoding it, and the kernel carrying it over the
/// loopback into the client's socket, which on loopback happens inside the sender's
/// `write`).
fn sender_stages(sent: &SendStamps, clock: &quanta::Clock) -> anyhow::Result<[StageStats; 2]> {
    let (mut late, mut write) = (histogram(), histogram());
    for (i, (&s, &w)) in sent.sent_raw.iter().zip(&sent.written_raw).enumerate() {
        late.record(ns(clock, sent.due_raw(i), s).max(1))?;
        if w != 0 {
            write.record(ns(clock, s, w).max(1))?;
        }
    }
    Ok([
        stats("sender: due -> sent", &late),
        stats("sender: sent -> written (loopback write)", &write),
    ])
}

fn run_conventional_stack(
    options: &E2eOptions,
    plan: &SendPlan,
    frames_file: &Path,
    trades: &HashMap<u64, usize>,
    rate: u64,
    redis_port: u16,
) -> anyhow::Result<RunResult> {
    let dir = run_dir(options, "conventional", rate)?;
    let sender = start_sender(options, &dir, rate, frames_file)?;
    let sightings = dir.join("seen.txt");
    let channel = format!("flowcore-e2e-{rate}");
    let redis = format!("127.0.0.1:{redis_port}");
    let mut reader = Command::new(&options.exe)
        .args(["bench-part", "conventional-reader", "--redis", &redis])
        .args(["--channel", &channel])
        .args(["--expected", &trades.len().to_string()])
        .arg("--out")
        .arg(&sightings)
        .stdout(Stdio::piped())
        .spawn()
        .map(Helper)
        .context("starting the Redis subscriber")?;
    let mut ready = String::new();
    BufReader::new(reader.0.stdout.take().context("reader stdout")?).read_line(&mut ready)?;
    anyhow::ensure!(ready.trim() == "ready", "the subscriber said {ready:?}");
    let engine = Command::new(&options.exe)
        .args(["bench-part", "conventional", "--redis", &redis])
        .args(["--channel", &channel])
        .arg("--url")
        .arg(format!("ws://127.0.0.1:{}/stream", sender.port))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the conventional engine")?;
    let out = engine.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "the conventional engine failed");
    sender.child.wait_ok("the sender")?;
    reader.wait_ok("the Redis subscriber")?;
    let sent = SendStamps::from_text(&std::fs::read_to_string(&sender.stamps)?)?;
    let seen = conventional_sightings(&std::fs::read_to_string(&sightings)?)?;
    let clock = quanta::Clock::new();
    let (mut h, mut from_sent) = (histogram(), histogram());
    for &(trade_id, visible) in &seen {
        let Some(&i) = trades.get(&trade_id) else {
            bail!("the subscriber saw trade {trade_id}, which was not sent");
        };
        h.record(ns(&clock, sent.due_raw(i), visible).max(1))?;
        from_sent.record(ns(&clock, sent.sent_raw[i], visible).max(1))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(RunResult {
        stack: "conventional".into(),
        rate,
        frames: plan.frames.len(),
        trades_sent: trades.len(),
        trades_seen: seen.len(),
        stages: [stats(TOTAL, &h), stats(SENT_TO_VISIBLE, &from_sent)]
            .into_iter()
            .chain(sender_stages(&sent, &clock)?)
            .collect(),
        engine_summary: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    })
}

/// `trade_id visible_raw` a line.
fn conventional_sightings(text: &str) -> anyhow::Result<Vec<(u64, u64)>> {
    text.lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').context("a sighting line is short")?;
            Ok((a.parse()?, b.parse()?))
        })
        .collect()
}

/// Writes the conventional subscriber's sightings for [`conventional_sightings`].
pub fn conventional_sightings_text(seen: &[(u64, u64)]) -> String {
    seen.iter().map(|(t, v)| format!("{t} {v}\n")).collect()
}

/// A private `redis-server` on a free loopback port, no persistence, stopped when dropped
/// (as a [`Helper`]).
struct RedisServer {
    _child: Helper,
    port: u16,
}

impl RedisServer {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .map(Helper)
            .context("starting redis-server (scripts/setup-redis.sh installs it)")?;
        let server = Self {
            _child: child,
            port,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!("redis-server did not listen on {port} within 5 s")
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn print_result(r: &RunResult) {
    println!(
        "e2e: {} at {}/s: {} frames, {} of {} trades seen",
        r.stack, r.rate, r.frames, r.trades_seen, r.trades_sent
    );
    for s in &r.stages {
        println!(
            "  {:<34} p50 {:>9.1} µs  p90 {:>9.1}  p99 {:>9.1}  p99.9 {:>9.1}  max {:>10.1}  ({} samples)",
            s.name,
            us(s.ns[0]),
            us(s.ns[1]),
            us(s.ns[2]),
            us(s.ns[3]),
            us(s.ns[4]),
            s.count
        );
    }
}

/// The conventional stack's wire -> visible over each flowcore set-up's, per rate.
fn print_ratios(results: &[RunResult]) {
    for (r, [p50, p99, p999]) in results::ratios(results) {
        println!(
            "e2e: at {}/s, {} is {p50:.1}x faster at p50, {p99:.1}x at p99, {p999:.1}x at p99.9 than the conventional stack",
            r.rate, r.stack
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_reader::Sighting;

    /// Stage log rows: `(local_ns, a, b)`.
    type Rows = Vec<(i64, u64, u64)>;

    /// Three frames, the middle one a trade: due every 100,000 ticks from tick 1,000,000.
    fn stamps() -> (SendStamps, Rows, Rows) {
        let start = 1_000_000u64;
        let sent = SendStamps {
            start_raw: start,
            period_raw: 100_000,
            // Frame 1 went out at the start, a period ahead of its due tick.
            sent_raw: vec![start, start, start + 800_000],
            written_raw: vec![start + 5_000, 0, start + 800_000 + 7_000],
        };
        let feed = vec![
            (11, start + 50_000, start + 50_500),
            (12, start + 450_000, start + 450_700),
            (13, start + 850_000, start + 850_300),
        ];
        let core = vec![(12, start + 451_000, start + 451_200)];
        (sent, feed, core)
    }

    #[test]
    fn a_trades_stages_add_up_to_its_wire_to_visible() {
        let (sent, feed, core) = stamps();
        let trades = HashMap::from([(777, 1)]);
        let seen = [Sighting {
            trade_id: 777,
            local_ns: 12,
            visible_raw: 1_000_000 + 460_000,
        }];
        let stages = flowcore_stages(&sent, &seen, &feed, &core, &trades, 3).unwrap();
        assert_eq!(stages[0].name, TOTAL);
        assert!(stages.iter().take(7).all(|s| s.count == 1));
        let total = stages[0].ns[0] as f64;
        let parts: u64 = stages[2..7].iter().map(|s| s.ns[0]).sum();
        // One sample: each percentile is it, to hdrhistogram's 3 significant digits.
        assert!(
            (parts as f64 - total).abs() <= total * 0.005,
            "{parts} vs {total}"
        );
        assert!(
            stages[2].ns[0] > stages[3].ns[0],
            "the wire leg is the long one here"
        );
        // Sent a period before it was due: from sent is a period longer.
        let period = quanta::Clock::new().delta_as_nanos(0, 100_000);
        let early = stages[1].ns[0].abs_diff(stages[0].ns[0] + period);
        assert!(early <= stages[1].ns[0] / 200, "{early}");
        // The write is timed for the frames written alone (the first and the last), the
        // lateness for all three.
        let stage = |name: &str| stages.iter().find(|s| s.name == name).unwrap();
        assert_eq!(stage("sender: due -> sent").count, 3);
        let write = stage("sender: sent -> written (loopback write)");
        assert_eq!(write.count, 2);
        let longest = quanta::Clock::new().delta_as_nanos(0, 7_000);
        assert!(write.ns.last().unwrap().abs_diff(longest) <= longest / 200);
    }

    #[test]
    fn stamps_that_do_not_line_up_are_refused() {
        let (sent, feed, core) = stamps();
        let trades = HashMap::from([(777, 1)]);
        let seen = |trade_id, local_ns| {
            [Sighting {
                trade_id,
                local_ns,
                visible_raw: 2_000_000,
            }]
        };
        // A trade never sent, a trade in another frame than it was sent in, a frame the
        // feed never stamped, and a feed that stamped fewer frames than were sent.
        assert!(flowcore_stages(&sent, &seen(778, 12), &feed, &core, &trades, 3).is_err());
        assert!(flowcore_stages(&sent, &seen(777, 13), &feed, &core, &trades, 3).is_err());
        assert!(flowcore_stages(&sent, &seen(777, 99), &feed, &core, &trades, 3).is_err());
        assert!(flowcore_stages(&sent, &seen(777, 12), &feed[..2], &core, &trades, 3).is_err());
        assert!(flowcore_stages(&sent, &seen(777, 12), &feed, &core, &trades, 3).is_ok());
    }

    #[test]
    fn frames_files_round_trip() {
        let plan = SendPlan {
            frames: vec!["{\"a\":1}".into(), "{\"b\":2}".into()],
            snapshot: Some("{\"lastUpdateId\":1}".into()),
        };
        let path = std::env::temp_dir().join(format!("flowcore-e2e-frames-{}", std::process::id()));
        write_frames(&plan, &path).unwrap();
        let back = read_frames(&path).unwrap();
        assert_eq!((back.frames, back.snapshot), (plan.frames, plan.snapshot));
        std::fs::write(&path, "X nope\n").unwrap();
        assert!(read_frames(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
