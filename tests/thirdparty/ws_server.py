#!/usr/bin/env python3
"""A Binance-format market stream served by the `websockets` library, not by flowcore.

The live tests point `flowcore run` at it to show the client works against a WebSocket
implementation this project did not write. It serves recordings (the shared format,
`<local_ns> <raw JSON>` a line, gzip or plain) with:

- one path prefix per venue: /binance-spot, /binance-usdm, /binance-coinm, each with
  Binance's combined-stream form `/stream?streams=a/b/c` (messages as recorded);
- every message sent as a fragmented WebSocket message (`--fragment` bytes a frame);
- server pings every `--ping` seconds (websockets closes a client that does not pong);
- the recording's own REST depth snapshot at the venue's path (/api/v3/depth,
  /fapi/v1/depth, /dapi/v1/depth?symbol=...), over http, or https with --cert/--key.

It prints {"ws": ..., "rest": ...} once listening, plays each connection's streams as fast
as the client reads, closes it, and exits after `--connections` connections have ended.

Usage: ws_server.py [--cert C --key K] [--ping 0.5] [--fragment 97] --connections N VENUE=FILE...
"""

import argparse
import asyncio
import gzip
import http
import json
import logging
import ssl
import sys

from websockets.asyncio.server import serve

DEPTH_PATHS = {
    "binance-spot": "/api/v3/depth",
    "binance-usdm": "/fapi/v1/depth",
    "binance-coinm": "/dapi/v1/depth",
}


def load(inputs):
    """Per venue: the stream messages in file order, and snapshots by upper-case symbol."""
    streams = {}
    snapshots = {}
    for arg in inputs:
        venue, path = arg.split("=", 1)
        opener = gzip.open if path.endswith(".gz") else open
        symbol = None
        pending = []
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                _, raw = line.rstrip("\n").split(" ", 1)
                if raw.startswith('{"stream":"'):
                    name = raw[len('{"stream":"'):raw.index('"', len('{"stream":"'))]
                    streams.setdefault(venue, []).append((name, raw))
                    symbol = symbol or name.split("@")[0].upper()
                else:
                    pending.append(raw)
        if symbol and pending:
            snapshots.setdefault((venue, symbol), pending[0])
    return streams, snapshots


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ping", type=float, default=0.5)
    parser.add_argument("--fragment", type=int, default=97)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args()
    # A REST client closing its connection after the response is logged by websockets as a
    # failed opening handshake: not an error here.
    logging.getLogger("websockets.server").setLevel(logging.CRITICAL)
    streams, snapshots = load(args.inputs)
    done = asyncio.Event()
    ended = 0

    def rest(connection, request):
        path, _, query = request.path.partition("?")
        for venue, depth_path in DEPTH_PATHS.items():
            if path == depth_path:
                params = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
                body = snapshots.get((venue, params.get("symbol", "").upper()))
                if body is None:
                    return connection.respond(http.HTTPStatus.BAD_REQUEST, '{"code":-1121}')
                return connection.respond(http.HTTPStatus.OK, body)
        return None  # not REST: go on with the WebSocket handshake

    async def stream(ws):
        nonlocal ended
        path, _, query = ws.request.path.partition("?")
        venue = path.strip("/").split("/")[0]
        wanted = set(query[len("streams="):].split("/")) if query.startswith("streams=") else set()
        size = args.fragment
        try:
            for n, (name, raw) in enumerate(streams.get(venue, [])):
                if name in wanted:
                    await ws.send([raw[i:i + size] for i in range(0, len(raw), size)])
                if n % 64 == 0:
                    # send() does not yield while the socket takes the data: let the other
                    # connections and the REST requests have the event loop too.
                    await asyncio.sleep(0)
            await ws.close()
        finally:
            ended += 1
            if ended >= args.connections:
                done.set()

    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    async with serve(stream, "127.0.0.1", 0, process_request=rest, ssl=context,
                     ping_interval=args.ping, ping_timeout=10, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        ws_scheme, rest_scheme = ("wss", "https") if context else ("ws", "http")
        print(json.dumps({"ws": f"{ws_scheme}://127.0.0.1:{port}",
                          "rest": f"{rest_scheme}://127.0.0.1:{port}"}), flush=True)
        await done.wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
