//! Hostile HTTP/1.1 clients against `gatekit serve --http ... echo`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::running::{
    Running, count, find, read_to_close, read_until, reset, send_and_read_to_close,
};

fn post(body: &[u8], close: bool) -> Vec<u8> {
    let mut out = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn status(bytes: &[u8]) -> Option<u16> {
    let line = bytes.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()
}

fn body(bytes: &[u8]) -> &[u8] {
    find(bytes, b"\r\n\r\n").map_or(&[], |i| &bytes[i + 4..])
}

fn assert_echo(bytes: &[u8], want: &[u8], what: &str) {
    let head = String::from_utf8_lossy(&bytes[..find(bytes, b"\r\n\r\n").unwrap_or(bytes.len())]);
    assert_eq!(status(bytes), Some(200), "{what}: {head}");
    assert!(
        body(bytes) == want,
        "{what}: body of {} bytes",
        body(bytes).len()
    );
}

/// One of the `allowed` error statuses and then the close, or just the close.
fn assert_refused(bytes: &[u8], allowed: &[u16], what: &str) {
    if bytes.is_empty() {
        return;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let code = status(bytes);
    assert!(
        code.is_some_and(|c| allowed.contains(&c)),
        "{what}: expected one of {allowed:?} or a close, got: {head}"
    );
    assert_eq!(
        count(bytes, b"HTTP/1.1 "),
        1,
        "{what}: more than one response: {head}"
    );
}

fn assert_serves(server: &Running, what: &str) {
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &post(b"ping", true), false);
    assert_echo(
        &reply.bytes,
        b"ping",
        &format!("normal request after {what}"),
    );
}

#[test]
fn truncated_heads_at_every_offset_then_close() {
    let mut server = Running::start("http", &["echo"]);
    let whole = b"POST /echo?q=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\r\nContent-Length: 5\r\n\r\nhello";
    let chunked = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\n";
    for req in [&whole[..], &chunked[..]] {
        for cut in 0..req.len() {
            let mut s = server.connect();
            let reply = send_and_read_to_close(&mut s, &req[..cut], true);
            // A request cut short is never run: nothing, or 400 (or 408).
            assert_refused(&reply.bytes, &[400, 408], &format!("cut at {cut}"));
        }
        for cut in (0..req.len()).step_by(7) {
            let mut s = server.connect();
            s.write_all(&req[..cut]).unwrap();
            reset(s);
        }
    }
    assert_serves(&server, "truncated heads");
    server.assert_healthy("truncated heads");
}

#[test]
fn content_length_and_transfer_encoding_smuggling() {
    let mut server = Running::start("http", &["--max-body", "100000", "echo"]);
    let h = "POST /echo HTTP/1.1\r\nHost: localhost\r\n";
    let cases: &[(&str, &[u16])] = &[
        (
            "Content-Length: 99999999999999999999999\r\n\r\nhello",
            &[400, 413],
        ),
        ("Content-Length: 2147483647\r\n\r\nhello", &[413]),
        (
            "Content-Length: 18446744073709551616\r\n\r\nhello",
            &[400, 413],
        ),
        ("Content-Length: -1\r\n\r\nhello", &[400]),
        ("Content-Length: +5\r\n\r\nhello", &[400]),
        ("Content-Length: 0x5\r\n\r\nhello", &[400]),
        (
            "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            &[400],
        ),
        ("Content-Length: 5, 6\r\n\r\nhello!", &[400]),
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            &[400],
        ),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            &[400],
        ),
        ("Transfer-Encoding: gzip\r\n\r\nhello", &[400, 501]),
        ("Transfer-Encoding: chunked, gzip\r\n\r\nhello", &[400, 501]),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            &[400, 501],
        ),
        ("Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", &[400, 501]),
        ("Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", &[400]),
        ("Content-Length : 5\r\n\r\nhello", &[400]),
        ("X: a\r\n folded: b\r\n\r\n", &[400]),
        (
            "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n",
            &[400, 413],
        ),
        ("Transfer-Encoding: chunked\r\n\r\n-1\r\n", &[400]),
        (
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            &[400],
        ),
        ("Transfer-Encoding: chunked\r\n\r\n186A1\r\n", &[413]),
    ];
    for (rest, allowed) in cases {
        // Each is followed by a request that would be answered if the
        // server read the framing the other way (the smuggling attempt).
        let mut msg = format!("{h}{rest}").into_bytes();
        msg.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &msg, true);
        assert_refused(&reply.bytes, allowed, &format!("{rest:?}"));
    }
    // Transfer-Encoding on HTTP/1.0: refused.
    let msg = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, msg, true);
    assert_refused(&reply.bytes, &[400], "Transfer-Encoding on HTTP/1.0");
    // Lengths at the boundaries, in Content-Length and as chunk sizes.
    for len in [0usize, 127, 128, 65_535] {
        let data: Vec<u8> = (0..len).map(|i| (i % 249) as u8).collect();
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &post(&data, true), false);
        assert_echo(&reply.bytes, &data, &format!("Content-Length {len}"));
        let mut msg = format!(
            "POST /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{len:x}\r\n"
        )
        .into_bytes();
        msg.extend_from_slice(&data);
        msg.extend_from_slice(if len == 0 { b"\r\n" } else { b"\r\n0\r\n\r\n" });
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &msg, false);
        assert_echo(&reply.bytes, &data, &format!("chunk of {len}"));
    }
    assert_serves(&server, "smuggling attempts");
    server.assert_healthy("smuggling attempts");
}

