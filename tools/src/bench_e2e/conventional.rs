//! The conventional stack that `flowcore bench e2e` measures flowcore against: what a
//! competent developer would write without flowcore, doing the same work on the same input.
//!
//! tokio-tungstenite reads Binance USD-M combined-stream frames, serde_json parses them into
//! typed structs with `rust_decimal` prices and sizes, the state lives in `BTreeMap` books
//! and one-second trade bars, and every trade goes through a tokio mpsc channel to a task
//! that `PUBLISH`es it as JSON on Redis. [`read_conventional`] is the other end: a Redis
//! subscriber that stamps when each trade became visible to it.
//!
//! Nothing here is tuned beyond what such a developer would reasonably do (one pipeline
//! round trip for whatever queued up while the previous one was in flight, `TCP_NODELAY`
//! on the Redis socket); it is a baseline, not a straw man.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo as _};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Room for trades and bars between the engine and the publisher: deep enough that a burst
/// never stalls the WebSocket reader on a healthy Redis.
const CHANNEL_CAPACITY: usize = 65_536;

/// Most items the publisher sends in one pipeline.
const MAX_BATCH: usize = 1_024;

/// Worker threads, as `#[tokio::main]` would pick on the 2-core benchmark machine.
const WORKER_THREADS: usize = 2;

/// What the conventional engine is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConventionalOptions {
    /// Plain `ws://` URL of the combined stream.
    pub ws_url: String,
    /// Redis server to publish on.
    pub redis: SocketAddr,
    /// Redis channel of the trades; bar closes go to [`bars_channel`] of it.
    pub channel: String,
}

/// What it counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConventionalSummary {
    /// Text or binary WebSocket frames received.
    pub messages: u64,
    /// `trade` events parsed (each one published).
    pub trades: u64,
    /// `depthUpdate` events applied to the book.
    pub depth_updates: u64,
    /// `bookTicker` events.
    pub tickers: u64,
    /// One-second bars closed and published, the last open one (flushed at the end) included.
    pub bars: u64,
    /// Frames that did not parse or carried an unknown event type.
    pub parse_errors: u64,
    /// Price levels left in the book, both sides.
    pub book_levels: usize,
    /// Best bid of the last `bookTicker`.
    pub best_bid: Option<Decimal>,
    /// Best ask of the last `bookTicker`.
    pub best_ask: Option<Decimal>,
}

/// The Redis channel on which bar closes are published, next to the trades' `channel`.
pub fn bars_channel(channel: &str) -> String {
    format!("{channel}.bars")
}

/// Runs the conventional engine until the server closes the WebSocket, then flushes the
/// publisher and returns.
pub fn run_conventional(options: &ConventionalOptions) -> anyhow::Result<ConventionalSummary> {
    runtime()?.block_on(engine(options))
}

/// Subscribes to `channel`, calls `ready` once the subscription is confirmed, then collects
/// `(trade_id, visible_raw)` until `expected` trades came or nothing came for `idle` (after the first).
///
/// `visible_raw` is `quanta::Clock::raw()` taken as soon as the message is handed over, before
/// its JSON is parsed. Before the first message it waits without limit: bound the process
/// from outside if the publisher may never start.
pub fn read_conventional(
    redis: SocketAddr,
    channel: &str,
    expected: usize,
    idle: Duration,
    ready: impl FnOnce(),
) -> anyhow::Result<Vec<(u64, u64)>> {
    runtime()?.block_on(async move {
        // Calibrating the clock takes a while: done before subscribing, off the measured path.
        let clock = quanta::Clock::new();
        let client = redis::Client::open(connection_info(redis)?)?;
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .with_context(|| format!("subscribing on Redis at {redis}"))?;
        // Returns once Redis confirmed the subscription: nothing published later is missed.
        pubsub.subscribe(channel).await?;
        ready();

        let mut seen = Vec::with_capacity(expected);
        let mut messages = pubsub.into_on_message();
        while seen.len() < expected {
            let next = if seen.is_empty() {
                messages.next().await
            } else {
                match tokio::time::timeout(idle, messages.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            };
            let Some(message) = next else { break };
            let visible_raw = clock.raw();
            // Anything else on the channel is not ours to time.
            if let Ok(trade) = serde_json::from_slice::<VisibleTrade>(message.get_payload_bytes()) {
                seen.push((trade.trade_id, visible_raw));
            }
        }
        Ok(seen)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

fn connection_info(redis: SocketAddr) -> anyhow::Result<redis::ConnectionInfo> {
    // Small PUBLISH writes must not wait on Nagle for the previous one's ACK.
    Ok(ConnectionAddr::Tcp(redis.ip().to_string(), redis.port())
        .into_connection_info()?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true)))
}

async fn engine(options: &ConventionalOptions) -> anyhow::Result<ConventionalSummary> {
    // Redis first: frames must not pile up unread while it connects.
    let client = redis::Client::open(connection_info(options.redis)?)?;
    // The default 500 ms response timeout could abort a run on a 2-core box that is also
    // running the replayer, Redis and the reader; a stall is what the benchmark should see.
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    let connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connecting to Redis at {}", options.redis))?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let publisher = tokio::spawn(publish(
        connection,
        rx,
        options.channel.clone(),
        bars_channel(&options.channel),
    ));

    let (mut ws, _) = tokio_tungstenite::connect_async(options.ws_url.as_str())
        .await
        .with_context(|| format!("connecting to {}", options.ws_url))?;
    let mut state = State::default();
    let mut outbound = Vec::new();
    let mut read_error = None;
    let mut publisher_gone = false;
    // Ends with `None` once the close handshake is done; a Close frame is answered by
    // tungstenite on the next poll, so the loop keeps polling after it.
    while let Some(frame) = ws.next().await {
        let recv_ns = epoch_ns();
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                read_error = Some(error);
                break;
            }
        };
        let payload: &[u8] = match &frame {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
            _ => continue,
        };
        state.on_frame(payload, recv_ns, &mut outbound);
        if !send_all(&tx, &mut outbound).await {
            publisher_gone = true;
            break;
        }
    }
    if !publisher_gone {
        state.finish(&mut outbound);
        send_all(&tx, &mut outbound).await;
    }
    // Closing the channel lets the publisher drain what is queued and stop.
    drop(tx);
    publisher.await.context("the publisher task panicked")??;
    if let Some(error) = read_error {
        return Err(error).context("reading the WebSocket");
    }
    Ok(state.summary())
}

