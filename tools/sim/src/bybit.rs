//! The simulator's Bybit v5 side: the category endpoints (`/v5/public/spot`,
//! `/v5/public/linear`), subscriptions by `op` (acks as Bybit sends them, at most 10 args a
//! request on spot), an `orderbook.N` snapshot of the sim's current book at the start of
//! every book subscription (so a resubscribe after a gap resyncs, as on Bybit), and the
//! client's `{"op":"ping"}` answered with the category's pong. Bybit does not ping: a
//! client that sends no ping within the venue's `pong_timeout` is dropped.

use crate::bybit_synth::{book_message, BookMessage};
use crate::state::Sim;
use flowcore_core::event::BookSide;
use flowcore_core::instrument::Venue;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// Spot takes at most this many args a subscribe request.
const SPOT_ARGS_PER_REQUEST: usize = 10;

/// True for the venues served here.
pub(crate) fn serves(venue: Venue) -> bool {
    matches!(venue, Venue::BybitSpot | Venue::BybitLinear)
}

/// The category path of `venue`: no streams in the URL, no bare payloads.
pub(crate) fn route(venue: Venue, path: &str) -> Option<(&'static str, bool, Vec<String>)> {
    let want = match venue {
        Venue::BybitSpot => "/v5/public/spot",
        _ => "/v5/public/linear",
    };
    (path == want).then(|| ("", false, Vec::new()))
}

/// What a client's message brings: the texts to send back, and whether it was a ping.
pub(crate) struct Reply {
    pub(crate) texts: Vec<String>,
    pub(crate) pinged: bool,
}

/// Answers a client's `op` message.
pub(crate) fn control_reply(
    sim: &mut Sim,
    v: usize,
    text: &str,
    streams: &Rc<RefCell<BTreeSet<usize>>>,
) -> Reply {
    let venue = sim.venues[v].venue;
    let request: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let op = request["op"].as_str().unwrap_or_default().to_string();
    let req_id = request["req_id"].as_str().unwrap_or_default().to_string();
    let args: Vec<String> = request["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ack = |success: bool, ret_msg: &str| {
        format!(
            "{{\"success\":{success},\"ret_msg\":\"{ret_msg}\",\"conn_id\":\"flowcore-sim\",\"req_id\":\"{req_id}\",\"op\":\"{op}\"}}"
        )
    };
    let mut texts = Vec::new();
    match op.as_str() {
        "ping" => {
            texts.push(match venue {
                // Spot answers in the ack shape, linear with an `op: pong` message.
                Venue::BybitSpot => ack(true, "pong"),
                _ => format!(
                    "{{\"req_id\":\"{req_id}\",\"op\":\"pong\",\"args\":[\"{}\"],\"conn_id\":\"flowcore-sim\"}}",
                    now_ms()
                ),
            });
            return Reply {
                texts,
                pinged: true,
            };
        }
        "subscribe" if venue == Venue::BybitSpot && args.len() > SPOT_ARGS_PER_REQUEST => {
            texts.push(ack(false, "args size >10"));
        }
        "subscribe" => {
            let known: Vec<Option<usize>> = args
                .iter()
                .map(|a| sim.venues[v].streams.iter().position(|s| s == a))
                .collect();
            if known.iter().any(Option::is_none) {
                texts.push(ack(
                    false,
                    &format!("Invalid symbol :{args:?}").replace('"', ""),
                ));
            } else {
                texts.push(ack(true, "subscribe"));
                for (topic, i) in args.iter().zip(known.into_iter().flatten()) {
                    streams.borrow_mut().insert(i);
                    if let Some(snapshot) = book_snapshot(sim, venue, topic) {
                        texts.push(snapshot);
                    }
                }
            }
        }
        "unsubscribe" => {
            for a in &args {
                if let Some(i) = sim.venues[v].streams.iter().position(|s| s == a) {
                    streams.borrow_mut().remove(&i);
                }
            }
            texts.push(ack(true, ""));
        }
        _ => texts.push(ack(false, "error:handler not found")),
    }
    Reply {
        texts,
        pinged: false,
    }
}

/// The sim's current book of an `orderbook.N.SYM` topic as its snapshot message: its top
/// N levels, at the last `u` played (the next delta played follows on).
fn book_snapshot(sim: &mut Sim, venue: Venue, topic: &str) -> Option<String> {
    let mut parts = topic.split('.');
    let (Some("orderbook"), Some(depth), Some(symbol)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let depth: usize = depth.parse().ok()?;
    let inst = sim.table.find(venue, symbol.as_bytes())?;
    let sim_book = sim.books.get(&inst)?;
    let scales = {
        let i = sim.table.get(inst);
        (i.price_scale, i.size_scale)
    };
    let side = |side| -> Vec<(i64, i64)> {
        sim_book
            .book
            .levels(side)
            .take(depth)
            .map(|l| (l.px, l.qty))
            .collect()
    };
    let (bids, asks) = (side(BookSide::Bid), side(BookSide::Ask));
    sim.summary.snapshots += 1;
    Some(book_message(
        venue,
        &BookMessage {
            topic,
            kind: "snapshot",
            ts_ms: sim_book.last_event_ms,
            update_id: sim_book.last_update_id,
            seq: sim_book.last_update_id,
            bids: &bids,
            asks: &asks,
            scales,
        },
    ))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
