#!/usr/bin/env python3
"""Worker of bench/soak.py: keeps a share of the soak's keep-alive MITM connections busy.

Each keep-alive lane owns one connection through the proxy (even lanes: the HTTPS listener with
SNI; odd lanes: CONNECT to the tunnel listener, then TLS inside) and loops: send a request, read
the whole response, check it, sleep a random think time, repeat. Lanes chosen by --frac-deny talk
to `denied.test` (MITM'd, every request must get 403); the others to `localhost`: mostly small
GETs, some uploads (POST), some large downloads. Every request has a unique path
(/r|up|big|d/<lane>/<seq>) that the audit file is matched against; the origin echoes the path, so
a response delivered to the wrong request is caught. --deny-connect-lanes lanes instead open a
CONNECT to denied.test:443 again and again (403 expected, new connection each time).

A connection that fails is counted, closed and opened again. Protocol with the driver: one JSON
line on stdout when every lane has made its first connection attempt ({"event": "open", ...});
"load" on stdin starts the load (until then each lane sends one request right after its
handshake and then one every 30-60 s); "stop" (or --max-seconds) ends the loops after the
request in flight; the counters go to
--out (JSON) and one line per request to --requests ("path status outcome"), then
{"event": "done"} on stdout.
"""
import argparse
import asyncio
import asyncio.sslproto
import json
import math
import os
import random
import resource
import ssl
import sys
import time

# asyncio allocates (and zero-fills) a max_size read buffer per TLS connection: 256 KiB by
# default, 2.5 GiB for 10,000 connections. It is only the chunk size of SSLObject.read().
asyncio.sslproto.SSLProtocol.max_size = 32 * 1024

ALLOWED, DENIED = "localhost", "denied.test"


