#!/usr/bin/env python3
"""Silent connections against a real front door process, on loopback only.

Starts `--bin serve` with a throw-away config (TLS, no gateway runtime), opens N TCP
connections that never send a byte and N TLS connections that finish the handshake and then
send nothing, and reports: how many of each are still open after `--wait` seconds, the
front door's open file descriptors right after the flood and after the wait, and /healthz
latency (a new TLS connection per probe) while the flood is open. Bounded in count and time;
stops the process it started.

    python3 scripts/edge_abuse.py --bin target/release/mcp-frontdoor --n 2000 --wait 15
"""

import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary: str, tmp: Path, extra_server: list[str]):
    port, mport = free_port(), free_port()
    subprocess.run([binary, "certs", "generate", "--out", tmp / "tls", "--host", "localhost"],
                   check=True, capture_output=True)
    (tmp / "hs").write_text("edge-abuse-hs256-secret-that-is-long-enough-0123")
    (tmp / "mk").write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    extra = "".join(f"  {line}\n" for line in extra_server)
    (tmp / "fd.yaml").write_text(f"""
server:
  listen: 127.0.0.1:{port}
  tls: {{ cert: {tmp}/tls/cert.pem, key: {tmp}/tls/key.pem }}
{extra}metrics: {{ listen: 127.0.0.1:{mport} }}
data_dir: {tmp}/data
auth: {{ issuer: e, audience: [e], hs256_secret_file: {tmp}/hs }}
secrets: {{ master_key_file: {tmp}/mk }}
gateways: {{ upstream_url: "http://127.0.0.1:9" }}
""")
    log = open(tmp / "log", "wb")
    proc = subprocess.Popen([binary, "serve", "--config", tmp / "fd.yaml"], stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"})
    ctx = ssl.create_default_context(cafile=str(tmp / "tls" / "cert.pem"))
    for _ in range(300):
        try:
            healthz(port, ctx)
            return proc, port, ctx
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"front door did not start: {(tmp / 'log').read_text()}")


def healthz(port: int, ctx: ssl.SSLContext) -> float:
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            data = s.recv(64)
            if not data.startswith(b"HTTP/1.1 200"):
                raise OSError(f"healthz: {data!r}")
    return (time.perf_counter() - t) * 1000


def still_open(socks) -> int:
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += bool(s.recv(1, socket.MSG_PEEK) if not isinstance(s, ssl.SSLSocket) else s.recv(1))
        except (BlockingIOError, ssl.SSLWantReadError):
            n += 1
        except (OSError, ssl.SSLError):
            pass
    return n


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--n", type=int, default=2000, help="silent connections of each kind (max 5000)")
    p.add_argument("--wait", type=float, default=15.0, help="seconds before counting what is still open")
    p.add_argument("--server", action="append", default=[], help="extra `server:` line, e.g. 'max_connections: 1000'")
    a = p.parse_args()
    n = min(a.n, 5000)
    with tempfile.TemporaryDirectory() as d:
        proc, port, ctx = start(a.bin, Path(d), a.server)
        try:
            base_fds = fds(proc.pid)
            tcp, tls, refused = [], [], 0
            t0 = time.time()
            for _ in range(n):
                try:
                    tcp.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                except OSError:
                    refused += 1
            for _ in range(n):
                try:
                    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                    tls.append(ctx.wrap_socket(raw, server_hostname="localhost"))
                except OSError:
                    refused += 1
            opened_s = time.time() - t0
            time.sleep(0.5)
            flood_fds = fds(proc.pid)
            lat = []
            for _ in range(20):
                try:
                    lat.append(healthz(port, ctx))
                except OSError:
                    lat.append(float("inf"))
            time.sleep(max(0.0, a.wait - (time.time() - t0)))
            out = {
                "bin": a.bin, "n": n, "server": a.server, "wait_s": a.wait,
                "open_s": round(opened_s, 1), "connect_failures": refused,
                "tcp_open_after_wait": still_open(tcp), "tls_open_after_wait": still_open(tls),
                "fds_before": base_fds, "fds_flood": flood_fds, "fds_after_wait": fds(proc.pid),
                "healthz_ms_p50": round(statistics.median(lat), 1), "healthz_ms_max": round(max(lat), 1),
                "healthz_failures": sum(x == float("inf") for x in lat),
            }
            print(json.dumps(out))
            for s in tcp + tls:
                s.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