#[test]
fn oversized_heads_and_bodies() {
    let mut server = Running::start("http", &["--max-body", "100000", "echo"]);
    let big = "b".repeat(70_000);
    let many: String = (0..10_000)
        .flat_map(|i| ["X-", &i.to_string(), ": v\r\n"].map(str::to_owned))
        .collect();
    let cases: Vec<(String, &[u16])> = vec![
        (
            format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {big}\r\n\r\n"),
            &[431],
        ),
        (format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n"), &[431]),
        (
            format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "u".repeat(10_000)),
            &[414, 431],
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n", "\0"),
            &[400],
        ),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n".to_owned(), &[505, 400]),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_owned(),
            &[400],
        ),
        ("GET / HTTP/1.1\r\n\r\n".to_owned(), &[400]),
        ("\r\n\r\n\r\n".to_owned(), &[400]),
        ("GET\r\n\r\n".to_owned(), &[400]),
        (
            format!("GET / HTTP/1.1\r\nHost: h\r\n{}\r\n", "X:".repeat(40_000)),
            &[400, 431],
        ),
    ];
    for (msg, allowed) in &cases {
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, msg.as_bytes(), true);
        assert_refused(&reply.bytes, allowed, &msg[..msg.len().min(40)]);
    }
    // A body over --max-body: 413, declared or chunked.
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &post(&vec![b'z'; 150_000], false), true);
    assert_refused(&reply.bytes, &[413], "a body over --max-body");
    let mut msg = b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        msg.extend_from_slice(b"1000\r\n");
        msg.extend(std::iter::repeat_n(b'c', 0x1000));
        msg.extend_from_slice(b"\r\n");
    }
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &msg, true);
    assert_refused(&reply.bytes, &[413], "a chunked body over --max-body");
    assert_serves(&server, "oversized heads and bodies");
    server.assert_healthy("oversized heads and bodies");
}

#[test]
fn half_closed_reset_slow_and_flooded_connections() {
    let mut server = Running::start("http", &["--timeout", "2", "echo"]);
    // Half-closed after a whole request: the response still comes.
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &post(b"half", false), true);
    assert_echo(&reply.bytes, b"half", "half-closed");
    // Reset before, during and after the response.
    let big = vec![b'r'; 3_000_000];
    for stage in 0..3 {
        let mut s = server.connect();
        match stage {
            0 => s.write_all(&post(b"x", false)[..10]).unwrap(),
            1 => s.write_all(&post(&big, false)).unwrap(),
            _ => {
                s.write_all(&post(&big, false)).unwrap();
                let _ = read_until(&mut s, |b| b.len() > 100_000);
            }
        }
        reset(s);
    }
    // Slowloris: 50 clients drip a head; each is answered 408 (or closed)
    // once the 2 s request timeout passes, and others are served meanwhile.
    let whole = post(b"slow", true);
    let mut slow: Vec<_> = (0..50).map(|_| server.connect()).collect();
    let started = Instant::now();
    for byte in 0..whole.len().min(50) {
        for s in &mut slow {
            let _ = s.write_all(&whole[byte..=byte]);
        }
        std::thread::sleep(Duration::from_millis(80));
        if byte == 5 {
            assert_serves(&server, "slowloris in progress");
        }
    }
    for mut s in slow {
        let reply = read_to_close(&mut s);
        assert_refused(&reply.bytes, &[408, 400], "slowloris");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    // A slow reader of a big response.
    let big = vec![b'R'; 8_000_000];
    let mut s = server.connect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let msg = post(&big, true);
        std::thread::spawn(move || w.write_all(&msg))
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_serves(&server, "slow reader");
    server.assert_healthy("slow reader waiting");
    let reply = read_to_close(&mut s);
    writer.join().unwrap().unwrap();
    assert_echo(&reply.bytes, &big, "slow reader");
    // 2,000 pipelined requests in one write: 2,000 responses, in order.
    let mut msg = Vec::new();
    for i in 0..2_000 {
        msg.extend(post(format!("{i:04}").as_bytes(), i == 1_999));
    }
    let mut s = server.connect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&msg))
    };
    let reply = read_to_close(&mut s);
    writer.join().unwrap().unwrap();
    assert_eq!(count(&reply.bytes, b"HTTP/1.1 200 OK\r\n"), 2_000);
    assert!(reply.bytes.ends_with(b"1999"));
    assert_serves(&server, "a pipelined flood");
    server.assert_healthy("half-closed, reset, slow and flooded connections");
}
