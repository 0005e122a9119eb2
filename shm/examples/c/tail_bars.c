/*
 * tail_bars -- prints a flowcore bus's bars, tops, signals and venue statistics as replay
 * JSONL rows.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -I shm/include shm/examples/c/tail_bars.c -o tail_bars
 *   tail_bars DIR [--streams bars,tops,signals,stats]
 *
 * Reads from the oldest record still in each ring, prints one JSON line per record
 * (exactly the rows of `flowcore replay --bars-out/--tops-out/--signals-out/--stats-out`,
 * a signal's strategy name taken from strategies.table), waits for a bus that is not there
 * yet, follows a writer restart, and ends when the writer is gone and every ring was read up
 * to its write_seq. On the bus of a writer older than stats.ring, `stats` prints nothing.
 * A summary goes to stderr.
 */
#include "flowcore_shm.h" /* first: it sets the feature macros it needs */

#include <stdlib.h>

typedef struct symbol_cache {
    int known;
    uint64_t stamp;
    char venue[32];
    char symbol[25];
    unsigned price_scale, size_scale, notional_scale;
} symbol_cache;

#define MAX_SYMBOLS 4096

static symbol_cache g_syms[MAX_SYMBOLS];

static void sleep_ns(long ns) {
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

/* Symbol for id: cached, re-read when its table stamp changed. NULL if not readable. */
static const symbol_cache *symbol_for(const fcshm_file *symbols, uint32_t id) {
    if (id >= MAX_SYMBOLS || id >= symbols->capacity) return NULL;
    symbol_cache *c = &g_syms[id];
    uint64_t st = fcshm_table_stamp(symbols, id);
    if (c->known && c->stamp == st) return c;
    fcshm_symbol rec;
    uint64_t stamp;
    if (fcshm_table_read(symbols, id, &rec, &stamp) != 1) return NULL;
    const char *v = fcshm_venue_name(rec.venue);
    if (v)
        snprintf(c->venue, sizeof c->venue, "%s", v);
    else
        snprintf(c->venue, sizeof c->venue, "venue-%u", (unsigned)rec.venue);
    fcshm_text(c->symbol, rec.symbol, sizeof rec.symbol);
    c->price_scale = rec.price_scale;
    c->size_scale = rec.size_scale;
    c->notional_scale = rec.notional_scale;
    c->stamp = stamp;
    c->known = 1;
    return c;
}

static const symbol_cache *wait_symbol(const fcshm_file *symbols, uint32_t id) {
    for (int i = 0; i < 2000; i++) {
        const symbol_cache *c = symbol_for(symbols, id);
        if (c) return c;
        sleep_ns(1000000L);
    }
    return NULL;
}

static void put_jstr(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void put_dec(const char *key, int present, int64_t m, unsigned scale) {
    char buf[64];
    printf(",\"%s\":", key);
    if (!present) {
        fputs("null", stdout);
        return;
    }
    fcshm_format_decimal(buf, sizeof buf, m, scale);
    printf("\"%s\"", buf);
}

static void put_head(const symbol_cache *s, int64_t ts) {
    fputs("{\"venue\":", stdout);
    put_jstr(s->venue);
    fputs(",\"symbol\":", stdout);
    put_jstr(s->symbol);
    printf(",\"ts\":%lld", (long long)ts);
}

static void print_bar(const fcshm_bar *b, const symbol_cache *s) {
    unsigned ps = s->price_scale, ss = s->size_scale, ns = s->notional_scale;
    int ohlc = (b->flags & FCSHM_BAR_OHLC_SET) != 0;
    put_head(s, b->ts_ms);
    put_dec("open", ohlc, b->open, ps);
    put_dec("high", ohlc, b->high, ps);
    put_dec("low", ohlc, b->low, ps);
    put_dec("close", ohlc, b->close, ps);
    put_dec("buy_qty", 1, b->buy_qty, ss);
    put_dec("sell_qty", 1, b->sell_qty, ss);
    put_dec("delta", 1, b->delta, ss);
    put_dec("cvd", 1, b->cvd, ss);
    printf(",\"trades\":%u", (unsigned)b->trades);
    put_dec("vwap", (b->flags & FCSHM_BAR_VWAP_SET) != 0, b->vwap, ps);
    put_dec("buy_notional", 1, b->buy_notional, ns);
    put_dec("sell_notional", 1, b->sell_notional, ns);
    printf(",\"complete\":%s", (b->flags & FCSHM_BAR_COMPLETE) ? "true" : "false");
    /* Aggregates say whose bars the second holds. */
    if (strncmp(s->venue, "agg-", 4) == 0) printf(",\"members\":%u", (unsigned)b->members);
    fputs("}\n", stdout);
}

static void print_top(const fcshm_top *t, const symbol_cache *s) {
    unsigned ps = s->price_scale, ss = s->size_scale;
    int bid = (t->flags & FCSHM_TOP_BID_SET) != 0, ask = (t->flags & FCSHM_TOP_ASK_SET) != 0;
    put_head(s, t->ts_ms);
    put_dec("bid_px", bid, t->bid_px, ps);
    put_dec("bid_qty", bid, t->bid_qty, ss);
    put_dec("ask_px", ask, t->ask_px, ps);
    put_dec("ask_qty", ask, t->ask_qty, ss);
    put_dec("obi_l1", (t->flags & FCSHM_TOP_OBI_L1_SET) != 0, t->obi_l1, FCSHM_OBI_SCALE);
    put_dec("obi", (t->flags & FCSHM_TOP_OBI_SET) != 0, t->obi, FCSHM_OBI_SCALE);
    printf(",\"synced\":%s}\n", (t->flags & FCSHM_TOP_SYNCED) ? "true" : "false");
}

/* Signal scales: confidence and score, and the aggregate CVDs (shm/ABI.md). */
#define SIGNAL_FRACTION_SCALE 9u
#define AGG_QTY_SCALE 8u
/* reason_bits bit the bus sets when a CVD was clamped; not the strategy's own. */
#define SIGNAL_CVD_SATURATED 0x80000000u

/* The name of a strategy id into name (FCSHM_STRATEGY_NAME_LEN + 1 bytes): 1 when
 * strategies.table has it, 0 when not (no table on this bus, id outside it, slot empty).
 * Read when the signal is: the writer fills a strategy's slot before its first signal. */
static int strategy_name(const fcshm_file *strategies, uint32_t id, char *name) {
    fcshm_strategy rec;
    if (!strategies || fcshm_table_read(strategies, id, &rec, NULL) != 1) return 0;
    fcshm_text(name, rec.name, sizeof rec.name);
    return 1;
}

static void print_signal(const fcshm_signal *g, const symbol_cache *s, const char *strategy) {
    static const char *const actions[] = {"unknown", "enter_long", "enter_short", "exit"};
    static const char *const tiers[] = {"unknown", "fast", "tactical", "strategic"};
    unsigned ps = s->price_scale, ss = s->size_scale;
    printf("{\"id\":%llu,\"strategy_id\":%u", (unsigned long long)g->signal_id,
           (unsigned)g->strategy_id);
    if (strategy) {
        fputs(",\"strategy\":", stdout);
        put_jstr(strategy);
    }
    fputs(",\"venue\":", stdout);
    put_jstr(s->venue);
    fputs(",\"symbol\":", stdout);
    put_jstr(s->symbol);
    printf(",\"exch_ns\":%lld,\"local_ns\":%lld,\"action\":\"%s\",\"tier\":\"%s\",\"reason_bits\":%u",
           (long long)g->exch_ns, (long long)g->local_ns, actions[g->action <= 3 ? g->action : 0],
           tiers[g->tier <= 3 ? g->tier : 0], (unsigned)(g->reason_bits & ~SIGNAL_CVD_SATURATED));
    put_dec("entry", g->entry_px != 0, g->entry_px, ps);
    put_dec("stop", g->stop_px != 0, g->stop_px, ps);
    put_dec("target", g->take_profit_px != 0, g->take_profit_px, ps);
    put_dec("confidence", 1, g->confidence, SIGNAL_FRACTION_SCALE);
    put_dec("score", 1, g->score, SIGNAL_FRACTION_SCALE);
    put_dec("size", g->size != 0, g->size, ss);
    put_dec("spot_cvd", 1, g->spot_cvd, AGG_QTY_SCALE);
    put_dec("perp_cvd", 1, g->perp_cvd, AGG_QTY_SCALE);
    fputs("}\n", stdout);
}

static void print_stats(const fcshm_stats *t, const symbol_cache *s) {
    put_head(s, t->ts_ms);
    put_dec("mark_px", (t->flags & FCSHM_STATS_MARK_SET) != 0, t->mark_px, FCSHM_STAT_PRICE_SCALE);
    put_dec("index_px", (t->flags & FCSHM_STATS_INDEX_SET) != 0, t->index_px,
            FCSHM_STAT_PRICE_SCALE);
    put_dec("open_interest", (t->flags & FCSHM_STATS_OPEN_INTEREST_SET) != 0, t->open_interest,
            s->size_scale);
    put_dec("funding_rate", (t->flags & FCSHM_STATS_FUNDING_RATE_SET) != 0, t->funding_rate,
            FCSHM_FUNDING_RATE_SCALE);
    if (t->flags & FCSHM_STATS_NEXT_FUNDING_SET)
        printf(",\"next_funding_ms\":%lld}\n", (long long)t->next_funding_ms);
    else
        fputs(",\"next_funding_ms\":null}\n", stdout);
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s DIR [--streams bars,tops,signals,stats]\n", argv0);
    return 2;
}

/* Opens the bus, waiting while it is missing or a start is in progress. 0 ok, else exit code. */
static int open_bus(fcshm_bus *bus, const char *dir, uint32_t mask) {
    char err[FCSHM_ERRLEN];
    int said = 0;
    for (;;) {
        int rc = fcshm_bus_open(bus, dir, mask, err, sizeof err);
        if (rc == FCSHM_OK) return 0;
        if (rc != FCSHM_E_NOTFOUND && rc != FCSHM_E_EPOCH) {
            fprintf(stderr, "tail_bars: error: %s (%s)\n", err, fcshm_strerror(rc));
            return 2;
        }
        if (!said) {
            fprintf(stderr, "tail_bars: waiting for the bus in %s (%s)\n", dir, err);
            said = 1;
        }
        sleep_ns(50000000L);
    }
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    const char *streams = "bars,tops";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--streams") == 0 && i + 1 < argc)
            streams = argv[++i];
        else if (strncmp(argv[i], "--streams=", 10) == 0)
            streams = argv[i] + 10;
        else if (argv[i][0] == '-')
            return usage(argv[0]);
        else if (!dir)
            dir = argv[i];
        else
            return usage(argv[0]);
    }
    if (!dir) return usage(argv[0]);

    uint32_t sel[4];
    int nsel = 0;
    for (const char *p = streams; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        uint32_t s = fcshm_stream_by_name(p, len);
        if (s != FCSHM_STREAM_BARS && s != FCSHM_STREAM_TOPS && s != FCSHM_STREAM_SIGNALS &&
            s != FCSHM_STREAM_STATS) {
            fprintf(stderr,
                    "tail_bars: unknown stream '%.*s' (choose from bars,tops,signals,stats)\n",
                    (int)len, p);
            return 2;
        }
        int dup = 0;
        for (int k = 0; k < nsel; k++) dup |= sel[k] == s;
        if (!dup) sel[nsel++] = s;
        p += len;
        if (*p == ',') p++;
    }
    if (nsel == 0) return usage(argv[0]);
    uint32_t mask = 0;
    for (int k = 0; k < nsel; k++) mask |= 1u << sel[k];
    /* Signals are printed with their strategy's name. */
    if (mask & (1u << FCSHM_STREAM_SIGNALS)) mask |= 1u << FCSHM_STREAM_STRATEGIES;

    uint32_t bad = fcshm_check_layout_hashes();
    if (bad) {
        fprintf(stderr, "tail_bars: internal error: layout hash of stream %u does not match\n", bad);
        return 2;
    }

    static fcshm_bus bus;
    int rc = open_bus(&bus, dir, mask);
    if (rc) return rc;
    const fcshm_file *symbols = &bus.files[FCSHM_STREAM_SYMBOLS];
    /* A ring the bus does not have (an optional one of an older writer) stays empty. */
    fcshm_ring rings[4];
    int have[4];
    for (int k = 0; k < nsel; k++) {
        have[k] = (bus.mask >> sel[k]) & 1u;
        if (have[k]) fcshm_ring_init(&rings[k], &bus.files[sel[k]], FCSHM_START_OLDEST);
        else memset(&rings[k], 0, sizeof rings[k]);
    }

    uint64_t count[4] = {0, 0, 0, 0}, lapped = 0, restarts = 0;
    long idle_ns = 500000L;
    uint64_t last_check = 0;
    int status = 0;
    for (;;) {
        int progressed = 0;
        const fcshm_file *strategies = (bus.mask >> FCSHM_STREAM_STRATEGIES) & 1u
                                           ? &bus.files[FCSHM_STREAM_STRATEGIES]
                                           : NULL;
        for (int k = 0; k < nsel; k++) {
            union {
                fcshm_bar bar;
                fcshm_top top;
                fcshm_signal signal;
                fcshm_stats stats;
            } rec;
            uint64_t seq;
            if (!have[k]) continue;
            for (int i = 0; i < 4096 && fcshm_ring_try_read(&rings[k], &rec, &seq) == 1; i++) {
                progressed = 1;
                uint32_t sid = sel[k] == FCSHM_STREAM_BARS      ? rec.bar.symbol_id
                               : sel[k] == FCSHM_STREAM_TOPS    ? rec.top.symbol_id
                               : sel[k] == FCSHM_STREAM_SIGNALS ? rec.signal.symbol_id
                                                                : rec.stats.symbol_id;
                const symbol_cache *s = wait_symbol(symbols, sid);
                if (!s) {
                    fprintf(stderr, "tail_bars: error: record %llu refers to unknown symbol id %u\n",
                            (unsigned long long)seq, (unsigned)sid);
                    status = 1;
                    goto out;
                }
                if (sel[k] == FCSHM_STREAM_BARS)
                    print_bar(&rec.bar, s);
                else if (sel[k] == FCSHM_STREAM_TOPS)
                    print_top(&rec.top, s);
                else if (sel[k] == FCSHM_STREAM_SIGNALS) {
                    char name[FCSHM_STRATEGY_NAME_LEN + 1];
                    int named = strategy_name(strategies, rec.signal.strategy_id, name);
                    print_signal(&rec.signal, s, named ? name : NULL);
                } else
                    print_stats(&rec.stats, s);
                count[k]++;
            }
        }
        if (progressed) {
            idle_ns = 500000L;
            continue;
        }
        fflush(stdout);
        /* Idle: learn whether the writer is dead first, then look for a restart, then
         * check that every ring was read up to its (now final) write_seq. */
        int alive = fcshm_writer_alive(dir);
        if (alive < 0) {
            fprintf(stderr, "tail_bars: error: cannot test %s/writer.lock\n", dir);
            status = 1;
            break;
        }
        uint64_t now = fcshm_now_ns();
        if (!alive || now - last_check > 200000000u) {
            last_check = now;
            if (fcshm_bus_restarted(&bus)) {
                for (int k = 0; k < nsel; k++) lapped += have[k] ? rings[k].lapped : 0;
                fcshm_bus_close(&bus);
                memset(g_syms, 0, sizeof g_syms);
                restarts++;
                fprintf(stderr, "tail_bars: writer restarted, reading the new files from 0\n");
                rc = open_bus(&bus, dir, mask);
                if (rc) return rc;
                for (int k = 0; k < nsel; k++) {
                    have[k] = (bus.mask >> sel[k]) & 1u;
                    memset(&rings[k], 0, sizeof rings[k]);
                    if (have[k]) fcshm_ring_init(&rings[k], &bus.files[sel[k]], FCSHM_START_NEXT);
                    rings[k].next = 0;
                }
                continue;
            }
        }
        if (!alive) {
            int drained = 1;
            for (int k = 0; k < nsel; k++)
                if (have[k] && rings[k].next < fcshm_write_seq(rings[k].file)) drained = 0;
            if (drained) break;
            continue;
        }
        sleep_ns(idle_ns);
        if (idle_ns < 10000000L) idle_ns *= 2;
    }
out:
    fflush(stdout);
    for (int k = 0; k < nsel; k++) lapped += have[k] ? rings[k].lapped : 0;
    fcshm_bus_close(&bus);
    uint64_t total = 0;
    for (int k = 0; k < nsel; k++) total += count[k];
    fprintf(stderr, "tail_bars: %llu records (", (unsigned long long)total);
    for (int k = 0; k < nsel; k++)
        fprintf(stderr, "%s%s %llu", k ? ", " : "", fcshm_stream_info_get(sel[k])->name,
                (unsigned long long)count[k]);
    fprintf(stderr, "), %llu lapped, %llu restarts\n", (unsigned long long)lapped,
            (unsigned long long)restarts);
    return status;
}
