//! `flowcore bench e2e` as a user runs it, small: every process really started (the
//! open-loop sender, `flowcore run` on io_uring in both pipeline modes, the bus reader, and
//! the conventional stack against a real redis-server), every trade sent seen exactly once
//! by each stack's reader, no stage of flowcore's above the total, and the JSON and HTML written. Idle
//! strategies that park, as tests must on a shared 2-core machine; the bench's figures are
//! for `cargo bench`-like quiet runs, not checked here.

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn redis_here() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is missing: scripts/setup-redis.sh installs it (scripts/test.sh runs it)"
        );
        eprintln!("bench_e2e: no redis-server here; the conventional stack is left out");
    }
    found
}

#[test]
fn every_trade_reaches_each_stacks_reader_and_the_stages_add_up() {
    if let Err(e) = flowcore_feeds::transport::uring::probe() {
        eprintln!("bench_e2e: io_uring unavailable here ({e}); skipped");
        return;
    }
    let conventional = redis_here();
    let out = std::env::temp_dir().join(format!("flowcore-bench-e2e-{}", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowcore"));
    command
        .current_dir(repo())
        .args(["bench", "e2e", "--rates", "5000", "--messages", "4000"])
        .args([
            "--engines",
            "inline:park,threaded:park",
            "--warm-up-ms",
            "800",
        ])
        .arg("--out")
        .arg(&out);
    if !conventional {
        command.arg("--no-conventional");
    }
    let output = command.output().expect("flowcore bench e2e");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("e2e.json")).unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();
    let stacks: Vec<&str> = results
        .iter()
        .map(|r| r["stack"].as_str().unwrap())
        .collect();
    let mut expected = vec!["flowcore inline (park)", "flowcore threaded (park)"];
    if conventional {
        expected.push("conventional");
    }
    assert_eq!(stacks, expected, "{stdout}");
    for r in results {
        let sent = r["trades_sent"].as_u64().unwrap();
        // The first 4,000 frames of the USD-M recording carry several hundred trades.
        assert!(sent > 300, "{r}");
        assert_eq!(
            r["trades_seen"], sent,
            "{}: a trade lost or doubled",
            r["stack"]
        );
        let stages = r["stages"].as_array().unwrap();
        let total = &stages[0];
        assert_eq!(total["name"], "wire -> visible");
        assert_eq!(total["count"], sent);
        assert_eq!(stages[1]["name"], "sent -> visible");
        assert_eq!(stages[1]["count"], sent);
        let (p50, max) = (
            total["p50_ns"].as_u64().unwrap(),
            total["max_ns"].as_u64().unwrap(),
        );
        // Above the loopback's floor and under the run's own length.
        assert!(
            p50 > 1_000 && max < 10_000_000_000,
            "{}: {total}",
            r["stack"]
        );
        let stage = |name: &str| {
            stages
                .iter()
                .find(|s| s["name"] == name)
                .unwrap_or_else(|| panic!("{}: no stage {name}", r["stack"]))
        };
        assert_eq!(stage("sender: due -> sent")["count"], 4000);
        // Timed for each frame written alone: all of them unless the sender fell behind
        // and wrote some together.
        let write = stage("sender: sent -> written (loopback write)");
        let written = write["count"].as_u64().unwrap();
        assert!(written > 0 && written <= 4000, "{write}");
        assert!(write["p50_ns"].as_u64().unwrap() <= write["max_ns"].as_u64().unwrap());
        if r["stack"] != "conventional" {
            // wire -> decoded, parse, engine, publish, bus hop: per trade they sum to the
            // total, so no stage's median can exceed the total's maximum, and the medians
            // of the parts cannot all be zero.
            let parts = &stages[2..7];
            assert!(parts.iter().all(|s| s["count"] == sent), "{r}");
            assert!(parts.iter().all(|s| s["p50_ns"].as_u64().unwrap() <= max));
            assert!(
                parts
                    .iter()
                    .map(|s| s["p50_ns"].as_u64().unwrap())
                    .sum::<u64>()
                    > 0
            );
        }
    }
    if conventional {
        assert_eq!(json["ratios"].as_array().unwrap().len(), 2);
    }
    let html = std::fs::read_to_string(out.join("e2e.html")).unwrap();
    assert!(html.contains("id=\"rate-5000\"") && html.contains("uPlot"));
    std::fs::remove_dir_all(&out).unwrap();
}
