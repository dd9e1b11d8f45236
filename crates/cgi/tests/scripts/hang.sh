#!/bin/sh
# Starts a grandchild, notes its pid in $PID_DIR, then never answers.
sleep 300 &
echo $! > "$PID_DIR/grandchild.pid"
echo $$ > "$PID_DIR/script.pid"
sleep 300
