//! The gateway against a real FreqTrade (2026.9 from PyPI, `scripts/setup-freqtrade.sh`),
//! dry-run and offline (`tests/freqtrade/launch.py` replaces only ccxt's network methods;
//! the bot loop, its API server with auth and validation, and its sqlite trade database
//! are FreqTrade's own). Signals are written to shared memory with `flowcore signal`'s
//! code; the gateway runs as its own `flowcore gateway` process, so it can be killed.
//!
//! Every scenario ends by asserting on FreqTrade's own `/status` and trade list that no
//! signal entered twice and no open trade was forgotten.

use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_gateways::http::HttpClient;
use flowcore_tests::{control, repo, temp_dir};
use flowcore_tools::manual_signal::{publish, ManualSignal};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One bot at a time: each takes a core for seconds while it starts.
static SERIAL: Mutex<()> = Mutex::new(());

const PASSWORD: &str = "gateway-test-password";

fn python() -> PathBuf {
    let p = repo().join(".venv-freqtrade/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run ./scripts/setup-freqtrade.sh (./scripts/test.sh does)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Bot {
    child: Option<Child>,
    dir: flowcore_tests::TempDir,
    port: u16,
    args: Vec<String>,
}

impl Bot {
    fn start(mode: &str, extra: &[&str]) -> Bot {
        let dir = temp_dir(&format!("freqtrade-{mode}"));
        let mut bot = Bot {
            child: None,
            port: free_port(),
            dir,
            args: std::iter::once(mode)
                .chain(extra.iter().copied())
                .map(str::to_string)
                .collect(),
        };
        bot.launch(&[]);
        bot
    }

    fn launch(&mut self, more: &[&str]) {
        let log = std::fs::File::create(self.dir.join("launcher.log")).unwrap();
        let child = Command::new(python())
            .arg(repo().join("tests/freqtrade/launch.py"))
            .args(["--dir", self.dir.to_str().unwrap()])
            .args(["--port", &self.port.to_string()])
            .args(["--password", PASSWORD])
            .arg("--mode")
            .args(&self.args)
            .args(more)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the FreqTrade launcher");
        self.child = Some(child);
        wait_until("FreqTrade's /ping", Duration::from_secs(120), || {
            let c = self.child.as_mut().unwrap();
            if let Ok(Some(status)) = c.try_wait() {
                panic!(
                    "FreqTrade exited ({status}): {}",
                    std::fs::read_to_string(self.dir.join("launcher.log")).unwrap_or_default()
                );
            }
            self.get("/ping").is_some()
        });
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, Json)> {
        use base64::Engine as _;
        let mut http =
            HttpClient::new(&format!("{}/api/v1", self.url()), Duration::from_secs(10)).ok()?;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("flowcore:{PASSWORD}"))
        );
        let r = http
            .request(
                method,
                path,
                &[("Authorization", &auth)],
                body.map(str::as_bytes),
                || {},
            )
            .ok()?;
        Some((
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Json::Null),
        ))
    }

    fn get(&self, path: &str) -> Option<Json> {
        self.call("GET", path, None)
            .filter(|r| r.0 == 200)
            .map(|r| r.1)
    }

    /// Open trades as (trade id, pair, enter_tag).
    fn open_trades(&self) -> Vec<(u64, String, String)> {
        let s = self.get("/status").expect("/status");
        s.as_array().unwrap().iter().map(trade_row).collect()
    }

    /// Every trade: the closed ones (`/trades` lists only those) and the open ones.
    fn all_trades(&self) -> Vec<(u64, String, String)> {
        let t = self.get("/trades?limit=500").expect("/trades");
        let mut all: Vec<_> = t["trades"]
            .as_array()
            .unwrap()
            .iter()
            .map(trade_row)
            .collect();
        all.extend(self.open_trades());
        all.sort();
        all
    }
}

