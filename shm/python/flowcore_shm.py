#!/usr/bin/env python3
"""Pure-stdlib reader of the flowcore shared-memory bus (ABI version 1).

Written from ``shm/ABI.md`` (the ABI) and ``docs/REPLAY.md`` (the JSONL row format)
alone.  Python 3.11, standard library only.

Memory ordering -- READ THIS BEFORE PORTING
-------------------------------------------
The ABI's reader protocol asks for an acquire load of the slot stamp, relaxed 64-bit
atomic loads of the record words, an acquire fence, and a relaxed re-load of the stamp.
CPython has no atomics and no fences.  This module relies on **x86-64 TSO ordering**:

* every 64-bit word (stamp, record word, ``write_seq``) is read with one element access
  of ``memoryview(mmap).cast('Q')``.  CPython unpacks such an element with a fixed-size
  8-byte ``memcpy`` from an 8-byte aligned address, which compiles to a single aligned
  ``mov`` -- an untorn 64-bit load (the stamp is never read bytewise);
* on x86-64 every plain load already has acquire semantics and loads are not reordered
  with other loads, so "load stamp, load words, load stamp again" is observed in program
  order, which is exactly what the acquire load + acquire fence of the ABI guarantee.

Neither holds on AArch64 (or any weakly ordered CPU): there the loads may be reordered and
a torn record could pass the stamp check.  **Do not use this module on AArch64**; use the C
header ``shm/include/flowcore_shm.h`` (real acquire loads and fences) instead.
The CLI prints a warning on other CPUs (:func:`check_platform`).

Usage as a library::

    import flowcore_shm as fs
    bus = fs.Bus("/dev/shm/flowcore", streams=["bars"])
    ring = bus.rings["bars"]
    ring.seek("oldest")
    while True:
        got = ring.try_read()           # (seq, dict) or None when nothing new yet
        ...

CLI::

    python3 flowcore_shm.py DIR [--from-oldest] [--json] [--streams bars,tops]
"""

import argparse
import fcntl
import json
import mmap
import os
import struct
import sys
import time

__all__ = [
    "AbiError", "BusNotReady", "RecordType", "RECORD_TYPES", "STREAMS",
    "ShmFile", "Ring", "Table", "Bus", "writer_alive", "layout_hash", "fnv1a64",
    "format_decimal", "bar_json", "top_json", "signal_json", "stats_json", "VENUES",
]

# ---------------------------------------------------------------------------
# Constants from ABI.md
# ---------------------------------------------------------------------------

MAGIC = b"FLOWCSHM"
ABI_VERSION = 1
SUPPORTED_ABI_VERSIONS = (1,)
HEADER_SIZE = 256
KIND_RING = 1
KIND_TABLE = 2
KIND_NAMES = {KIND_RING: "ring", KIND_TABLE: "table"}

# Byte offsets of the two live header words (both 8-byte aligned, on their own line).
OFF_WRITE_SEQ = 128
OFF_HEARTBEAT_NS = 136

VENUES = {1: "binance-spot", 2: "binance-usdm", 3: "binance-coinm", 4: "bybit-spot",
          5: "bybit-linear", 100: "agg-spot", 101: "agg-perp"}

FNV_OFFSET_BASIS = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
U64_MASK = 0xFFFFFFFFFFFFFFFF


class AbiError(Exception):
    """A bus file does not match the ABI this reader was built for."""


class BusNotReady(Exception):
    """The bus is not (completely) there yet: files missing, or files of different
    writer epochs (a writer start in progress).  Retry a little later."""


# ---------------------------------------------------------------------------
# File header (ABI.md "File header")
# ---------------------------------------------------------------------------

HEADER_FIELDS = [
    ("magic", "[u8; 8]", 0),
    ("abi_version", "u32", 8),
    ("header_size", "u32", 12),
    ("kind", "u32", 16),
    ("stream", "u32", 20),
    ("layout_hash", "u64", 24),
    ("writer_epoch", "u64", 32),
    ("capacity", "u64", 40),
    ("record_size", "u32", 48),
    ("slot_size", "u32", 52),
    ("file_size", "u64", 56),
    ("created_ns", "u64", 64),
    ("record_version", "u32", 72),
    ("reserved0", "u32", 76),
    ("reserved1", "[u64; 6]", 80),
    ("write_seq", "u64", 128),
    ("heartbeat_ns", "u64", 136),
    ("reserved2", "[u64; 14]", 144),
]

# ---------------------------------------------------------------------------
# Record layouts, copied from ABI.md's tables: (name, type, offset)
# ---------------------------------------------------------------------------

