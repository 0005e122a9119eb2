//! `flowcore backtest --report out.html`: one self-contained HTML file (opens offline) with
//! the run's numbers, its trades, and interactive charts drawn by uPlot, which is embedded
//! in the file (vendored in `tools/assets/uplot/` with its MIT licence).
//!
//! The page records what it drew in `document.body.dataset.status` (points per chart and
//! series, and any script error), which is what the headless Chromium test reads.

use crate::backtest::{metric_cells, BacktestRun};
use flowcore_gateways::backtest::{BacktestMetrics, BacktestReport, BacktestTrade};
use serde_json::{json, Value as Json};

pub(crate) const UPLOT_JS: &str = include_str!("../assets/uplot/uPlot.iife.min.js");
pub(crate) const UPLOT_CSS: &str = include_str!("../assets/uplot/uPlot.min.css");
pub(crate) const UPLOT_LICENSE: &str = include_str!("../assets/uplot/LICENSE");

/// The charts: ids the page draws and the test expects.
pub const CHARTS: [&str; 5] = ["price", "cvd", "imbalance", "score", "equity"];

/// The start of every page's script: its data (`#data`), what it drew and any script or
/// console error in `document.body.dataset.status` (what the headless Chromium tests read),
/// and the series colours.
pub(crate) const STATUS_JS: &str = r#"
const D = JSON.parse(document.getElementById('data').textContent);
const status = { drawn: {}, errors: [] };
const publish = () => { document.body.dataset.status = JSON.stringify(status); };
window.addEventListener('error', e => { status.errors.push(String(e.message)); publish(); });
const consoleError = console.error;
console.error = (...a) => { status.errors.push(a.map(String).join(' ')); publish(); consoleError(...a); };
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
"#;

const SCRIPT: &str = r#"