/// False once the publisher has stopped; its own error says why.
async fn send_all(tx: &mpsc::Sender<Outbound>, outbound: &mut Vec<Outbound>) -> bool {
    for item in outbound.drain(..) {
        if tx.send(item).await.is_err() {
            return false;
        }
    }
    true
}

async fn publish(
    mut connection: redis::aio::MultiplexedConnection,
    mut rx: mpsc::Receiver<Outbound>,
    trades_channel: String,
    bars_channel: String,
) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // One round trip per trade would queue a burst behind Redis's replies; sending whatever
    // waited meanwhile as one pipeline keeps the order and costs nothing when idle.
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for item in batch.drain(..) {
            match item {
                Outbound::Trade(trade) => {
                    pipe.publish(&trades_channel, serde_json::to_vec(&trade)?)
                        .ignore();
                }
                Outbound::Bar(bar) => {
                    pipe.publish(&bars_channel, serde_json::to_vec(&bar)?)
                        .ignore();
                }
            }
        }
        pipe.query_async::<()>(&mut connection)
            .await
            .context("publishing on Redis")?;
    }
    Ok(())
}

fn epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// Binance's combined-stream wrapper; `stream` repeats what `data.e` and `data.s` say.
#[derive(Deserialize)]
struct Combined {
    data: Event,
}

#[derive(Deserialize)]
#[serde(tag = "e")]
enum Event {
    #[serde(rename = "trade")]
    Trade(TradeEvent),
    #[serde(rename = "bookTicker")]
    BookTicker(BookTickerEvent),
    #[serde(rename = "depthUpdate")]
    Depth(DepthEvent),
}

#[derive(Deserialize)]
struct TradeEvent {
    #[serde(rename = "t")]
    id: u64,
    #[serde(rename = "T")]
    time_ms: u64,
    #[serde(rename = "p", with = "rust_decimal::serde::str")]
    price: Decimal,
    #[serde(rename = "q", with = "rust_decimal::serde::str")]
    qty: Decimal,
    #[serde(rename = "m")]
    buyer_is_maker: bool,
    /// `MARKET` for taker flow; `INSURANCE_FUND` and the like are liquidations that no
    /// taker chose, so they stay out of the bars (as in flowcore).
    #[serde(rename = "X")]
    execution: Option<String>,
}

#[derive(Deserialize)]
struct BookTickerEvent {
    #[serde(rename = "b", with = "rust_decimal::serde::str")]
    bid_price: Decimal,
    #[serde(rename = "a", with = "rust_decimal::serde::str")]
    ask_price: Decimal,
}

#[derive(Deserialize)]
struct DepthEvent {
    #[serde(rename = "b")]
    bids: Vec<Level>,
    #[serde(rename = "a")]
    asks: Vec<Level>,
}

/// `["price","qty"]`.
#[derive(Deserialize)]
struct Level(
    #[serde(with = "rust_decimal::serde::str")] Decimal,
    #[serde(with = "rust_decimal::serde::str")] Decimal,
);

/// What the publisher sends to the trades channel.
#[derive(Serialize)]
struct PublishedTrade {
    trade_id: u64,
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    qty: Decimal,
    side: Side,
    trade_time_ms: u64,
    recv_ns: u64,
}