SYMBOL_FIELDS = [
    ("symbol_id", "u32", 0), ("venue", "u16", 4), ("market_kind", "u8", 6),
    ("contract_unit", "u8", 7), ("price_scale", "u8", 8), ("size_scale", "u8", 9),
    ("notional_scale", "u8", 10), ("contract_value_scale", "u8", 11),
    ("reserved0", "u32", 12), ("tick", "i64", 16), ("lot", "i64", 24),
    ("contract_value", "i64", 32), ("symbol", "[u8; 24]", 40), ("base", "[u8; 16]", 64),
    ("quote", "[u8; 16]", 80),
]
BAR_FIELDS = [
    ("ts_ms", "i64", 0), ("symbol_id", "u32", 8), ("flags", "u32", 12), ("open", "i64", 16),
    ("high", "i64", 24), ("low", "i64", 32), ("close", "i64", 40), ("buy_qty", "i64", 48),
    ("sell_qty", "i64", 56), ("delta", "i64", 64), ("cvd", "i64", 72), ("vwap", "i64", 80),
    ("buy_notional", "i64", 88), ("sell_notional", "i64", 96), ("trades", "u32", 104),
    ("members", "u32", 108), ("publish_ns", "i64", 112),
]
TOP_FIELDS = [
    ("ts_ms", "i64", 0), ("symbol_id", "u32", 8), ("flags", "u32", 12), ("bid_px", "i64", 16),
    ("bid_qty", "i64", 24), ("ask_px", "i64", 32), ("ask_qty", "i64", 40),
    ("obi_l1", "i64", 48), ("obi", "i64", 56), ("publish_ns", "i64", 64),
    ("reserved", "[u64; 6]", 72),
]
TRADE_FIELDS = [
    ("trade_ns", "i64", 0), ("local_ns", "i64", 8), ("symbol_id", "u32", 16),
    ("flags", "u32", 20), ("px", "i64", 24), ("qty", "i64", 32), ("trade_id", "u64", 40),
    ("publish_ns", "i64", 48),
]
BBO_FIELDS = [
    ("exch_ns", "i64", 0), ("local_ns", "i64", 8), ("symbol_id", "u32", 16),
    ("flags", "u32", 20), ("bid_px", "i64", 24), ("bid_qty", "i64", 32),
    ("ask_px", "i64", 40), ("ask_qty", "i64", 48),
]
BOOK20_FIELDS = [
    ("exch_ns", "i64", 0), ("local_ns", "i64", 8), ("symbol_id", "u32", 16),
    ("flags", "u32", 20), ("bid_levels", "u32", 24), ("ask_levels", "u32", 28),
    ("bids", "[[i64; 2]; 20]", 32), ("asks", "[[i64; 2]; 20]", 352),
    ("publish_ns", "i64", 672),
]
HEALTH_FIELDS = [
    ("ts_ms", "i64", 0), ("publish_ns", "i64", 8), ("source", "u32", 16),
    ("flags", "u32", 20), ("counters", "[u64; 16]", 24), ("lag_samples", "u64", 152),
    ("lag_ns", "[i64; 4]", 160),
]
SIGNAL_FIELDS = [
    ("signal_id", "u64", 0), ("exch_ns", "i64", 8), ("local_ns", "i64", 16),
    ("symbol_id", "u32", 24), ("strategy_id", "u32", 28), ("action", "u8", 32),
    ("tier", "u8", 33), ("record_version", "u16", 34), ("reason_bits", "u32", 36),
    ("entry_px", "i64", 40), ("stop_px", "i64", 48), ("take_profit_px", "i64", 56),
    ("confidence", "i64", 64), ("score", "i64", 72), ("size", "i64", 80),
    ("spot_cvd", "i64", 88), ("perp_cvd", "i64", 96), ("reserved", "[u64; 18]", 104),
]
STATS_FIELDS = [
    ("ts_ms", "i64", 0), ("symbol_id", "u32", 8), ("flags", "u32", 12),
    ("mark_px", "i64", 16), ("index_px", "i64", 24), ("open_interest", "i64", 32),
    ("funding_rate", "i64", 40), ("next_funding_ms", "i64", 48), ("local_ns", "i64", 56),
    ("publish_ns", "i64", 64), ("reserved", "[u64; 6]", 72),
]
STRATEGY_FIELDS = [
    ("strategy_id", "u32", 0), ("symbol_id", "u32", 4), ("name", "[u8; 32]", 8),
    ("reserved", "[u64; 2]", 40),
]

_PRIM = {  # type -> (struct code, size)
    "u8": ("B", 1), "i8": ("b", 1), "u16": ("H", 2), "i16": ("h", 2),
    "u32": ("I", 4), "i32": ("i", 4), "u64": ("Q", 8), "i64": ("q", 8),
}


def _parse_type(t):
    """'i64' -> ('prim', 'i64'); '[[i64; 2]; 20]' -> ('array', ('array', ('prim','i64'), 2), 20)."""
    t = t.strip()
    if t.startswith("["):
        if not t.endswith("]"):
            raise ValueError("bad type " + t)
        inner, _, n = t[1:-1].rpartition(";")
        return ("array", _parse_type(inner), int(n))
    if t not in _PRIM:
        raise ValueError("unknown type " + t)
    return ("prim", t)


def _type_size(pt):
    if pt[0] == "prim":
        return _PRIM[pt[1]][1]
    return _type_size(pt[1]) * pt[2]


def _type_leaf(pt):
    while pt[0] == "array":
        pt = pt[1]
    return pt[1]


def _type_count(pt):
    return 1 if pt[0] == "prim" else _type_count(pt[1]) * pt[2]


def _reshape(flat, pt):
    """flat list of leaf values -> nested lists following array type pt."""
    if pt[1][0] == "prim":
        return list(flat)
    inner = pt[1]
    k = _type_count(inner)
    return [_reshape(flat[i * k:(i + 1) * k], inner) for i in range(pt[2])]


def fnv1a64(data):
    h = FNV_OFFSET_BASIS
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & U64_MASK
    return h


def layout_string(fields):
    """'NAME:TYPE@OFFSET;' for every field in order (ABI.md "layout_hash")."""
    return "".join("%s:%s@%d;" % (n, t, o) for n, t, o in fields)


