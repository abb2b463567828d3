"""A strict parser for RFC 8941 (Structured Field Values) Lists, enough to check a Proxy-Status
field (RFC 9209) the way a client library would: anything not valid is a ValueError.

parse_list('iron-proxy; error=dns_error; details="x"')
  → [Item(value=Token('iron-proxy'), params={'error': Token('dns_error'), 'details': 'x'})]
"""
import re
from dataclasses import dataclass, field


class Token(str):
    """An sf-token (a str subclass, so it compares equal to its text)."""


@dataclass
class Item:
    value: object
    params: dict = field(default_factory=dict)


_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")


class _Parser:
    def __init__(self, text: str):
        if not text.isascii():
            raise ValueError("structured field values are ASCII")
        self.s = text
        self.i = 0

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_sp(self):
        while self.peek() == " ":
            self.i += 1

    def skip_ows(self):
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def string(self):
        assert self.peek() == '"'
        self.i += 1
        out = []
        while True:
            c = self.peek()
            if not c:
                raise ValueError("unterminated sf-string")
            self.i += 1
            if c == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\"):
                    raise ValueError(f"bad escape \\{nxt!r} in sf-string")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not (0x20 <= ord(c) <= 0x7E):
                raise ValueError(f"character {c!r} not allowed in sf-string")
            else:
                out.append(c)

    def bare_item(self):
        c = self.peek()
        if c == '"':
            return self.string()
        if c == "?":
            v = self.s[self.i + 1:self.i + 2]
            if v not in ("0", "1"):
                raise ValueError("bad sf-boolean")
            self.i += 2
            return v == "1"
        m = _NUMBER.match(self.s, self.i)
        if m and (c == "-" or c.isdigit()):
            self.i = m.end()
            return float(m.group()) if "." in m.group() else int(m.group())
        m = _TOKEN.match(self.s, self.i)
        if m:
            self.i = m.end()
            return Token(m.group())
        raise ValueError(f"unexpected {c!r} at {self.i} in {self.s!r}")

    def params(self):
        out = {}
        while self.peek() == ";":
            self.i += 1
            self.skip_sp()
            m = _KEY.match(self.s, self.i)
            if not m:
                raise ValueError(f"bad parameter key at {self.i} in {self.s!r}")
            self.i = m.end()
            value = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare_item()
            out[m.group()] = value
        return out

    def list(self):
        members = []
        self.skip_sp()
        while self.i < len(self.s):
            value = self.bare_item()
            members.append(Item(value, self.params()))
            self.skip_ows()
            if self.i >= len(self.s):
                return members
            if self.peek() != ",":
                raise ValueError(f"expected ',' at {self.i} in {self.s!r}")
            self.i += 1
            self.skip_ows()
            if self.i >= len(self.s):
                raise ValueError("trailing comma")
        return members


def parse_list(text: str) -> list:
    """Parse a List field value (several field lines: join them with ', ' first)."""
    return _Parser(text).list()
