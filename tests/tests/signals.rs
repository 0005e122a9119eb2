//! Strategies on the bundled BTC recordings through the whole replay: every method of
//! config/strategies/short.toml (SqueezeFlow, smart money, the classic four) fires, a second replay (and a one-thread replay) writes the same signal bytes, and
//! cutting the input at any point leaves every signal made before the cut unchanged.

use flowcore_feeds::recording::Input;
use flowcore_runtime::replay::ReplayThreads;
use flowcore_runtime::strategies::{load_strategies, StrategyConfig};
use flowcore_tests::{btc_inputs, btc_inputs_cut, options, replay_written, repo, rows};

fn short_set() -> Vec<StrategyConfig> {
    let path = repo().join("config/strategies/short.toml");
    load_strategies(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn signal_rows(inputs: Vec<Input>, threads: Option<ReplayThreads>) -> (Vec<u8>, u64) {
    let mut o = options(inputs);
    o.strategies = short_set();
    if let Some(t) = threads {
        o.threads = t;
    }
    let w = replay_written(o);
    (w.signals, w.summary.signals.emitted)
}

fn field<'a>(row: &'a str, key: &str) -> &'a str {
    let at = row
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {row}"));
    let rest = &row[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].trim_matches('"')
}

#[test]
fn every_method_fires_on_the_btc_set_and_a_second_replay_writes_the_same_bytes() {
    let (first, emitted) = signal_rows(btc_inputs(), None);
    let rows = rows(first.clone());
    assert_eq!(rows.len() as u64, emitted);
    let methods = [
        "squeeze_flow",
        "smart_money",
        "ema_cross",
        "rsi",
        "macd",
        "momentum",
    ];
    for name in methods {
        assert!(
            rows.iter().any(|r| field(r, "strategy") == name),
            "no {name} signal in {rows:#?}"
        );
    }
    // Numbered in order, each at a price; only SqueezeFlow tracks positions and exits.
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(field(r, "id"), (i + 1).to_string());
        assert!(field(r, "entry").parse::<f64>().unwrap() > 50_000.0, "{r}");
        let entries = ["enter_long", "enter_short"];
        let exit_ok = field(r, "strategy") == "squeeze_flow" && field(r, "action") == "exit";
        assert!(entries.contains(&field(r, "action")) || exit_ok, "{r}");
    }
    // The smart-money method's stops and targets bracket its entries.
    for r in rows
        .iter()
        .filter(|r| field(r, "strategy") == "smart_money")
    {
        let px = |k| field(r, k).parse::<f64>().unwrap();
        let (entry, stop, target) = (px("entry"), px("stop"), px("target"));
        let long = field(r, "action") == "enter_long";
        assert!(
            if long {
                stop < entry && entry < target
            } else {
                target < entry && entry < stop
            },
            "{r}"
        );
    }
    let (second, _) = signal_rows(btc_inputs(), None);
    assert_eq!(first, second, "a second replay wrote other signals");
    let (one_thread, _) = signal_rows(btc_inputs(), Some(ReplayThreads::One));
    assert_eq!(first, one_thread, "one thread wrote other signals");
}

#[test]
fn cutting_the_input_leaves_every_earlier_signal_unchanged() {
    let (full, _) = signal_rows(btc_inputs(), None);
    let full = rows(full);
    let local = |r: &String| field(r, "local_ns").parse::<i64>().unwrap();
    let (first, last) = (local(&full[0]), local(full.last().unwrap()));
    // One cut before any signal, then cuts between the first signal and the last.
    for k in 0..4 {
        let cut_ns = first - 1_000_000_000 + (last - first) * k / 3;
        let (inputs, last_kept) = btc_inputs_cut(cut_ns);
        let (part, _) = signal_rows(inputs, None);
        let part = rows(part);
        // Bars still open at the cut are closed by the end of input, stamped with the last
        // message's time: signals from those may differ. Every earlier one may not.
        let before = |rows: &[String]| -> Vec<String> {
            rows.iter()
                .filter(|r| local(r) < last_kept)
                .cloned()
                .collect()
        };
        assert_eq!(before(&part), before(&full), "cut at {cut_ns}");
        assert!(
            part.iter().all(|r| local(r) <= last_kept),
            "cut at {cut_ns}: {part:?}"
        );
        if k == 0 {
            assert!(
                before(&part).is_empty(),
                "cut before the first signal: {part:?}"
            );
        } else {
            assert!(
                !before(&part).is_empty(),
                "cut at {cut_ns}: no signal before it"
            );
        }
    }
}