def layout_hash(fields):
    return fnv1a64(layout_string(fields).encode("ascii"))


class RecordType:
    """One record layout: field list, sizes, layout hash and a decoder."""

    def __init__(self, name, fields, size, expected_hash, record_version=1):
        self.name = name
        self.fields = fields
        self.size = size
        self.record_version = record_version
        self.layout_hash = layout_hash(fields)
        if self.layout_hash != expected_hash:
            raise AbiError("%s: layout hash computed from the field list is %#018x, ABI.md "
                           "says %#018x" % (name, self.layout_hash, expected_hash))
        self.slot_size = (8 + size + 63) // 64 * 64
        if size % 8:
            raise AbiError("%s: size %d is not a multiple of 8" % (name, size))
        self.nwords = size // 8
        # struct format with explicit padding so every field sits at its documented offset
        fmt = ["<"]
        pos = 0
        self._decoders = []  # (name, kind, start index, count, parsed type)
        idx = 0
        for fname, ftype, off in fields:
            if off < pos:
                raise AbiError("%s.%s: offset %d overlaps the previous field" % (name, fname, off))
            if off > pos:
                fmt.append("%dx" % (off - pos))
            pt = _parse_type(ftype)
            fsize = _type_size(pt)
            if pt[0] == "array" and pt[1] == ("prim", "u8"):
                fmt.append("%ds" % pt[2])
                self._decoders.append((fname, "bytes", idx, 1, pt))
                idx += 1
            elif pt[0] == "array":
                cnt = _type_count(pt)
                fmt.append("%d%s" % (cnt, _PRIM[_type_leaf(pt)][0]))
                self._decoders.append((fname, "array", idx, cnt, pt))
                idx += cnt
            else:
                fmt.append(_PRIM[pt[1]][0])
                self._decoders.append((fname, "prim", idx, 1, pt))
                idx += 1
            pos = off + fsize
        if pos != size:
            raise AbiError("%s: fields end at %d, ABI.md says the record is %d bytes"
                           % (name, pos, size))
        self._struct = struct.Struct("".join(fmt))
        self._words = struct.Struct("<%dQ" % self.nwords)

    def decode_words(self, words):
        """Decode a record from its little-endian 64-bit words (private copy)."""
        vals = self._struct.unpack(self._words.pack(*words))
        out = {}
        for fname, kind, i, cnt, pt in self._decoders:
            if kind == "prim":
                out[fname] = vals[i]
            elif kind == "bytes":
                out[fname] = vals[i]
            else:
                out[fname] = _reshape(vals[i:i + cnt], pt)
        return out


# name -> (file, stream id, kind, RecordType)
RECORD_TYPES = {
    "SymbolRecord": RecordType("SymbolRecord", SYMBOL_FIELDS, 96, 0xAAA9D2FC0C359631),
    "BarRecord": RecordType("BarRecord", BAR_FIELDS, 120, 0x60BD11D1338E3D40, 2),
    "TopRecord": RecordType("TopRecord", TOP_FIELDS, 120, 0x83CE474E46B8D24F),
    "TradeRecord": RecordType("TradeRecord", TRADE_FIELDS, 56, 0xC0E2612477481AD8),
    "BboRecord": RecordType("BboRecord", BBO_FIELDS, 56, 0x6F7359CB31F3C7D5),
    "Book20Record": RecordType("Book20Record", BOOK20_FIELDS, 680, 0x8FBFD9761DDF360F),
    "HealthRecord": RecordType("HealthRecord", HEALTH_FIELDS, 192, 0x9952871D2B848C12, 2),
    "SignalRecord": RecordType("SignalRecord", SIGNAL_FIELDS, 248, 0x866EF03A450C28CD),
    "StatsRecord": RecordType("StatsRecord", STATS_FIELDS, 120, 0x02531228E4D13906),
    "StrategyRecord": RecordType("StrategyRecord", STRATEGY_FIELDS, 56, 0xAA288F074297B652),
}

# ABI.md documents these slot sizes; check the rounding rule reproduces them.
for _n, _slot in (("SymbolRecord", 128), ("BarRecord", 128), ("TopRecord", 128),
                  ("TradeRecord", 64), ("BboRecord", 64), ("Book20Record", 704),
                  ("HealthRecord", 256), ("SignalRecord", 256), ("StatsRecord", 128),
                  ("StrategyRecord", 64)):
    assert RECORD_TYPES[_n].slot_size == _slot, _n


class StreamSpec:
    def __init__(self, name, filename, stream_id, kind, rtype):
        self.name = name
        self.filename = filename
        self.stream_id = stream_id
        self.kind = kind
        self.rtype = RECORD_TYPES[rtype]


