//! shm/ABI.md is the contract other languages are written from: every table in it must
//! match the Rust layout exactly (offsets, types, sizes, versions, hashes).

use flowcore_shm::abi::*;

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ABI.md")).unwrap()
}

/// The rows `| offset | name | `type` |...` of the table after `heading`.
fn table_after(doc: &str, heading: &str) -> Vec<(usize, String, String)> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("ABI.md has no heading {heading:?}"));
    doc[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let offset = cells.get(1)?.parse().ok()?;
            Some((
                offset,
                cells[2].to_string(),
                cells[3].trim_matches('`').to_string(),
            ))
        })
        .collect()
}

fn check<R: Record>(doc: &str, name: &str) {
    let size = core::mem::size_of::<R>();
    let heading = format!(
        "### `{}`: {name} (stream {}, record version {}, {size} bytes, slot {})",
        R::STREAM.file_name(),
        R::STREAM as u32,
        R::VERSION,
        slot_size(size)
    );
    let rows = table_after(doc, &heading);
    let fields: Vec<(usize, String, String)> = R::FIELDS
        .iter()
        .map(|(n, t, o)| (*o, n.to_string(), t.to_string()))
        .collect();
    assert_eq!(rows, fields, "{name}: ABI.md table differs from the code");
    let hash = format!("`layout_hash = {:#018x}`", R::LAYOUT_HASH);
    let at = doc.find(&heading).unwrap();
    assert!(
        doc[at..].lines().take(4).any(|l| l == hash),
        "{name}: ABI.md should give {hash}"
    );
}

#[test]
fn every_record_table_matches_the_code() {
    let doc = doc();
    check::<SymbolRecord>(&doc, "SymbolRecord");
    check::<BarRecord>(&doc, "BarRecord");
    check::<TopRecord>(&doc, "TopRecord");
    check::<TradeRecord>(&doc, "TradeRecord");
    check::<BboRecord>(&doc, "BboRecord");
    check::<Book20Record>(&doc, "Book20Record");
    check::<HealthRecord>(&doc, "HealthRecord");
    check::<SignalRecord>(&doc, "SignalRecord");
    check::<StatsRecord>(&doc, "StatsRecord");
    check::<StrategyRecord>(&doc, "StrategyRecord");
}

/// The streams the header's `stream` row lists, and the files table.
#[test]
fn every_stream_is_listed_with_its_id_and_file() {
    let doc = doc();
    let row = doc
        .lines()
        .find(|l| l.starts_with("| 20 | stream |"))
        .unwrap();
    let names = |s: StreamId| match s {
        StreamId::Bars => "bars",
        StreamId::Tops => "tops",
        StreamId::Trades => "trades",
        StreamId::Bbo => "bbo",
        StreamId::Book20 => "book20",
        StreamId::Health => "health",
        StreamId::Signals => "signals",
        StreamId::Symbols => "symbols",
        StreamId::Stats => "stats",
        StreamId::Strategies => "strategies",
    };
    for s in StreamId::ALL {
        let id = format!("{} {}", s as u32, names(s));
        assert!(row.contains(&id), "the header's stream row lacks {id:?}");
        let kind = match s.kind() {
            FileKind::Ring => "ring",
            FileKind::Table => "table",
        };
        let file = format!("| `{}` | {kind} |", s.file_name());
        assert!(doc.contains(&file), "the files table lacks {file:?}");
    }
}

#[test]
fn the_header_table_matches_the_code() {
    use core::mem::offset_of;
    let rows = table_after(&doc(), "## File header (256 bytes");
    let want: Vec<(usize, &str)> = vec![
        (offset_of!(FileHeader, magic), "magic"),
        (offset_of!(FileHeader, abi_version), "abi_version"),
        (offset_of!(FileHeader, header_size), "header_size"),
        (offset_of!(FileHeader, kind), "kind"),
        (offset_of!(FileHeader, stream), "stream"),
        (offset_of!(FileHeader, layout_hash), "layout_hash"),
        (offset_of!(FileHeader, writer_epoch), "writer_epoch"),
        (offset_of!(FileHeader, capacity), "capacity"),
        (offset_of!(FileHeader, record_size), "record_size"),
        (offset_of!(FileHeader, slot_size), "slot_size"),
        (offset_of!(FileHeader, file_size), "file_size"),
        (offset_of!(FileHeader, created_ns), "created_ns"),
        (offset_of!(FileHeader, record_version), "record_version"),
        (offset_of!(FileHeader, reserved0), "reserved0"),
        (offset_of!(FileHeader, reserved1), "reserved1"),
        (offset_of!(FileHeader, write_seq), "write_seq"),
        (offset_of!(FileHeader, heartbeat_ns), "heartbeat_ns"),
        (offset_of!(FileHeader, reserved2), "reserved2"),
    ];
    let got: Vec<(usize, &str)> = rows.iter().map(|(o, n, _)| (*o, n.as_str())).collect();
    assert_eq!(got, want);
    assert_eq!(HEADER_SIZE, 256);
    assert_eq!(ABI_VERSION, 1);
    assert_eq!(&MAGIC, b"FLOWCSHM");
    for s in StreamId::ALL {
        assert_eq!(StreamId::from_u32(s as u32), Some(s));
    }
}
