//! One hop to another process: flowcore's shared-memory ring against a Unix domain socket
//! and Redis pub/sub (the broker the system flowcore replaces used), in the same run.
//!
//! The publisher (this process, pinned to cpu 0) sends a 120-byte record at a fixed rate,
//! sleeping between sends;
//! a reader process pinned to cpu 1 busy-polls and records, per message, the time from
//! the send to the moment the whole record is in its hands (CLOCK_MONOTONIC on both sides).
//! For shared memory the record travels in a 128-byte slot of `bars.ring`; for the socket
//! and Redis the same 120 bytes are the message. Redis is a real `redis-server`, started
//! by `scripts/bench-shm.sh` (which sets `REDIS_PORT`); without it that row is skipped.
//!
//! `cargo bench -p flowcore-benches --bench shm` for the full run; under `cargo test` a
//! short smoke pass checks that every transport delivers.

use flowcore_benches::{full_run, mono_ns};
use flowcore_shm::abi::BarRecord;
use flowcore_shm::{BusConfig, BusWriter, Capacities, ReadFrom, RingReader};
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const RECORD: usize = core::mem::size_of::<BarRecord>();
const ROLE_ENV: &str = "FLOWCORE_SHM_BENCH_ROLE";
const CHANNEL: &str = "flowcore-bench";

/// Pins the calling process to `cpu` when the machine has more than one online. Done with
/// `sched_setaffinity` directly: a child inherits its parent's (pinned) mask, so asking
/// core_affinity which cores exist would only ever name the parent's.
fn pin(cpu: usize) {
    // SAFETY: sysconf has no memory effects.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online < 2 {
        return;
    }
    // SAFETY: `set` is a plain bit set we own; CPU_ZERO/CPU_SET write within it, and
    // sched_setaffinity reads exactly `size_of::<cpu_set_t>()` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Message `seq`: sequence in `ts_ms`, send time in `publish_ns`, filler elsewhere.
fn message(seq: u64) -> BarRecord {
    BarRecord {
        ts_ms: seq as i64,
        publish_ns: mono_ns() as i64,
        cvd: seq as i64 * 3,
        ..bytemuck::Zeroable::zeroed()
    }
}

struct Plan {
    warmup: u64,
    samples: u64,
    interval_ns: u64,
}

impl Plan {
    fn total(&self) -> u64 {
        self.warmup + self.samples
    }
}

fn plan() -> Plan {
    if full_run() {
        Plan {
            warmup: 10_000,
            samples: 100_000,
            interval_ns: 100_000, // 10k messages/s
        }
    } else {
        Plan {
            warmup: 100,
            samples: 2_000,
            interval_ns: 50_000,
        }
    }
}

/// The reader side: records latencies and prints `count p50 p90 p99 p999 max` (ns).
struct Recorder {
    hist: Histogram<u64>,
    warmup: u64,
    seen: u64,
}

impl Recorder {
    fn new(warmup: u64) -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap(),
            warmup,
            seen: 0,
        }
    }

    fn got(&mut self, bytes: &[u8]) {
        let r: BarRecord = bytemuck::pod_read_unaligned(bytes);
        let now = mono_ns();
        assert_eq!(r.ts_ms as u64, self.seen, "message lost or reordered");
        assert_eq!(r.cvd, r.ts_ms * 3, "corrupt message");
        if self.seen >= self.warmup {
            self.hist
                .record(now.saturating_sub(r.publish_ns as u64).max(1))
                .unwrap();
        }
        self.seen += 1;
    }

    fn report(&self) {
        let h = &self.hist;
        println!(
            "{} {} {} {} {} {}",
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
    }
}

fn ready() {
    println!("ready");
    std::io::stdout().flush().unwrap();
}

fn reader(role: &str, arg: &str) {
    pin(1);
    let plan = plan();
    let mut rec = Recorder::new(plan.warmup);
    match role {
        "shm" => {
            let mut ring = RingReader::<BarRecord>::open(arg.as_ref(), ReadFrom::Next).unwrap();
            ready();
            while rec.seen < plan.total() {
                if let Some(r) = ring.try_read() {
                    rec.got(bytemuck::bytes_of(&r));
                } else {
                    core::hint::spin_loop();
                }
            }
            assert_eq!(ring.stats().lapped, 0);
        }
        "uds" => {
            let mut s = UnixStream::connect(arg).unwrap();
            s.set_nonblocking(true).unwrap();
            ready();
            spin_frames(&mut s, &mut rec, &plan, 0);
        }
        "redis" => {
            let mut s = TcpStream::connect(("127.0.0.1", arg.parse::<u16>().unwrap())).unwrap();
            s.set_nodelay(true).unwrap();
            s.write_all(&resp(&[b"SUBSCRIBE", CHANNEL.as_bytes()]))
                .unwrap();
            // The subscribe confirmation: *3 $9 subscribe $N channel :1
            let confirm = format!(
                "*3\r\n$9\r\nsubscribe\r\n${}\r\n{CHANNEL}\r\n:1\r\n",
                CHANNEL.len()
            );
            let mut buf = vec![0u8; confirm.len()];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(buf, confirm.as_bytes());
            s.set_nonblocking(true).unwrap();
            ready();
            let header = format!(
                "*3\r\n$7\r\nmessage\r\n${}\r\n{CHANNEL}\r\n${RECORD}\r\n",
                CHANNEL.len()
            );
            spin_frames(&mut s, &mut rec, &plan, header.len());
        }
        other => panic!("unknown role {other}"),
    }
    rec.report();
}

