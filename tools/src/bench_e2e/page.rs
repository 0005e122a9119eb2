//! The bench's results as JSON and as one self-contained HTML page: percentile curves of
//! wire -> visible per rate (every stack on one chart, log scales), flowcore's stages, and
//! the ratios. Charts are drawn by the uPlot embedded in the page, as the backtest report's.

use super::results::{ratios, result_json, E2eOptions, RunResult, TOTAL};
use crate::report::{escape, STATUS_JS, UPLOT_CSS, UPLOT_JS, UPLOT_LICENSE};
use serde_json::{json, Value as Json};

/// Everything the bench measured, with what it ran.
pub fn results_json(options: &E2eOptions, results: &[RunResult]) -> Json {
    json!({
        "recording": options.recording.display().to_string(),
        "messages": options.messages,
        "rates": options.rates,
        "warm_up_ms": options.warm_up.as_millis() as u64,
        "machine_cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "results": results.iter().map(result_json).collect::<Vec<_>>(),
        "ratios": ratios(results)
            .into_iter()
            .map(|(r, [p50, p99, p999])| json!({
                "rate": r.rate,
                "stack": r.stack,
                "p50": p50,
                "p99": p99,
                "p999": p999,
            }))
            .collect::<Vec<_>>(),
    })
}

const SCRIPT: &str = r#"
// x: -log10(1 - q), so p90 is 1, p99 2, p99.9 3; the max sits at 4.5.
const nines = q => q >= 1 ? 4.5 : -Math.log10(1 - q);
const label = x => x >= 4.5 ? 'max' : 'p' + +(100 * (1 - Math.pow(10, -x))).toFixed(Math.max(0, Math.ceil(x) - 2));
for (const rate of D.rates) {
  const id = 'rate-' + rate;
  const runs = D.results.filter(r => r.rate === rate);
  const curves = runs.map(r => r.stages.find(s => s.name === 'wire -> visible').curve);
  const xs = curves[0].map(p => nines(p[0]));
  const data = [xs, ...curves.map(c => c.map(p => p[1] / 1000))];
  new uPlot({
    width: 900, height: 360, title: `wire -> visible at ${rate} frames/s (µs)`,
    scales: { x: { time: false }, y: { distr: 3 } },
    axes: [{ splits: () => [0, 1, 2, 3, 4, 4.5], values: (u, v) => v.map(label) }, { size: 70 }],
    series: [{ value: (u, v) => label(v) }, ...runs.map((r, i) => ({ label: r.stack, stroke: COLORS[i % COLORS.length], width: 2 }))],
    hooks: { draw: [u => {
      status.drawn[id] = Object.fromEntries(runs.map((r, i) => [r.stack, u.data[i + 1].filter(v => v != null).length]));
      publish();
    }] },
  }, data, document.getElementById(id));
}
publish();
"#;

/// The page.
pub fn html(results: &Json) -> String {
    let data = results.to_string().replace("</", "<\\/");
    let rates: Vec<u64> = results["rates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_u64)
        .collect();
    let charts: String = rates
        .iter()
        .map(|r| format!("<div class=\"chart\" id=\"rate-{r}\"></div>\n"))
        .collect();
    let us = |v: &Json| format!("{:.1}", v.as_f64().unwrap_or(0.0) / 1000.0);
    let mut rows = String::new();
    for r in results["results"].as_array().into_iter().flatten() {
        for s in r["stages"].as_array().into_iter().flatten() {
            let name = s["name"].as_str().unwrap_or("");
            let strong = if name == TOTAL {
                " class=\"total\""
            } else {
                ""
            };
            rows += &format!(
                "<tr{strong}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(r["stack"].as_str().unwrap_or("")),
                r["rate"],
                escape(name),
                us(&s["p50_ns"]),
                us(&s["p90_ns"]),
                us(&s["p99_ns"]),
                us(&s["p999_ns"]),
                us(&s["max_ns"]),
                s["count"],
            );
        }
    }
    let ratios: String = results["ratios"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{:.1}x</td><td>{:.1}x</td><td>{:.1}x</td></tr>\n",
                escape(r["stack"].as_str().unwrap_or("")),
                r["rate"],
                r["p50"].as_f64().unwrap_or(0.0),
                r["p99"].as_f64().unwrap_or(0.0),
                r["p999"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>flowcore bench e2e</title>
<style>{UPLOT_CSS}
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
td:first-child, td:nth-child(3) {{ text-align: left; }}
tr.total {{ font-weight: bold; }}
</style></head>
<body>
<h1>flowcore bench e2e</h1>
<p>Wire (the frame's due time at an open-loop sender) to a trade visible to a reader process;
flowcore over shared memory, the conventional stack (tokio-tungstenite, serde_json,
rust_decimal, tokio mpsc, Redis pub/sub) over a real redis-server. {}</p>
<h2>Conventional over flowcore, wire -> visible</h2>
<table><tr><th>flowcore</th><th>frames/s</th><th>p50</th><th>p99</th><th>p99.9</th></tr>
{ratios}</table>
<h2>Percentiles</h2>
{charts}
<h2>Stages (µs)</h2>
<table><tr><th>stack</th><th>frames/s</th><th>stage</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>samples</th></tr>
{rows}</table>
<script type="application/json" id="data">{data}</script>
<script>/*
{UPLOT_LICENSE}*/
{UPLOT_JS}</script>
<script>{STATUS_JS}{SCRIPT}</script>
</body></html>
"#,
        escape(&format!(
            "{} frames of {} per run.",
            results["messages"],
            results["recording"].as_str().unwrap_or("")
        )),
    )
}