/// What the reader needs of a [`PublishedTrade`].
#[derive(Deserialize)]
struct VisibleTrade {
    trade_id: u64,
}

#[derive(Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    Buy,
    Sell,
}

/// A closed one-second bar, as published on the bars channel.
#[derive(Serialize)]
struct Bar {
    /// Trade time `T` in whole seconds since the epoch.
    second: u64,
    #[serde(with = "rust_decimal::serde::str")]
    open: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    high: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    low: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    close: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    buy_volume: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    sell_volume: Decimal,
    /// Taker buy minus sell volume of every bar up to and including this one.
    #[serde(with = "rust_decimal::serde::str")]
    cvd: Decimal,
    trades: u64,
}

enum Outbound {
    Trade(PublishedTrade),
    Bar(Bar),
}

/// The engine's state, owned by the task that reads the WebSocket.
///
/// The book is built from depth diffs alone, without the REST snapshot and `U`/`u`/`pu`
/// sync a live system needs first: that is startup-only work, not in the measured path.
#[derive(Default)]
struct State {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    best_bid: Option<Decimal>,
    best_ask: Option<Decimal>,
    bar: Option<Bar>,
    cvd: Decimal,
    counts: ConventionalSummary,
}

impl State {
    fn on_frame(&mut self, payload: &[u8], recv_ns: u64, out: &mut Vec<Outbound>) {
        self.counts.messages += 1;
        match serde_json::from_slice::<Combined>(payload) {
            Ok(Combined { data }) => match data {
                Event::Trade(trade) => self.on_trade(trade, recv_ns, out),
                Event::BookTicker(ticker) => {
                    self.counts.tickers += 1;
                    self.best_bid = Some(ticker.bid_price);
                    self.best_ask = Some(ticker.ask_price);
                }
                Event::Depth(depth) => {
                    self.counts.depth_updates += 1;
                    apply_levels(&mut self.bids, depth.bids);
                    apply_levels(&mut self.asks, depth.asks);
                }
            },
            Err(_) => self.counts.parse_errors += 1,
        }
    }

    fn on_trade(&mut self, trade: TradeEvent, recv_ns: u64, out: &mut Vec<Outbound>) {
        self.counts.trades += 1;
        // `m`: the buyer posted the resting order, so the taker sold.
        let side = if trade.buyer_is_maker {
            Side::Sell
        } else {
            Side::Buy
        };
        let taker_flow = trade.execution.as_deref().is_none_or(|x| x == "MARKET");
        if taker_flow {
            self.add_to_bar(&trade, side, out);
        }
        out.push(Outbound::Trade(PublishedTrade {
            trade_id: trade.id,
            price: trade.price,
            qty: trade.qty,
            side,
            trade_time_ms: trade.time_ms,
            recv_ns,
        }));
    }

    fn add_to_bar(&mut self, trade: &TradeEvent, side: Side, out: &mut Vec<Outbound>) {
        let second = trade.time_ms / 1000;
        // A trade of a later second is the only sign that the open one is complete; a late
        // one of an earlier second (not seen from Binance) is folded into the open bar.
        if self.bar.as_ref().is_some_and(|bar| second > bar.second) {
            self.close_bar(out);
        }
        let bar = self.bar.get_or_insert(Bar {
            second,
            open: trade.price,
            high: trade.price,
            low: trade.price,
            close: trade.price,
            buy_volume: Decimal::ZERO,
            sell_volume: Decimal::ZERO,
            cvd: Decimal::ZERO,
            trades: 0,
        });
        bar.high = bar.high.max(trade.price);
        bar.low = bar.low.min(trade.price);
        bar.close = trade.price;
        bar.trades += 1;
        match side {
            Side::Buy => {
                bar.buy_volume += trade.qty;
                self.cvd += trade.qty;
            }
            Side::Sell => {
                bar.sell_volume += trade.qty;
                self.cvd -= trade.qty;
            }
        }
    }

    fn close_bar(&mut self, out: &mut Vec<Outbound>) {
        if let Some(mut bar) = self.bar.take() {
            bar.cvd = self.cvd;
            self.counts.bars += 1;
            out.push(Outbound::Bar(bar));
        }
    }

    /// The stream ended: the open bar will get no more trades.
    fn finish(&mut self, out: &mut Vec<Outbound>) {
        self.close_bar(out);
    }

    fn summary(&self) -> ConventionalSummary {
        ConventionalSummary {
            book_levels: self.bids.len() + self.asks.len(),
            best_bid: self.best_bid,
            best_ask: self.best_ask,
            ..self.counts.clone()
        }
    }
}

fn apply_levels(side: &mut BTreeMap<Decimal, Decimal>, levels: Vec<Level>) {
    for Level(price, qty) in levels {
        if qty.is_zero() {
            side.remove(&price);
        } else {
            side.insert(price, qty);
        }
    }
}