STREAMS = {
    "bars": StreamSpec("bars", "bars.ring", 1, KIND_RING, "BarRecord"),
    "tops": StreamSpec("tops", "tops.ring", 2, KIND_RING, "TopRecord"),
    "trades": StreamSpec("trades", "trades.ring", 3, KIND_RING, "TradeRecord"),
    "bbo": StreamSpec("bbo", "bbo.ring", 4, KIND_RING, "BboRecord"),
    "book20": StreamSpec("book20", "book20.table", 5, KIND_TABLE, "Book20Record"),
    "health": StreamSpec("health", "health.ring", 6, KIND_RING, "HealthRecord"),
    "signals": StreamSpec("signals", "signals.ring", 7, KIND_RING, "SignalRecord"),
    "symbols": StreamSpec("symbols", "symbols.table", 8, KIND_TABLE, "SymbolRecord"),
    "stats": StreamSpec("stats", "stats.ring", 9, KIND_RING, "StatsRecord"),
    "strategies": StreamSpec("strategies", "strategies.table", 10, KIND_TABLE, "StrategyRecord"),
}
RING_STREAMS = [n for n, s in STREAMS.items() if s.kind == KIND_RING]
# Streams an older writer does not make (ABI.md "Optional files"): opened after every other
# file, and a missing one is a stream without records, not a start in progress.
OPTIONAL_STREAMS = ("stats", "strategies")

_HEADER_STRUCT = struct.Struct("<8sIIIIQQQIIQQII")  # offsets 0..80 (the fixed part)


def check_platform():
    """Return a warning string when not on x86-64 (see the module docstring), else None."""
    m = os.uname().machine
    if m.lower() in ("x86_64", "amd64"):
        return None
    return ("flowcore_shm.py relies on x86-64 TSO ordering; on %s it may return torn "
            "records. Use the C header instead." % (m or "this CPU"))


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

