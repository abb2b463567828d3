"""A tiny authoritative DNS server for tests (dnspython for the wire format).

Answers A queries for the names in `records`, an empty NOERROR for other types of known names,
NXDOMAIN for everything else. Listens on UDP (and TCP on the same port when it is free) on
127.0.0.1, port chosen by the kernel, in one background thread with a bounded poll loop.
"""
import selectors
import socket
import struct
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

DEFAULT_RECORDS = {
    "allowed.test": ["127.0.0.2"],
    "denied.test": ["127.0.0.2"],
    "other.test": ["127.0.0.2"],
    "warn.test": ["127.0.0.2"],
    "sub.allowed.test": ["127.0.0.2"],
    "a.glob.test": ["127.0.0.2"],
    "unreach.test": ["127.0.0.2"],
    "loop.test": ["127.0.0.1"],
    "zero.test": ["0.0.0.0"],  # the unspecified address: a connect to it lands on this host
}


class TestDNSServer:
    __test__ = False  # not a pytest test class

    def __init__(self, records=None, host="127.0.0.1"):
        self.records = {k.lower().rstrip("."): list(v) for k, v in (records or DEFAULT_RECORDS).items()}
        self.host = host
        self.queries = []  # (qname, qtype-text, transport)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.tcp.bind((host, self.port))
            self.tcp.listen(16)
        except OSError:
            self.tcp.close()
            self.tcp = None
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    @property
    def addr(self):
        return f"{self.host}:{self.port}"

    def set(self, name, ips):
        with self._lock:
            self.records[name.lower().rstrip(".")] = list(ips)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.udp.close()
        if self.tcp:
            self.tcp.close()

    def queried(self, name):
        name = name.lower().rstrip(".")
        with self._lock:
            return [q for q in self.queries if q[0] == name]

    # --- protocol ---------------------------------------------------------------------------
    def answer(self, wire: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower()
        with self._lock:
            self.queries.append((name, dns.rdatatype.to_text(q.rdtype), transport))
            ips = self.records.get(name)
        if ips is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif q.rdtype == dns.rdatatype.A and q.rdclass == dns.rdataclass.IN:
            response.answer.append(dns.rrset.from_text_list(q.name, 5, "IN", "A", ips))
        # Other types of a known name: NOERROR with an empty answer section.
        return response.to_wire()

    def _serve(self):
        sel = selectors.DefaultSelector()
        sel.register(self.udp, selectors.EVENT_READ, "udp")
        if self.tcp:
            sel.register(self.tcp, selectors.EVENT_READ, "tcp")
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.2):
                    if key.data == "udp":
                        try:
                            wire, peer = self.udp.recvfrom(65535)
                        except OSError:
                            continue
                        out = self.answer(wire, "udp")
                        if out is not None:
                            if len(out) > 512 and not self._has_edns(wire):
                                out = out[:2] + bytes([out[2] | 0x02]) + out[3:12]  # TC, no body
                            try:
                                self.udp.sendto(out, peer)
                            except OSError:
                                pass
                    else:
                        try:
                            conn, _ = self.tcp.accept()
                        except OSError:
                            continue
                        threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()
        finally:
            sel.close()

    @staticmethod
    def _has_edns(wire):
        try:
            return dns.message.from_wire(wire).edns >= 0
        except Exception:
            return False

    def _serve_tcp(self, conn):
        conn.settimeout(5)
        try:
            for _ in range(64):  # bounded number of queries per connection
                head = self._recv_exact(conn, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                wire = self._recv_exact(conn, length)
                if wire is None:
                    return
                out = self.answer(wire, "tcp")
                if out is None:
                    return
                conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf
