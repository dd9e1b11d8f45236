#!/bin/sh
# A script's own 404, passed through.
printf 'Status: 404 Not Here\nContent-Type: text/plain\n\nno such thing\n'