def split(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


def spread(i, frac):
    """True for about frac of all lane indices, evenly spaced (exact counts even for small N)."""
    return math.floor((i + 1) * frac) > math.floor(i * frac)


class Stats:
    def __init__(self):
        self.sent = 0
        self.by_status = {}
        self.by_kind = {}
        self.failures = {}
        self.examples = []
        self.connects = {"https": 0, "tunnel": 0, "tunnel_failed": 0, "deny_connect": 0}
        self.deny_connect_status = {}
        self.open_failures = 0
        self.reconnects = 0
        self.closed_by_proxy = 0
        self.open_now = 0
        self.open_peak = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.latency_hist = {}  # bucket (1.1^k ms) -> count
        self.requests = []  # (path, status, outcome)

    def fail(self, category, lane, detail):
        self.failures[category] = self.failures.get(category, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(f"lane {lane}: {category}: {detail}"[:300])

    def latency(self, seconds):
        ms = max(seconds * 1000.0, 0.001)
        k = math.floor(math.log(ms) / math.log(1.1))
        self.latency_hist[k] = self.latency_hist.get(k, 0) + 1


class Worker:
    def __init__(self, args):
        self.a = args
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.load = asyncio.Event()
        self.ctx = ssl.create_default_context(cafile=args.cafile)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.open_sem = asyncio.Semaphore(args.open_concurrency)
        self.first_attempts = 0
        self.total_lanes = args.lanes + args.deny_connect_lanes
        self.started = time.monotonic()
        self.upload = bytes(range(256)) * (args.upload_bytes // 256 + 1)
        self.upload = self.upload[:args.upload_bytes]
        self.big = (bytes(range(256)) * (args.big_bytes // 256 + 1))[:args.big_bytes]
        port = args.upstream_port
        self.target = f"{ALLOWED}:{port}"
        self.allowed_host = ALLOWED if port == 443 else self.target
        self.denied_host = DENIED if port == 443 else f"{DENIED}:{port}"

    # --- connections ------------------------------------------------------------------------

    def source(self, lane):
        return (f"127.0.0.{1 + lane % self.a.sources}", 0)

    async def connect(self, lane, listener, sni):
        timeout = self.a.request_timeout
        if listener == "https":
            r, w = await asyncio.wait_for(asyncio.open_connection(
                *split(self.a.https), ssl=self.ctx, server_hostname=sni, local_addr=self.source(lane),
                ssl_handshake_timeout=timeout), timeout)
            return r, w
        r, w = await asyncio.wait_for(asyncio.open_connection(*split(self.a.tunnel), local_addr=self.source(lane)),
                                      timeout)
        try:
            w.write(f"CONNECT {self.target} HTTP/1.1\r\nHost: {self.target}\r\n\r\n".encode())
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
            if not head.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(f"CONNECT answered {head[:60]!r}")
            await asyncio.wait_for(w.start_tls(self.ctx, server_hostname=sni, ssl_handshake_timeout=timeout), timeout)
        except BaseException:
            w.transport.abort()
            raise
        return r, w

    async def open_lane(self, lane, listener, sni, first):
        """Opens the lane's connection, retrying once a second until it works or the run stops."""
        while True:
            try:
                async with self.open_sem:
                    if self.stop.is_set():
                        return None
                    conn = await self.connect(lane, listener, sni)
                self.stats.connects[listener] += 1
                self.stats.open_now += 1
                self.stats.open_peak = max(self.stats.open_peak, self.stats.open_now)
                return conn
            except Exception as e:  # noqa: BLE001 - counted; the lane tries again
                self.stats.open_failures += 1
                self.stats.fail("open_error", lane, f"{type(e).__name__}: {e}")
                if listener == "tunnel":  # the CONNECT may have been answered (and audited)
                    self.stats.connects["tunnel_failed"] += 1
            finally:
                if first:
                    first = False
                    self.first_attempt_done()
            if await self.sleep(1.0):
                return None

    def first_attempt_done(self):
        self.first_attempts += 1
        if self.first_attempts == self.total_lanes:
            print(json.dumps({"event": "open", "open": self.stats.open_now,
                              "open_failures": self.stats.open_failures,
                              "seconds": round(time.monotonic() - self.started, 2)}), flush=True)

    def close(self, conn):
        if conn is not None:
            conn[1].transport.abort()
            self.stats.open_now -= 1

    async def pause(self):
        """The think time between two requests; True when the run stops. Until the driver says
        "load" (every connection of every worker is open) a lane only keeps its connection alive
        (one request every --ramp-think-min..max s), so the handshakes of the ramp do not queue
        behind a full load; when the load begins, each lane starts within --think-max s."""
        if self.load.is_set():
            return await self.sleep(self.think())
        wait_load = asyncio.ensure_future(self.load.wait())
        wait_stop = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait([wait_load, wait_stop], timeout=random.uniform(self.a.ramp_think_min, self.a.ramp_think_max),
                           return_when=asyncio.FIRST_COMPLETED)
        wait_load.cancel()
        wait_stop.cancel()
        if self.stop.is_set():
            return True
        if self.load.is_set():
            return await self.sleep(random.uniform(0, self.a.think_max))
        return False

    async def sleep(self, seconds):
        """Sleeps unless the run stops first; True when it stopped."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        return self.stop.is_set()

    def think(self):
        return random.uniform(self.a.think_min, self.a.think_max)

    # --- requests ---------------------------------------------------------------------------

    def next_request(self, lane, seq, denied):
        """(kind, path, request bytes, check(status, body) -> error or None)."""
        if denied:
            path = f"/d/{lane}/{seq}"
            head = f"GET {path} HTTP/1.1\r\nHost: {self.denied_host}\r\nX-Soak-Lane: {lane}\r\n\r\n"
            return "deny", path, head.encode(), lambda st, body: None if st == 403 else f"status {st}, want 403"
        x = random.random()
        common = f"Host: {self.allowed_host}\r\nAuthorization: Bearer {self.a.placeholder}\r\nX-Soak-Lane: {lane}\r\n"
        if x < self.a.frac_big:
            path = f"/big/{lane}/{seq}"
            req = f"GET {path} HTTP/1.1\r\n{common}X-Soak-Kind: big\r\n\r\n".encode()
            return "big", path, req, lambda st, body: self.check(st, body, self.big)
        if x < self.a.frac_big + self.a.frac_upload:
            path = f"/up/{lane}/{seq}"
            req = (f"POST {path} HTTP/1.1\r\n{common}X-Soak-Kind: upload\r\n"
                   f"Content-Length: {len(self.upload)}\r\n\r\n").encode() + self.upload
            return "upload", path, req, lambda st, body: self.check(st, body, f"up {path} {len(self.upload)}\n".encode())
        path = f"/r/{lane}/{seq}"
        req = f"GET {path} HTTP/1.1\r\n{common}X-Soak-Kind: get\r\n\r\n".encode()
        return "get", path, req, lambda st, body: self.check(st, body, f"ok {path}\n".encode())

    @staticmethod
    def check(status, body, want):
        if status != 200:
            return f"status {status}, want 200"
        if body != want:
            return f"body of {len(body)} bytes differs from the expected {len(want)} ({body[:60]!r})"
        return None

    async def exchange(self, conn, req):
        """Sends one request, reads the whole response: (status, body, closing)."""
        r, w = conn
        w.write(req)
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        if b"chunked" in fields.get(b"transfer-encoding", b""):
            body = await self.read_chunked(r)
        elif b"content-length" in fields:
            body = await r.readexactly(int(fields[b"content-length"]))
        elif status in (204, 304) or status < 200:
            body = b""
        else:
            body = await r.read()
        closing = fields.get(b"connection") == b"close"
        return status, body, closing

    @staticmethod
    async def read_chunked(r):
        parts = []
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await r.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await r.readexactly(size))
            await r.readexactly(2)

    async def one_request(self, lane, seq, conn, denied):
        """Runs one request on conn; returns True if the connection is still usable."""
        kind, path, req, check = self.next_request(lane, seq, denied)
        st = self.stats
        st.sent += 1
        st.by_kind[kind] = st.by_kind.get(kind, 0) + 1
        st.bytes_up += len(req)
        t0 = time.monotonic()
        try:
            status, body, closing = await asyncio.wait_for(self.exchange(conn, req), self.a.request_timeout)
        except asyncio.TimeoutError:
            return self.request_failed(lane, path, 0, "timeout", f"{path}: no full response in {self.a.request_timeout} s")
        except asyncio.IncompleteReadError as e:
            cat = "truncated" if e.partial else "closed_without_response"
            return self.request_failed(lane, path, 0, cat, f"{path}: {len(e.partial)} bytes then EOF")
        except (OSError, ConnectionError) as e:
            return self.request_failed(lane, path, 0, "connection_error", f"{path}: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - unparsable response and the like: counted, never fatal
            return self.request_failed(lane, path, 0, "bad_response", f"{path}: {type(e).__name__}: {e}")
        st.latency(time.monotonic() - t0)
        st.bytes_down += len(body)
        st.by_status[status] = st.by_status.get(status, 0) + 1
        problem = check(status, body)
        if problem:
            cat = "unexpected_status" if problem.startswith("status") else "bad_body"
            self.request_failed(lane, path, status, cat, f"{path}: {problem}")
            return False
        st.requests.append((path, status, "ok"))
        if closing:
            st.closed_by_proxy += 1
            return False
        return True

    def request_failed(self, lane, path, status, category, detail):
        self.stats.requests.append((path, status, category))
        self.stats.fail(category, lane, detail)
        return False

    # --- lanes ------------------------------------------------------------------------------

    async def keepalive_lane(self, lane):
        listener = "tunnel" if lane % 2 else "https"
        denied = spread(lane // 2, self.a.frac_deny)  # as many on each listener
        sni = DENIED if denied else ALLOWED
        conn = await self.open_lane(lane, listener, sni, first=True)
        seq = 0
        if conn is None:
            return
        while True:
            seq += 1
            usable = await self.one_request(lane, seq, conn, denied)
            if not usable:
                self.close(conn)
                conn = None
            if await self.pause():
                break
            if conn is None:
                self.stats.reconnects += 1
                conn = await self.open_lane(lane, listener, sni, first=False)
                if conn is None:
                    return
        self.close(conn)

    async def deny_connect_lane(self, lane):
        """CONNECT denied.test again and again: 403 each time (a new connection each time)."""
        first = True
        target = f"{DENIED}:{self.a.upstream_port}"
        while not self.stop.is_set():
            w = None
            try:
                async with self.open_sem:
                    r, w = await asyncio.wait_for(
                        asyncio.open_connection(*split(self.a.tunnel), local_addr=self.source(lane)), 10)
                    self.stats.connects["deny_connect"] += 1
                    w.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
                    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), self.a.request_timeout)
                status = int(head.split(b" ", 2)[1])
                self.stats.deny_connect_status[status] = self.stats.deny_connect_status.get(status, 0) + 1
                if status != 403:
                    self.stats.fail("unexpected_status", lane, f"CONNECT {target}: {head[:60]!r}")
            except Exception as e:  # noqa: BLE001 - counted; the lane goes on
                self.stats.fail("connect_error", lane, f"CONNECT {target}: {type(e).__name__}: {e}")
            finally:
                if w is not None:
                    w.transport.abort()
                if first:
                    first = False
                    self.first_attempt_done()
            await self.pause()

    async def run(self):
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), self.on_stdin)
        loop.call_later(self.a.max_seconds, self.stop.set)
        tasks = [asyncio.ensure_future(self.keepalive_lane(self.a.first_lane + i)) for i in range(self.a.lanes)]
        first_dc = self.a.first_deny_connect_lane
        tasks += [asyncio.ensure_future(self.deny_connect_lane(first_dc + i)) for i in range(self.a.deny_connect_lanes)]
        await asyncio.gather(*tasks)

    def on_stdin(self):
        data = os.read(sys.stdin.fileno(), 4096)
        if b"load" in data:
            self.load.set()
        if not data or b"stop" in data:
            asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            self.stop.set()


def write_results(worker, args):
    st = worker.stats
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {k: getattr(st, k) for k in ("sent", "by_kind", "failures", "examples", "connects", "open_failures",
                                       "reconnects", "closed_by_proxy", "open_peak", "bytes_up", "bytes_down")}
    out["by_status"] = {str(k): v for k, v in st.by_status.items()}
    out["deny_connect_status"] = {str(k): v for k, v in st.deny_connect_status.items()}
    out["latency_hist"] = {str(k): v for k, v in st.latency_hist.items()}
    out["cpu_seconds"] = ru.ru_utime + ru.ru_stime
    out["max_rss_kib"] = ru.ru_maxrss
    with open(args.requests, "w") as f:
        f.writelines(f"{p} {s} {o}\n" for p, s, o in st.requests)
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(args.out + ".tmp", args.out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--https", required=True, help="HTTPS listener HOST:PORT")
    p.add_argument("--tunnel", required=True, help="tunnel listener HOST:PORT")
    p.add_argument("--upstream-port", type=int, default=443)
    p.add_argument("--cafile", required=True)
    p.add_argument("--placeholder", required=True, help="the proxy_value the secrets transform swaps")
    p.add_argument("--first-lane", type=int, default=0)
    p.add_argument("--lanes", type=int, required=True)
    p.add_argument("--deny-connect-lanes", type=int, default=0)
    p.add_argument("--first-deny-connect-lane", type=int, default=0)
    p.add_argument("--frac-deny", type=float, default=0.05)
    p.add_argument("--frac-upload", type=float, default=0.03)
    p.add_argument("--frac-big", type=float, default=0.02)
    p.add_argument("--upload-bytes", type=int, default=64 * 1024)
    p.add_argument("--big-bytes", type=int, default=1024 * 1024)
    p.add_argument("--think-min", type=float, default=5.0)
    p.add_argument("--think-max", type=float, default=15.0)
    p.add_argument("--ramp-think-min", type=float, default=30.0)
    p.add_argument("--ramp-think-max", type=float, default=60.0)
    p.add_argument("--sources", type=int, default=8, help="spread lanes over 127.0.0.1..N as source")
    p.add_argument("--open-concurrency", type=int, default=100)
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument("--max-seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--requests", required=True)
    args = p.parse_args()
    random.seed(args.first_lane)
    worker = Worker(args)
    try:
        asyncio.run(worker.run())
    finally:
        write_results(worker, args)
        print(json.dumps({"event": "done"}), flush=True)
        sys.stdout.flush()
        os._exit(0)  # do not wait for thousands of transports to be torn down


if __name__ == "__main__":
    main()
