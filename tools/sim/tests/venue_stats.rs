//! The Binance futures statistics `flowcore sim` synthesises, over real sockets: mark-price
//! streams (`<symbol>@markPrice@1s`, `<symbol>@markPrice`) and the REST open interest.
//! They parse into statistics, are never dated ahead of the stream they ride on, route as
//! Binance routes them (USD-M `/market`, not `/public`), and two plays of the same
//! recording give the same bytes.

use flowcore_core::event::{EventKind, StatField};
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::recording::{Input, Pace, RecordingReader, Source};
use flowcore_sim::faults::{FaultKind, FaultPlan};
use flowcore_sim::{run_sim, SimOptions, SimSummary};
use futures_util::{SinkExt, StreamExt};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Lines of each bundled recording played: about 15 s of USD-M, 28 s of COIN-M.
const LINES: usize = 4000;

/// The first `lines` lines of a bundled recording, in memory.
fn head(venue: Venue, name: &str, lines: usize) -> Input {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/binance")
        .join(name);
    let all = RecordingReader::read_all(&path).expect("a bundled recording");
    let text = String::from_utf8(all).expect("UTF-8");
    let mut kept = String::new();
    for line in text.lines().take(lines) {
        kept.push_str(line);
        kept.push('\n');
    }
    Input {
        venue,
        source: Source::Memory(kept.into_bytes().into()),
    }
}

fn futures_inputs() -> Vec<Input> {
    vec![
        head(Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz", LINES),
        head(
            Venue::BinanceCoinm,
            "coinm_btcusd_perp_20240808.txt.gz",
            LINES,
        ),
    ]
}

/// (ws, rest) base addresses per venue name.
type Addresses = HashMap<String, (String, String)>;

/// A simulator on its own thread, with its addresses once announced.
fn start(
    inputs: Vec<Input>,
    pace: Pace,
    wait_clients: usize,
) -> (Addresses, JoinHandle<SimSummary>) {
    start_with(inputs, pace, wait_clients, FaultPlan::default())
}

/// [`start`] with faults.
fn start_with(
    inputs: Vec<Input>,
    pace: Pace,
    wait_clients: usize,
    faults: FaultPlan,
) -> (Addresses, JoinHandle<SimSummary>) {
    let venues = {
        let mut v: Vec<Venue> = inputs.iter().map(|i| i.venue).collect();
        v.dedup();
        v.len()
    };
    let options = SimOptions {
        inputs,
        pace,
        bind: "127.0.0.1".parse().expect("an address"),
        ping_interval: Some(Duration::from_secs(60)),
        pong_timeout: Some(Duration::from_secs(120)),
        wait_clients,
        tls: None,
        table: InstrumentTable::bundled_defaults(),
        stop: Default::default(),
        client_buffer: 1 << 16,
        faults,
        api_key: None,
        connection_lifetime: None,
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let sim = std::thread::spawn(move || {
        run_sim(options, |line| {
            tx.send(line.to_string()).expect("announced")
        })
        .expect("sim")
    });
    let mut addresses = Addresses::new();
    for _ in 0..venues {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the sim announces its venues");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        addresses.insert(
            v["venue"].as_str().expect("venue").to_string(),
            (
                v["ws"].as_str().expect("ws").to_string(),
                v["rest"].as_str().expect("rest").to_string(),
            ),
        );
    }
    (addresses, sim)
}

/// Every text message of a WebSocket connection to `url` until the sim closes it, after
/// sending `request` if given.
async fn collect(url: String, request: Option<&str>) -> Vec<String> {
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("a host")
        .to_string();
    let tcp = TcpStream::connect(host).await.expect("connects");
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .expect("handshake");
    if let Some(request) = request {
        ws.send(Message::text(request)).await.expect("sent");
    }
    let mut texts = Vec::new();
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            texts.push(text.to_string());
        }
    }
    texts
}

