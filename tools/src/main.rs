//! `flowcore`: replay recordings (and, in later issues, run live, simulate and demo).

use anyhow::Context;
use clap::{Parser, Subcommand};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::InstrumentTable;
use flowcore_tools::replay::{replay, Input};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "flowcore",
    version,
    about = "Low-latency crypto market-data core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replays recordings into one-second CVD bars and per-second book tops (JSONL).
    Replay {
        /// Write bars here (JSONL).
        #[arg(long)]
        bars_out: Option<PathBuf>,
        /// Write per-second book tops here (JSONL).
        #[arg(long)]
        tops_out: Option<PathBuf>,
        /// Levels of the weighted imbalance.
        #[arg(long, default_value_t = 10)]
        obi_levels: usize,
        /// Decay of the weighted imbalance: w_i = exp(-decay * i).
        #[arg(long, default_value_t = 0.1)]
        obi_decay: f64,
        /// Instrument table (TOML, see config/instruments.toml); the bundled defaults if absent.
        #[arg(long)]
        instruments: Option<PathBuf>,
        /// Recordings as VENUE=FILE (binance-spot, binance-usdm, binance-coinm).
        #[arg(required = true)]
        inputs: Vec<String>,
    },
}

fn create(path: &Option<PathBuf>) -> anyhow::Result<Option<BufWriter<File>>> {
    path.as_ref()
        .map(|p| {
            File::create(p)
                .map(|f| BufWriter::with_capacity(1 << 16, f))
                .with_context(|| format!("creating {}", p.display()))
        })
        .transpose()
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Replay {
            bars_out,
            tops_out,
            obi_levels,
            obi_decay,
            instruments,
            inputs,
        } => {
            let table = match &instruments {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    flowcore_tools::instruments::parse_instruments(&text)?
                }
                None => InstrumentTable::binance_defaults(),
            };
            let inputs = inputs
                .iter()
                .map(|a| Input::parse_arg(a))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let imbalance =
                ImbalanceConfig::new(obi_levels, obi_decay).context("--obi-levels/--obi-decay")?;
            let mut bars = create(&bars_out)?;
            let mut tops = create(&tops_out)?;
            let started = Instant::now();
            let s = replay(
                table,
                imbalance,
                inputs,
                bars.as_mut().map(|w| w as &mut dyn Write),
                tops.as_mut().map(|w| w as &mut dyn Write),
            )?;
            if let Some(w) = bars.as_mut() {
                w.flush().context("writing bars")?;
            }
            if let Some(w) = tops.as_mut() {
                w.flush().context("writing tops")?;
            }
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "replay: {} messages, {} gaps, {} resyncs, {} late trades, {} parse errors, {:.0} msgs/s \
                 ({} bars, {} tops, {} book/ticker checks with {} mismatches, {} crossed)",
                s.messages,
                s.engine.gaps,
                s.engine.resync_requests,
                s.late_trades,
                s.parse_errors,
                s.messages as f64 / secs.max(1e-9),
                s.bars,
                s.tops,
                s.engine.ticker_checks,
                s.engine.ticker_mismatches,
                s.engine.crossed_books,
            );
            Ok(())
        }
    }
}
