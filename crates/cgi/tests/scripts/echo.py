#!/usr/bin/env python3
"""Echoes the request body back (CONTENT_LENGTH bytes), after a header
naming the request; logs one line to stderr."""
import os
import sys

length = int(os.environ.get("CONTENT_LENGTH") or 0)
body = sys.stdin.buffer.read(length)
sys.stderr.write("gatekit-python-marker %s\n" % os.environ.get("REQUEST_METHOD"))
sys.stderr.flush()
out = sys.stdout.buffer
out.write(b"Status: 200 OK\r\n")
out.write(b"Content-Type: application/octet-stream\r\n")
out.write(b"X-Path-Info: " + os.environ.get("PATH_INFO", "").encode() + b"\r\n")
out.write(b"X-Query: " + os.environ.get("QUERY_STRING", "").encode() + b"\r\n\r\n")
out.write(body)
