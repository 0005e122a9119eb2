/*
 * flowcore_shm.h -- header-only C11 reader of the flowcore shared-memory bus, ABI version 1.
 *
 * Written from shm/ABI.md alone. Linux (x86-64 or AArch64), little-endian.
 *
 * Usage (include this header FIRST, before any system header, or build with
 * -D_DEFAULT_SOURCE, because it needs flock(2)/clock_gettime(2) declarations):
 *
 *     #include "flowcore_shm.h"
 *     char err[FCSHM_ERRLEN];
 *     fcshm_file bars;
 *     if (fcshm_open(&bars, "/dev/shm/flowcore", FCSHM_STREAM_BARS, err, sizeof err) != FCSHM_OK)
 *         { fprintf(stderr, "%s\n", err); ... }   // FCSHM_E_NOTFOUND / FCSHM_E_EPOCH: retry
 *     fcshm_ring ring;
 *     fcshm_ring_init(&ring, &bars, FCSHM_START_OLDEST);
 *     fcshm_bar bar; uint64_t seq;
 *     while (fcshm_ring_try_read(&ring, &bar, &seq) == 1) { ... }   // 0: nothing new yet
 *     // ring.lapped counts records the writer overwrote before we read them
 *     if (!fcshm_writer_alive("/dev/shm/flowcore") && ring.next >= fcshm_write_seq(&bars)) done;
 *     fcshm_close(&bars);
 *
 * fcshm_bus_open() opens symbols.table plus a set of rings and checks that all carry one
 * writer_epoch (the optional streams, stats and strategies, may be absent: an older writer;
 * see FCSHM_OPTIONAL_STREAMS); fcshm_table_read() reads a table slot (symbols, book20,
 * strategies);
 * fcshm_file_replaced() detects a writer restart (path names a new inode with a new epoch:
 * close, reopen, read from sequence 0).
 *
 * Every access to shared memory is a 64-bit atomic load through an `_Atomic uint64_t *`
 * pointing into the (read-only) mapping: acquire for the stamp and write_seq, relaxed
 * for record words, then atomic_thread_fence(memory_order_acquire) before re-loading the
 * stamp (ABI.md "Slots and the sequence stamp"). Nothing here writes shared memory.
 */
#ifndef FLOWCORE_SHM_H
#define FLOWCORE_SHM_H

#if !defined(_DEFAULT_SOURCE) && !defined(_GNU_SOURCE)
#define _DEFAULT_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#error "flowcore_shm.h needs POSIX.1-2008 declarations (pread, O_CLOEXEC, clock_gettime): include it before any system header, or compile with -D_DEFAULT_SOURCE"
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "flowcore_shm.h: the bus is little-endian; this reader needs a little-endian CPU"
#endif

_Static_assert(sizeof(_Atomic uint64_t) == 8, "_Atomic uint64_t must be 8 bytes");
_Static_assert(_Alignof(_Atomic uint64_t) == 8, "_Atomic uint64_t must be 8-byte aligned");
#if ATOMIC_LLONG_LOCK_FREE != 2
#error "flowcore_shm.h needs always lock-free 64-bit atomics (loads from a read-only mapping)"
#endif

/* ------------------------------------------------------------------------------------ */
/* Constants                                                                            */
/* ------------------------------------------------------------------------------------ */

#define FCSHM_MAGIC "FLOWCSHM"
#define FCSHM_ABI_VERSION 1u
#define FCSHM_HEADER_SIZE 256u
#define FCSHM_KIND_RING 1u
#define FCSHM_KIND_TABLE 2u
#define FCSHM_OFF_WRITE_SEQ 128u
#define FCSHM_OFF_HEARTBEAT_NS 136u
#define FCSHM_FNV_OFFSET_BASIS UINT64_C(0xcbf29ce484222325)
#define FCSHM_FNV_PRIME UINT64_C(0x100000001b3)
#define FCSHM_ERRLEN 512

enum fcshm_stream_id {
    FCSHM_STREAM_BARS = 1,
    FCSHM_STREAM_TOPS = 2,
    FCSHM_STREAM_TRADES = 3,
    FCSHM_STREAM_BBO = 4,
    FCSHM_STREAM_BOOK20 = 5,
    FCSHM_STREAM_HEALTH = 6,
    FCSHM_STREAM_SIGNALS = 7,
    FCSHM_STREAM_SYMBOLS = 8,
    FCSHM_STREAM_STATS = 9,
    FCSHM_STREAM_STRATEGIES = 10
};
#define FCSHM_STREAM_MAX 10
/* Streams added after the first writers (ABI.md "Optional files"): an older writer's bus has
 * no file for them. fcshm_bus_open() opens them last and leaves a missing one out of
 * bus->mask instead of failing. */
#define FCSHM_OPTIONAL_STREAMS ((1u << FCSHM_STREAM_STATS) | (1u << FCSHM_STREAM_STRATEGIES))

/* Venue codes of SymbolRecord.venue */
#define FCSHM_VENUE_BINANCE_SPOT 1u
#define FCSHM_VENUE_BINANCE_USDM 2u
#define FCSHM_VENUE_BINANCE_COINM 3u
#define FCSHM_VENUE_BYBIT_SPOT 4u
#define FCSHM_VENUE_BYBIT_LINEAR 5u
#define FCSHM_VENUE_AGG_SPOT 100u
#define FCSHM_VENUE_AGG_PERP 101u

/* BarRecord.flags */
#define FCSHM_BAR_COMPLETE (1u << 0)
#define FCSHM_BAR_OHLC_SET (1u << 1)
#define FCSHM_BAR_VWAP_SET (1u << 2)
#define FCSHM_BAR_SATURATED (1u << 31)
/* TopRecord.flags */
#define FCSHM_TOP_SYNCED (1u << 0)
#define FCSHM_TOP_BID_SET (1u << 1)
#define FCSHM_TOP_ASK_SET (1u << 2)
#define FCSHM_TOP_OBI_L1_SET (1u << 3)
#define FCSHM_TOP_OBI_SET (1u << 4)
/* TradeRecord.flags */
#define FCSHM_TRADE_BUY (1u << 0)
#define FCSHM_TRADE_AGG (1u << 1)
#define FCSHM_TRADE_NOT_TAKER (1u << 2)
/* Book20Record.flags */
#define FCSHM_BOOK_SYNCED (1u << 0)
/* StatsRecord.flags: the field is set (else 0) */
#define FCSHM_STATS_MARK_SET (1u << 0)
#define FCSHM_STATS_INDEX_SET (1u << 1)
#define FCSHM_STATS_OPEN_INTEREST_SET (1u << 2)
#define FCSHM_STATS_FUNDING_RATE_SET (1u << 3)
#define FCSHM_STATS_NEXT_FUNDING_SET (1u << 4)
#define FCSHM_STATS_LOCAL_NS_SET (1u << 5)
/* StatsRecord mark_px/index_px and funding_rate scales (open_interest: the symbol's size_scale) */
#define FCSHM_STAT_PRICE_SCALE 8u
#define FCSHM_FUNDING_RATE_SCALE 8u
/* strategies.table: slots (strategy ids 0..255) and the name field's size */
#define FCSHM_STRATEGY_SLOTS 256u
#define FCSHM_STRATEGY_NAME_LEN 32u
/* TopRecord obi_l1/obi, SignalRecord confidence/score scale */
#define FCSHM_OBI_SCALE 9u

/* ------------------------------------------------------------------------------------ */
/* File header (256 bytes at offset 0 of every file)                                    */
/* write_seq and heartbeat_ns change: never read them through this struct, use          */
/* fcshm_write_seq()/fcshm_heartbeat_ns() (atomic acquire loads).                        */
/* ------------------------------------------------------------------------------------ */