class ShmFile:
    """One validated, read-only mapped bus file."""

    def __init__(self, dirpath, spec):
        self.spec = spec
        self.rtype = spec.rtype
        self.path = os.path.join(dirpath, spec.filename)
        self._mm = None
        self._mv8 = None
        self._mvq = None
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BusNotReady("%s does not exist (yet)" % self.path) from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _err(self, what):
        return AbiError("%s: %s" % (self.path, what))

    def _open(self):
        st = os.fstat(self.fd)
        self.dev, self.ino = st.st_dev, st.st_ino
        real_size = st.st_size
        if real_size < HEADER_SIZE:
            raise self._err("file is %d bytes, shorter than the %d-byte header"
                            % (real_size, HEADER_SIZE))
        hdr = os.pread(self.fd, HEADER_SIZE, 0)
        if len(hdr) < HEADER_SIZE:
            raise self._err("short read of the header")
        (magic, abi_version, header_size, kind, stream, lhash, epoch, capacity, record_size,
         slot_size, file_size, created_ns, record_version, _reserved0) = _HEADER_STRUCT.unpack_from(hdr, 0)
        spec, rt = self.spec, self.rtype
        if magic != MAGIC:
            raise self._err("bad magic %r (expected %r): not a flowcore bus file"
                            % (magic, MAGIC))
        if abi_version not in SUPPORTED_ABI_VERSIONS:
            raise self._err("unsupported abi_version %d; this reader supports abi_version %s"
                            % (abi_version, ", ".join(map(str, SUPPORTED_ABI_VERSIONS))))
        if header_size != HEADER_SIZE:
            raise self._err("header_size is %d, expected %d" % (header_size, HEADER_SIZE))
        if kind != spec.kind:
            raise self._err("kind is %d, expected %d (%s)"
                            % (kind, spec.kind, KIND_NAMES[spec.kind]))
        if stream != spec.stream_id:
            raise self._err("stream is %d, expected %d (%s)"
                            % (stream, spec.stream_id, spec.name))
        if lhash != rt.layout_hash:
            raise self._err("layout_hash is %#018x, this reader's %s layout hashes to %#018x"
                            % (lhash, rt.name, rt.layout_hash))
        if record_size != rt.size:
            raise self._err("record_size is %d, %s is %d bytes" % (record_size, rt.name, rt.size))
        if record_version != rt.record_version:
            raise self._err("record_version is %d, this reader knows %s version %d"
                            % (record_version, rt.name, rt.record_version))
        if slot_size != (8 + record_size + 63) // 64 * 64:
            raise self._err("slot_size %d does not follow from record_size %d (expected %d)"
                            % (slot_size, record_size, (8 + record_size + 63) // 64 * 64))
        if capacity == 0:
            raise self._err("capacity is 0")
        if kind == KIND_RING and capacity & (capacity - 1):
            raise self._err("ring capacity %d is not a power of two" % capacity)
        if file_size != HEADER_SIZE + capacity * slot_size:
            raise self._err("file_size %d != 256 + capacity %d * slot_size %d"
                            % (file_size, capacity, slot_size))
        if real_size != file_size:
            raise self._err("file is %d bytes on disk, header says file_size %d"
                            % (real_size, file_size))
        if epoch == 0:
            raise self._err("writer_epoch is 0")
        self.abi_version = abi_version
        self.epoch = epoch
        self.capacity = capacity
        self.slot_size = slot_size
        self.record_size = record_size
        self.file_size = file_size
        self.created_ns = created_ns
        self._mm = mmap.mmap(self.fd, file_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        self._mv8 = memoryview(self._mm)
        # 'Q' element access = one aligned 8-byte load (see module docstring)
        self._mvq = self._mv8.cast("Q")
        self._slot_words = slot_size // 8
        self._nwords = record_size // 8

    # -- live header words ---------------------------------------------------
    def write_seq(self):
        return self._mvq[OFF_WRITE_SEQ // 8]

    def heartbeat_ns(self):
        return self._mvq[OFF_HEARTBEAT_NS // 8]

    # -- the stamp protocol --------------------------------------------------
    def _stamp(self, slot):
        return self._mvq[(HEADER_SIZE // 8) + slot * self._slot_words]

    def _copy(self, slot):
        """Stamp protocol for one slot.  Returns (s1, words) when the copy is good,
        (s1, None) when s1 is odd (writer inside the slot) or the copy was torn
        (then s1 is the re-loaded stamp, so callers compare it again)."""
        mv = self._mvq
        b = (HEADER_SIZE // 8) + slot * self._slot_words
        s1 = mv[b]                           # 1. load stamp (acquire: plain load on x86-64)
        if s1 & 1:
            return s1, None                  #    odd: writer inside the slot
        words = [mv[i] for i in range(b + 1, b + 1 + self._nwords)]  # 2. copy words
        # 3. acquire fence: nothing to emit on x86-64 (TSO keeps loads in order)
        s2 = mv[b]                           # 4. re-load stamp
        if s2 != s1:                         # 5. torn
            return s2, None
        return s1, words

    # -- restart detection ---------------------------------------------------
    def replaced(self):
        """True when the path now names a different inode whose header carries a different
        writer_epoch (a writer restart).  Missing path -> False (a start in progress)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if (st.st_dev, st.st_ino) == (self.dev, self.ino):
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            hdr = os.pread(fd, 40, 0)
        finally:
            os.close(fd)
        if len(hdr) < 40 or hdr[:8] != MAGIC:
            return False
        epoch = struct.unpack_from("<Q", hdr, 32)[0]
        return epoch != self.epoch

    def close(self):
        for mv in (self._mvq, self._mv8):
            if mv is not None:
                mv.release()
        self._mvq = self._mv8 = None
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Ring(ShmFile):
    """A ring file plus one reader position.

    ``try_read()`` returns ``(seq, record_dict)`` or ``None`` when record ``seq`` is not
    (completely) written yet.  ``lapped`` counts records lost because the writer overwrote
    them before this reader got to them."""

    def __init__(self, dirpath, spec, start="next"):
        super().__init__(dirpath, spec)
        self.records = 0
        self.lapped = 0
        self.pos = 0
        self.seek(start)

    def seek(self, start):
        """start: 'oldest', 'latest', 'next' (only new records) or a sequence number."""
        ws = self.write_seq()
        if start == "oldest":
            self.pos = max(ws - self.capacity, 0)
        elif start == "latest":
            self.pos = max(ws - 1, 0)
        elif start == "next":
            self.pos = ws
        else:
            self.pos = int(start)
        return self.pos

    def try_read_words(self):
        cap_mask = self.capacity - 1
        while True:
            n = self.pos
            done = 2 * n + 2
            s, words = self._copy(n & cap_mask)
            if s > done:
                # lapped: record n was overwritten
                new = max(self.write_seq() - self.capacity, n + 1)
                self.lapped += new - n
                self.pos = new
                continue
            if s < done:
                return None              # not (completely) written yet: wait
            if words is None:
                continue                 # s == done but torn: copy again
            self.pos = n + 1
            self.records += 1
            return n, words

    def try_read(self):
        got = self.try_read_words()
        if got is None:
            return None
        return got[0], self.rtype.decode_words(got[1])

    def available(self):
        return self.write_seq() - self.pos


class Table(ShmFile):
    """A table file: slot k holds the latest record for key k."""

    SPIN_LIMIT = 100000

    def stamp(self, key):
        self._check_key(key)
        return self._stamp(key)

    def _check_key(self, key):
        if not 0 <= key < self.capacity:
            raise KeyError("%s: key %d out of range 0..%d" % (self.path, key, self.capacity - 1))

    def read_words(self, key):
        """(stamp, words) or None if never written (or the writer stayed inside the slot
        for SPIN_LIMIT tries, e.g. it died there)."""
        self._check_key(key)
        for _ in range(self.SPIN_LIMIT):
            s, words = self._copy(key)
            if s == 0:
                return None
            if words is not None:
                return s, words
        return None

    def read(self, key):
        got = self.read_words(key)
        if got is None:
            return None
        return got[0], self.rtype.decode_words(got[1])


def writer_alive(dirpath):
    """True while a writer holds its exclusive flock on DIR/writer.lock."""
    try:
        fd = os.open(os.path.join(dirpath, "writer.lock"), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # EWOULDBLOCK: a live writer holds LOCK_EX
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _cstr(b):
    return b.split(b"\0", 1)[0].decode("ascii", "replace")


class Symbol:
    __slots__ = ("id", "venue_code", "venue", "symbol", "base", "quote", "price_scale",
                 "size_scale", "notional_scale", "raw", "stamp")

    def __init__(self, stamp, rec):
        self.stamp = stamp
        self.raw = rec
        self.id = rec["symbol_id"]
        self.venue_code = rec["venue"]
        self.venue = VENUES.get(rec["venue"], "venue-%d" % rec["venue"])
        self.symbol = _cstr(rec["symbol"])
        self.base = _cstr(rec["base"])
        self.quote = _cstr(rec["quote"])
        self.price_scale = rec["price_scale"]
        self.size_scale = rec["size_scale"]
        self.notional_scale = rec["notional_scale"]


class Bus:
    """All files of one bus directory, of one writer start (one writer_epoch).

    Raises BusNotReady when files are missing or of different epochs (retry), AbiError
    when a file does not match the ABI.  A missing optional stream (OPTIONAL_STREAMS: the
    bus of an older writer) is left out of ``rings``/``tables`` and named in ``absent``.
    With "signals", the "strategies" table is opened too (for ``strategy_name``)."""

    def __init__(self, dirpath, streams=None, start="next"):
        self.dir = dirpath
        names = list(streams) if streams is not None else list(RING_STREAMS) + ["book20"]
        if "signals" in names and "strategies" not in names:
            names.append("strategies")
        for n in names:
            if n not in STREAMS:
                raise ValueError("unknown stream %r (known: %s)" % (n, ", ".join(STREAMS)))
        # The optional files last: the writer creates them before the others.
        names = ([n for n in names if n not in OPTIONAL_STREAMS]
                 + [n for n in names if n in OPTIONAL_STREAMS])
        self.rings = {}
        self.tables = {}
        self.absent = set()
        self.symbols = None
        self._symcache = {}
        self._stratcache = {}
        try:
            self.symbols = Table(dirpath, STREAMS["symbols"])
            for n in names:
                spec = STREAMS[n]
                if n == "symbols":
                    continue
                try:
                    if spec.kind == KIND_RING:
                        self.rings[n] = Ring(dirpath, spec, start)
                    else:
                        self.tables[n] = Table(dirpath, spec)
                except BusNotReady:
                    if n not in OPTIONAL_STREAMS:
                        raise
                    self.absent.add(n)
            epochs = {f.epoch for f in self.files()}
            if len(epochs) != 1:
                raise BusNotReady("files of different writer epochs in %s: a writer start "
                                  "in progress" % dirpath)
            self.epoch = self.symbols.epoch
        except BaseException:
            self.close()
            raise

    def files(self):
        out = [self.symbols] if self.symbols is not None else []
        return out + list(self.rings.values()) + list(self.tables.values())

    def symbol(self, sid):
        """Symbol for id sid (cached; re-read if the table slot changed). None if unknown."""
        sym = self._symcache.get(sid)
        if sym is not None and self.symbols.stamp(sid) == sym.stamp:
            return sym
        if not 0 <= sid < self.symbols.capacity:
            return None
        got = self.symbols.read(sid)
        if got is None:
            return None
        sym = Symbol(*got)
        self._symcache[sid] = sym
        return sym

    def strategy_name(self, strategy_id):
        """The name of a strategy id from strategies.table (cached; re-read when its slot
        changed), or None: no such slot, never written, or no table on this bus."""
        table = self.tables.get("strategies")
        if table is None or not 0 <= strategy_id < table.capacity:
            return None
        stamp = table.stamp(strategy_id)
        cached = self._stratcache.get(strategy_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        got = table.read(strategy_id)
        name = _cstr(got[1]["name"]) if got is not None else None
        self._stratcache[strategy_id] = (got[0] if got is not None else 0, name)
        return name

    def restarted(self):
        """True when any file was replaced by a new writer start (different inode and epoch)."""
        return any(f.replaced() for f in self.files())

    def writer_alive(self):
        return writer_alive(self.dir)

    def close(self):
        for f in self.files():
            f.close()
        self.rings = {}
        self.tables = {}
        self.symbols = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# Formatting (docs/REPLAY.md "Output")
# ---------------------------------------------------------------------------

def format_decimal(m, s):
    """Mantissa m at scale s, exactly as the replay JSONL prints it."""
    if s == 0:
        return str(m)
    a = -m if m < 0 else m
    p = 10 ** s
    return "%s%d.%0*d" % ("-" if m < 0 else "", a // p, s, a % p)


def _q(m, s):
    return '"' + format_decimal(m, s) + '"'


def _opt(cond, m, s):
    return _q(m, s) if cond else "null"


def _jstr(x):
    return json.dumps(x)


def bar_json(r, sym):
    f = r["flags"]
    ps, ss, ns = sym.price_scale, sym.size_scale, sym.notional_scale
    ohlc = bool(f & 2)
    return ('{"venue":%s,"symbol":%s,"ts":%d,"open":%s,"high":%s,"low":%s,"close":%s,'
            '"buy_qty":%s,"sell_qty":%s,"delta":%s,"cvd":%s,"trades":%d,"vwap":%s,'
            '"buy_notional":%s,"sell_notional":%s,"complete":%s%s}') % (
        _jstr(sym.venue), _jstr(sym.symbol), r["ts_ms"],
        _opt(ohlc, r["open"], ps), _opt(ohlc, r["high"], ps), _opt(ohlc, r["low"], ps),
        _opt(ohlc, r["close"], ps),
        _q(r["buy_qty"], ss), _q(r["sell_qty"], ss), _q(r["delta"], ss), _q(r["cvd"], ss),
        r["trades"], _opt(f & 4, r["vwap"], ps),
        _q(r["buy_notional"], ns), _q(r["sell_notional"], ns),
        "true" if f & 1 else "false",
        # Aggregates say whose bars the second holds.
        ',"members":%d' % r["members"] if sym.venue in ("agg-spot", "agg-perp") else "")


def top_json(r, sym):
    f = r["flags"]
    ps, ss = sym.price_scale, sym.size_scale
    return ('{"venue":%s,"symbol":%s,"ts":%d,"bid_px":%s,"bid_qty":%s,"ask_px":%s,'
            '"ask_qty":%s,"obi_l1":%s,"obi":%s,"synced":%s}') % (
        _jstr(sym.venue), _jstr(sym.symbol), r["ts_ms"],
        _opt(f & 2, r["bid_px"], ps), _opt(f & 2, r["bid_qty"], ss),
        _opt(f & 4, r["ask_px"], ps), _opt(f & 4, r["ask_qty"], ss),
        _opt(f & 8, r["obi_l1"], 9), _opt(f & 16, r["obi"], 9),
        "true" if f & 1 else "false")


SIGNAL_ACTIONS = {1: "enter_long", 2: "enter_short", 3: "exit"}
SIGNAL_TIERS = {1: "fast", 2: "tactical", 3: "strategic"}
# Scales of a signal's confidence and score, and of its CVDs (the aggregate qty scale).
SIGNAL_FRACTION_SCALE = 9
AGG_QTY_SCALE = 8
# reason_bits bit the bus sets when a CVD did not fit an i64 (not part of the strategy's).
SIGNAL_CVD_SATURATED = 1 << 31


def signal_json(r, sym, strategy=None):
    """A signal exactly as `flowcore replay --signals-out` writes it; ``strategy`` is its
    strategy's name (Bus.strategy_name), left out of the row when None."""
    ps, ss = sym.price_scale, sym.size_scale
    name = ',"strategy":%s' % _jstr(strategy) if strategy is not None else ""
    return ('{"id":%d,"strategy_id":%d%s,"venue":%s,"symbol":%s,"exch_ns":%d,"local_ns":%d,'
            '"action":%s,"tier":%s,"reason_bits":%d,"entry":%s,"stop":%s,"target":%s,'
            '"confidence":%s,"score":%s,"size":%s,"spot_cvd":%s,"perp_cvd":%s}') % (
        r["signal_id"], r["strategy_id"], name, _jstr(sym.venue), _jstr(sym.symbol),
        r["exch_ns"], r["local_ns"],
        _jstr(SIGNAL_ACTIONS.get(r["action"], "unknown")),
        _jstr(SIGNAL_TIERS.get(r["tier"], "unknown")),
        r["reason_bits"] & ~SIGNAL_CVD_SATURATED,
        _opt(r["entry_px"], r["entry_px"], ps), _opt(r["stop_px"], r["stop_px"], ps),
        _opt(r["take_profit_px"], r["take_profit_px"], ps),
        _q(r["confidence"], SIGNAL_FRACTION_SCALE), _q(r["score"], SIGNAL_FRACTION_SCALE),
        _opt(r["size"], r["size"], ss),
        _q(r["spot_cvd"], AGG_QTY_SCALE), _q(r["perp_cvd"], AGG_QTY_SCALE))


# StatsRecord scales (ABI.md "stats.ring"): mark and index price, funding rate.  Open
# interest is at the symbol's size scale.
STAT_PRICE_SCALE = 8
FUNDING_RATE_SCALE = 8
STATS_HAS_MARK, STATS_HAS_INDEX, STATS_HAS_OPEN_INTEREST = 1, 2, 4
STATS_HAS_FUNDING_RATE, STATS_HAS_NEXT_FUNDING, STATS_HAS_LOCAL_NS = 8, 16, 32


def stats_json(r, sym):
    """Venue statistics exactly as `flowcore replay --stats-out` writes them."""
    f = r["flags"]
    return ('{"venue":%s,"symbol":%s,"ts":%d,"mark_px":%s,"index_px":%s,"open_interest":%s,'
            '"funding_rate":%s,"next_funding_ms":%s}') % (
        _jstr(sym.venue), _jstr(sym.symbol), r["ts_ms"],
        _opt(f & STATS_HAS_MARK, r["mark_px"], STAT_PRICE_SCALE),
        _opt(f & STATS_HAS_INDEX, r["index_px"], STAT_PRICE_SCALE),
        _opt(f & STATS_HAS_OPEN_INTEREST, r["open_interest"], sym.size_scale),
        _opt(f & STATS_HAS_FUNDING_RATE, r["funding_rate"], FUNDING_RATE_SCALE),
        "%d" % r["next_funding_ms"] if f & STATS_HAS_NEXT_FUNDING else "null")


def _plain(v):
    if isinstance(v, bytes):
        return _cstr(v)
    return v


def generic_json(stream, r, sym):
    """JSON line for streams without a replay row format (trades, bbo, health):
    stream, venue, symbol, then every record field raw (mantissas as integers)."""
    out = {"stream": stream}
    if sym is not None:
        out["venue"] = sym.venue
        out["symbol"] = sym.symbol
    for k, v in r.items():
        if k.startswith("reserved"):
            continue
        out[k] = _plain(v)
    return json.dumps(out, separators=(",", ":"))


def text_line(stream, r, sym):
    """Human readable one-liner."""
    parts = [stream]
    if sym is not None:
        parts += [sym.venue, sym.symbol]
    if stream == "bars" and sym is not None:
        j = json.loads(bar_json(r, sym))
    elif stream == "tops" and sym is not None:
        j = json.loads(top_json(r, sym))
    elif stream == "stats" and sym is not None:
        j = json.loads(stats_json(r, sym))
    else:
        j = json.loads(generic_json(stream, r, sym))
        j.pop("stream", None)
        if sym is not None and stream in ("trades", "bbo"):
            for k in ("px", "bid_px", "ask_px"):
                if k in j:
                    j[k] = format_decimal(j[k], sym.price_scale)
            for k in ("qty", "bid_qty", "ask_qty"):
                if k in j:
                    j[k] = format_decimal(j[k], sym.size_scale)
    for k, v in j.items():
        if k in ("venue", "symbol"):
            continue
        parts.append("%s=%s" % (k, "-" if v is None else v))
    return " ".join(str(p) for p in parts)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _open_bus(dirpath, streams, start, quiet):
    """Open the bus, waiting while it is missing or a start is in progress."""
    said = False
    while True:
        try:
            return Bus(dirpath, streams, start)
        except BusNotReady as e:
            if not said and not quiet:
                print("flowcore_shm: waiting for the bus in %s (%s)" % (dirpath, e),
                      file=sys.stderr)
                said = True
            time.sleep(0.05)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Print what a flowcore shared-memory bus carries (ABI version 1). "
                    "Ends when the writer is gone and everything was read.")
    ap.add_argument("dir", nargs="?", default="/dev/shm/flowcore", help="bus directory")
    ap.add_argument("--from-oldest", action="store_true",
                    help="start at the oldest record still in each ring (default: new only)")
    ap.add_argument("--from-latest", action="store_true",
                    help="start at the latest record of each ring")
    ap.add_argument("--json", action="store_true",
                    help="JSON lines (bars, tops, signals and stats exactly as the replay "
                         "JSONL rows)")
    ap.add_argument("--streams", default="bars,tops",
                    help="comma-separated rings: bars,tops,trades,bbo,health,signals,stats")
    ap.add_argument("--follow", action="store_true",
                    help="keep waiting for a writer (re)start instead of ending")
    ap.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    args = ap.parse_args(argv)

    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    for s in streams:
        if s not in RING_STREAMS:
            ap.error("unknown or non-ring stream %r (choose from %s)" % (s, ",".join(RING_STREAMS)))
    warn = check_platform()
    if warn:
        print("flowcore_shm: warning: " + warn, file=sys.stderr)
    start = "oldest" if args.from_oldest else ("latest" if args.from_latest else "next")

    out = sys.stdout
    counts = {s: 0 for s in streams}
    lapped_total = 0
    restarts = 0
    try:
        bus = _open_bus(args.dir, streams, start, args.quiet)
    except AbiError as e:
        print("flowcore_shm: error: %s" % e, file=sys.stderr)
        return 2
    last_restart_check = 0.0
    idle_sleep = 0.0005
    status = 0
    try:
        while True:
            progressed = False
            for name in streams:
                ring = bus.rings.get(name)
                if ring is None:
                    continue                 # an optional ring an older writer does not make
                for _ in range(4096):
                    got = ring.try_read()
                    if got is None:
                        break
                    progressed = True
                    _seq, rec = got
                    sym = bus.symbol(rec["symbol_id"]) if "symbol_id" in rec else None
                    if sym is None and name in ("bars", "tops", "stats", "signals"):
                        # symbol table slot not (yet) readable: the writer publishes the
                        # table at its start, so wait briefly for it
                        for _ in range(2000):
                            time.sleep(0.001)
                            sym = bus.symbol(rec["symbol_id"])
                            if sym is not None:
                                break
                        else:
                            raise AbiError("record refers to unknown symbol id %d"
                                           % rec["symbol_id"])
                    if args.json:
                        if name == "bars":
                            line = bar_json(rec, sym)
                        elif name == "tops":
                            line = top_json(rec, sym)
                        elif name == "signals":
                            line = signal_json(rec, sym, bus.strategy_name(rec["strategy_id"]))
                        elif name == "stats":
                            line = stats_json(rec, sym)
                        else:
                            line = generic_json(name, rec, sym)
                    else:
                        line = text_line(name, rec, sym)
                    out.write(line + "\n")
                    counts[name] += 1
            if progressed:
                idle_sleep = 0.0005
                continue
            out.flush()
            # idle: decide whether we are finished.  Order matters: learn the writer is
            # dead first, then check for a restart, then drain up to write_seq.
            alive = bus.writer_alive()
            now = time.monotonic()
            if not alive or now - last_restart_check > 0.2:
                last_restart_check = now
                if bus.restarted():
                    lapped_total += sum(r.lapped for r in bus.rings.values())
                    bus.close()
                    restarts += 1
                    if not args.quiet:
                        print("flowcore_shm: writer restarted, reading the new files from 0",
                              file=sys.stderr)
                    bus = _open_bus(args.dir, streams, 0, args.quiet)
                    continue
            if not alive:
                # The writer is gone; write_seq is final.  Done when every ring was read
                # up to it (records below write_seq are always readable: write_seq is
                # stored after the record's "done" stamp), else go round again.
                if all(r.pos >= r.write_seq() for r in bus.rings.values()):
                    if args.follow:
                        time.sleep(0.1)
                        continue
                    break
                continue
            time.sleep(idle_sleep)
            idle_sleep = min(idle_sleep * 2, 0.01)
    except KeyboardInterrupt:
        pass
    except AbiError as e:
        print("flowcore_shm: error: %s" % e, file=sys.stderr)
        status = 2
    except BrokenPipeError:
        # reader of our stdout went away (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        try:
            out.flush()
        except Exception:
            pass
        if bus is not None:
            lapped_total += sum(r.lapped for r in bus.rings.values())
            bus.close()
    total = sum(counts.values())
    per = ", ".join("%s %d" % (s, counts[s]) for s in streams)
    print("flowcore_shm: %d records (%s), %d lapped, %d restarts"
          % (total, per, lapped_total, restarts), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