fn trade_row(t: &Json) -> (u64, String, String) {
    (
        t["trade_id"].as_u64().unwrap(),
        t["pair"].as_str().unwrap().to_string(),
        t["enter_tag"].as_str().unwrap_or("").to_string(),
    )
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Gateway {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    journal: PathBuf,
    runs: u32,
}

fn flowcore_bin() -> PathBuf {
    // tests run from target/<profile>/deps; `--all-targets` built the CLI beside it.
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("flowcore");
    assert!(
        bin.exists(),
        "{} not built (cargo test --workspace --all-targets builds it)",
        bin.display()
    );
    bin
}

impl Gateway {
    fn config(dir: &Path, bus: &Path, bot: &Bot, pairs: &str, extra: &str) -> Gateway {
        std::fs::write(dir.join("ft.password"), format!("{PASSWORD}\n")).unwrap();
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "buses = [\"{}\"]\njournal = \"journal\"\nexecutor = \"freqtrade\"\nidle = \"yield\"\n\
                 [freqtrade]\nurl = \"{}\"\nusername = \"flowcore\"\npassword_file = \"ft.password\"\nreconcile_s = 1\n\
                 [pairs]\n{pairs}\n[risk]\ncooldown_s = 0\nmax_correlated_positions = 10\n{extra}",
                bus.display(),
                bot.url()
            ),
        )
        .unwrap();
        Gateway {
            child: None,
            log: dir.join("gateway.log"),
            journal: dir.join("journal/gateway.journal"),
            config,
            runs: 0,
        }
    }

    fn start(&mut self, env: &[(&str, &str)]) {
        self.runs += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(flowcore_bin())
            .args(["gateway", "--config", self.config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let runs = self.runs;
        wait_until("the gateway to start", Duration::from_secs(30), || {
            self.log_text().matches("gateway: freqtrade at").count() >= runs as usize
        });
    }

    /// Waits for the gateway to exit on its own (a crash point), returns its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The journal's records as JSON.
    fn journal(&self) -> Vec<Json> {
        std::fs::read_to_string(&self.journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .and_then(|(_, j)| serde_json::from_str(j).ok())
            })
            .collect()
    }

    /// The outcome the journal gives signal `id` (its decision), once there.
    fn decision(&self, id: u64) -> Option<String> {
        self.journal()
            .iter()
            .rev()
            .find(|r| r["t"] == "decision" && r["key"]["id"] == id)
            .map(|r| r["outcome"].as_str().unwrap().to_string())
    }

    /// The result the journal gives signal `id`'s order: (ok, error).
    fn result(&self, id: u64) -> Option<(bool, String)> {
        self.journal()
            .iter()
            .rev()
            .find(|r| r["t"] == "result" && r["key"]["id"] == id)
            .map(|r| {
                (
                    r["ok"].as_bool().unwrap(),
                    r["error"].as_str().unwrap_or("").to_string(),
                )
            })
    }

    fn wait_decision(&self, id: u64) -> String {
        let mut out = None;
        wait_until(
            &format!("a decision on signal {id}"),
            Duration::from_secs(20),
            || {
                out = self.decision(id);
                out.is_some()
            },
        );
        out.unwrap()
    }

    fn wait_result(&self, id: u64) -> (bool, String) {
        let mut out = None;
        wait_until(
            &format!("a result for signal {id}"),
            Duration::from_secs(20),
            || {
                out = self.result(id);
                out.is_some()
            },
        );
        out.unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

fn signal(bus: &Path, venue: Venue, symbol: &str, action: &str) -> u64 {
    publish(
        bus,
        &InstrumentTable::bundled_defaults(),
        &ManualSignal {
            venue,
            symbol: symbol.into(),
            action: action.into(),
            entry: None,
            stop: None,
            target: None,
            confidence: "1".into(),
            size: None,
            strategy: "test".into(),
        },
    )
    .expect("publish a signal")
}

fn tags(trades: &[(u64, String, String)]) -> Vec<String> {
    trades.iter().map(|t| t.2.clone()).collect()
}

#[test]
fn spot_signals_open_and_close_real_trades_and_a_restarted_gateway_does_not_enter_again() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bot = Bot::start("spot", &[]);
    let dir = temp_dir("gw-spot");
    let bus = dir.join("bus");
    let mut gw = Gateway::config(
        &dir,
        &bus,
        &bot,
        "\"binance-spot:BTCUSDT\" = \"BTC/USDT\"",
        "",
    );
    gw.start(&[]);

    let long = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert_eq!(gw.wait_decision(long), "order");
    assert!(gw.wait_result(long).0, "{}", gw.log_text());
    assert_eq!(
        tags(&bot.open_trades()),
        vec![long.to_string()],
        "enter_tag is the signal id"
    );

    // A pair not in the map never reaches FreqTrade; a short on spot is FreqTrade's refusal.
    let eth = signal(&bus, Venue::BinanceSpot, "ETHUSDT", "long");
    assert_eq!(gw.wait_decision(eth), "unknown_pair");

    // Killed and restarted: the bus still holds the entry (carried into each new epoch),
    // the journal says it was handled, so nothing enters again.
    gw.kill();
    gw.start(&[]);
    let again = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert_eq!(
        gw.wait_decision(again),
        "position_open",
        "the restored position counts"
    );
    assert_eq!(bot.open_trades().len(), 1);

    let exit = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "exit");
    assert_eq!(gw.wait_decision(exit), "order");
    wait_until("the trade to close", Duration::from_secs(20), || {
        bot.open_trades().is_empty()
    });
    assert!(gw.wait_result(exit).0, "{}", gw.log_text());
    let all = bot.all_trades();
    assert_eq!(
        tags(&all),
        vec![long.to_string()],
        "one trade for one entry signal: {all:?}"
    );
    gw.kill();
    assert!(
        !gw.log_text().contains(PASSWORD),
        "the password never reaches a log line"
    );
}

