//! The gateway with the paper executor, in-process: the kill switch by file and over the
//! control port (entries stop, exits go on), `GET /status`, `POST /stop`, and the run
//! summary's counts, on signals published to shared memory by `flowcore signal`'s code.

use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_gateways::order::Rejection;
use flowcore_gateways::{GatewayConfig, RunControl};
use flowcore_tests::{control, temp_dir};
use flowcore_tools::manual_signal::{publish, ManualSignal};
use serde_json::Value as Json;
use std::path::Path;
use std::time::{Duration, Instant};

fn signal(bus: &Path, symbol: &str, action: &str) -> u64 {
    publish(
        bus,
        &InstrumentTable::bundled_defaults(),
        &ManualSignal {
            venue: Venue::BinanceUsdm,
            symbol: symbol.into(),
            action: action.into(),
            // No bus quotes these symbols: the paper broker fills at the entry price.
            entry: Some(
                if symbol == "BTCUSDT" {
                    "60000.5"
                } else {
                    "3000.25"
                }
                .into(),
            ),
            stop: None,
            target: None,
            confidence: "0.9".into(),
            size: None,
            strategy: "paper-test".into(),
        },
    )
    .unwrap()
}

fn decision(journal: &Path, id: u64) -> Option<String> {
    std::fs::read_to_string(journal)
        .ok()?
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .and_then(|(_, j)| serde_json::from_str::<Json>(j).ok())
        })
        .find(|r| r["t"] == "decision" && r["key"]["id"] == id)
        .map(|r| r["outcome"].as_str().unwrap().to_string())
}

fn wait_decision(journal: &Path, id: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(d) = decision(journal, id) {
            return d;
        }
        assert!(Instant::now() < deadline, "no decision on signal {id}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_switches_stop_entries_not_exits_and_the_summary_counts_them() {
    let dir = temp_dir("gw-paper");
    let bus = dir.join("bus");
    let kill = dir.join("kill");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = GatewayConfig::parse(
        &format!(
            "buses = [\"bus\"]\njournal = \"journal\"\nexecutor = \"paper\"\nidle = \"yield\"\nfsync = \"never\"\n\
             control = \"127.0.0.1:{port}\"\n[pairs]\nBTCUSDT = \"BTC/USDT:USDT\"\nETHUSDT = \"ETH/USDT:USDT\"\n\
             [risk]\nkill_file = \"kill\"\ncooldown_s = 0\nmax_correlated_positions = 5\n[paper]\nfee_bps = 10\nslippage_bps = 0\n"
        ),
        &dir,
        None,
    )
    .unwrap();
    let journal = dir.join("journal/gateway.journal");
    let control_run = RunControl {
        duration: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let stop = control_run.stop.clone();
    let gateway = std::thread::spawn(move || flowcore_gateways::run(config, control_run).unwrap());
    std::thread::sleep(Duration::from_millis(300));

    std::fs::write(&kill, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let refused = signal(&bus, "BTCUSDT", "long");
    assert_eq!(wait_decision(&journal, refused), "kill_switch");
    std::fs::remove_file(&kill).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let btc = signal(&bus, "BTCUSDT", "long");
    assert_eq!(wait_decision(&journal, btc), "order");

    assert_eq!(control(port, "POST", "/kill")["kill_switch"], true);
    std::thread::sleep(Duration::from_millis(50));
    let eth = signal(&bus, "ETHUSDT", "long");
    assert_eq!(wait_decision(&journal, eth), "kill_switch");
    let exit = signal(&bus, "BTCUSDT", "exit");
    assert_eq!(
        wait_decision(&journal, exit),
        "order",
        "exits go on under the kill switch"
    );
    assert_eq!(control(port, "POST", "/resume")["kill_switch"], false);
    std::thread::sleep(Duration::from_millis(50));
    let eth = signal(&bus, "ETHUSDT", "long");
    assert_eq!(wait_decision(&journal, eth), "order");

    std::thread::sleep(Duration::from_millis(300));
    let status = control(port, "GET", "/status");
    assert_eq!(status["rejections"]["kill_switch"], 2, "{status}");
    assert_eq!(status["orders_sent"], 3, "{status}");
    control(port, "POST", "/stop");
    let summary = gateway.join().unwrap();
    assert!(
        stop.load(std::sync::atomic::Ordering::Relaxed),
        "POST /stop set the stop flag"
    );
    assert_eq!(summary.risk.signals, 5);
    assert_eq!(summary.risk.rejected[Rejection::KillSwitch as usize], 2);
    assert_eq!((summary.risk.entries, summary.risk.exits), (2, 1));
    assert_eq!(summary.open_positions, 1, "ETH stays open");
    // One BTC round trip of the fixed 100 stake at 60000.5 in and out (no quotes: flat),
    // 10 bps each way.
    let fees = 2.0 * 0.001 * 100.0;
    let realised: f64 = summary.realised.to_num();
    assert!(
        (realised + fees).abs() < 1e-6,
        "realised {realised}, fees {fees}"
    );
}
