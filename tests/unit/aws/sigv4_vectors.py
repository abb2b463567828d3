#!/usr/bin/env python3
"""Prints the expected SigV4 Authorization headers for the cases in sigv4_test.cpp, computed by
botocore (Debian's python3-botocore), an implementation independent of ours. The cases follow
AWS's aws-sig-v4-test-suite (get-vanilla, get-vanilla-query-order-key-case, get-header-value-trim,
get-slashes, get-space, get-relative-relative, post-x-www-form-urlencoded, post-sts-token, …)
with its example credentials and date. Run it to regenerate the expectations:
    /usr/bin/python3 tests/unit/aws/sigv4_vectors.py"""
import datetime
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime.datetime(2015, 8, 30, 12, 36, 0)

CASES = [
    # name, method, path+query, headers (besides Host/X-Amz-Date), body, token
    ("get-vanilla", "GET", "/", [], b"", None),
    ("get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", [], b"", None),
    ("get-vanilla-query-unreserved", "GET",
     "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     [], b"", None),
    ("get-header-value-trim", "GET", "/", [("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')], b"", None),
    ("get-header-key-duplicate", "GET", "/", [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")], b"", None),
    ("get-slashes", "GET", "//example//", [], b"", None),
    ("get-space", "GET", "/example space/", [], b"", None),
    ("get-relative-relative", "GET", "/example1/example2/../..", [], b"", None),
    ("post-x-www-form-urlencoded", "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")], b"Param1=value1", None),
    ("post-sts-token", "POST", "/", [], b"", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
    ("secretsmanager-get-secret-value", "POST", "/",
     [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "secretsmanager.GetSecretValue")],
     b'{"SecretId":"prod/api-key"}', None),
]


def authorization(method, target, headers, body, token, region="us-east-1", service="service"):
    req = AWSRequest(method=method, url="https://example.amazonaws.com" + target, data=body)
    for k, v in headers:
        req.headers.add_header(k, v) if hasattr(req.headers, "add_header") else req.headers.__setitem__(k, v)
    creds = Credentials(AK, SK, token)
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = NOW
        dt.timezone = datetime.timezone
        SigV4Auth(creds, service, region).add_auth(req)
    return req.headers["Authorization"]


if __name__ == "__main__":
    for name, method, target, headers, body, token in CASES:
        print(f'{{"{name}", "{authorization(method, target, headers, body, token)}"}},')