#[test]
fn futures_shorts_and_freqtrade_refusals_are_counted_not_retried() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bot = Bot::start("futures", &["--max-open-trades", "1"]);
    let dir = temp_dir("gw-futures");
    let bus = dir.join("bus");
    let mut gw = Gateway::config(
        &dir,
        &bus,
        &bot,
        "\"binance-usdm:BTCUSDT\" = \"BTC/USDT:USDT\"\n\"binance-usdm:ETHUSDT\" = \"ETH/USDT:USDT\"",
        "",
    );
    gw.start(&[]);
    let short = signal(&bus, Venue::BinanceUsdm, "BTCUSDT", "short");
    assert!(gw.wait_result(short).0, "{}", gw.log_text());
    let open = bot.get("/status").unwrap();
    assert_eq!(open[0]["is_short"], true);
    assert_eq!(open[0]["enter_tag"], short.to_string());

    // FreqTrade's own limit (max_open_trades 1) refuses the second pair.
    let eth = signal(&bus, Venue::BinanceUsdm, "ETHUSDT", "long");
    let (ok, why) = gw.wait_result(eth);
    assert!(!ok && why.contains("Maximum number of trades"), "{why}");

    let exit = signal(&bus, Venue::BinanceUsdm, "BTCUSDT", "exit");
    assert!(gw.wait_result(exit).0);
    wait_until("the short to close", Duration::from_secs(20), || {
        bot.open_trades().is_empty()
    });

    // Paused, then stopped: entries are refused as "not running", none is sent again.
    assert_eq!(bot.call("POST", "/stopentry", None).unwrap().0, 200);
    let paused = signal(&bus, Venue::BinanceUsdm, "ETHUSDT", "long");
    let (ok, why) = gw.wait_result(paused);
    assert!(!ok && why.contains("not running"), "{why}");
    assert_eq!(bot.call("POST", "/stop", None).unwrap().0, 200);
    let stopped = signal(&bus, Venue::BinanceUsdm, "ETHUSDT", "long");
    let (ok, why) = gw.wait_result(stopped);
    assert!(!ok && why.contains("not running"), "{why}");
    assert_eq!(bot.call("POST", "/start", None).unwrap().0, 200);
    let all = bot.all_trades();
    assert_eq!(tags(&all), vec![short.to_string()], "{all:?}");
}

#[test]
fn a_killed_freqtrade_and_voided_tokens_lose_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bot = Bot::start("spot", &[]);
    let dir = temp_dir("gw-ftkill");
    let bus = dir.join("bus");
    let mut gw = Gateway::config(
        &dir,
        &bus,
        &bot,
        "\"binance-spot:BTCUSDT\" = \"BTC/USDT\"\n\"binance-spot:ETHUSDT\" = \"ETH/USDT\"",
        "",
    );
    gw.start(&[]);
    let btc = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert!(gw.wait_result(btc).0, "{}", gw.log_text());

    // FreqTrade dies: the next entry cannot be sent (connection refused), is counted and
    // not retried; the open BTC trade survives in FreqTrade's database.
    bot.kill();
    let lost = signal(&bus, Venue::BinanceSpot, "ETHUSDT", "long");
    let (ok, why) = gw.wait_result(lost);
    assert!(!ok && why.contains("connect"), "{why}");

    // Back with another JWT secret: every token the gateway holds is void. The gateway's
    // next call is refused (401), its refresh too, and it logs in again.
    bot.launch(&[
        "--jwt-secret",
        "rotated-jwt-secret-0123456789abcdef0123456789abcdef",
    ]);
    let eth = signal(&bus, Venue::BinanceSpot, "ETHUSDT", "long");
    assert!(gw.wait_result(eth).0, "{}", gw.log_text());
    assert!(gw
        .log_text()
        .contains("refused our token and its refresh; logging in again"));
    let exit = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "exit");
    assert!(gw.wait_result(exit).0, "{}", gw.log_text());
    wait_until("BTC to close", Duration::from_secs(20), || {
        bot.open_trades().iter().all(|t| t.1 != "BTC/USDT")
    });
    let mut all = tags(&bot.all_trades());
    all.sort();
    let mut want = vec![btc.to_string(), eth.to_string()];
    want.sort();
    assert_eq!(
        all, want,
        "the refused entry never entered, none entered twice"
    );
    assert_eq!(tags(&bot.open_trades()), vec![eth.to_string()]);
}