/// Busy-reads frames of `header + RECORD (+ 2 for Redis's CRLF)` bytes from a nonblocking
/// stream.
fn spin_frames(s: &mut impl Read, rec: &mut Recorder, plan: &Plan, header: usize) {
    let frame = header + RECORD + if header > 0 { 2 } else { 0 };
    let mut buf = vec![0u8; frame * 256];
    let (mut start, mut end) = (0, 0);
    while rec.seen < plan.total() {
        match s.read(&mut buf[end..]) {
            Ok(0) => panic!("publisher closed early"),
            Ok(n) => end += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                core::hint::spin_loop();
                continue;
            }
            Err(e) => panic!("{e}"),
        }
        while end - start >= frame {
            rec.got(&buf[start + header..start + header + RECORD]);
            start += frame;
        }
        if start == end {
            (start, end) = (0, 0);
        } else if buf.len() - end < frame {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
    }
}

fn resp(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Starts a reader process and waits for its `ready`.
fn spawn_reader(role: &str, arg: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(std::env::args().skip(1))
        .env(ROLE_ENV, format!("{role} {arg}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{role} reader did not start");
    (child, out)
}

/// Sends `plan.total()` messages at the fixed interval through `send`. Between sends the
/// publisher sleeps (then spins the last stretch for an exact send time), leaving its core
/// to whatever else the transport needs: the kernel's socket work, or redis-server.
fn publish(plan: &Plan, mut send: impl FnMut(&BarRecord)) {
    let mut due = mono_ns();
    for seq in 0..plan.total() {
        let ahead = due.saturating_sub(mono_ns());
        if ahead > 80_000 {
            std::thread::sleep(std::time::Duration::from_nanos(ahead - 70_000));
        }
        while mono_ns() < due {
            core::hint::spin_loop();
        }
        send(&message(seq));
        due += plan.interval_ns;
    }
}

fn finish(mut child: Child, mut out: BufReader<std::process::ChildStdout>) -> [u64; 6] {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(child.wait().unwrap().success(), "reader failed");
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    v.try_into().expect("six numbers")
}

fn bench_shm(plan: &Plan, dir: &PathBuf) -> [u64; 6] {
    let mut config = BusConfig::new(dir);
    config.capacities = Capacities {
        bars: 1 << 16,
        ..Capacities::default()
    };
    let mut bus = BusWriter::create(&config, &[]).unwrap();
    let (child, out) = spawn_reader("shm", dir.to_str().unwrap());
    publish(plan, |m| bus.bars.publish(m));
    finish(child, out)
}

fn bench_uds(plan: &Plan, dir: &std::path::Path) -> [u64; 6] {
    let path = dir.join("bench.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let (child, out) = std::thread::scope(|s| {
        let accept = s.spawn(|| listener.accept().unwrap().0);
        let spawned = spawn_reader("uds", path.to_str().unwrap());
        let mut conn = accept.join().unwrap();
        publish(plan, |m| conn.write_all(bytemuck::bytes_of(m)).unwrap());
        spawned
    });
    finish(child, out)
}

fn bench_redis(plan: &Plan, port: u16) -> [u64; 6] {
    let (child, out) = spawn_reader("redis", &port.to_string());
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_nodelay(true).unwrap();
    // Replies (`:1\r\n` each) are drained on another thread so the socket never fills.
    let mut replies = conn.try_clone().unwrap();
    let total = plan.total();
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut bytes = 0u64;
        while bytes < total * 4 {
            bytes += replies.read(&mut buf).unwrap() as u64;
        }
    });
    publish(plan, |m| {
        conn.write_all(&resp(&[
            b"PUBLISH",
            CHANNEL.as_bytes(),
            bytemuck::bytes_of(m),
        ]))
        .unwrap()
    });
    drain.join().unwrap();
    finish(child, out)
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let (role, arg) = role.split_once(' ').unwrap();
        reader(role, arg);
        return;
    }
    pin(0);
    let plan = plan();
    let dir =
        std::path::Path::new("/dev/shm").join(format!("flowcore-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rows = vec![("shared memory", bench_shm(&plan, &dir))];
    rows.push(("unix socket", bench_uds(&plan, &dir)));
    match std::env::var("REDIS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        Some(port) => rows.push(("redis pub/sub", bench_redis(&plan, port))),
        None => {
            eprintln!("redis pub/sub: skipped (run scripts/bench-shm.sh to start a redis-server)")
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !full_run() {
        println!("shm bench: smoke pass ok ({} transports)", rows.len());
        return;
    }
    println!(
        "publish -> visible in another process (cpu 0 -> cpu 1), {RECORD}-byte record, {} msgs/s, \
         spinning reader, {} samples after {} warm-up (ns)",
        1_000_000_000 / plan.interval_ns,
        plan.samples,
        plan.warmup
    );
    println!(
        "  {:<15} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "transport", "p50", "p90", "p99", "p99.9", "max", "count"
    );
    for (name, [n, p50, p90, p99, p999, max]) in &rows {
        println!("  {name:<15} {p50:>8} {p90:>8} {p99:>8} {p999:>8} {max:>8} {n:>9}");
    }
    let shm = rows[0].1;
    for (name, r) in &rows[1..] {
        println!(
            "  {name} / shared memory: p50 {:.1}x, p99 {:.1}x, p99.9 {:.1}x",
            r[1] as f64 / shm[1] as f64,
            r[3] as f64 / shm[3] as f64,
            r[4] as f64 / shm[4] as f64
        );
    }
}
