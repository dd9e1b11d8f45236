#!/bin/sh
# Prints the CGI variables it was given, one NAME=value a line.
printf 'Content-Type: text/plain\r\n\r\n'
env | LC_ALL=C sort
printf 'cwd=%s\n' "$(pwd)"