#[test]
fn a_gateway_killed_between_intent_and_request_or_request_and_answer_never_enters_twice() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bot = Bot::start("spot", &[]);
    let dir = temp_dir("gw-crash");
    let bus = dir.join("bus");
    let mut gw = Gateway::config(
        &dir,
        &bus,
        &bot,
        "\"binance-spot:BTCUSDT\" = \"BTC/USDT\"\n\"binance-spot:ETHUSDT\" = \"ETH/USDT\"",
        "",
    );
    // Dies after the intent is on disk, before the request: nothing reached FreqTrade.
    gw.start(&[("FLOWCORE_GATEWAY_CRASH", "intent")]);
    let btc = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert!(!gw.wait_exit().success());
    assert!(bot.open_trades().is_empty());
    // Dies after the request is written, before the answer: FreqTrade entered.
    gw.start(&[("FLOWCORE_GATEWAY_CRASH", "request")]);
    let eth = signal(&bus, Venue::BinanceSpot, "ETHUSDT", "long");
    assert!(!gw.wait_exit().success());
    wait_until("FreqTrade to enter ETH", Duration::from_secs(20), || {
        tags(&bot.open_trades()) == vec![eth.to_string()]
    });

    // Restarted for real: the journal has both intents without a result. The BTC one is
    // not in FreqTrade (settled as never entered), the ETH one is (adopted, not re-sent).
    gw.start(&[]);
    let settled = format!("signal {btc} (BTC/USDT): in doubt and not in FreqTrade");
    wait_until(
        "the restart's reconciliation",
        Duration::from_secs(20),
        || {
            let text = gw.log_text();
            text.contains(&settled) && text.contains("1 open position(s) restored")
        },
    );
    let exit = signal(&bus, Venue::BinanceSpot, "ETHUSDT", "exit");
    assert!(gw.wait_result(exit).0, "{}", gw.log_text());
    wait_until("ETH to close", Duration::from_secs(20), || {
        bot.open_trades().is_empty()
    });
    assert_eq!(
        tags(&bot.all_trades()),
        vec![eth.to_string()],
        "no signal entered twice"
    );
    // Both entries were decided once, in the runs that crashed.
    let decisions = gw.journal().iter().filter(|r| r["t"] == "decision").count();
    assert_eq!(
        decisions, 3,
        "btc, eth, exit: the carried signals were not decided again"
    );
}

