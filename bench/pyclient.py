#!/usr/bin/env python3
"""Two small clients the benchmark needs besides hey (loopback only, every loop bounded).

  pyclient.py probe --target HOST:PORT [--proxy HOST:PORT] --cafile PEM --path /1k
                    [--requests N] [--seconds S]
      One keep-alive HTTPS connection (through CONNECT when --proxy is given), N sequential GETs
      timed with perf_counter_ns. Prints one JSON line: {"n", "p50_us", "p99_us", "mean_us"}.
      hey only reports latency to 0.1 ms; this gives microseconds for the c=1 "added latency" row.

  pyclient.py idle --proxy HOST:PORT --target HOST:PORT --cafile PEM --n N
                   [--concurrency C] [--open-seconds S] [--hold-seconds H]
      Opens N connections: TCP, CONNECT, TLS handshake through the proxy (the MITM leaf), then
      holds them idle. Prints {"opened", "failed", "open_seconds", "first_error"} once all are
      open (or the open deadline passed), then waits until stdin closes or H seconds pass, and
      closes everything.
"""
import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
import time


def split(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


def ssl_ctx(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# --- probe -------------------------------------------------------------------------------------
def recv_until(sock, buf, marker, limit=1 << 20):
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
        if len(buf) > limit:
            raise ConnectionError("head too large")
    return buf


def read_response(sock, buf):
    """Read one HTTP/1.1 response with Content-Length; returns (status, leftover bytes)."""
    buf = recv_until(sock, buf, b"\r\n\r\n")
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    return status, rest[length:]


def open_tls(target, proxy, cafile, timeout=10.0):
    host, port = split(target)
    if proxy:
        raw = socket.create_connection(split(proxy), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = recv_until(raw, b"", b"\r\n\r\n")
        if b" 200" not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"CONNECT answered {head[:80]!r}")
    else:
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ssl_ctx(cafile).wrap_socket(raw, server_hostname=host)


def probe(args):
    host, port = split(args.target)
    host_header = host if port == 443 else args.target
    sock = open_tls(args.target, args.proxy, args.cafile)
    req = f"GET {args.path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: iron-bench\r\n\r\n".encode()
    buf = b""
    lat = []
    deadline = time.monotonic() + args.seconds
    warmup = min(200, args.requests // 5)
    for i in range(args.requests + warmup):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter_ns()
        sock.sendall(req)
        status, buf = read_response(sock, buf)
        dt = time.perf_counter_ns() - t0
        if status != 200:
            raise SystemExit(f"probe: status {status}")
        if i >= warmup:
            lat.append(dt)
    sock.close()
    lat.sort()
    if not lat:
        raise SystemExit("probe: no samples")
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0
    print(json.dumps({"n": len(lat), "p50_us": pick(0.50), "p99_us": pick(0.99),
                      "mean_us": sum(lat) / len(lat) / 1000.0}), flush=True)


# --- idle --------------------------------------------------------------------------------------
async def open_one(args, ctx, host, conns, errors):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*split(args.proxy)), 10)
        writer.write(f"CONNECT {args.target} HTTP/1.1\r\nHost: {args.target}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if b" 200" not in head.split(b"\r\n", 1)[0]:
            writer.close()
            raise ConnectionError(f"CONNECT answered {head[:60]!r}")
        await asyncio.wait_for(writer.start_tls(ctx, server_hostname=host), 10)
        conns.append(writer)
    except Exception as e:  # noqa: BLE001 - counted and reported, never fatal
        errors.append(f"{type(e).__name__}: {e}")


async def idle(args):
    ctx = ssl_ctx(args.cafile)
    host, _ = split(args.target)
    conns, errors = [], []
    sem = asyncio.Semaphore(args.concurrency)
    start = time.monotonic()
    deadline = start + args.open_seconds

    async def guarded():
        async with sem:
            if time.monotonic() < deadline:
                await open_one(args, ctx, host, conns, errors)
            else:
                errors.append("open deadline passed")

    await asyncio.gather(*(guarded() for _ in range(args.n)))
    print(json.dumps({"opened": len(conns), "failed": len(errors),
                      "open_seconds": round(time.monotonic() - start, 2),
                      "first_error": errors[0] if errors else ""}), flush=True)
    # Hold until the driver closes our stdin (it measures the proxy's RSS meanwhile), bounded.
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), args.hold_seconds)
    except asyncio.TimeoutError:
        pass
    # The kernel closes every socket at exit; no need to walk 10k transports (and the stdin
    # reader thread may still be blocked, which would stall asyncio.run's executor shutdown).
    sys.stdout.flush()
    os._exit(0)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("probe")
    a.add_argument("--target", required=True)
    a.add_argument("--proxy")
    a.add_argument("--cafile", required=True)
    a.add_argument("--path", default="/1k")
    a.add_argument("--requests", type=int, default=2000)
    a.add_argument("--seconds", type=float, default=5.0)
    b = sub.add_parser("idle")
    b.add_argument("--proxy", required=True)
    b.add_argument("--target", required=True)
    b.add_argument("--cafile", required=True)
    b.add_argument("--n", type=int, default=10000)
    b.add_argument("--concurrency", type=int, default=64)
    b.add_argument("--open-seconds", type=float, default=120.0)
    b.add_argument("--hold-seconds", type=float, default=60.0)
    args = p.parse_args()
    if args.cmd == "probe":
        probe(args)
    else:
        asyncio.run(idle(args))


if __name__ == "__main__":
    main()
