#!/usr/bin/env python3
"""Where a proxy's heap goes at its peak (e.g. with N idle streams open), from heaptrack.

usage: heap_peaks.py HEAPTRACK_FILE.zst N_STREAMS

Runs `heaptrack_print --flamegraph-cost-type peak`, sorts every allocation stack alive at the
peak into a few buckets by the frames it passes through (hyper's h1 buffers on each side,
hyper's client dispatch channel, rustls, tokio tasks, ...), and prints KiB per stream.
The buckets are matched on function and file names of hyper 1 / hyper-util / rustls 0.23 /
tokio 1 as built into mcp-frontdoor; anything unmatched is "other".
"""
import re
import subprocess
import sys
import tempfile

path, n = sys.argv[1], int(sys.argv[2])
with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
    subprocess.run(
        ["heaptrack_print", "-f", path, "--print-peaks", "0", "--print-allocators", "0",
         "--print-temporary", "0", "--print-leaks", "0", "--print-flamegraph", out.name,
         "--flamegraph-cost-type", "peak"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = open(out.name).read().splitlines()

BUCKETS = [
    ("hyper client: request channel (tokio unbounded mpsc block), per upstream connection",
     lambda s: "channel<> (dispatch.rs)" in s),
    ("hyper h1 read buffer, upstream side",
     lambda s: "poll_read_from_io" in s and ("into_future.rs" in s or "client.rs" in s)),
    ("hyper h1 read buffer, client side",
     lambda s: "poll_read_from_io" in s),
    ("hyper h1 connection + write buffer (8 KiB headers Vec), upstream side",
     lambda s: "new<> (io.rs)" in s and "client.rs" in s),
    ("hyper h1 connection + write buffer (8 KiB headers Vec), client side",
     lambda s: "new<> (io.rs)" in s or "serve_connection" in s),
    ("rustls (record buffers, AEAD contexts, connection state)",
     lambda s: re.search(r"rustls|read_tls|aead_ctx|tls13|server_conn|common_state|aws_lc", s) is not None),
    ("tokio tasks (connection / request futures)", lambda s: "new_task" in s),
    ("tokio I/O registrations", lambda s: "add_source" in s or "registration.rs" in s),
    ("request/response headers and bodies (http, axum, proxy wrappers)",
     lambda s: re.search(r"\(map\.rs\)|HeaderMap|headers\.rs|body\.rs|stream_back|upstream_request", s) is not None),
]

totals = {}
for line in lines:
    stack, _, cost = line.rpartition(" ")
    if not cost.isdigit():
        continue
    name = next((b for b, match in BUCKETS if match(stack)), "other")
    totals[name] = totals.get(name, 0) + int(cost)

whole = sum(totals.values())
print(f"peak heap {whole / 1048576:.1f} MiB = {whole / 1024 / n:.1f} KiB per stream ({n} streams)")
print()
print("| where | KiB per stream | share |")
print("|---|---|---|")
for name, cost in sorted(totals.items(), key=lambda kv: -kv[1]):
    print(f"| {name} | {cost / 1024 / n:.1f} | {cost / whole * 100:.0f}% |")
