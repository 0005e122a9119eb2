//! The backtest's HTML report and `flowcore bench e2e`'s page in a real headless Chromium
//! (Debian's, installed by scripts/setup-chromium.sh): opened from a file with the network
//! off, a page must load with no script or console error and every chart must have drawn
//! data for each of its series. The pages report what they drew in
//! `document.body.dataset.status`.

use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::InstrumentTable;
use flowcore_gateways::backtest::{BacktestConfig, LatencyModel};
use flowcore_runtime::replay::ReplayThreads;
use flowcore_runtime::strategies::load_strategies;
use flowcore_tests::{btc_inputs, repo, temp_dir};
use flowcore_tools::backtest::{gateway_config, run_backtest};
use flowcore_tools::report::{html, CHARTS};
use serde_json::Value as Json;
use std::path::Path;
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The DOM after load, as Chromium serialises it.
fn dump_dom(page: &Path, profile: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run ./scripts/setup-chromium.sh (./scripts/test.sh does)"
    );
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Nothing may come from the network: the report is one file.
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=10000",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What a page reported it drew, after checking it reported no error.
fn drawn(page: &str, name: &str) -> Json {
    // (uPlot's licence banner names its home page; nothing is loaded from anywhere.)
    for external in [
        "<script src",
        "<link",
        "<img",
        "src=\"http",
        "href=\"http",
        "url(http",
    ] {
        assert!(
            !page.contains(external),
            "the page must be self-contained: {external}"
        );
    }
    let dir = temp_dir(name);
    let file = dir.join(format!("{name}.html"));
    std::fs::write(&file, page).unwrap();
    let dom = dump_dom(&file, &dir.join("chromium-profile"));
    let at = dom
        .find("data-status=\"")
        .unwrap_or_else(|| panic!("the page never reported (a script failed to run)"));
    let rest = &dom[at + "data-status=\"".len()..];
    let status: Json = serde_json::from_str(&unescape(&rest[..rest.find('"').unwrap()])).unwrap();
    assert_eq!(status["errors"], Json::Array(vec![]), "{status:#}");
    status["drawn"].clone()
}

/// The end-to-end bench's page: a chart per rate, a curve per stack, each with every
/// percentile point of its results.
#[test]
fn the_e2e_page_opens_offline_in_chromium_and_draws_each_stacks_curve() {
    use flowcore_tools::bench_e2e::{page, E2eOptions, RunResult, StageStats};
    let curve = |scale: u64| -> Vec<(f64, u64)> {
        (0..=80)
            .map(|k: u32| {
                (
                    1.0 - 10f64.powf(-f64::from(k) / 20.0),
                    scale * u64::from(k + 1),
                )
            })
            .chain([(1.0, scale * 1000)])
            .collect()
    };
    let result = |stack: &str, rate: u64, scale: u64| RunResult {
        stack: stack.into(),
        rate,
        frames: 100,
        trades_sent: 20,
        trades_seen: 20,
        stages: vec![StageStats {
            name: "wire -> visible",
            count: 20,
            ns: [scale, 2 * scale, 3 * scale, 4 * scale, 5 * scale],
            curve: curve(scale),
        }],
        engine_summary: String::new(),
    };
    let results = [
        result("flowcore inline (spin)", 10_000, 10_000),
        result("conventional", 10_000, 150_000),
        result("flowcore inline (spin)", 50_000, 12_000),
        result("conventional", 50_000, 170_000),
    ];
    let options = E2eOptions {
        exe: "flowcore".into(),
        recording: "usdm.txt.gz".into(),
        messages: 100,
        rates: vec![10_000, 50_000],
        engines: Vec::new(),
        strategies: None,
        conventional: true,
        warm_up: std::time::Duration::ZERO,
        out: "out".into(),
    };
    let json = page::results_json(&options, &results);
    assert_eq!(json["ratios"][0]["p50"], 15.0);
    let drawn = drawn(&page::html(&json), "e2e");
    for rate in [10_000, 50_000] {
        let chart = &drawn[format!("rate-{rate}")];
        for stack in ["flowcore inline (spin)", "conventional"] {
            assert_eq!(chart[stack], 82, "{rate} {stack}: {drawn:#}");
        }
    }
}

#[test]
fn the_report_opens_offline_in_chromium_and_every_chart_draws_data() {
    let path = repo().join("config/strategies/short.toml");
    let strategies = load_strategies(&std::fs::read_to_string(path).unwrap()).unwrap();
    let run = run_backtest(
        InstrumentTable::bundled_defaults(),
        ImbalanceConfig::default(),
        btc_inputs(),
        strategies,
        BacktestConfig {
            gateway: gateway_config(None).unwrap(),
            latency: LatencyModel {
                feed_ns: 0,
                order_ns: 100_000_000,
                ..LatencyModel::default()
            },
            warmup_s: 0,
        },
        ReplayThreads::One,
    )
    .unwrap();
    let page = html(&run, &run.to_json());
    let drawn = drawn(&page, "report");
    for chart in CHARTS {
        let series = drawn[chart]
            .as_object()
            .unwrap_or_else(|| panic!("chart {chart} not drawn: {drawn:#}"));
        assert!(!series.is_empty(), "{chart}: no series");
        for (name, points) in series {
            assert!(
                points.as_u64() > Some(0),
                "{chart}: series {name} drew nothing: {drawn:#}"
            );
        }
    }
    // What the charts drew is the run's: every portfolio trade's entry, every signal.
    let price = &drawn["price"];
    let entries =
        price["long entry"].as_u64().unwrap_or(0) + price["short entry"].as_u64().unwrap_or(0);
    assert_eq!(entries, run.report.trades.len() as u64);
    let scores: u64 = drawn["score"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(scores, run.report.signals);
    assert_eq!(
        drawn["equity"]["equity"].as_u64(),
        Some(run.report.equity.len() as u64)
    );
}
