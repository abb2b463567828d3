"""Test harness for the iron-proxy end-to-end suite.

Everything here talks to loopback addresses only (127.0.0.0/8). Every wait is bounded, and every
process or thread it starts is stopped by the fixture that started it (see conftest.py).
"""
