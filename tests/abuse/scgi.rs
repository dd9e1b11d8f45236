//! Hostile SCGI peers against `gatekit serve --scgi ... echo`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::running::{Running, read_to_close, reset, send_and_read_to_close};

/// The netstring head `LEN:HEADERS,` for `headers` (name, value pairs).
fn head(headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut block = Vec::new();
    for (n, v) in headers {
        block.extend_from_slice(n);
        block.push(0);
        block.extend_from_slice(v);
        block.push(0);
    }
    let mut out = format!("{}:", block.len()).into_bytes();
    out.extend(block);
    out.push(b',');
    out
}

/// A whole POST of `body`.
fn request(body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let mut out = head(&[
        (b"CONTENT_LENGTH", len.as_bytes()),
        (b"SCGI", b"1"),
        (b"REQUEST_METHOD", b"POST"),
        (b"REQUEST_URI", b"/"),
        (b"SERVER_NAME", b"localhost"),
        (b"SERVER_PORT", b"80"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    ]);
    out.extend_from_slice(body);
    out
}

fn split(bytes: &[u8]) -> (String, &[u8]) {
    match crate::running::find(bytes, b"\r\n\r\n") {
        Some(i) => (
            String::from_utf8_lossy(&bytes[..i]).into_owned(),
            &bytes[i + 4..],
        ),
        None => (String::from_utf8_lossy(bytes).into_owned(), &[]),
    }
}

fn assert_echo(bytes: &[u8], body: &[u8], what: &str) {
    let (head, got) = split(bytes);
    assert!(
        crate::running::cgi_status(bytes) == Some(200),
        "{what}: {head}"
    );
    assert!(
        got == body,
        "{what}: body of {} bytes, not {}",
        got.len(),
        body.len()
    );
}

/// An error status or nothing (a close): never a 200.
fn assert_refused(bytes: &[u8], allowed: &[u16], what: &str) {
    if bytes.is_empty() {
        return;
    }
    let (head, _) = split(bytes);
    let ok = allowed
        .iter()
        .any(|&code| code != 200 && head.starts_with(&format!("Status: {code} ")));
    assert!(
        ok,
        "{what}: expected one of {allowed:?} or a close, got: {head}"
    );
}

fn assert_serves(server: &Running, what: &str) {
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &request(b"ping"), false);
    assert_echo(
        &reply.bytes,
        b"ping",
        &format!("normal request after {what}"),
    );
}

#[test]
fn truncated_heads_at_every_offset_then_close() {
    let mut server = Running::start("scgi", &["echo"]);
    let whole = request(b"hello");
    for cut in 0..whole.len() {
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &whole[..cut], true);
        assert_refused(&reply.bytes, &[400], &format!("cut at {cut}"));
    }
    for cut in (0..whole.len()).step_by(5) {
        let mut s = server.connect();
        s.write_all(&whole[..cut]).unwrap();
        reset(s);
    }
    assert_serves(&server, "truncated heads");
    server.assert_healthy("truncated heads");
}

#[test]
fn netstring_and_content_lengths_at_the_boundaries() {
    let mut server = Running::start("scgi", &["--max-body", "100000", "echo"]);
    let good = request(b"hi");
    let colon = good.iter().position(|&b| b == b':').unwrap();
    let block = &good[colon + 1..good.len() - 3];
    // The declared head length: 0, one off either way, leading zeros, 10
    // and 11 digits, 2^31-1, signs and spaces. None may be answered 200.
    let mut cases: Vec<Vec<u8>> = vec![
        b"0:,".to_vec(),
        format!("{}:", block.len() - 1).into_bytes(),
        format!("{}:", block.len() + 1).into_bytes(),
        format!("0{}:", block.len()).into_bytes(),
        format!("00000{}:", block.len()).into_bytes(),
        b"2147483647:".to_vec(),
        b"9999999999:".to_vec(),
        b"99999999999:".to_vec(),
        b"00000000000000000000000000000001:".to_vec(),
        format!("+{}:", block.len()).into_bytes(),
        format!("-{}:", block.len()).into_bytes(),
        format!(" {}:", block.len()).into_bytes(),
        b":".to_vec(),
        b"abc:".to_vec(),
    ];
    for c in &mut cases {
        if c.len() > 3 {
            c.extend_from_slice(block);
            c.extend_from_slice(b",hi");
        }
    }
    for c in &cases {
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, c, true);
        let what = format!("head {:?}", String::from_utf8_lossy(&c[..c.len().min(16)]));
        assert_refused(&reply.bytes, &[400, 413, 431], &what);
    }
    // CONTENT_LENGTH at the boundaries: 0, 127, 128, 65,535 served whole.
    for len in [0usize, 127, 128, 65_535] {
        let body: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &request(&body), false);
        assert_echo(&reply.bytes, &body, &format!("CONTENT_LENGTH {len}"));
    }
    // ... and values that no body can match: refused, never run.
    for bad in [
        "2147483647",
        "99999999999999999999999",
        "-1",
        "1e3",
        "+5",
        " 5",
        "",
    ] {
        let mut msg = head(&[
            (b"CONTENT_LENGTH", bad.as_bytes()),
            (b"SCGI", b"1"),
            (b"REQUEST_METHOD", b"POST"),
        ]);
        msg.extend_from_slice(b"hello");
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &msg, true);
        assert_refused(
            &reply.bytes,
            &[400, 413],
            &format!("CONTENT_LENGTH {bad:?}"),
        );
    }
    // No CONTENT_LENGTH, or not first, or no SCGI header: refused.
    for headers in [
        vec![(&b"SCGI"[..], &b"1"[..])],
        vec![
            (&b"SCGI"[..], &b"1"[..]),
            (&b"CONTENT_LENGTH"[..], &b"0"[..]),
        ],
        vec![(&b"CONTENT_LENGTH"[..], &b"0"[..])],
        vec![
            (&b"CONTENT_LENGTH"[..], &b"0"[..]),
            (&b"SCGI"[..], &b"2"[..]),
        ],
    ] {
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &head(&headers), true);
        assert_refused(&reply.bytes, &[400], "missing or misplaced headers");
    }
    assert_serves(&server, "boundary lengths");
    server.assert_healthy("boundary lengths");
}

