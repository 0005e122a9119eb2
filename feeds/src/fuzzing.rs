//! The body of the `cargo fuzz` targets (`fuzz/`), also run over the committed corpus as an
//! ordinary test: arbitrary bytes go through a dialect parser and the engine.

use crate::parser::VenueParser;
use flowcore_core::bars::{Bar, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::instrument::{InstrumentTable, Venue};

struct Discard;

impl BarSink for Discard {
    fn bar(&mut self, _: &Bar) {}
}

impl EngineSink for Discard {
    fn top(&mut self, _: &TopRow) {}
}

/// Splits `data` into lines and feeds each as a message of `venue` (snapshots attributed to
/// the venue's first instrument) through a parser and an engine. Must never panic.
pub fn drive(venue: Venue, data: &[u8]) {
    let table = InstrumentTable::binance_defaults();
    let Some((first, _)) = table.iter().find(|(_, i)| i.venue == venue) else {
        return;
    };
    let mut parser = VenueParser::new(venue, table.clone());
    let Ok(mut engine) = Engine::new(table, Default::default(), None) else {
        return;
    };
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        let _ = parser.parse(n as i64, line, Some(first), &mut |ev| {
            engine.on_event(&ev, &mut Discard)
        });
    }
    engine.finish(&mut Discard);
}
