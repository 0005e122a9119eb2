//! `flowcore gateway --config FILE`: the gateway's TOML, read once and checked key by key.
//!
//! Every table refuses keys it does not know (serde names the key and toml the line), and
//! every value is checked for range here, so a typo never silently falls back to a default.
//! `config/gateway.toml` is the documented example.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `[sizing] method` (see [`crate::sizing`] for what each computes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizingMethod {
    /// `stake` every time.
    Fixed,
    /// `stake x confidence`.
    Confidence,
    /// `stake x target_volatility / volatility` of the symbol's 1-minute returns.
    Volatility,
    /// `equity x min(kelly_fraction x (p - (1 - p) / payoff), kelly_cap)`.
    Kelly,
    /// Each open position (this one included) gets an equal share of the volatility budget
    /// `stake x target_volatility`: `stake x target_volatility / (volatility x sqrt(n))`.
    RiskParity,
}

/// Where orders go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// FreqTrade's REST API (`[freqtrade]`).
    Freqtrade,
    /// Simulated fills against the bus's book top.
    Paper,
    /// Decisions recorded, nothing sent.
    Log,
}

/// When the journal is flushed to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// After every record.
    Always,
    /// After each order intent (before its request is sent) and each order result: what
    /// restart safety needs; decisions and rejections ride along with the next one.
    Intent,
    /// Never (the OS decides): for tests and paper trading on a throwaway disk.
    Never,
}

/// How the signal thread waits between empty polls of the buses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleKind {
    /// Busy-poll (production, pinned).
    Spin,
    /// Yield the core between polls (tests, CI, shared machines).
    Yield,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Bus directories to read signals (and book tops, bars) from.
    pub buses: Vec<PathBuf>,
    /// Journal directory.
    pub journal: PathBuf,
    /// Where orders go.
    pub executor: ExecutorKind,
    /// Journal flushing.
    pub fsync: FsyncPolicy,
    /// Signal thread's wait.
    pub idle: IdleKind,
    /// CPU to pin the signal thread to.
    pub pin_cpu: Option<usize>,
    /// CPU to pin the executor thread to (HTTP, journal).
    pub executor_cpu: Option<usize>,
    /// Kill switch and status over HTTP on this address (`127.0.0.1:9190`).
    pub control: Option<String>,
    /// `[freqtrade]`, required with `executor = "freqtrade"`.
    pub freqtrade: Option<FreqtradeConfig>,
    /// `[pairs]`: flowcore symbol -> executor pair.
    pub pairs: Vec<PairMap>,
    /// `[risk]`.
    pub risk: RiskConfig,
    /// `[sizing]`.
    pub sizing: SizingConfig,
    /// `[paper]`.
    pub paper: PaperConfig,
}

/// One `[pairs]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairMap {
    /// `venue:SYMBOL` (`binance-usdm:BTCUSDT`) or a bare `SYMBOL` matching any venue.
    pub symbol: String,
    /// The executor's pair (`BTC/USDT:USDT`).
    pub pair: String,
    /// Crypto trades on weekends; anything else is refused then when `risk.weekend_mode`.
    pub crypto: bool,
}

