"""Checks on audit records (the Go proxy's JSON shape, see src/audit/record.hpp)."""
import datetime

AUDIT_KEYS = ("host", "method", "path", "remote_addr", "sni", "mode", "action", "status_code",
              "duration_ms")
LEVEL_FOR_ACTION = {"allow": "INFO", "stub": "INFO", "client_cancel": "INFO", "reject": "WARN",
                    "error": "ERROR"}


def check_shape(rec: dict):
    """Every record: time/level/msg, an `audit` object with all nine keys of the right types, and
    the level that goes with the action."""
    assert rec.get("msg") == "request", rec
    for k in ("time", "level", "audit"):
        assert k in rec, f"audit record lacks {k!r}: {rec}"
    t = rec["time"]
    assert isinstance(t, str)
    # RFC 3339; Python 3.11 fromisoformat accepts up to microseconds, so trim extra digits.
    head, dot, frac = t.partition(".")
    if dot:
        digits = "".join(c for c in frac if c.isdigit())
        tz = frac[len(digits):]
        t = f"{head}.{digits[:6]}{tz}"
    datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    a = rec["audit"]
    for k in AUDIT_KEYS:
        assert k in a, f"audit.{k} missing: {rec}"
    for k in ("host", "method", "path", "remote_addr", "sni", "mode", "action"):
        assert isinstance(a[k], str), f"audit.{k} is not a string: {rec}"
    assert isinstance(a["status_code"], int), rec
    assert isinstance(a["duration_ms"], (int, float)) and a["duration_ms"] >= 0, rec
    assert a["action"] in LEVEL_FOR_ACTION, rec
    assert rec["level"] == LEVEL_FOR_ACTION[a["action"]], f"level does not match action: {rec}"
    for key in ("request_transforms", "response_transforms"):
        if key in rec:
            assert isinstance(rec[key], list) and rec[key], rec
            for tr in rec[key]:
                assert isinstance(tr.get("name"), str) and tr.get("action") in (
                    "allow", "reject", "stub", "error"), rec
                assert isinstance(tr.get("duration_ms"), (int, float)), rec
    if "tunnel" in rec:
        assert isinstance(rec["tunnel"].get("target"), str), rec
    return a


def connect_records(recs):
    return [r for r in recs if r["audit"]["method"] == "CONNECT"]


def inner_records(recs):
    return [r for r in recs if r["audit"]["method"] != "CONNECT"]


def first_transform(rec):
    trs = rec.get("request_transforms") or []
    assert trs, f"no request_transforms in {rec}"
    return trs[0]