#[test]
fn oversized_heads_and_bodies() {
    let mut server = Running::start("scgi", &["--max-body", "100000", "echo"]);
    // A head past 64 KiB: 431 (or a close).
    let big = vec![b'h'; 70_000];
    let msg = head(&[
        (b"CONTENT_LENGTH", b"0"),
        (b"SCGI", b"1"),
        (b"HTTP_X_BIG", &big),
    ]);
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &msg, true);
    assert_refused(&reply.bytes, &[431], "a 70 KB head");
    // 10,000 headers (past the 1,024 limit): 431.
    let names: Vec<Vec<u8>> = (0..10_000).map(|i| format!("H{i}").into_bytes()).collect();
    let mut headers: Vec<(&[u8], &[u8])> = vec![(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1")];
    headers.extend(names.iter().map(|n| (n.as_slice(), &b"v"[..])));
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &head(&headers), true);
    assert_refused(&reply.bytes, &[431], "10,000 headers");
    // A body over --max-body: 413 before it is read.
    let body = vec![b'b'; 150_000];
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &request(&body), true);
    assert_refused(&reply.bytes, &[413], "a body over --max-body");
    // A body longer than CONTENT_LENGTH: the extra is not a second request.
    let mut msg = request(b"12345");
    msg.extend_from_slice(&request(b"smuggled"));
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &msg, true);
    assert_echo(&reply.bytes, b"12345", "bytes after the body");
    assert_serves(&server, "oversized heads and bodies");
    server.assert_healthy("oversized heads and bodies");
}

#[test]
fn half_closed_reset_slow_and_flooded_connections() {
    let mut server = Running::start("scgi", &["--timeout", "2", "echo"]);
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &request(b"half"), true);
    assert_echo(&reply.bytes, b"half", "half-closed");
    let big = vec![b'r'; 3_000_000];
    for stage in 0..3 {
        let mut s = server.connect();
        match stage {
            0 => s.write_all(&request(b"x")[..10]).unwrap(),
            1 => s.write_all(&request(&big)).unwrap(),
            _ => {
                s.write_all(&request(&big)).unwrap();
                let _ = crate::running::read_until(&mut s, |b| b.len() > 100_000);
            }
        }
        reset(s);
    }
    // Slowloris: cut off after the 2 s request timeout, and a normal request
    // is served meanwhile.
    let whole = request(b"slow");
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
        assert_refused(&reply.bytes, &[400, 408], "slowloris");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    // A slow reader of a big response.
    let big = vec![b'R'; 8_000_000];
    let mut s = server.connect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let msg = request(&big);
        std::thread::spawn(move || w.write_all(&msg))
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_serves(&server, "slow reader");
    server.assert_healthy("slow reader waiting");
    let reply = read_to_close(&mut s);
    writer.join().unwrap().unwrap();
    assert_echo(&reply.bytes, &big, "slow reader");
    // A flood: 500 connections at once (SCGI is one request per connection).
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let port = server.port;
            std::thread::spawn(move || {
                let mut streams = Vec::new();
                for _ in 0..125 {
                    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(crate::running::REPLY_TIMEOUT))
                        .unwrap();
                    s.write_all(&request(b"flood")).unwrap();
                    streams.push(s);
                }
                streams
                    .into_iter()
                    .filter(|s| {
                        let mut s = s.try_clone().unwrap();
                        read_to_close(&mut s).bytes.ends_with(b"\r\n\r\nflood")
                    })
                    .count()
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(answered, 500);
    assert_serves(&server, "a flood");
    server.assert_healthy("half-closed, reset, slow and flooded connections");
}