/// `[freqtrade]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreqtradeConfig {
    /// `http://127.0.0.1:8080`.
    pub url: String,
    /// API user.
    pub username: String,
    /// The password: from `password_file` or `FLOWCORE_FREQTRADE_PASSWORD`. Never logged:
    /// its `Debug` is redacted (see [`Secret`]).
    pub password: Secret,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// How often open trades are reconciled with `/status`.
    pub reconcile_s: u64,
    /// `market` or `limit` (at the signal's entry price).
    pub ordertype: String,
    /// Fills and closes from FreqTrade's message websocket (`fills = "ws"`, the default;
    /// polling stays the fallback while it is down) or by polling only (`"poll"`).
    pub fills_ws: bool,
}

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[risk]`: every limit on by default.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskConfig {
    /// Account equity in the quote currency (paper and log; FreqTrade's `/balance` when it answers).
    pub equity: f64,
    /// Open positions at once.
    pub max_open_positions: u32,
    /// Notional per symbol, quote currency.
    pub max_notional_per_symbol: f64,
    /// Notional of all positions.
    pub max_notional_total: f64,
    /// Loss at the stop per position, fraction of equity.
    pub risk_per_position: f64,
    /// Stop distance assumed for a signal without a stop, fraction of price.
    pub default_stop: f64,
    /// Drawdown from the equity peak that stops all entries, fraction.
    pub max_drawdown: f64,
    /// Risk of one strategy's open positions, fraction of equity.
    pub max_strategy_risk: f64,
    /// Returns correlated above this count as one position.
    pub correlation: f64,
    /// Positions one correlated group may hold.
    pub max_correlated_positions: u32,
    /// Minutes of 1-minute returns the correlation is taken over.
    pub correlation_minutes: u32,
    /// Seconds after an entry on a (strategy, symbol) during which more are refused.
    pub cooldown_s: u64,
    /// Signals older than this (publish to read) are refused.
    pub max_signal_age_ms: u64,
    /// On Saturday and Sunday (UTC) only pairs marked crypto trade.
    pub weekend_mode: bool,
    /// An entry against the open position its own strategy opened on the symbol closes
    /// that position (`opposite_entry = "exit"`, the default: a crossover's next cross)
    /// instead of being refused as `position_open` (`"reject"`).
    pub opposite_entry_exits: bool,
    /// Entries stop while this file exists.
    pub kill_file: Option<PathBuf>,
}

/// `[sizing]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SizingConfig {
    /// The method.
    pub method: SizingMethod,
    /// Stake per trade, quote currency (fixed; the base of the others).
    pub stake: f64,
    /// Upper bound on any stake.
    pub max_stake: f64,
    /// Standard deviation of 1-minute returns the volatility method sizes each position to.
    pub target_volatility: f64,
    /// Kelly: win probability.
    pub win_rate: f64,
    /// Kelly: average win over average loss.
    pub payoff: f64,
    /// Kelly: fraction of the full Kelly bet.
    pub kelly_fraction: f64,
    /// Kelly: cap on the bet, fraction of equity.
    pub kelly_cap: f64,
    /// Take the signal's own suggested size as an upper bound when it has one.
    pub use_signal_size: bool,
}

