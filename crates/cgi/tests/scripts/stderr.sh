#!/bin/sh
# Writes lines to stderr, which reach the web server's error log.
echo "gatekit-stderr-marker one" >&2
echo "gatekit-stderr-marker two" >&2
printf 'Content-Type: text/plain\n\nlogged\n'
