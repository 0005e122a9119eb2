//! `flowcore run` against a WebSocket server this project did not write: the Python
//! `websockets` library (tests/thirdparty/ws_server.py, installed into .venv by
//! scripts/setup-python.sh), sending every message as fragmented frames and pinging every
//! half second. The bars must equal the golden computation of the same recordings, over
//! ws and over wss.

use flowcore_tests::{assert_rows_eq, golden, live_run, local_ca, recording, repo, temp_dir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const FEEDS: [(&str, &str, &[&str]); 3] = [
    (
        "binance-spot",
        "BTCUSDT",
        &[
            "spot_btcusdt_20240808.txt.gz",
            "spot_btcusdt_20240809.txt.gz",
        ],
    ),
    ("binance-usdm", "BTCUSDT", &["usdm_btcusdt_20240808.txt.gz"]),
    (
        "binance-coinm",
        "BTCUSD_PERP",
        &[
            "coinm_btcusd_perp_20240808.txt.gz",
            "coinm_btcusd_perp_20240809.txt.gz",
        ],
    ),
];

struct Server {
    child: Child,
    ws: String,
    rest: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-python.sh (scripts/test.sh does)",
        python.display()
    );
    python
}

fn start_server(tls: Option<(&Path, &Path)>) -> Server {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/thirdparty/ws_server.py")).args([
        "--ping",
        "0.5",
        "--fragment",
        "97",
        "--connections",
        "3",
    ]);
    if let Some((cert, key)) = tls {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    for (venue, _, files) in FEEDS {
        for f in files {
            cmd.arg(format!("{venue}={}", recording(f).display()));
        }
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the Python websockets server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the server announces its address");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("server announcement {line:?}: {e}"));
    Server {
        ws: v["ws"].as_str().unwrap().to_string(),
        rest: v["rest"].as_str().unwrap().to_string(),
        child,
    }
}

fn run_against(server: &Server, ca: Option<&Path>) -> Vec<String> {
    let mut text = String::from("[pipeline]\nidle = \"park\"\n");
    for (venue, symbol, _) in FEEDS {
        text += &format!(
            "[[feed]]\nvenue = \"{venue}\"\nsymbols = [\"{symbol}\"]\nws_url = \"{}/{venue}\"\nrest_url = \"{}\"\n",
            server.ws, server.rest
        );
        if let Some(ca) = ca {
            text += &format!("tls_ca_file = {:?}\n", ca.display().to_string());
        }
    }
    let out = live_run(&text, None);
    assert_eq!(out.summary.parse_errors, 0);
    assert_eq!(out.summary.connect_errors, 0);
    assert!(out.summary.snapshots >= 3);
    out.bars
}

#[test]
fn bars_from_a_third_party_server_over_ws_equal_the_golden_bars() {
    let server = start_server(None);
    let bars = run_against(&server, None);
    assert_rows_eq("bars via websockets (ws)", &bars, &golden("bars_btc.jsonl"));
}

#[test]
fn bars_from_a_third_party_server_over_wss_equal_the_golden_bars() {
    let dir = temp_dir("3p-tls");
    let (ca_path, cert_path, key_path) = local_ca(&dir);
    let server = start_server(Some((&cert_path, &key_path)));
    assert!(server.ws.starts_with("wss://"));
    let bars = run_against(&server, Some(&ca_path));
    assert_rows_eq(
        "bars via websockets (wss)",
        &bars,
        &golden("bars_btc.jsonl"),
    );
    std::fs::remove_dir_all(dir).unwrap();
}