typedef struct fcshm_file_header {
    uint8_t magic[8];         /*   0 */
    uint32_t abi_version;     /*   8 */
    uint32_t header_size;     /*  12 */
    uint32_t kind;            /*  16 */
    uint32_t stream;          /*  20 */
    uint64_t layout_hash;     /*  24 */
    uint64_t writer_epoch;    /*  32 */
    uint64_t capacity;        /*  40 */
    uint32_t record_size;     /*  48 */
    uint32_t slot_size;       /*  52 */
    uint64_t file_size;       /*  56 */
    uint64_t created_ns;      /*  64 */
    uint32_t record_version;  /*  72 */
    uint32_t reserved0;       /*  76 */
    uint64_t reserved1[6];    /*  80 */
    uint64_t write_seq;       /* 128 (atomic) */
    uint64_t heartbeat_ns;    /* 136 (atomic) */
    uint64_t reserved2[14];   /* 144 */
} fcshm_file_header;
_Static_assert(sizeof(fcshm_file_header) == 256, "file header size");
_Static_assert(offsetof(fcshm_file_header, magic) == 0, "header.magic offset");
_Static_assert(offsetof(fcshm_file_header, abi_version) == 8, "header.abi_version offset");
_Static_assert(offsetof(fcshm_file_header, header_size) == 12, "header.header_size offset");
_Static_assert(offsetof(fcshm_file_header, kind) == 16, "header.kind offset");
_Static_assert(offsetof(fcshm_file_header, stream) == 20, "header.stream offset");
_Static_assert(offsetof(fcshm_file_header, layout_hash) == 24, "header.layout_hash offset");
_Static_assert(offsetof(fcshm_file_header, writer_epoch) == 32, "header.writer_epoch offset");
_Static_assert(offsetof(fcshm_file_header, capacity) == 40, "header.capacity offset");
_Static_assert(offsetof(fcshm_file_header, record_size) == 48, "header.record_size offset");
_Static_assert(offsetof(fcshm_file_header, slot_size) == 52, "header.slot_size offset");
_Static_assert(offsetof(fcshm_file_header, file_size) == 56, "header.file_size offset");
_Static_assert(offsetof(fcshm_file_header, created_ns) == 64, "header.created_ns offset");
_Static_assert(offsetof(fcshm_file_header, record_version) == 72, "header.record_version offset");
_Static_assert(offsetof(fcshm_file_header, reserved0) == 76, "header.reserved0 offset");
_Static_assert(offsetof(fcshm_file_header, reserved1) == 80, "header.reserved1 offset");
_Static_assert(offsetof(fcshm_file_header, write_seq) == 128, "header.write_seq offset");
_Static_assert(offsetof(fcshm_file_header, heartbeat_ns) == 136, "header.heartbeat_ns offset");
_Static_assert(offsetof(fcshm_file_header, reserved2) == 144, "header.reserved2 offset");

/* ------------------------------------------------------------------------------------ */
/* Records (ABI.md "Records"). FCSHM_*_FIELDS is the layout_hash input string built     */
/* from each table: NAME:TYPE@OFFSET; per field; FCSHM_*_LAYOUT_HASH the documented     */
/* hash. The offsets in the strings and the offsetof asserts come from the same tables. */
/* ------------------------------------------------------------------------------------ */

/* SymbolRecord: 96 bytes, slot 128 */
typedef struct fcshm_symbol {
    uint32_t symbol_id;                /*   0: u32 */
    uint16_t venue;                    /*   4: u16 */
    uint8_t market_kind;               /*   6: u8 */
    uint8_t contract_unit;             /*   7: u8 */
    uint8_t price_scale;               /*   8: u8 */
    uint8_t size_scale;                /*   9: u8 */
    uint8_t notional_scale;            /*  10: u8 */
    uint8_t contract_value_scale;      /*  11: u8 */
    uint32_t reserved0;                /*  12: u32 */
    int64_t tick;                      /*  16: i64 */
    int64_t lot;                       /*  24: i64 */
    int64_t contract_value;            /*  32: i64 */
    uint8_t symbol[24];                /*  40: [u8; 24] */
    uint8_t base[16];                  /*  64: [u8; 16] */
    uint8_t quote[16];                 /*  80: [u8; 16] */
} fcshm_symbol;
#define FCSHM_SYMBOL_RECORD_SIZE 96u
#define FCSHM_SYMBOL_SLOT_SIZE 128u
#define FCSHM_SYMBOL_LAYOUT_HASH UINT64_C(0xaaa9d2fc0c359631)
#define FCSHM_SYMBOL_FIELDS \
    "symbol_id:u32@0;venue:u16@4;market_kind:u8@6;contract_unit:u8@7;" \
    "price_scale:u8@8;size_scale:u8@9;notional_scale:u8@10;" \
    "contract_value_scale:u8@11;reserved0:u32@12;tick:i64@16;lot:i64@24;" \
    "contract_value:i64@32;symbol:[u8; 24]@40;base:[u8; 16]@64;" \
    "quote:[u8; 16]@80;"
