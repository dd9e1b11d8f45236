<?php
// php-fpm's hello for bench/run: "Hello, world!\n" as text/plain.
header('Content-Type: text/plain');
echo "Hello, world!\n";