/// `[paper]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperConfig {
    /// Taker fee, basis points of notional.
    pub fee_bps: f64,
    /// Slippage beyond the touch, basis points.
    pub slippage_bps: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    buses: Vec<PathBuf>,
    journal: PathBuf,
    executor: ExecutorKind,
    fsync: Option<FsyncPolicy>,
    idle: Option<IdleKind>,
    pin_cpu: Option<usize>,
    executor_cpu: Option<usize>,
    control: Option<String>,
    freqtrade: Option<RawFreqtrade>,
    #[serde(default)]
    pairs: BTreeMap<String, RawPair>,
    #[serde(default)]
    risk: RawRisk,
    #[serde(default)]
    sizing: RawSizing,
    #[serde(default)]
    paper: RawPaper,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPair {
    Pair(String),
    Table(RawPairTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPairTable {
    pair: String,
    #[serde(default = "yes")]
    crypto: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreqtrade {
    url: String,
    username: String,
    password_file: Option<PathBuf>,
    timeout_ms: Option<u64>,
    reconcile_s: Option<u64>,
    ordertype: Option<String>,
    fills: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    equity: Option<f64>,
    max_open_positions: Option<u32>,
    max_notional_per_symbol: Option<f64>,
    max_notional_total: Option<f64>,
    risk_per_position: Option<f64>,
    default_stop: Option<f64>,
    max_drawdown: Option<f64>,
    max_strategy_risk: Option<f64>,
    correlation: Option<f64>,
    max_correlated_positions: Option<u32>,
    correlation_minutes: Option<u32>,
    cooldown_s: Option<u64>,
    max_signal_age_ms: Option<u64>,
    weekend_mode: Option<bool>,
    opposite_entry: Option<String>,
    kill_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSizing {
    method: Option<SizingMethod>,
    stake: Option<f64>,
    max_stake: Option<f64>,
    target_volatility: Option<f64>,
    win_rate: Option<f64>,
    payoff: Option<f64>,
    kelly_fraction: Option<f64>,
    kelly_cap: Option<f64>,
    use_signal_size: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPaper {
    fee_bps: Option<f64>,
    slippage_bps: Option<f64>,
}

/// A bad configuration: the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn check(ok: bool, key: &str, what: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!("{key}: {what}")))
    }
}

fn fraction(v: f64, key: &str) -> Result<f64, ConfigError> {
    check(
        v.is_finite() && v > 0.0 && v <= 1.0,
        key,
        "must be in (0, 1]",
    )?;
    Ok(v)
}

fn positive(v: f64, key: &str) -> Result<f64, ConfigError> {
    check(v.is_finite() && v > 0.0, key, "must be a positive number")?;
    Ok(v)
}

impl GatewayConfig {
    /// Reads a file; relative paths in it are taken from the file's directory.
    ///
    /// # Errors
    /// The file cannot be read, or [`Self::parse`]'s errors.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(
            &text,
            base,
            std::env::var("FLOWCORE_FREQTRADE_PASSWORD").ok(),
        )
        .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses and checks the TOML; `env_password` is `FLOWCORE_FREQTRADE_PASSWORD`, taken
    /// when `freqtrade.password_file` is absent.
    ///
    /// # Errors
    /// A message naming the key that is unknown, missing or out of range.
    pub fn parse(
        text: &str,
        base: &Path,
        env_password: Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        let at = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        check(!raw.buses.is_empty(), "buses", "at least one bus directory")?;
        let freqtrade = match raw.freqtrade {
            None => None,
            Some(f) => Some(freqtrade_table(f, &at, env_password)?),
        };
        check(
            raw.executor != ExecutorKind::Freqtrade || freqtrade.is_some(),
            "freqtrade",
            "executor = \"freqtrade\" needs a [freqtrade] table",
        )?;
        let mut pairs = Vec::new();
        for (symbol, p) in raw.pairs {
            let (pair, crypto) = match p {
                RawPair::Pair(pair) => (pair, true),
                RawPair::Table(t) => (t.pair, t.crypto),
            };
            check(!pair.is_empty(), &format!("pairs.{symbol}"), "empty pair")?;
            if let Some((venue, _)) = symbol.split_once(':') {
                check(
                    flowcore_core::instrument::Venue::from_name(venue).is_some(),
                    &format!("pairs.{symbol}"),
                    "unknown venue before ':'",
                )?;
            }
            pairs.push(PairMap {
                symbol,
                pair,
                crypto,
            });
        }
        Ok(Self {
            buses: raw.buses.into_iter().map(&at).collect(),
            journal: at(raw.journal),
            executor: raw.executor,
            fsync: raw.fsync.unwrap_or(FsyncPolicy::Always),
            idle: raw.idle.unwrap_or(IdleKind::Spin),
            pin_cpu: raw.pin_cpu,
            executor_cpu: raw.executor_cpu,
            control: raw.control,
            freqtrade,
            pairs,
            risk: risk_table(raw.risk, &at)?,
            sizing: sizing_table(raw.sizing)?,
            paper: PaperConfig {
                fee_bps: raw.paper.fee_bps.unwrap_or(4.0),
                slippage_bps: raw.paper.slippage_bps.unwrap_or(1.0),
            },
        })
        .and_then(|c: GatewayConfig| {
            check(
                c.paper.fee_bps >= 0.0 && c.paper.slippage_bps >= 0.0,
                "paper",
                "fee_bps and slippage_bps must not be negative",
            )?;
            Ok(c)
        })
    }

    /// The executor pair of a bus symbol: `venue:SYMBOL` first, then `SYMBOL`.
    pub fn pair_index(&self, venue: &str, symbol: &str) -> Option<usize> {
        let exact = self
            .pairs
            .iter()
            .position(|p| p.symbol.split_once(':') == Some((venue, symbol)));
        exact.or_else(|| self.pairs.iter().position(|p| p.symbol == symbol))
    }
}

fn freqtrade_table(
    f: RawFreqtrade,
    at: &impl Fn(PathBuf) -> PathBuf,
    env_password: Option<String>,
) -> Result<FreqtradeConfig, ConfigError> {
    check(
        f.url.starts_with("http://"),
        "freqtrade.url",
        "must start with http:// (FreqTrade's API server speaks plain HTTP; put TLS in front of a remote one)",
    )?;
    let password = match (f.password_file, env_password) {
        (Some(file), _) => {
            let file = at(file);
            let text = std::fs::read_to_string(&file).map_err(|e| {
                ConfigError(format!("freqtrade.password_file: {}: {e}", file.display()))
            })?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, Some(p)) => p,
        (None, None) => {
            return Err(ConfigError(
                "freqtrade.password_file: missing (or set FLOWCORE_FREQTRADE_PASSWORD)".into(),
            ))
        }
    };
    let ordertype = f.ordertype.unwrap_or_else(|| "market".into());
    check(
        ordertype == "market" || ordertype == "limit",
        "freqtrade.ordertype",
        "\"market\" or \"limit\"",
    )?;
    let fills = f.fills.unwrap_or_else(|| "ws".into());
    check(
        fills == "ws" || fills == "poll",
        "freqtrade.fills",
        "\"ws\" or \"poll\"",
    )?;
    Ok(FreqtradeConfig {
        url: f.url.trim_end_matches('/').to_string(),
        username: f.username,
        password: Secret(password),
        timeout_ms: f.timeout_ms.unwrap_or(5_000).max(1),
        reconcile_s: f.reconcile_s.unwrap_or(30).max(1),
        ordertype,
        fills_ws: fills == "ws",
    })
}

fn risk_table(r: RawRisk, at: &impl Fn(PathBuf) -> PathBuf) -> Result<RiskConfig, ConfigError> {
    let correlation = r.correlation.unwrap_or(0.7);
    check(
        correlation.is_finite() && (0.0..=1.0).contains(&correlation),
        "risk.correlation",
        "must be in [0, 1]",
    )?;
    let minutes = r.correlation_minutes.unwrap_or(60);
    check(
        (3..=1440).contains(&minutes),
        "risk.correlation_minutes",
        "must be in 3..=1440",
    )?;
    Ok(RiskConfig {
        equity: positive(r.equity.unwrap_or(10_000.0), "risk.equity")?,
        max_open_positions: r.max_open_positions.unwrap_or(5),
        max_notional_per_symbol: positive(
            r.max_notional_per_symbol.unwrap_or(5_000.0),
            "risk.max_notional_per_symbol",
        )?,
        max_notional_total: positive(
            r.max_notional_total.unwrap_or(20_000.0),
            "risk.max_notional_total",
        )?,
        risk_per_position: fraction(
            r.risk_per_position.unwrap_or(0.02),
            "risk.risk_per_position",
        )?,
        default_stop: fraction(r.default_stop.unwrap_or(0.02), "risk.default_stop")?,
        max_drawdown: fraction(r.max_drawdown.unwrap_or(0.10), "risk.max_drawdown")?,
        max_strategy_risk: fraction(
            r.max_strategy_risk.unwrap_or(0.05),
            "risk.max_strategy_risk",
        )?,
        correlation,
        max_correlated_positions: r.max_correlated_positions.unwrap_or(1).max(1),
        correlation_minutes: minutes,
        cooldown_s: r.cooldown_s.unwrap_or(60),
        max_signal_age_ms: r.max_signal_age_ms.unwrap_or(5_000).max(1),
        weekend_mode: r.weekend_mode.unwrap_or(false),
        opposite_entry_exits: match r.opposite_entry.as_deref() {
            None | Some("exit") => true,
            Some("reject") => false,
            Some(other) => {
                return Err(ConfigError(format!(
                    "risk.opposite_entry: {other:?}: expected \"exit\" or \"reject\""
                )))
            }
        },
        kill_file: r.kill_file.map(at),
    })
}

fn sizing_table(s: RawSizing) -> Result<SizingConfig, ConfigError> {
    let stake = positive(s.stake.unwrap_or(100.0), "sizing.stake")?;
    let max_stake = positive(s.max_stake.unwrap_or(stake * 5.0), "sizing.max_stake")?;
    check(
        max_stake >= stake,
        "sizing.max_stake",
        "must be at least sizing.stake",
    )?;
    let win_rate = s.win_rate.unwrap_or(0.55);
    check(
        win_rate > 0.0 && win_rate < 1.0,
        "sizing.win_rate",
        "must be in (0, 1)",
    )?;
    Ok(SizingConfig {
        method: s.method.unwrap_or(SizingMethod::Fixed),
        stake,
        max_stake,
        target_volatility: positive(
            s.target_volatility.unwrap_or(0.001),
            "sizing.target_volatility",
        )?,
        win_rate,
        payoff: positive(s.payoff.unwrap_or(1.5), "sizing.payoff")?,
        kelly_fraction: fraction(s.kelly_fraction.unwrap_or(0.25), "sizing.kelly_fraction")?,
        kelly_cap: fraction(s.kelly_cap.unwrap_or(0.05), "sizing.kelly_cap")?,
        use_signal_size: s.use_signal_size.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "buses = [\"/dev/shm/flowcore\"]\njournal = \"j\"\nexecutor = \"paper\"\n";

    fn parse(extra: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse(&format!("{MIN}{extra}"), Path::new("/etc/fc"), None)
    }

    #[test]
    fn defaults_are_the_documented_limits() {
        let c = parse("").unwrap();
        assert_eq!(c.journal, PathBuf::from("/etc/fc/j"));
        assert_eq!(c.risk.risk_per_position, 0.02);
        assert_eq!(c.risk.max_drawdown, 0.10);
        assert_eq!(c.risk.max_strategy_risk, 0.05);
        assert_eq!(c.risk.correlation, 0.7);
        assert_eq!(c.fsync, FsyncPolicy::Always);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[risk]\nmax_drawdwn = 0.2\n").unwrap_err().0;
        assert!(e.contains("max_drawdwn"), "{e}");
        let e = parse("[risk]\nmax_drawdown = 2.0\n").unwrap_err().0;
        assert!(e.contains("risk.max_drawdown"), "{e}");
        let e = parse("[sizing]\nmethod = \"martingale\"\n").unwrap_err().0;
        assert!(e.contains("martingale"), "{e}");
        let e = parse("[risk]\nopposite_entry = \"reverse\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("risk.opposite_entry"), "{e}");
        let e = parse("[pairs]\n\"kraken:BTCUSD\" = \"BTC/USD\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("pairs.kraken:BTCUSD"), "{e}");
        let e = GatewayConfig::parse(
            "buses = [\"b\"]\njournal = \"j\"\nexecutor = \"freqtrade\"\n",
            Path::new("."),
            None,
        )
        .unwrap_err()
        .0;
        assert!(e.contains("[freqtrade]"), "{e}");
    }

    #[test]
    fn password_comes_from_the_environment_and_never_prints() {
        let text = format!(
            "{}\n[freqtrade]\nurl = \"http://127.0.0.1:8080\"\nusername = \"u\"\n",
            MIN.replace("paper", "freqtrade")
        );
        let e = GatewayConfig::parse(&text, Path::new("."), None)
            .unwrap_err()
            .0;
        assert!(e.contains("FLOWCORE_FREQTRADE_PASSWORD"), "{e}");
        let c = GatewayConfig::parse(&text, Path::new("."), Some("hunter2".into())).unwrap();
        assert_eq!(c.freqtrade.as_ref().unwrap().password.0, "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn pairs_prefer_the_venue_qualified_entry() {
        let c = parse(
            "[pairs]\nBTCUSDT = \"BTC/USDT\"\n\"binance-usdm:BTCUSDT\" = \"BTC/USDT:USDT\"\n\
             SPXUSDT = { pair = \"SPX/USDT:USDT\", crypto = false }\n",
        )
        .unwrap();
        let pair = |v, s| c.pair_index(v, s).map(|i| c.pairs[i].pair.as_str());
        assert_eq!(pair("binance-usdm", "BTCUSDT"), Some("BTC/USDT:USDT"));
        assert_eq!(pair("binance-spot", "BTCUSDT"), Some("BTC/USDT"));
        assert_eq!(pair("binance-spot", "ETHUSDT"), None);
        assert!(!c.pairs[c.pair_index("bybit-linear", "SPXUSDT").unwrap()].crypto);
    }
}