// uPlot wants one x array per chart: the union of the series' times, null where a series
// has no point.
function align(series) {
  const xs = [...new Set(series.flatMap(s => s.pts.map(p => p[0])))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  return [xs, ...series.map(s => {
    const col = new Array(xs.length).fill(null);
    for (const [x, y] of s.pts) col[at.get(x)] = y;
    return col;
  })];
}

function chart(id, series) {
  const el = document.getElementById(id);
  series = series.filter(s => s.pts.length > 0);
  const data = align(series);
  const twoAxes = series.some(s => s.scale === 'y2');
  new uPlot({
    width: Math.max(640, el.clientWidth - 24), height: 280,
    scales: { x: { time: true } },
    series: [{}, ...series.map((s, i) => {
      const color = s.color || COLORS[i % COLORS.length];
      return s.points
        ? { label: s.label, scale: s.scale || 'y', stroke: color, paths: () => null,
            points: { show: true, size: 9, fill: color, stroke: color } }
        : { label: s.label, scale: s.scale || 'y', stroke: color, width: 1.5, spanGaps: true,
            points: { show: false } };
    })],
    axes: [{}, { scale: 'y', size: 80 }, ...(twoAxes ? [{ scale: 'y2', side: 1, size: 70, grid: { show: false } }] : [])],
    hooks: { draw: [u => {
      status.drawn[id] = Object.fromEntries(series.map((s, i) =>
        [s.label, u.data[i + 1].filter(v => v != null).length]));
      publish();
    }] },
  }, data, el);
}

const sec = ns => ns / 1e9;
const t = D.portfolio.trades;
chart('price', [
  ...Object.entries(D.books).map(([name, rows]) => ({ label: name, pts: rows.map(r => [sec(r[0]), r[1]]) })),
  { label: 'long entry', points: true, color: '#2ca02c',
    pts: t.filter(x => x.side === 'long').map(x => [sec(x.entry_ns), +x.entry_price]) },
  { label: 'short entry', points: true, color: '#d62728',
    pts: t.filter(x => x.side === 'short').map(x => [sec(x.entry_ns), +x.entry_price]) },
  { label: 'exit', points: true, color: '#000000',
    pts: t.filter(x => !x.open_at_end).map(x => [sec(x.exit_ns), +x.exit_price]) },
]);
chart('cvd', Object.entries(D.cvd).map(([name, rows]) => ({ label: name, pts: rows.map(r => [sec(r[0]), r[1]]) })));
chart('imbalance', Object.entries(D.books).map(([name, rows]) =>
  ({ label: name, pts: rows.filter(r => r[2] !== null).map(r => [sec(r[0]), r[2]]) })));
const strategies = [...new Set(D.signals.map(s => s.strategy))];
chart('score', strategies.map(name => ({ label: name, points: true,
  pts: D.signals.filter(s => s.strategy === name).map(s => [sec(s.exch_ns), s.score]) })));
let peak = -Infinity;
chart('equity', [
  { label: 'equity', pts: D.portfolio.equity.map(e => [sec(e[0]), e[1]]) },
  { label: 'drawdown %', scale: 'y2', color: '#d62728',
    pts: D.portfolio.equity.map(e => { peak = Math.max(peak, e[1]); return [sec(e[0]), -100 * (peak - e[1]) / peak]; }) },
]);
publish();
"#;

/// The whole page.
pub fn html(run: &BacktestRun, report: &Json) -> String {
    let data = json!({
        "portfolio": report["portfolio"],
        "books": run.series.books,
        "cvd": run.series.cvd,
        "signals": run.series.signals,
    });
    // Inside <script>, "</" would end the element.
    let data = data.to_string().replace("</", "<\\/");
    let mut rows = metrics_row("portfolio", &run.report.metrics);
    for (id, alone) in &run.alone {
        let name = run.strategy_names.get(id).map_or("", String::as_str);
        rows += &metrics_row(&format!("{name} alone"), &alone.metrics);
    }
    let mut trades = trade_rows("portfolio", &run.report, run);
    for (id, alone) in &run.alone {
        let name = run.strategy_names.get(id).map_or("", String::as_str);
        trades += &trade_rows(&format!("{name} alone"), alone, run);
    }
    let stats: String = report["strategies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| !s["signal_stats"].is_null())
        .map(|s| {
            format!(
                "<h3>{}</h3><pre>{}</pre>\n",
                escape(s["strategy"].as_str().unwrap_or("")),
                escape(&serde_json::to_string_pretty(&s["signal_stats"]).unwrap_or_default())
            )
        })
        .collect();
    let m = &run.report.metrics;
    let header: String = metric_cells(m)
        .iter()
        .map(|(k, _)| format!("<th>{k}</th>"))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>flowcore backtest</title>
<style>{UPLOT_CSS}
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
h2 {{ margin-top: 1.5em; font-size: 1.1em; }}
.chart {{ width: 100%; min-height: 300px; }}
</style></head>
<body>
<h1>flowcore backtest</h1>
<p>{messages} messages, {seconds} s of data, {signals} signals. Exchange time throughout; fills at the book top known when the order arrived.</p>
<table><tr><th>run</th>{header}</tr>
{rows}</table>
<h2>Price with entries and exits (portfolio)</h2><div class="chart" id="price"></div>
<h2>Spot vs perp CVD</h2><div class="chart" id="cvd"></div>
<h2>Order-book imbalance (weighted, 10 levels)</h2><div class="chart" id="imbalance"></div>
<h2>Signal scores</h2><div class="chart" id="score"></div>
<h2>Equity and drawdown (portfolio)</h2><div class="chart" id="equity"></div>
<h2>Strategy statistics (each strategy alone)</h2>
<p>SqueezeFlow: how often each phase component was among a signal's reasons, the entry score histogram and trades by reset type; the imbalance method: signals, trades and PnL per market regime.</p>
{stats}
<h2>Trades</h2>
<table><tr><th>run</th><th>signal</th><th>strategy</th><th>symbol</th><th>side</th><th>entry (UTC)</th><th>exit (UTC)</th><th>entry price</th><th>exit price</th><th>qty</th><th>pnl</th><th>fees</th></tr>
{trades}</table>
<script type="application/json" id="data">{data}</script>
<script>/* uPlot, MIT licence:
{UPLOT_LICENSE}*/
{UPLOT_JS}</script>
<script>{STATUS_JS}{SCRIPT}</script>
</body></html>
"#,
        messages = run.messages,
        seconds = m.seconds,
        signals = run.report.signals,
    )
}

fn metrics_row(name: &str, m: &BacktestMetrics) -> String {
    let cells: String = metric_cells(m)
        .iter()
        .map(|(_, v)| format!("<td>{v}</td>"))
        .collect();
    format!("<tr><td>{}</td>{cells}</tr>\n", escape(name))
}

fn trade_rows(run_name: &str, r: &BacktestReport, run: &BacktestRun) -> String {
    r.trades
        .iter()
        .map(|t: &BacktestTrade| {
            let strategy = run
                .strategy_names
                .get(&t.strategy)
                .map_or("", String::as_str);
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(run_name),
                t.signal,
                escape(strategy),
                escape(&t.symbol),
                t.side.name(),
                utc(t.entry_ns),
                utc(t.exit_ns),
                if t.open_at_end { " (open)" } else { "" },
                t.entry_price,
                t.exit_price,
                t.qty,
                t.pnl,
                t.fees,
            )
        })
        .collect()
}

/// `HH:MM:SS.mmm` of a Unix ns time, UTC.
fn utc(ns: i64) -> String {
    let ms = ns.div_euclid(1_000_000);
    let day_ms = ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