_Static_assert(sizeof(fcshm_symbol) == 96, "SymbolRecord size");
_Static_assert(offsetof(fcshm_symbol, symbol_id) == 0, "SymbolRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_symbol, venue) == 4, "SymbolRecord.venue offset");
_Static_assert(offsetof(fcshm_symbol, market_kind) == 6, "SymbolRecord.market_kind offset");
_Static_assert(offsetof(fcshm_symbol, contract_unit) == 7, "SymbolRecord.contract_unit offset");
_Static_assert(offsetof(fcshm_symbol, price_scale) == 8, "SymbolRecord.price_scale offset");
_Static_assert(offsetof(fcshm_symbol, size_scale) == 9, "SymbolRecord.size_scale offset");
_Static_assert(offsetof(fcshm_symbol, notional_scale) == 10, "SymbolRecord.notional_scale offset");
_Static_assert(offsetof(fcshm_symbol, contract_value_scale) == 11, "SymbolRecord.contract_value_scale offset");
_Static_assert(offsetof(fcshm_symbol, reserved0) == 12, "SymbolRecord.reserved0 offset");
_Static_assert(offsetof(fcshm_symbol, tick) == 16, "SymbolRecord.tick offset");
_Static_assert(offsetof(fcshm_symbol, lot) == 24, "SymbolRecord.lot offset");
_Static_assert(offsetof(fcshm_symbol, contract_value) == 32, "SymbolRecord.contract_value offset");
_Static_assert(offsetof(fcshm_symbol, symbol) == 40, "SymbolRecord.symbol offset");
_Static_assert(offsetof(fcshm_symbol, base) == 64, "SymbolRecord.base offset");
_Static_assert(offsetof(fcshm_symbol, quote) == 80, "SymbolRecord.quote offset");

/* BarRecord: 120 bytes, slot 128 */
typedef struct fcshm_bar {
    int64_t ts_ms;                     /*   0: i64 */
    uint32_t symbol_id;                /*   8: u32 */
    uint32_t flags;                    /*  12: u32 */
    int64_t open;                      /*  16: i64 */
    int64_t high;                      /*  24: i64 */
    int64_t low;                       /*  32: i64 */
    int64_t close;                     /*  40: i64 */
    int64_t buy_qty;                   /*  48: i64 */
    int64_t sell_qty;                  /*  56: i64 */
    int64_t delta;                     /*  64: i64 */
    int64_t cvd;                       /*  72: i64 */
    int64_t vwap;                      /*  80: i64 */
    int64_t buy_notional;              /*  88: i64 */
    int64_t sell_notional;             /*  96: i64 */
    uint32_t trades;                   /* 104: u32 */
    uint32_t members;                  /* 108: u32 (record version 2) */
    int64_t publish_ns;                /* 112: i64 */
} fcshm_bar;
#define FCSHM_BAR_RECORD_SIZE 120u
#define FCSHM_BAR_SLOT_SIZE 128u
#define FCSHM_BAR_LAYOUT_HASH UINT64_C(0x60bd11d1338e3d40)
#define FCSHM_BAR_FIELDS \
    "ts_ms:i64@0;symbol_id:u32@8;flags:u32@12;open:i64@16;high:i64@24;" \
    "low:i64@32;close:i64@40;buy_qty:i64@48;sell_qty:i64@56;delta:i64@64;" \
    "cvd:i64@72;vwap:i64@80;buy_notional:i64@88;sell_notional:i64@96;" \
    "trades:u32@104;members:u32@108;publish_ns:i64@112;"
_Static_assert(sizeof(fcshm_bar) == 120, "BarRecord size");
_Static_assert(offsetof(fcshm_bar, ts_ms) == 0, "BarRecord.ts_ms offset");
_Static_assert(offsetof(fcshm_bar, symbol_id) == 8, "BarRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_bar, flags) == 12, "BarRecord.flags offset");
_Static_assert(offsetof(fcshm_bar, open) == 16, "BarRecord.open offset");
_Static_assert(offsetof(fcshm_bar, high) == 24, "BarRecord.high offset");
_Static_assert(offsetof(fcshm_bar, low) == 32, "BarRecord.low offset");
_Static_assert(offsetof(fcshm_bar, close) == 40, "BarRecord.close offset");
_Static_assert(offsetof(fcshm_bar, buy_qty) == 48, "BarRecord.buy_qty offset");
_Static_assert(offsetof(fcshm_bar, sell_qty) == 56, "BarRecord.sell_qty offset");
_Static_assert(offsetof(fcshm_bar, delta) == 64, "BarRecord.delta offset");
_Static_assert(offsetof(fcshm_bar, cvd) == 72, "BarRecord.cvd offset");
_Static_assert(offsetof(fcshm_bar, vwap) == 80, "BarRecord.vwap offset");
_Static_assert(offsetof(fcshm_bar, buy_notional) == 88, "BarRecord.buy_notional offset");
_Static_assert(offsetof(fcshm_bar, sell_notional) == 96, "BarRecord.sell_notional offset");
_Static_assert(offsetof(fcshm_bar, trades) == 104, "BarRecord.trades offset");
_Static_assert(offsetof(fcshm_bar, members) == 108, "BarRecord.members offset");
_Static_assert(offsetof(fcshm_bar, publish_ns) == 112, "BarRecord.publish_ns offset");

/* TopRecord: 120 bytes, slot 128 */
typedef struct fcshm_top {
    int64_t ts_ms;                     /*   0: i64 */
    uint32_t symbol_id;                /*   8: u32 */
    uint32_t flags;                    /*  12: u32 */
    int64_t bid_px;                    /*  16: i64 */
    int64_t bid_qty;                   /*  24: i64 */
    int64_t ask_px;                    /*  32: i64 */
    int64_t ask_qty;                   /*  40: i64 */
    int64_t obi_l1;                    /*  48: i64 */
    int64_t obi;                       /*  56: i64 */
    int64_t publish_ns;                /*  64: i64 */
    uint64_t reserved[6];              /*  72: [u64; 6] */
} fcshm_top;
#define FCSHM_TOP_RECORD_SIZE 120u
#define FCSHM_TOP_SLOT_SIZE 128u
#define FCSHM_TOP_LAYOUT_HASH UINT64_C(0x83ce474e46b8d24f)
#define FCSHM_TOP_FIELDS \
    "ts_ms:i64@0;symbol_id:u32@8;flags:u32@12;bid_px:i64@16;bid_qty:i64@24;" \
    "ask_px:i64@32;ask_qty:i64@40;obi_l1:i64@48;obi:i64@56;" \
    "publish_ns:i64@64;reserved:[u64; 6]@72;"
_Static_assert(sizeof(fcshm_top) == 120, "TopRecord size");
_Static_assert(offsetof(fcshm_top, ts_ms) == 0, "TopRecord.ts_ms offset");
_Static_assert(offsetof(fcshm_top, symbol_id) == 8, "TopRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_top, flags) == 12, "TopRecord.flags offset");
_Static_assert(offsetof(fcshm_top, bid_px) == 16, "TopRecord.bid_px offset");
_Static_assert(offsetof(fcshm_top, bid_qty) == 24, "TopRecord.bid_qty offset");
_Static_assert(offsetof(fcshm_top, ask_px) == 32, "TopRecord.ask_px offset");
_Static_assert(offsetof(fcshm_top, ask_qty) == 40, "TopRecord.ask_qty offset");
_Static_assert(offsetof(fcshm_top, obi_l1) == 48, "TopRecord.obi_l1 offset");
_Static_assert(offsetof(fcshm_top, obi) == 56, "TopRecord.obi offset");
_Static_assert(offsetof(fcshm_top, publish_ns) == 64, "TopRecord.publish_ns offset");
_Static_assert(offsetof(fcshm_top, reserved) == 72, "TopRecord.reserved offset");

/* TradeRecord: 56 bytes, slot 64 */
typedef struct fcshm_trade {
    int64_t trade_ns;                  /*   0: i64 */
    int64_t local_ns;                  /*   8: i64 */
    uint32_t symbol_id;                /*  16: u32 */
    uint32_t flags;                    /*  20: u32 */
    int64_t px;                        /*  24: i64 */
    int64_t qty;                       /*  32: i64 */
    uint64_t trade_id;                 /*  40: u64 */
    int64_t publish_ns;                /*  48: i64 */
} fcshm_trade;
#define FCSHM_TRADE_RECORD_SIZE 56u
#define FCSHM_TRADE_SLOT_SIZE 64u
#define FCSHM_TRADE_LAYOUT_HASH UINT64_C(0xc0e2612477481ad8)
#define FCSHM_TRADE_FIELDS \
    "trade_ns:i64@0;local_ns:i64@8;symbol_id:u32@16;flags:u32@20;px:i64@24;" \
    "qty:i64@32;trade_id:u64@40;publish_ns:i64@48;"
_Static_assert(sizeof(fcshm_trade) == 56, "TradeRecord size");
_Static_assert(offsetof(fcshm_trade, trade_ns) == 0, "TradeRecord.trade_ns offset");
_Static_assert(offsetof(fcshm_trade, local_ns) == 8, "TradeRecord.local_ns offset");
_Static_assert(offsetof(fcshm_trade, symbol_id) == 16, "TradeRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_trade, flags) == 20, "TradeRecord.flags offset");
_Static_assert(offsetof(fcshm_trade, px) == 24, "TradeRecord.px offset");
_Static_assert(offsetof(fcshm_trade, qty) == 32, "TradeRecord.qty offset");
_Static_assert(offsetof(fcshm_trade, trade_id) == 40, "TradeRecord.trade_id offset");
_Static_assert(offsetof(fcshm_trade, publish_ns) == 48, "TradeRecord.publish_ns offset");

/* BboRecord: 56 bytes, slot 64 */
typedef struct fcshm_bbo {
    int64_t exch_ns;                   /*   0: i64 */
    int64_t local_ns;                  /*   8: i64 */
    uint32_t symbol_id;                /*  16: u32 */
    uint32_t flags;                    /*  20: u32 */
    int64_t bid_px;                    /*  24: i64 */
    int64_t bid_qty;                   /*  32: i64 */
    int64_t ask_px;                    /*  40: i64 */
    int64_t ask_qty;                   /*  48: i64 */
} fcshm_bbo;
#define FCSHM_BBO_RECORD_SIZE 56u
#define FCSHM_BBO_SLOT_SIZE 64u
#define FCSHM_BBO_LAYOUT_HASH UINT64_C(0x6f7359cb31f3c7d5)
#define FCSHM_BBO_FIELDS \
    "exch_ns:i64@0;local_ns:i64@8;symbol_id:u32@16;flags:u32@20;" \
    "bid_px:i64@24;bid_qty:i64@32;ask_px:i64@40;ask_qty:i64@48;"
_Static_assert(sizeof(fcshm_bbo) == 56, "BboRecord size");
_Static_assert(offsetof(fcshm_bbo, exch_ns) == 0, "BboRecord.exch_ns offset");
_Static_assert(offsetof(fcshm_bbo, local_ns) == 8, "BboRecord.local_ns offset");
_Static_assert(offsetof(fcshm_bbo, symbol_id) == 16, "BboRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_bbo, flags) == 20, "BboRecord.flags offset");
_Static_assert(offsetof(fcshm_bbo, bid_px) == 24, "BboRecord.bid_px offset");
_Static_assert(offsetof(fcshm_bbo, bid_qty) == 32, "BboRecord.bid_qty offset");
_Static_assert(offsetof(fcshm_bbo, ask_px) == 40, "BboRecord.ask_px offset");
_Static_assert(offsetof(fcshm_bbo, ask_qty) == 48, "BboRecord.ask_qty offset");

/* Book20Record: 680 bytes, slot 704 */
typedef struct fcshm_book20 {
    int64_t exch_ns;                   /*   0: i64 */
    int64_t local_ns;                  /*   8: i64 */
    uint32_t symbol_id;                /*  16: u32 */
    uint32_t flags;                    /*  20: u32 */
    uint32_t bid_levels;               /*  24: u32 */
    uint32_t ask_levels;               /*  28: u32 */
    int64_t bids[20][2];               /*  32: [[i64; 2]; 20] */
    int64_t asks[20][2];               /* 352: [[i64; 2]; 20] */
    int64_t publish_ns;                /* 672: i64 */
} fcshm_book20;
#define FCSHM_BOOK20_RECORD_SIZE 680u
#define FCSHM_BOOK20_SLOT_SIZE 704u
#define FCSHM_BOOK20_LAYOUT_HASH UINT64_C(0x8fbfd9761ddf360f)
#define FCSHM_BOOK20_FIELDS \
    "exch_ns:i64@0;local_ns:i64@8;symbol_id:u32@16;flags:u32@20;" \
    "bid_levels:u32@24;ask_levels:u32@28;bids:[[i64; 2]; 20]@32;" \
    "asks:[[i64; 2]; 20]@352;publish_ns:i64@672;"
_Static_assert(sizeof(fcshm_book20) == 680, "Book20Record size");
_Static_assert(offsetof(fcshm_book20, exch_ns) == 0, "Book20Record.exch_ns offset");
_Static_assert(offsetof(fcshm_book20, local_ns) == 8, "Book20Record.local_ns offset");
_Static_assert(offsetof(fcshm_book20, symbol_id) == 16, "Book20Record.symbol_id offset");
_Static_assert(offsetof(fcshm_book20, flags) == 20, "Book20Record.flags offset");
_Static_assert(offsetof(fcshm_book20, bid_levels) == 24, "Book20Record.bid_levels offset");
_Static_assert(offsetof(fcshm_book20, ask_levels) == 28, "Book20Record.ask_levels offset");
_Static_assert(offsetof(fcshm_book20, bids) == 32, "Book20Record.bids offset");
_Static_assert(offsetof(fcshm_book20, asks) == 352, "Book20Record.asks offset");
_Static_assert(offsetof(fcshm_book20, publish_ns) == 672, "Book20Record.publish_ns offset");

/* HealthRecord: 192 bytes, slot 256, record version 2 */
typedef struct fcshm_health {
    int64_t ts_ms;                     /*   0: i64 */
    int64_t publish_ns;                /*   8: i64 */
    uint32_t source;                   /*  16: u32 */
    uint32_t flags;                    /*  20: u32 */
    uint64_t counters[16];             /*  24: [u64; 16] */
    uint64_t lag_samples;              /* 152: u64 */
    int64_t lag_ns[4];                 /* 160: [i64; 4] */
} fcshm_health;
#define FCSHM_HEALTH_RECORD_SIZE 192u
#define FCSHM_HEALTH_SLOT_SIZE 256u
#define FCSHM_HEALTH_LAYOUT_HASH UINT64_C(0x9952871d2b848c12)
#define FCSHM_HEALTH_FIELDS \
    "ts_ms:i64@0;publish_ns:i64@8;source:u32@16;flags:u32@20;" \
    "counters:[u64; 16]@24;lag_samples:u64@152;lag_ns:[i64; 4]@160;"
_Static_assert(sizeof(fcshm_health) == 192, "HealthRecord size");
_Static_assert(offsetof(fcshm_health, ts_ms) == 0, "HealthRecord.ts_ms offset");
_Static_assert(offsetof(fcshm_health, publish_ns) == 8, "HealthRecord.publish_ns offset");
_Static_assert(offsetof(fcshm_health, source) == 16, "HealthRecord.source offset");
_Static_assert(offsetof(fcshm_health, flags) == 20, "HealthRecord.flags offset");
_Static_assert(offsetof(fcshm_health, counters) == 24, "HealthRecord.counters offset");
_Static_assert(offsetof(fcshm_health, lag_samples) == 152, "HealthRecord.lag_samples offset");
_Static_assert(offsetof(fcshm_health, lag_ns) == 160, "HealthRecord.lag_ns offset");

/* SignalRecord: 248 bytes, slot 256 */
typedef struct fcshm_signal {
    uint64_t signal_id;                /*   0: u64 */
    int64_t exch_ns;                   /*   8: i64 */
    int64_t local_ns;                  /*  16: i64 */
    uint32_t symbol_id;                /*  24: u32 */
    uint32_t strategy_id;              /*  28: u32 */
    uint8_t action;                    /*  32: u8 */
    uint8_t tier;                      /*  33: u8 */
    uint16_t record_version;           /*  34: u16 */
    uint32_t reason_bits;              /*  36: u32 */
    int64_t entry_px;                  /*  40: i64 */
    int64_t stop_px;                   /*  48: i64 */
    int64_t take_profit_px;            /*  56: i64 */
    int64_t confidence;                /*  64: i64 */
    int64_t score;                     /*  72: i64 */
    int64_t size;                      /*  80: i64 */
    int64_t spot_cvd;                  /*  88: i64 */
    int64_t perp_cvd;                  /*  96: i64 */
    uint64_t reserved[18];             /* 104: [u64; 18] */
} fcshm_signal;
#define FCSHM_SIGNAL_RECORD_SIZE 248u
#define FCSHM_SIGNAL_SLOT_SIZE 256u
#define FCSHM_SIGNAL_LAYOUT_HASH UINT64_C(0x866ef03a450c28cd)
#define FCSHM_SIGNAL_FIELDS \
    "signal_id:u64@0;exch_ns:i64@8;local_ns:i64@16;symbol_id:u32@24;" \
    "strategy_id:u32@28;action:u8@32;tier:u8@33;record_version:u16@34;" \
    "reason_bits:u32@36;entry_px:i64@40;stop_px:i64@48;" \
    "take_profit_px:i64@56;confidence:i64@64;score:i64@72;size:i64@80;" \
    "spot_cvd:i64@88;perp_cvd:i64@96;reserved:[u64; 18]@104;"
_Static_assert(sizeof(fcshm_signal) == 248, "SignalRecord size");
_Static_assert(offsetof(fcshm_signal, signal_id) == 0, "SignalRecord.signal_id offset");
_Static_assert(offsetof(fcshm_signal, exch_ns) == 8, "SignalRecord.exch_ns offset");
_Static_assert(offsetof(fcshm_signal, local_ns) == 16, "SignalRecord.local_ns offset");
_Static_assert(offsetof(fcshm_signal, symbol_id) == 24, "SignalRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_signal, strategy_id) == 28, "SignalRecord.strategy_id offset");
_Static_assert(offsetof(fcshm_signal, action) == 32, "SignalRecord.action offset");
_Static_assert(offsetof(fcshm_signal, tier) == 33, "SignalRecord.tier offset");
_Static_assert(offsetof(fcshm_signal, record_version) == 34, "SignalRecord.record_version offset");
_Static_assert(offsetof(fcshm_signal, reason_bits) == 36, "SignalRecord.reason_bits offset");
_Static_assert(offsetof(fcshm_signal, entry_px) == 40, "SignalRecord.entry_px offset");
_Static_assert(offsetof(fcshm_signal, stop_px) == 48, "SignalRecord.stop_px offset");
_Static_assert(offsetof(fcshm_signal, take_profit_px) == 56, "SignalRecord.take_profit_px offset");
_Static_assert(offsetof(fcshm_signal, confidence) == 64, "SignalRecord.confidence offset");
_Static_assert(offsetof(fcshm_signal, score) == 72, "SignalRecord.score offset");
_Static_assert(offsetof(fcshm_signal, size) == 80, "SignalRecord.size offset");
_Static_assert(offsetof(fcshm_signal, spot_cvd) == 88, "SignalRecord.spot_cvd offset");
_Static_assert(offsetof(fcshm_signal, perp_cvd) == 96, "SignalRecord.perp_cvd offset");
_Static_assert(offsetof(fcshm_signal, reserved) == 104, "SignalRecord.reserved offset");

/* StatsRecord: 120 bytes, slot 128 */
typedef struct fcshm_stats {
    int64_t ts_ms;                     /*   0: i64 */
    uint32_t symbol_id;                /*   8: u32 */
    uint32_t flags;                    /*  12: u32 */
    int64_t mark_px;                   /*  16: i64 */
    int64_t index_px;                  /*  24: i64 */
    int64_t open_interest;             /*  32: i64 */
    int64_t funding_rate;              /*  40: i64 */
    int64_t next_funding_ms;           /*  48: i64 */
    int64_t local_ns;                  /*  56: i64 */
    int64_t publish_ns;                /*  64: i64 */
    uint64_t reserved[6];              /*  72: [u64; 6] */
} fcshm_stats;
#define FCSHM_STATS_RECORD_SIZE 120u
#define FCSHM_STATS_SLOT_SIZE 128u
#define FCSHM_STATS_LAYOUT_HASH UINT64_C(0x02531228e4d13906)
#define FCSHM_STATS_FIELDS \
    "ts_ms:i64@0;symbol_id:u32@8;flags:u32@12;mark_px:i64@16;index_px:i64@24;" \
    "open_interest:i64@32;funding_rate:i64@40;next_funding_ms:i64@48;" \
    "local_ns:i64@56;publish_ns:i64@64;reserved:[u64; 6]@72;"
_Static_assert(sizeof(fcshm_stats) == 120, "StatsRecord size");
_Static_assert(offsetof(fcshm_stats, ts_ms) == 0, "StatsRecord.ts_ms offset");
_Static_assert(offsetof(fcshm_stats, symbol_id) == 8, "StatsRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_stats, flags) == 12, "StatsRecord.flags offset");
_Static_assert(offsetof(fcshm_stats, mark_px) == 16, "StatsRecord.mark_px offset");
_Static_assert(offsetof(fcshm_stats, index_px) == 24, "StatsRecord.index_px offset");
_Static_assert(offsetof(fcshm_stats, open_interest) == 32, "StatsRecord.open_interest offset");
_Static_assert(offsetof(fcshm_stats, funding_rate) == 40, "StatsRecord.funding_rate offset");
_Static_assert(offsetof(fcshm_stats, next_funding_ms) == 48, "StatsRecord.next_funding_ms offset");
_Static_assert(offsetof(fcshm_stats, local_ns) == 56, "StatsRecord.local_ns offset");
_Static_assert(offsetof(fcshm_stats, publish_ns) == 64, "StatsRecord.publish_ns offset");
_Static_assert(offsetof(fcshm_stats, reserved) == 72, "StatsRecord.reserved offset");

/* StrategyRecord: 56 bytes, slot 64 */
typedef struct fcshm_strategy {
    uint32_t strategy_id;              /*   0: u32 */
    uint32_t symbol_id;                /*   4: u32 */
    uint8_t name[32];                  /*   8: [u8; 32] */
    uint64_t reserved[2];              /*  40: [u64; 2] */
} fcshm_strategy;
#define FCSHM_STRATEGY_RECORD_SIZE 56u
#define FCSHM_STRATEGY_SLOT_SIZE 64u
#define FCSHM_STRATEGY_LAYOUT_HASH UINT64_C(0xaa288f074297b652)
#define FCSHM_STRATEGY_FIELDS \
    "strategy_id:u32@0;symbol_id:u32@4;name:[u8; 32]@8;reserved:[u64; 2]@40;"
_Static_assert(sizeof(fcshm_strategy) == 56, "StrategyRecord size");
_Static_assert(offsetof(fcshm_strategy, strategy_id) == 0, "StrategyRecord.strategy_id offset");
_Static_assert(offsetof(fcshm_strategy, symbol_id) == 4, "StrategyRecord.symbol_id offset");
_Static_assert(offsetof(fcshm_strategy, name) == 8, "StrategyRecord.name offset");
_Static_assert(offsetof(fcshm_strategy, reserved) == 40, "StrategyRecord.reserved offset");
_Static_assert(sizeof(((fcshm_strategy *)0)->name) == FCSHM_STRATEGY_NAME_LEN, "StrategyRecord.name size");

#define FCSHM_MAX_RECORD_SIZE 680u
#define FCSHM_MAX_RECORD_WORDS (FCSHM_MAX_RECORD_SIZE / 8u)

/* ------------------------------------------------------------------------------------ */
/* Stream table                                                                          */
/* ------------------------------------------------------------------------------------ */

typedef struct fcshm_stream_info {
    uint32_t stream;          /* enum fcshm_stream_id */
    uint32_t kind;            /* FCSHM_KIND_RING or FCSHM_KIND_TABLE */
    const char *name;         /* "bars" */
    const char *file;         /* "bars.ring" */
    const char *record;       /* "BarRecord" */
    uint32_t record_size;
    uint32_t slot_size;
    uint32_t record_version;
    uint64_t layout_hash;     /* as documented in ABI.md */
    const char *fields;       /* layout_hash input */
} fcshm_stream_info;

/* Info for a stream id (1..FCSHM_STREAM_MAX), NULL for an unknown id. */
static inline const fcshm_stream_info *fcshm_stream_info_get(uint32_t stream) {
    static const fcshm_stream_info table[FCSHM_STREAM_MAX] = {
        {FCSHM_STREAM_BARS, FCSHM_KIND_RING, "bars", "bars.ring", "BarRecord",
         FCSHM_BAR_RECORD_SIZE, FCSHM_BAR_SLOT_SIZE, 2, FCSHM_BAR_LAYOUT_HASH, FCSHM_BAR_FIELDS},
        {FCSHM_STREAM_TOPS, FCSHM_KIND_RING, "tops", "tops.ring", "TopRecord",
         FCSHM_TOP_RECORD_SIZE, FCSHM_TOP_SLOT_SIZE, 1, FCSHM_TOP_LAYOUT_HASH, FCSHM_TOP_FIELDS},
        {FCSHM_STREAM_TRADES, FCSHM_KIND_RING, "trades", "trades.ring", "TradeRecord",
         FCSHM_TRADE_RECORD_SIZE, FCSHM_TRADE_SLOT_SIZE, 1, FCSHM_TRADE_LAYOUT_HASH,
         FCSHM_TRADE_FIELDS},
        {FCSHM_STREAM_BBO, FCSHM_KIND_RING, "bbo", "bbo.ring", "BboRecord",
         FCSHM_BBO_RECORD_SIZE, FCSHM_BBO_SLOT_SIZE, 1, FCSHM_BBO_LAYOUT_HASH, FCSHM_BBO_FIELDS},
        {FCSHM_STREAM_BOOK20, FCSHM_KIND_TABLE, "book20", "book20.table", "Book20Record",
         FCSHM_BOOK20_RECORD_SIZE, FCSHM_BOOK20_SLOT_SIZE, 1, FCSHM_BOOK20_LAYOUT_HASH,
         FCSHM_BOOK20_FIELDS},
        {FCSHM_STREAM_HEALTH, FCSHM_KIND_RING, "health", "health.ring", "HealthRecord",
         FCSHM_HEALTH_RECORD_SIZE, FCSHM_HEALTH_SLOT_SIZE, 2, FCSHM_HEALTH_LAYOUT_HASH,
         FCSHM_HEALTH_FIELDS},
        {FCSHM_STREAM_SIGNALS, FCSHM_KIND_RING, "signals", "signals.ring", "SignalRecord",
         FCSHM_SIGNAL_RECORD_SIZE, FCSHM_SIGNAL_SLOT_SIZE, 1, FCSHM_SIGNAL_LAYOUT_HASH,
         FCSHM_SIGNAL_FIELDS},
        {FCSHM_STREAM_SYMBOLS, FCSHM_KIND_TABLE, "symbols", "symbols.table", "SymbolRecord",
         FCSHM_SYMBOL_RECORD_SIZE, FCSHM_SYMBOL_SLOT_SIZE, 1, FCSHM_SYMBOL_LAYOUT_HASH,
         FCSHM_SYMBOL_FIELDS},
        {FCSHM_STREAM_STATS, FCSHM_KIND_RING, "stats", "stats.ring", "StatsRecord",
         FCSHM_STATS_RECORD_SIZE, FCSHM_STATS_SLOT_SIZE, 1, FCSHM_STATS_LAYOUT_HASH,
         FCSHM_STATS_FIELDS},
        {FCSHM_STREAM_STRATEGIES, FCSHM_KIND_TABLE, "strategies", "strategies.table",
         "StrategyRecord", FCSHM_STRATEGY_RECORD_SIZE, FCSHM_STRATEGY_SLOT_SIZE, 1,
         FCSHM_STRATEGY_LAYOUT_HASH, FCSHM_STRATEGY_FIELDS},
    };
    if (stream < 1 || stream > FCSHM_STREAM_MAX) return NULL;
    return &table[stream - 1];
}

/* Stream id for a name ("bars"), 0 if unknown. */
static inline uint32_t fcshm_stream_by_name(const char *name, size_t len) {
    for (uint32_t s = 1; s <= FCSHM_STREAM_MAX; s++) {
        const char *n = fcshm_stream_info_get(s)->name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) return s;
    }
    return 0;
}

/* Venue name for a SymbolRecord.venue code, NULL if unknown. */
static inline const char *fcshm_venue_name(uint32_t venue) {
    switch (venue) {
    case FCSHM_VENUE_BINANCE_SPOT: return "binance-spot";
    case FCSHM_VENUE_BINANCE_USDM: return "binance-usdm";
    case FCSHM_VENUE_BINANCE_COINM: return "binance-coinm";
    case FCSHM_VENUE_BYBIT_SPOT: return "bybit-spot";
    case FCSHM_VENUE_BYBIT_LINEAR: return "bybit-linear";
    case FCSHM_VENUE_AGG_SPOT: return "agg-spot";
    case FCSHM_VENUE_AGG_PERP: return "agg-perp";
    default: return NULL;
    }
}

/* ------------------------------------------------------------------------------------ */
/* layout_hash: FNV-1a 64 over the field list string                                    */
/* ------------------------------------------------------------------------------------ */

static inline uint64_t fcshm_fnv1a64(const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = FCSHM_FNV_OFFSET_BASIS;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FCSHM_FNV_PRIME;
    }
    return h;
}

/* Hash of a field list string "NAME:TYPE@OFFSET;..." (ABI.md "layout_hash"). */
static inline uint64_t fcshm_layout_hash(const char *fields) {
    return fcshm_fnv1a64(fields, strlen(fields));
}

/* Checks every documented hash against its field list. 0 ok, else the failing stream id. */
static inline uint32_t fcshm_check_layout_hashes(void) {
    for (uint32_t s = 1; s <= FCSHM_STREAM_MAX; s++) {
        const fcshm_stream_info *i = fcshm_stream_info_get(s);
        if (fcshm_layout_hash(i->fields) != i->layout_hash) return s;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */
/* ------------------------------------------------------------------------------------ */

enum fcshm_status {
    FCSHM_OK = 0,
    FCSHM_E_NOTFOUND = -1,       /* file missing: no bus yet, or a start in progress (retry) */
    FCSHM_E_IO = -2,             /* open/fstat/pread/mmap failed (errno in the message) */
    FCSHM_E_SHORT = -3,          /* file shorter than the 256-byte header */
    FCSHM_E_MAGIC = -4,          /* not a flowcore bus file */
    FCSHM_E_VERSION = -5,        /* abi_version not supported by this reader */
    FCSHM_E_HEADER_SIZE = -6,    /* header_size != 256 */
    FCSHM_E_KIND = -7,           /* kind is not what was opened */
    FCSHM_E_STREAM = -8,         /* stream is not what was opened */
    FCSHM_E_LAYOUT = -9,         /* layout_hash mismatch */
    FCSHM_E_RECORD_SIZE = -10,   /* record_size mismatch */
    FCSHM_E_RECORD_VERSION = -11,/* record_version mismatch */
    FCSHM_E_SLOT_SIZE = -12,     /* slot_size does not follow from record_size */
    FCSHM_E_CAPACITY = -13,      /* capacity 0 or (ring) not a power of two */
    FCSHM_E_FILE_SIZE = -14,     /* file_size formula or real size mismatch */
    FCSHM_E_EPOCH = -15,         /* writer_epoch 0, or files of different epochs (retry) */
    FCSHM_E_ARG = -16,           /* bad argument (unknown stream, key out of range, ...) */
    FCSHM_E_BUSY = -17           /* table slot stayed odd (writer inside it) too long */
};

static inline const char *fcshm_strerror(int code) {
    switch (code) {
    case FCSHM_OK: return "ok";
    case FCSHM_E_NOTFOUND: return "file not found";
    case FCSHM_E_IO: return "I/O error";
    case FCSHM_E_SHORT: return "file shorter than the header";
    case FCSHM_E_MAGIC: return "bad magic";
    case FCSHM_E_VERSION: return "unsupported abi_version";
    case FCSHM_E_HEADER_SIZE: return "bad header_size";
    case FCSHM_E_KIND: return "wrong kind";
    case FCSHM_E_STREAM: return "wrong stream";
    case FCSHM_E_LAYOUT: return "layout_hash mismatch";
    case FCSHM_E_RECORD_SIZE: return "record_size mismatch";
    case FCSHM_E_RECORD_VERSION: return "record_version mismatch";
    case FCSHM_E_SLOT_SIZE: return "bad slot_size";
    case FCSHM_E_CAPACITY: return "bad capacity";
    case FCSHM_E_FILE_SIZE: return "bad file_size";
    case FCSHM_E_EPOCH: return "writer_epoch mismatch";
    case FCSHM_E_ARG: return "bad argument";
    case FCSHM_E_BUSY: return "slot busy";
    default: return "unknown error";
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static inline int fcshm__fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ------------------------------------------------------------------------------------ */
/* Files                                                                                 */
/* ------------------------------------------------------------------------------------ */

typedef struct fcshm_file {
    int fd;
    unsigned char *base;            /* read-only shared mapping of file_size bytes */
    size_t map_len;
    const fcshm_stream_info *info;
    uint64_t epoch;                 /* writer_epoch */
    uint64_t capacity;
    uint64_t file_size;
    uint64_t created_ns;
    uint32_t record_size;
    uint32_t slot_size;
    dev_t dev;
    ino_t ino;
    char path[4096];
} fcshm_file;

/* The 64-bit word at byte offset off of the mapping, as an atomic (off is 8-aligned). */
static inline _Atomic uint64_t *fcshm__word(const fcshm_file *f, size_t off) {
    return (_Atomic uint64_t *)(void *)(f->base + off);
}

static inline uint64_t fcshm_write_seq(const fcshm_file *f) {
    return atomic_load_explicit(fcshm__word(f, FCSHM_OFF_WRITE_SEQ), memory_order_acquire);
}

static inline uint64_t fcshm_heartbeat_ns(const fcshm_file *f) {
    return atomic_load_explicit(fcshm__word(f, FCSHM_OFF_HEARTBEAT_NS), memory_order_acquire);
}

static inline void fcshm_close(fcshm_file *f) {
    if (f->base && f->base != MAP_FAILED) munmap(f->base, f->map_len);
    if (f->fd >= 0) close(f->fd);
    f->base = NULL;
    f->fd = -1;
}

/* Validates a header read from a file of real size real_size for stream info i. */
static inline int fcshm_validate_header(const fcshm_file_header *h, uint64_t real_size,
                                        const fcshm_stream_info *i, const char *path,
                                        char *err, size_t errlen) {
    if (memcmp(h->magic, FCSHM_MAGIC, 8) != 0)
        return fcshm__fail(err, errlen, FCSHM_E_MAGIC,
                           "%s: bad magic (expected \"FLOWCSHM\"): not a flowcore bus file", path);
    if (h->abi_version != FCSHM_ABI_VERSION)
        return fcshm__fail(err, errlen, FCSHM_E_VERSION,
                           "%s: unsupported abi_version %u; this reader supports abi_version %u",
                           path, (unsigned)h->abi_version, FCSHM_ABI_VERSION);
    if (h->header_size != FCSHM_HEADER_SIZE)
        return fcshm__fail(err, errlen, FCSHM_E_HEADER_SIZE, "%s: header_size is %u, expected %u",
                           path, (unsigned)h->header_size, FCSHM_HEADER_SIZE);
    if (h->kind != i->kind)
        return fcshm__fail(err, errlen, FCSHM_E_KIND, "%s: kind is %u, expected %u (%s)", path,
                           (unsigned)h->kind, (unsigned)i->kind,
                           i->kind == FCSHM_KIND_RING ? "ring" : "table");
    if (h->stream != i->stream)
        return fcshm__fail(err, errlen, FCSHM_E_STREAM, "%s: stream is %u, expected %u (%s)",
                           path, (unsigned)h->stream, (unsigned)i->stream, i->name);
    uint64_t want = fcshm_layout_hash(i->fields);
    if (want != i->layout_hash)
        return fcshm__fail(err, errlen, FCSHM_E_LAYOUT,
                           "%s: reader inconsistent: %s field list hashes to %#018llx, constant "
                           "is %#018llx", path, i->record, (unsigned long long)want,
                           (unsigned long long)i->layout_hash);
    if (h->layout_hash != want)
        return fcshm__fail(err, errlen, FCSHM_E_LAYOUT,
                           "%s: layout_hash is %#018llx, this reader's %s layout is %#018llx",
                           path, (unsigned long long)h->layout_hash, i->record,
                           (unsigned long long)want);
    if (h->record_size != i->record_size)
        return fcshm__fail(err, errlen, FCSHM_E_RECORD_SIZE, "%s: record_size is %u, %s is %u bytes",
                           path, (unsigned)h->record_size, i->record, (unsigned)i->record_size);
    if (h->record_version != i->record_version)
        return fcshm__fail(err, errlen, FCSHM_E_RECORD_VERSION,
                           "%s: record_version is %u, this reader knows %s version %u", path,
                           (unsigned)h->record_version, i->record, (unsigned)i->record_version);
    uint32_t slot = (8u + h->record_size + 63u) / 64u * 64u;
    if (h->slot_size != slot || slot != i->slot_size)
        return fcshm__fail(err, errlen, FCSHM_E_SLOT_SIZE,
                           "%s: slot_size %u does not follow from record_size %u (expected %u)",
                           path, (unsigned)h->slot_size, (unsigned)h->record_size, (unsigned)slot);
    if (h->capacity == 0)
        return fcshm__fail(err, errlen, FCSHM_E_CAPACITY, "%s: capacity is 0", path);
    if (h->kind == FCSHM_KIND_RING && (h->capacity & (h->capacity - 1)) != 0)
        return fcshm__fail(err, errlen, FCSHM_E_CAPACITY,
                           "%s: ring capacity %llu is not a power of two", path,
                           (unsigned long long)h->capacity);
    if (h->capacity > (UINT64_MAX - FCSHM_HEADER_SIZE) / h->slot_size ||
        h->file_size != FCSHM_HEADER_SIZE + h->capacity * h->slot_size)
        return fcshm__fail(err, errlen, FCSHM_E_FILE_SIZE,
                           "%s: file_size %llu != 256 + capacity %llu * slot_size %u", path,
                           (unsigned long long)h->file_size, (unsigned long long)h->capacity,
                           (unsigned)h->slot_size);
    if (real_size != h->file_size)
        return fcshm__fail(err, errlen, FCSHM_E_FILE_SIZE,
                           "%s: file is %llu bytes on disk, header says file_size %llu", path,
                           (unsigned long long)real_size, (unsigned long long)h->file_size);
    if (h->writer_epoch == 0)
        return fcshm__fail(err, errlen, FCSHM_E_EPOCH, "%s: writer_epoch is 0", path);
    return FCSHM_OK;
}

/* Opens, validates and maps DIR/<file of stream>. On error f is closed and err holds a
 * message; FCSHM_E_NOTFOUND means "not there (yet)": retry. */
static inline int fcshm_open(fcshm_file *f, const char *dir, uint32_t stream, char *err,
                             size_t errlen) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->info = fcshm_stream_info_get(stream);
    if (!f->info) return fcshm__fail(err, errlen, FCSHM_E_ARG, "unknown stream id %u", (unsigned)stream);
    int n = snprintf(f->path, sizeof f->path, "%s/%s", dir, f->info->file);
    if (n < 0 || (size_t)n >= sizeof f->path)
        return fcshm__fail(err, errlen, FCSHM_E_ARG, "%s: path too long", dir);
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        return fcshm__fail(err, errlen, e == ENOENT ? FCSHM_E_NOTFOUND : FCSHM_E_IO,
                           "%s: open: %s", f->path, strerror(e));
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        int e = errno;
        fcshm_close(f);
        return fcshm__fail(err, errlen, FCSHM_E_IO, "%s: fstat: %s", f->path, strerror(e));
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    if (st.st_size < (off_t)FCSHM_HEADER_SIZE) {
        fcshm_close(f);
        return fcshm__fail(err, errlen, FCSHM_E_SHORT, "%s: file is %lld bytes, shorter than the "
                           "256-byte header", f->path, (long long)st.st_size);
    }
    /* The fields before offset 128 never change once the file is renamed into place. */
    fcshm_file_header h;
    ssize_t got = pread(f->fd, &h, sizeof h, 0);
    if (got != (ssize_t)sizeof h) {
        int e = errno;
        fcshm_close(f);
        return fcshm__fail(err, errlen, FCSHM_E_IO, "%s: pread header: %s", f->path,
                           got < 0 ? strerror(e) : "short read");
    }
    int rc = fcshm_validate_header(&h, (uint64_t)st.st_size, f->info, f->path, err, errlen);
    if (rc != FCSHM_OK) {
        fcshm_close(f);
        return rc;
    }
    f->epoch = h.writer_epoch;
    f->capacity = h.capacity;
    f->file_size = h.file_size;
    f->created_ns = h.created_ns;
    f->record_size = h.record_size;
    f->slot_size = h.slot_size;
    f->map_len = (size_t)h.file_size;
    void *m = mmap(NULL, f->map_len, PROT_READ, MAP_SHARED, f->fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        f->base = NULL;
        fcshm_close(f);
        return fcshm__fail(err, errlen, FCSHM_E_IO, "%s: mmap: %s", f->path, strerror(e));
    }
    f->base = (unsigned char *)m;
    return FCSHM_OK;
}

/* 1 when f->path now names a different inode whose header has a different writer_epoch
 * (the writer restarted: close, reopen, read from sequence 0); 0 otherwise. */
static inline int fcshm_file_replaced(const fcshm_file *f) {
    struct stat st;
    if (stat(f->path, &st) != 0) return 0;
    if (st.st_dev == f->dev && st.st_ino == f->ino) return 0;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    fcshm_file_header h;
    ssize_t got = pread(fd, &h, 40, 0);
    close(fd);
    if (got != 40 || memcmp(h.magic, FCSHM_MAGIC, 8) != 0) return 0;
    return h.writer_epoch != f->epoch;
}

/* ------------------------------------------------------------------------------------ */
/* The stamp protocol                                                                    */
/* ------------------------------------------------------------------------------------ */

/* Reads slot `slot`: loads the stamp (acquire); if even copies the record words (relaxed)
 * into words[], acquire fence, re-loads the stamp (relaxed). Returns the stamp; *good is 1
 * when the copy is consistent (stamp even and unchanged), 0 otherwise (the returned stamp is
 * then the latest one seen). */
static inline uint64_t fcshm__copy_slot(const fcshm_file *f, uint64_t slot, uint64_t *words,
                                        int *good) {
    _Atomic uint64_t *sp = fcshm__word(f, FCSHM_HEADER_SIZE + (size_t)slot * f->slot_size);
    uint64_t s1 = atomic_load_explicit(sp, memory_order_acquire);
    *good = 0;
    if (s1 & 1u) return s1;
    size_t nw = f->record_size / 8u;
    for (size_t i = 0; i < nw; i++) words[i] = atomic_load_explicit(sp + 1 + i, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    uint64_t s2 = atomic_load_explicit(sp, memory_order_relaxed);
    if (s2 != s1) return s2;
    *good = 1;
    return s1;
}

/* ------------------------------------------------------------------------------------ */
/* Rings                                                                                 */
/* ------------------------------------------------------------------------------------ */

enum fcshm_start { FCSHM_START_OLDEST = 0, FCSHM_START_LATEST = 1, FCSHM_START_NEXT = 2 };

typedef struct fcshm_ring {
    const fcshm_file *file;
    uint64_t next;       /* sequence number of the next record to read */
    uint64_t records;    /* records returned */
    uint64_t lapped;     /* records lost: overwritten by the writer before we read them */
    uint64_t torn;       /* torn copies (retried) */
} fcshm_ring;

/* Start position from the current write_seq: oldest still present, latest, or new only. */
static inline void fcshm_ring_init(fcshm_ring *r, const fcshm_file *f, int start) {
    uint64_t ws = fcshm_write_seq(f);
    r->file = f;
    r->records = r->lapped = r->torn = 0;
    switch (start) {
    case FCSHM_START_OLDEST: r->next = ws > f->capacity ? ws - f->capacity : 0; break;
    case FCSHM_START_LATEST: r->next = ws > 0 ? ws - 1 : 0; break;
    default: r->next = ws; break;
    }
}

/* Tries to read record r->next into out (record_size bytes). Returns 1 and sets *seq when
 * a record was read (r->next advances), 0 when it is not (completely) written yet.
 * Records the writer overwrote before we got to them are skipped and counted in r->lapped. */
static inline int fcshm_ring_try_read(fcshm_ring *r, void *out, uint64_t *seq) {
    const fcshm_file *f = r->file;
    uint64_t words[FCSHM_MAX_RECORD_WORDS];
    uint64_t mask = f->capacity - 1;
    for (;;) {
        uint64_t n = r->next;
        uint64_t done = 2 * n + 2;
        int good;
        uint64_t s = fcshm__copy_slot(f, n & mask, words, &good);
        if (s > done) {
            /* lapped: record n was overwritten */
            uint64_t ws = fcshm_write_seq(f);
            uint64_t floor = ws > f->capacity ? ws - f->capacity : 0;
            uint64_t nn = floor > n + 1 ? floor : n + 1;
            r->lapped += nn - n;
            r->next = nn;
            continue;
        }
        if (s < done) return 0; /* not (completely) written yet: wait */
        if (!good) {            /* s == done but torn: copy again */
            r->torn++;
            continue;
        }
        memcpy(out, words, f->record_size);
        if (seq) *seq = n;
        r->next = n + 1;
        r->records++;
        return 1;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Tables                                                                                */
/* ------------------------------------------------------------------------------------ */

#ifndef FCSHM_TABLE_SPIN_LIMIT
#define FCSHM_TABLE_SPIN_LIMIT 1000000
#endif

/* Current stamp of table slot key (2 * updates; 0 = never written). */
static inline uint64_t fcshm_table_stamp(const fcshm_file *f, uint64_t key) {
    if (key >= f->capacity) return 0;
    return atomic_load_explicit(fcshm__word(f, FCSHM_HEADER_SIZE + (size_t)key * f->slot_size),
                                memory_order_acquire);
}

/* Reads table slot key into out (record_size bytes). Returns 1 (read; *stamp set if
 * non-NULL), 0 (never written), FCSHM_E_ARG (key out of range) or FCSHM_E_BUSY (the slot
 * stayed odd or torn for FCSHM_TABLE_SPIN_LIMIT tries, e.g. its writer died inside it). */
static inline int fcshm_table_read(const fcshm_file *f, uint64_t key, void *out, uint64_t *stamp) {
    uint64_t words[FCSHM_MAX_RECORD_WORDS];
    if (key >= f->capacity) return FCSHM_E_ARG;
    for (long i = 0; i < FCSHM_TABLE_SPIN_LIMIT; i++) {
        int good;
        uint64_t s = fcshm__copy_slot(f, key, words, &good);
        if (s == 0) return 0;
        if (good) {
            memcpy(out, words, f->record_size);
            if (stamp) *stamp = s;
            return 1;
        }
    }
    return FCSHM_E_BUSY;
}

/* ------------------------------------------------------------------------------------ */
/* Writer liveness                                                                       */
/* ------------------------------------------------------------------------------------ */

/* 1 while a writer holds its exclusive flock on DIR/writer.lock, 0 when none does (or the
 * file does not exist), a negative status on another error. */
static inline int fcshm_writer_alive(const char *dir) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/writer.lock", dir);
    if (n < 0 || (size_t)n >= sizeof path) return FCSHM_E_ARG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : FCSHM_E_IO;
    int alive;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        alive = 0;
    } else {
        alive = (errno == EWOULDBLOCK || errno == EAGAIN) ? 1 : FCSHM_E_IO;
    }
    close(fd);
    return alive;
}

/* ------------------------------------------------------------------------------------ */
/* A bus: symbols.table plus a set of streams, all of one writer start                   */
/* ------------------------------------------------------------------------------------ */

typedef struct fcshm_bus {
    char dir[4096];
    uint64_t epoch;
    uint32_t mask;                             /* bit s: stream s is open */
    fcshm_file files[FCSHM_STREAM_MAX + 1];   /* indexed by stream id; [8] = symbols */
    uint32_t absent;                           /* optional streams asked for but missing */
} fcshm_bus;

static inline void fcshm_bus_close(fcshm_bus *b) {
    for (uint32_t s = 1; s <= FCSHM_STREAM_MAX; s++)
        if (b->mask & (1u << s)) fcshm_close(&b->files[s]);
    b->mask = 0;
}

/* Opens DIR's symbols.table and every stream s with bit (1u << s) set in mask, and checks
 * they carry one writer_epoch. FCSHM_E_NOTFOUND / FCSHM_E_EPOCH: a start in progress or no
 * bus yet, retry; any other error: the files do not match this reader. An optional stream
 * (FCSHM_OPTIONAL_STREAMS) that is missing is no error: the bus of an older writer. Its bit
 * is then clear in b->mask and set in b->absent. Streams open in id order, so the optional
 * ones (the highest ids) open last, as ABI.md asks. */
static inline int fcshm_bus_open(fcshm_bus *b, const char *dir, uint32_t mask, char *err,
                                 size_t errlen) {
    memset(b, 0, sizeof *b);
    if (snprintf(b->dir, sizeof b->dir, "%s", dir) >= (int)sizeof b->dir)
        return fcshm__fail(err, errlen, FCSHM_E_ARG, "%s: path too long", dir);
    mask |= 1u << FCSHM_STREAM_SYMBOLS;
    for (uint32_t s = 1; s <= FCSHM_STREAM_MAX; s++) {
        if (!(mask & (1u << s))) continue;
        int rc = fcshm_open(&b->files[s], dir, s, err, errlen);
        if (rc == FCSHM_E_NOTFOUND && (FCSHM_OPTIONAL_STREAMS & (1u << s))) {
            b->absent |= 1u << s;
            continue;
        }
        if (rc != FCSHM_OK) {
            fcshm_bus_close(b);
            return rc;
        }
        b->mask |= 1u << s;
        if (b->epoch == 0) {
            b->epoch = b->files[s].epoch;
        } else if (b->files[s].epoch != b->epoch) {
            fcshm_bus_close(b);
            return fcshm__fail(err, errlen, FCSHM_E_EPOCH,
                               "%s: files of different writer epochs: a writer start in progress",
                               dir);
        }
    }
    return FCSHM_OK;
}

/* 1 when any open file of the bus was replaced by a new writer start. */
static inline int fcshm_bus_restarted(const fcshm_bus *b) {
    for (uint32_t s = 1; s <= FCSHM_STREAM_MAX; s++)
        if ((b->mask & (1u << s)) && fcshm_file_replaced(&b->files[s])) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                               */
/* ------------------------------------------------------------------------------------ */

/* Mantissa m at scale s as the replay JSONL prints it: s == 0 -> the integer; else sign,
 * |m| / 10^s, '.', |m| % 10^s zero-padded to s digits. Returns snprintf's result. */
static inline int fcshm_format_decimal(char *buf, size_t len, int64_t m, unsigned scale) {
    if (scale == 0) return snprintf(buf, len, "%lld", (long long)m);
    uint64_t a = m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
    if (scale > 19) {
        /* 10^scale exceeds u64: integer part 0, all of |m| in the fraction */
        return snprintf(buf, len, "%s0.%0*llu", m < 0 ? "-" : "", (int)scale, (unsigned long long)a);
    }
    uint64_t p = 1;
    for (unsigned i = 0; i < scale; i++) p *= 10u;
    return snprintf(buf, len, "%s%llu.%0*llu", m < 0 ? "-" : "", (unsigned long long)(a / p),
                    (int)scale, (unsigned long long)(a % p));
}

/* Copies a NUL-padded text field of n bytes into out (n + 1 bytes), NUL terminated. */
static inline void fcshm_text(char *out, const uint8_t *field, size_t n) {
    size_t i = 0;
    for (; i < n && field[i]; i++) out[i] = (char)field[i];
    out[i] = 0;
}

/* Wall clock in ns since the Unix epoch (to compare with publish_ns / heartbeat_ns). */
static inline uint64_t fcshm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* FLOWCORE_SHM_H */