/// `GET target` on a REST base address: (status, body); status 0 when the connection
/// closed with no answer.
async fn get(rest: &str, target: &str) -> (u16, String) {
    let host = rest.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(host).await.expect("connects");
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8(answer).expect("UTF-8");
    if answer.is_empty() {
        // Closed unanswered: the sim ended meanwhile (a slow fault answer can outlast it).
        return (0, answer);
    }
    let status = answer[9..12].parse().expect("a status");
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head");
    (status, body.to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// What a connection carrying all of an instrument's streams received, checked message by
/// message: every statistic parses and is dated no later than the newest `E` of the
/// stream's other messages before it.
#[derive(Debug, Default)]
struct Checked {
    /// Mark-price messages by stream period (1000, 3000 ms).
    marks: HashMap<i64, u64>,
    /// The newest `E` (ms) of the non-statistics messages.
    watermark_ms: Option<i64>,
    /// The open interest the module docs' rule gives for the trades received.
    open_interest: i64,
}

fn check_stream(venue: Venue, texts: &[String], start_open_interest: i64) -> Checked {
    let mut parser = VenueParser::new(venue, InstrumentTable::bundled_defaults());
    let mut checked = Checked {
        open_interest: start_open_interest,
        ..Checked::default()
    };
    for text in texts {
        let period = if text.contains("@markPrice@1s\"") {
            1000
        } else if text.contains("@markPrice\"") {
            3000
        } else {
            0
        };
        let mut fields = Vec::new();
        let parsed = parser.parse(0, text.as_bytes(), None, &mut |ev| {
            let e_ms = ev.exch_ts().map(|t| t.div_euclid(1_000_000));
            match ev.kind {
                EventKind::Stat(stat) => {
                    let e_ms = e_ms.expect("a dated statistic");
                    assert!(period > 0, "a statistic outside markPrice: {text}");
                    assert_eq!(e_ms % period, 0, "E on a boundary: {text}");
                    assert!(
                        Some(e_ms) <= checked.watermark_ms,
                        "{text} is ahead of {:?}",
                        checked.watermark_ms
                    );
                    fields.push(stat.field);
                }
                kind => {
                    assert_eq!(period, 0, "{text}");
                    if let EventKind::Trade(t) = kind {
                        if t.is_taker_flow {
                            checked.open_interest = if t.trade_id % 2 == 0 {
                                checked.open_interest + t.qty
                            } else {
                                (checked.open_interest - t.qty).max(0)
                            };
                        }
                    }
                    if let Some(e_ms) = e_ms {
                        checked.watermark_ms = checked.watermark_ms.max(Some(e_ms));
                    }
                }
            }
        });
        assert!(parsed.is_ok(), "{text}: {parsed:?}");
        if period > 0 {
            assert_eq!(
                fields,
                [
                    StatField::MarkPrice,
                    StatField::IndexPrice,
                    StatField::FundingRate,
                    StatField::NextFundingMs
                ],
                "{text}"
            );
            *checked.marks.entry(period).or_default() += 1;
        }
    }
    checked
}

/// Parses an open-interest answer: (value, time ms).
fn open_interest_of(venue: Venue, body: &str) -> (i64, i64) {
    let mut parser = VenueParser::new(venue, InstrumentTable::bundled_defaults());
    let mut got = None;
    parser
        .parse(0, body.as_bytes(), None, &mut |ev| match ev.kind {
            EventKind::Stat(stat) if stat.field == StatField::OpenInterest => {
                let time = stat.exch_ts.expect("dated").get().div_euclid(1_000_000);
                got = Some((stat.value, time));
            }
            kind => panic!("not an open interest: {kind:?}"),
        })
        .unwrap_or_else(|e| panic!("{body}: {e:?}"));
    got.expect("one statistic")
}

#[test]
fn mark_prices_and_open_interest_parse_route_and_stay_behind_the_stream() {
    let mut inputs = futures_inputs();
    inputs.push(head(
        Venue::BinanceSpot,
        "spot_btcusdt_20240808.txt.gz",
        200,
    ));
    // Paced, so that the open interest is asked while the market plays.
    let (addresses, sim) = start(inputs, Pace::Faster(20.0), 4);
    let (usdm_ws, usdm_rest) = addresses["binance-usdm"].clone();
    let (coinm_ws, coinm_rest) = addresses["binance-coinm"].clone();
    let (_, spot_rest) = addresses["binance-spot"].clone();
    let done = Cell::new(false);
    let clients = async {
        let all = tokio::join!(
            collect(
                format!(
                    "{usdm_ws}/stream?streams=btcusdt@trade/btcusdt@bookTicker/btcusdt@depth@0ms/btcusdt@markPrice@1s/btcusdt@markPrice"
                ),
                None
            ),
            collect(
                format!("{usdm_ws}/public/stream?streams=btcusdt@trade/btcusdt@markPrice@1s"),
                Some(r#"{"method":"SUBSCRIBE","params":["btcusdt@markPrice"],"id":1}"#)
            ),
            collect(format!("{usdm_ws}/market/ws/btcusdt@markPrice@1s"), None),
            collect(
                format!(
                    "{coinm_ws}/stream?streams=btcusd_perp@trade/btcusd_perp@bookTicker/btcusd_perp@depth@0ms/btcusd_perp@markPrice@1s/btcusd_perp@markPrice"
                ),
                None
            ),
        );
        done.set(true);
        all
    };
    // Polls both venues' open interest while the market plays (which also keeps the sim's
    // REST up after the end), then asks once more.
    let poll = async {
        let mut answers: Vec<(Venue, u16, String)> = Vec::new();
        loop {
            let finished = done.get();
            for (venue, rest, target) in [
                (
                    Venue::BinanceUsdm,
                    &usdm_rest,
                    "/fapi/v1/openInterest?symbol=BTCUSDT",
                ),
                (
                    Venue::BinanceCoinm,
                    &coinm_rest,
                    "/dapi/v1/openInterest?symbol=BTCUSD_PERP",
                ),
            ] {
                let (status, body) = get(rest, target).await;
                answers.push((venue, status, body));
            }
            if finished {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let spot = [
            get(&spot_rest, "/fapi/v1/openInterest?symbol=BTCUSDT").await,
            get(&spot_rest, "/dapi/v1/openInterest?symbol=BTCUSDT").await,
        ];
        let unknown = get(&usdm_rest, "/fapi/v1/openInterest?symbol=NOPE").await;
        (answers, spot, unknown)
    };
    let ((full, public, market, coinm), (answers, spot, unknown)) =
        runtime().block_on(async { tokio::join!(clients, poll) });
    let summary = sim.join().expect("the sim ends");

    // USD-M: 10 000 BTC at 3 decimals to start; COIN-M: 10 000 contracts.
    let usdm = check_stream(Venue::BinanceUsdm, &full, 10_000_000);
    let coinm = check_stream(Venue::BinanceCoinm, &coinm, 10_000);
    for (name, checked) in [("usdm", &usdm), ("coinm", &coinm)] {
        let one_s = checked.marks.get(&1000).copied().unwrap_or(0);
        let three_s = checked.marks.get(&3000).copied().unwrap_or(0);
        assert!(one_s >= 10, "{name}: {one_s} markPrice@1s");
        assert!(
            three_s >= 3 && three_s <= one_s / 3 + 1,
            "{name}: {three_s} markPrice"
        );
    }
    assert_eq!(
        summary.marks,
        usdm.marks.values().sum::<u64>() + coinm.marks.values().sum::<u64>()
    );

    // `/public` serves the trades but never a mark price, requested or subscribed.
    assert!(public.iter().any(|t| t.contains("@trade")));
    assert!(
        public.iter().all(|t| !t.contains("markPrice")),
        "markPrice on /public"
    );
    // `/market` serves it, bare on `/ws`: the same payloads as the combined connection's.
    let wrapped_one_s: Vec<&String> = full
        .iter()
        .filter(|t| t.contains("@markPrice@1s\""))
        .collect();
    assert_eq!(market.len(), wrapped_one_s.len());
    for (bare, wrapped) in market.iter().zip(wrapped_one_s) {
        assert!(bare.starts_with(r#"{"e":"markPriceUpdate","#), "{bare}");
        assert_eq!(
            *wrapped,
            format!(r#"{{"stream":"btcusdt@markPrice@1s","data":{bare}}}"#)
        );
    }

    // Open interest: 503 until the instrument played, then never dated ahead of what was
    // handed out, never back in time, and at the end the rule applied to every trade.
    for (venue, checked) in [(Venue::BinanceUsdm, &usdm), (Venue::BinanceCoinm, &coinm)] {
        let mut last: Option<(i64, i64)> = None;
        for (_, status, body) in answers.iter().filter(|(v, _, _)| *v == venue) {
            if *status == 503 {
                assert!(last.is_none(), "503 after a 200: {body}");
                assert!(body.contains("-1001"), "{body}");
                continue;
            }
            assert_eq!(*status, 200, "{body}");
            let (value, time) = open_interest_of(venue, body);
            assert!(value >= 0);
            assert!(Some(time) <= checked.watermark_ms, "{body}");
            assert!(last.is_none_or(|(_, t)| t <= time), "{body} went back");
            last = Some((value, time));
        }
        let (value, time) = last.expect("answers");
        assert_eq!(
            Some(time),
            checked.watermark_ms,
            "{venue:?}: dated by the last E"
        );
        assert_eq!(value, checked.open_interest, "{venue:?}");
    }
    assert!(summary.open_interests > 0);
    let (usdm_last, coinm_last) = (
        answers.iter().rev().find(|a| a.0 == Venue::BinanceUsdm),
        answers.iter().rev().find(|a| a.0 == Venue::BinanceCoinm),
    );
    let usdm_last = &usdm_last.expect("an answer").2;
    let coinm_last = &coinm_last.expect("an answer").2;
    assert!(
        usdm_last.starts_with(r#"{"openInterest":""#)
            && usdm_last.contains(r#""symbol":"BTCUSDT","time":"#),
        "{usdm_last}"
    );
    assert!(
        coinm_last.starts_with(r#"{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":""#)
            && coinm_last.contains(r#""contractType":"PERPETUAL","time":"#),
        "{coinm_last}"
    );
    // Spot has no open interest: 404 as for any unknown path. An unknown symbol: -1121.
    for (status, body) in &spot {
        assert_eq!(*status, 404, "{body}");
    }
    assert_eq!(unknown.0, 400);
    assert!(unknown.1.contains("-1121"), "{}", unknown.1);
}

#[test]
fn two_plays_of_a_recording_give_the_same_bytes() {
    let play = || {
        let (addresses, sim) = start(futures_inputs(), Pace::Asap, 2);
        let (usdm_ws, _) = addresses["binance-usdm"].clone();
        let (coinm_ws, _) = addresses["binance-coinm"].clone();
        let got = runtime().block_on(async {
            tokio::join!(
                collect(
                    format!(
                        "{usdm_ws}/stream?streams=btcusdt@trade/btcusdt@bookTicker/btcusdt@depth@0ms/btcusdt@markPrice@1s/btcusdt@markPrice"
                    ),
                    None
                ),
                collect(
                    format!(
                        "{coinm_ws}/stream?streams=btcusd_perp@trade/btcusd_perp@markPrice@1s/btcusd_perp@markPrice"
                    ),
                    None
                ),
            )
        });
        sim.join().expect("the sim ends");
        got
    };
    let first = play();
    let second = play();
    assert!(first.0.iter().any(|t| t.contains("markPriceUpdate")));
    assert!(first.1.iter().any(|t| t.contains("markPriceUpdate")));
    assert_eq!(first.0.len(), second.0.len());
    assert!(first.0 == second.0, "USD-M plays differ");
    assert!(first.1 == second.1, "COIN-M plays differ");
}

#[test]
fn rest_faults_hit_the_open_interest_too() {
    let inputs = vec![head(
        Venue::BinanceCoinm,
        "coinm_btcusd_perp_20240808.txt.gz",
        LINES,
    )];
    let faults = FaultPlan::none().with(FaultKind::RestFailure, 100);
    let (addresses, sim) = start_with(inputs, Pace::Faster(10.0), 1, faults);
    let (ws, rest) = addresses["binance-coinm"].clone();
    let done = Cell::new(false);
    let client = async {
        collect(format!("{ws}/ws/btcusd_perp@trade"), None).await;
        done.set(true);
    };
    let poll = async {
        let mut answers = Vec::new();
        while !done.get() {
            answers.push(get(&rest, "/dapi/v1/openInterest?symbol=BTCUSD_PERP").await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    };
    let ((), answers) = runtime().block_on(async { tokio::join!(client, poll) });
    let summary = sim.join().expect("the sim ends");
    assert!(summary.faults.get(FaultKind::RestFailure) >= 1);
    // The fault's 503 (not the "nothing played yet" one, which says "try again").
    let first_ok = answers.iter().position(|(status, _)| *status == 200);
    let failed = answers
        .iter()
        .skip(first_ok.expect("answers"))
        .find(|(status, _)| *status == 503);
    let (_, body) = failed.expect("a failed request after the first answer");
    assert_eq!(
        body,
        r#"{"code":-1001,"msg":"Internal error; unable to process your request."}"#
    );
}