#[test]
fn a_wrong_password_or_force_entry_disabled_stops_the_gateway_at_start() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bot = Bot::start("spot", &["--force-entry", "false"]);
    let dir = temp_dir("gw-refuse");
    let bus = dir.join("bus");
    let gw = Gateway::config(&dir, &bus, &bot, "BTCUSDT = \"BTC/USDT\"", "");
    let run = |password: &str| {
        std::fs::write(dir.join("ft.password"), password).unwrap();
        let out = Command::new(flowcore_bin())
            .args([
                "gateway",
                "--config",
                gw.config.to_str().unwrap(),
                "--seconds",
                "2",
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run("not-the-password");
    assert!(
        !ok && err.contains("Incorrect username or password"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-password"),
        "the password never reaches a log line"
    );
    let (ok, err) = run(PASSWORD);
    assert!(!ok && err.contains("force_entry_enable"), "{err}");
}

#[test]
fn fills_from_freqtrades_websocket_close_trades_at_once_even_across_a_freqtrade_restart() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bot = Bot::start("spot", &[]);
    let dir = temp_dir("gw-events");
    let bus = dir.join("bus");
    let mut gw = Gateway::config(
        &dir,
        &bus,
        &bot,
        "\"binance-spot:BTCUSDT\" = \"BTC/USDT\"",
        "",
    );
    // Reconciliation with /status an hour apart: what the gateway learns of a close within
    // the test, it learns from the websocket.
    let port = free_port();
    let text = std::fs::read_to_string(&gw.config).unwrap();
    let text = text
        .replace("reconcile_s = 1\n", "reconcile_s = 3600\n")
        .replace(
            "idle = \"yield\"\n",
            &format!("idle = \"yield\"\ncontrol = \"127.0.0.1:{port}\"\n"),
        );
    std::fs::write(&gw.config, text).unwrap();
    gw.start(&[]);
    let subscribed = |n: usize| {
        wait_until(
            "the gateway to subscribe to FreqTrade's events",
            Duration::from_secs(20),
            || {
                gw.log_text()
                    .matches("freqtrade events: subscribed")
                    .count()
                    >= n
            },
        )
    };
    subscribed(1);

    // Our own exit: its result comes from `exit_fill`, not from polling the trade.
    let first = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert!(gw.wait_result(first).0, "{}", gw.log_text());
    let exit = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "exit");
    assert!(gw.wait_result(exit).0, "{}", gw.log_text());

    // A trade FreqTrade closes itself (here: a human's forceexit): the gateway lets go of
    // the position at once, so the next entry signal is an order, not `position_open`.
    let closed_outside = |gw: &Gateway, bot: &Bot, entry: u64| {
        let id = bot
            .open_trades()
            .iter()
            .find(|t| t.2 == entry.to_string())
            .map(|t| t.0)
            .expect("the entry's trade is open");
        let body = format!("{{\"tradeid\": \"{id}\", \"ordertype\": \"market\"}}");
        assert_eq!(bot.call("POST", "/forceexit", Some(&body)).unwrap().0, 200);
        wait_until(
            "the gateway to learn of the close",
            Duration::from_secs(20),
            || {
                gw.journal().iter().any(|r| {
                    r["t"] == "settled"
                        && r["entry"]["id"] == entry
                        && r["why"] == "closed in FreqTrade (exit_fill)"
                })
            },
        );
    };
    let second = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert!(gw.wait_result(second).0, "{}", gw.log_text());
    closed_outside(&gw, &bot, second);
    let third = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert_eq!(gw.wait_decision(third), "order", "{}", gw.log_text());
    assert!(gw.wait_result(third).0, "{}", gw.log_text());
    // An entry's fill event may follow its forceenter answer: seen before FreqTrade is
    // killed, or it may go down with it (one CI run counted three fills of four).
    wait_until("three entry fills", Duration::from_secs(20), || {
        control(port, "GET", "/status")["freqtrade_events"]["entry_fill"].as_u64() >= Some(3)
    });

    // FreqTrade restarts: the socket is lost, counted, and subscribed again.
    bot.kill();
    bot.launch(&[]);
    subscribed(2);
    closed_outside(&gw, &bot, third);
    let fourth = signal(&bus, Venue::BinanceSpot, "BTCUSDT", "long");
    assert_eq!(gw.wait_decision(fourth), "order", "{}", gw.log_text());
    assert!(gw.wait_result(fourth).0, "{}", gw.log_text());

    // The fourth entry's fill may follow its forceenter answer.
    let mut status = Json::Null;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        status = control(port, "GET", "/status");
        if status["freqtrade_events"]["entry_fill"].as_u64() >= Some(4) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let fills = status["freqtrade_events"]["entry_fill"].as_u64();
    assert!(
        fills >= Some(4),
        "four entry fills: {status}\n{}",
        gw.log_text()
    );
    let events = &status["freqtrade_events"];
    assert!(events["exit_fill"].as_u64() >= Some(3), "{status}");
    assert_eq!(events.get("malformed"), None, "{status}");
    let mut all = tags(&bot.all_trades());
    all.sort();
    let mut want: Vec<String> = [first, second, third, fourth]
        .iter()
        .map(u64::to_string)
        .collect();
    want.sort();
    assert_eq!(all, want, "one trade per entry signal");
    assert_eq!(tags(&bot.open_trades()), vec![fourth.to_string()]);
}
