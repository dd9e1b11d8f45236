//! Hostile FastCGI peers against `gatekit serve --fastcgi ... echo`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::running::{
    Running, cgi_status, count, read_to_close, read_until, reset, send_and_read_to_close,
};

const BEGIN_REQUEST: u8 = 1;
const ABORT_REQUEST: u8 = 2;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const GET_VALUES: u8 = 9;
const UNKNOWN_TYPE: u8 = 11;
const RESPONDER: u16 = 1;
const KEEP_CONN: u8 = 1;
/// `FCGI_CANT_MPX_CONN` and `FCGI_UNKNOWN_ROLE` (§5.5).
const CANT_MPX_CONN: u8 = 1;
const UNKNOWN_ROLE: u8 = 3;

/// One record with `content` (at most 65,535 bytes) and `padding` zero bytes.
fn record_padded(ty: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    let len = u16::try_from(content.len()).expect("content fits a record");
    let mut out = vec![1, ty];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[padding, 0]);
    out.extend_from_slice(content);
    out.resize(out.len() + usize::from(padding), 0);
    out
}

fn record(ty: u8, id: u16, content: &[u8]) -> Vec<u8> {
    record_padded(ty, id, content, 0)
}

/// A stream (PARAMS, STDIN) as records of at most 65,535 bytes, then its end.
fn stream(ty: u8, id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(0xffff) {
        out.extend(record(ty, id, chunk));
    }
    out.extend(record(ty, id, b""));
    out
}

fn begin(id: u16, role: u16, flags: u8) -> Vec<u8> {
    let mut body = role.to_be_bytes().to_vec();
    body.extend_from_slice(&[flags, 0, 0, 0, 0, 0]);
    record(BEGIN_REQUEST, id, &body)
}

/// A name-value length (§3.4): one byte below 128, else four with the top bit set.
fn nv_len(len: u32) -> Vec<u8> {
    if len < 128 {
        vec![len as u8]
    } else {
        (len | 0x8000_0000).to_be_bytes().to_vec()
    }
}

fn pair(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = nv_len(u32::try_from(name.len()).unwrap());
    out.extend(nv_len(u32::try_from(value.len()).unwrap()));
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out
}

/// The PARAMS of a POST of `body_len` bytes to `/`.
fn params(body_len: usize) -> Vec<u8> {
    let len = body_len.to_string();
    let vars: [(&str, &str); 9] = [
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_LENGTH", &len),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/"),
        ("REQUEST_URI", "/"),
        ("QUERY_STRING", ""),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ];
    vars.iter()
        .flat_map(|(n, v)| pair(n.as_bytes(), v.as_bytes()))
        .collect()
}

/// A whole Responder request for id `id` posting `body`.
fn request(id: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = begin(id, RESPONDER, flags);
    out.extend(stream(PARAMS, id, &params(body.len())));
    out.extend(stream(STDIN, id, body));
    out
}

/// A record read back: type, id, content.
struct Rec {
    ty: u8,
    id: u16,
    content: Vec<u8>,
}

/// The complete records in `bytes` (a partial one at the end is left out).
fn records(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 8 {
        let h = &bytes[at..at + 8];
        assert_eq!(h[0], 1, "a record of version {} from the server", h[0]);
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let end = at + 8 + len + usize::from(h[6]);
        if bytes.len() < end {
            break;
        }
        out.push(Rec {
            ty: h[1],
            id: u16::from_be_bytes([h[2], h[3]]),
            content: bytes[at + 8..at + 8 + len].to_vec(),
        });
        at = end;
    }
    out
}

/// The END_REQUEST protocol status for `id`, if one came.
fn end_status(bytes: &[u8], id: u16) -> Option<u8> {
    records(bytes)
        .iter()
        .find(|r| r.ty == END_REQUEST && r.id == id)
        .map(|r| r.content[4])
}

/// How many END_REQUEST records came for `id`.
fn ends(bytes: &[u8], id: u16) -> usize {
    records(bytes)
        .iter()
        .filter(|r| r.ty == END_REQUEST && r.id == id)
        .count()
}

fn stdout(bytes: &[u8], id: u16) -> Vec<u8> {
    records(bytes)
        .iter()
        .filter(|r| r.ty == STDOUT && r.id == id)
        .flat_map(|r| r.content.clone())
        .collect()
}

fn ended(id: u16) -> impl FnMut(&[u8]) -> bool {
    move |b| end_status(b, id).is_some()
}

/// Asserts a complete `200` echo of `body` for `id` in `bytes`.
fn assert_echo(bytes: &[u8], id: u16, body: &[u8], what: &str) {
    let out = stdout(bytes, id);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(cgi_status(&out), Some(200), "{what}: {text}");
    assert!(out.ends_with(body), "{what}: body not echoed: {text}");
    assert_eq!(end_status(bytes, id), Some(0), "{what}: END_REQUEST");
}

/// A normal request on a new connection must still be served.
fn assert_serves(server: &Running, what: &str) {
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &request(1, 0, b"ping"), false);
    assert_echo(
        &reply.bytes,
        1,
        b"ping",
        &format!("normal request after {what}"),
    );
}

/// What the server may answer to a broken request: nothing, or a response
/// (a complete head in STDOUT and one END_REQUEST), then the close.
fn assert_answer_or_close(bytes: &[u8], id: u16, what: &str) {
    let out = stdout(bytes, id);
    if !out.is_empty() {
        assert!(
            cgi_status(&out).is_some(),
            "{what}: {}",
            String::from_utf8_lossy(&out)
        );
    }
    assert!(ends(bytes, id) <= 1, "{what}: more than one END_REQUEST");
}

#[test]
fn truncated_requests_at_every_offset_then_close() {
    let mut server = Running::start("fastcgi", &["echo"]);
    let whole = request(1, 0, b"hello");
    for cut in 0..whole.len() {
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &whole[..cut], true);
        assert_answer_or_close(&reply.bytes, 1, &format!("cut at {cut}"));
        // A request cut short is never run as if it were whole.
        assert!(
            cgi_status(&stdout(&reply.bytes, 1)) != Some(200),
            "cut at {cut}: a truncated request was answered 200"
        );
    }
    // The same cuts, with a reset instead of a close.
    for cut in (0..whole.len()).step_by(7) {
        let mut s = server.connect();
        s.write_all(&whole[..cut]).unwrap();
        reset(s);
    }
    assert_serves(&server, "truncated requests");
    server.assert_healthy("truncated requests");
}

#[test]
fn lengths_at_the_boundaries() {
    let mut server = Running::start("fastcgi", &["echo"]);
    // Name and value lengths of a pair at the boundaries of the one- and
    // four-byte forms, and the largest (2^31-1), each declared in full but
    // sent only when small enough to be sensible.
    for len in [0u32, 1, 127, 128, 65_535, 0x7fff_ffff] {
        for as_value in [false, true] {
            let mut p = params(0);
            let (name_len, value_len) = if as_value { (4, len) } else { (len, 1) };
            p.extend(nv_len(name_len));
            p.extend(nv_len(value_len));
            let sent = if len <= 65_535 { len as usize } else { 16 };
            p.extend(std::iter::repeat_n(b'A', if as_value { 4 } else { sent }));
            p.extend(std::iter::repeat_n(b'v', if as_value { sent } else { 1 }));
            let mut msg = begin(1, RESPONDER, 0);
            msg.extend(stream(PARAMS, 1, &p));
            msg.extend(stream(STDIN, 1, b""));
            let mut s = server.connect();
            let reply = send_and_read_to_close(&mut s, &msg, true);
            let what = format!("pair length {len} (value: {as_value})");
            assert_answer_or_close(&reply.bytes, 1, &what);
            if len > 65_535 {
                assert!(
                    cgi_status(&stdout(&reply.bytes, 1)) != Some(200),
                    "{what}: answered 200"
                );
            }
            assert_serves(&server, &what);
        }
    }
    // Record content lengths 0, 127, 128, 65,535 for STDIN, with the largest
    // padding (255); the body is echoed whole.
    let mut body = Vec::new();
    let mut stdin = Vec::new();
    for len in [0usize, 127, 128, 65_535] {
        let chunk: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        if len > 0 {
            stdin.extend(record_padded(STDIN, 1, &chunk, 255));
        }
        body.extend(chunk);
    }
    let mut msg = begin(1, RESPONDER, 0);
    msg.extend(stream(PARAMS, 1, &params(body.len())));
    msg.extend(stdin);
    msg.extend(record_padded(STDIN, 1, b"", 255));
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &msg, false);
    assert_echo(
        &reply.bytes,
        1,
        &body,
        "STDIN records at the length boundaries",
    );
    // A body longer or shorter than CONTENT_LENGTH: refused, not run.
    for (declared, sent) in [(5usize, 6usize), (6, 5), (0, 1)] {
        let mut msg = begin(1, RESPONDER, 0);
        msg.extend(stream(PARAMS, 1, &params(declared)));
        msg.extend(stream(STDIN, 1, &vec![b'x'; sent]));
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &msg, true);
        let what = format!("CONTENT_LENGTH {declared} with {sent} bytes");
        assert_answer_or_close(&reply.bytes, 1, &what);
        assert!(
            cgi_status(&stdout(&reply.bytes, 1)) != Some(200),
            "{what}: answered 200"
        );
    }
    // CONTENT_LENGTH values no body can match.
    for bad in ["-1", "2147483647", "99999999999999999999999", "1e3", " 5"] {
        let mut p = pair(b"REQUEST_METHOD", b"POST");
        p.extend(pair(b"CONTENT_LENGTH", bad.as_bytes()));
        let mut msg = begin(1, RESPONDER, 0);
        msg.extend(stream(PARAMS, 1, &p));
        msg.extend(stream(STDIN, 1, b"hello"));
        let mut s = server.connect();
        let reply = send_and_read_to_close(&mut s, &msg, true);
        let what = format!("CONTENT_LENGTH {bad:?}");
        assert_answer_or_close(&reply.bytes, 1, &what);
        assert!(
            cgi_status(&stdout(&reply.bytes, 1)) != Some(200),
            "{what}: answered 200"
        );
    }
    assert_serves(&server, "boundary lengths");
    server.assert_healthy("boundary lengths");
}

#[test]
fn oversized_params_and_bodies() {
    let mut server = Running::start("fastcgi", &["--max-body", "100000", "echo"]);
    // PARAMS past the 128 KiB limit: 431.
    let mut p = params(0);
    p.extend(pair(b"HTTP_X_BIG", &vec![b'b'; 200_000]));
    let mut msg = begin(1, RESPONDER, 0);
    msg.extend(stream(PARAMS, 1, &p));
    msg.extend(stream(STDIN, 1, b""));
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &msg, true);
    let out = stdout(&reply.bytes, 1);
    assert!(
        out.is_empty() || out.starts_with(b"Status: 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A body over --max-body: 413.
    let body = vec![b'z'; 150_000];
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &request(1, 0, &body), true);
    let out = stdout(&reply.bytes, 1);
    assert!(
        out.is_empty() || out.starts_with(b"Status: 413"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // 10,000 short params (about 80 KB, under the limit): served.
    let mut p = params(0);
    for i in 0..10_000 {
        p.extend(pair(format!("P{i}").as_bytes(), b"v"));
    }
    let mut msg = begin(1, RESPONDER, 0);
    msg.extend(stream(PARAMS, 1, &p));
    msg.extend(stream(STDIN, 1, b""));
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &msg, false);
    let out = stdout(&reply.bytes, 1);
    assert!(
        matches!(cgi_status(&out), Some(200 | 431)),
        "10,000 params: {}",
        String::from_utf8_lossy(&out)
    );
    // 10,000 params of 20 bytes each (past the limit): 431 or closed.
    let mut p = params(0);
    for i in 0..10_000 {
        p.extend(pair(format!("HTTP_X_PARAM_{i:05}").as_bytes(), b"value"));
    }
    let mut msg = begin(1, RESPONDER, 0);
    msg.extend(stream(PARAMS, 1, &p));
    msg.extend(stream(STDIN, 1, b""));
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &msg, true);
    let out = stdout(&reply.bytes, 1);
    assert!(
        out.is_empty() || out.starts_with(b"Status: 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_serves(&server, "oversized params and bodies");
    server.assert_healthy("oversized params and bodies");
}

#[test]
fn unknown_types_roles_and_inactive_ids() {
    let mut server = Running::start("fastcgi", &["echo"]);
    let mut s = server.connect();
    // An unknown management record: UNKNOWN_TYPE naming it; the connection stays.
    s.write_all(&record(42, 0, b"whatever")).unwrap();
    let reply = read_until(&mut s, |b| records(b).iter().any(|r| r.ty == UNKNOWN_TYPE));
    let recs = records(&reply.bytes);
    let unknown = recs.iter().find(|r| r.ty == UNKNOWN_TYPE).unwrap();
    assert_eq!((unknown.id, unknown.content[0]), (0, 42));
    // GET_VALUES with junk in it: answered or ignored, never fatal.
    s.write_all(&record(
        GET_VALUES,
        0,
        &[0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ))
    .unwrap();
    // An unknown role: END_REQUEST with FCGI_UNKNOWN_ROLE, the connection kept.
    s.write_all(&begin(1, 99, KEEP_CONN)).unwrap();
    let reply = read_until(&mut s, ended(1));
    assert_eq!(end_status(&reply.bytes, 1), Some(UNKNOWN_ROLE));
    // Records for ids that were never begun, of every stream type and an
    // unknown one: ignored (§3.3).
    for ty in [PARAMS, STDIN, 8, ABORT_REQUEST, 77, STDOUT] {
        s.write_all(&record(ty, 7, b"\x01\x01ab")).unwrap();
        s.write_all(&record(ty, 0xffff, b"")).unwrap();
    }
    // ... and then a normal request on the same connection is served.
    s.write_all(&request(3, KEEP_CONN, b"same connection"))
        .unwrap();
    let reply = read_until(&mut s, ended(3));
    assert_echo(&reply.bytes, 3, b"same connection", "after unknown records");
    let recs = records(&reply.bytes);
    assert!(
        recs.iter().all(|r| r.id == 3 || r.id == 0),
        "an answer for an inactive id"
    );
    // A record of another version: the connection closes.
    let reply = send_and_read_to_close(&mut s, &[2, 1, 0, 1, 0, 0, 0, 0], false);
    assert!(reply.closed);
    assert_serves(&server, "unknown types and roles");
    server.assert_healthy("unknown types and roles");
}

#[test]
fn duplicated_and_interleaved_begin_requests() {
    let mut server = Running::start("fastcgi", &["echo"]);
    // A second BEGIN_REQUEST for another id while one is being received:
    // FCGI_CANT_MPX_CONN for it, and the first request goes on.
    let mut s = server.connect();
    let mut msg = begin(1, RESPONDER, KEEP_CONN);
    msg.extend(record(PARAMS, 1, &params(3)));
    msg.extend(begin(2, RESPONDER, KEEP_CONN));
    s.write_all(&msg).unwrap();
    let reply = read_until(&mut s, ended(2));
    assert_eq!(end_status(&reply.bytes, 2), Some(CANT_MPX_CONN));
    let mut rest = record(PARAMS, 1, b"");
    rest.extend(stream(STDIN, 1, b"one"));
    s.write_all(&rest).unwrap();
    let reply = read_until(&mut s, ended(1));
    assert_echo(&reply.bytes, 1, b"one", "first of interleaved requests");
    // The same id begun twice: answered or closed, at most one END_REQUEST.
    for stage in 0..3 {
        let mut s = server.connect();
        let mut msg = begin(1, RESPONDER, 0);
        if stage >= 1 {
            msg.extend(record(PARAMS, 1, &params(2)));
        }
        if stage >= 2 {
            msg.extend(record(PARAMS, 1, b""));
        }
        msg.extend(request(1, 0, b"hi"));
        let reply = send_and_read_to_close(&mut s, &msg, true);
        assert_answer_or_close(&reply.bytes, 1, &format!("BEGIN twice, stage {stage}"));
    }
    // Interleaved records of two ids, each record alone in a write.
    let mut s = server.connect();
    let a = request(1, 0, b"aaa");
    let b = request(2, 0, b"bbb");
    let mut msg = Vec::new();
    for (ra, rb) in records(&a).iter().zip(records(&b).iter()) {
        msg.extend(record(ra.ty, ra.id, &ra.content));
        msg.extend(record(rb.ty, rb.id, &rb.content));
    }
    let reply = send_and_read_to_close(&mut s, &msg, true);
    assert_answer_or_close(&reply.bytes, 1, "interleaved ids");
    assert!(ends(&reply.bytes, 2) <= 1);
    assert_serves(&server, "duplicated BEGIN_REQUEST");
    server.assert_healthy("duplicated BEGIN_REQUEST");
}

#[test]
fn abort_at_every_stage() {
    let mut server = Running::start("fastcgi", &["echo"]);
    let whole = request(1, KEEP_CONN, b"body!");
    let boundaries: Vec<usize> = {
        let mut at = 0;
        let mut out = vec![0];
        for r in records(&whole) {
            at += 8 + r.content.len();
            out.push(at);
        }
        out
    };
    for (i, &cut) in boundaries.iter().enumerate() {
        let mut s = server.connect();
        let mut msg = whole[..cut].to_vec();
        msg.extend(record(ABORT_REQUEST, 1, b""));
        s.write_all(&msg).unwrap();
        let what = format!("ABORT after record {i}");
        if cut == 0 {
            // Nothing begun: the abort is for an inactive id and ignored.
        } else {
            let reply = read_until(&mut s, ended(1));
            assert!(!reply.closed, "{what}: closed instead of END_REQUEST");
            assert_eq!(ends(&reply.bytes, 1), 1, "{what}");
        }
        // The connection (KEEP_CONN) still serves the next request.
        s.write_all(&request(2, KEEP_CONN, b"next")).unwrap();
        let reply = read_until(&mut s, ended(2));
        assert_echo(&reply.bytes, 2, b"next", &format!("{what}: next request"));
    }
    // ABORT then a close, and a close with no abort, at every record.
    for &cut in &boundaries {
        let mut s = server.connect();
        let mut msg = whole[..cut].to_vec();
        msg.extend(record(ABORT_REQUEST, 1, b""));
        let _ = send_and_read_to_close(&mut s, &msg, true);
    }
    assert_serves(&server, "aborts");
    server.assert_healthy("aborts");
}

#[test]
fn half_closed_reset_slow_and_flooded_connections() {
    let mut server = Running::start("fastcgi", &["--timeout", "2", "echo"]);
    // Half-closed after a whole request: the response still comes.
    let mut s = server.connect();
    let reply = send_and_read_to_close(&mut s, &request(1, 0, b"half"), true);
    assert_echo(&reply.bytes, 1, b"half", "half-closed");
    // Reset before, during and after the response.
    let big = vec![b'r'; 3_000_000];
    for stage in 0..3 {
        let mut s = server.connect();
        match stage {
            0 => s.write_all(&request(1, 0, b"x")[..20]).unwrap(),
            1 => s.write_all(&request(1, 0, &big)).unwrap(),
            _ => {
                s.write_all(&request(1, 0, &big)).unwrap();
                let _ = read_until(&mut s, |b| b.len() > 100_000);
            }
        }
        reset(s);
    }
    // Slowloris: 50 connections drip a request a byte at a time; a normal
    // request is served meanwhile, and they are cut off after the 2 s
    // request timeout.
    let whole = request(1, 0, b"slow");
    let mut slow: Vec<_> = (0..50).map(|_| server.connect()).collect();
    let started = Instant::now();
    let mut cut_off = 0;
    for byte in 0..whole.len().min(60) {
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
        assert!(reply.closed);
        assert_answer_or_close(&reply.bytes, 1, "slowloris");
        cut_off += 1;
    }
    assert_eq!(cut_off, 50);
    assert!(started.elapsed() < Duration::from_secs(20));
    // A slow reader of a big response holds bounded memory.
    let big = vec![b'R'; 8_000_000];
    let mut s = server.connect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let msg = request(1, 0, &big);
        std::thread::spawn(move || w.write_all(&msg))
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_serves(&server, "slow reader");
    server.assert_healthy("slow reader waiting");
    let reply = read_to_close(&mut s);
    writer.join().unwrap().unwrap();
    assert_echo(&reply.bytes, 1, &big, "slow reader");
    // A pipelined flood: 2,000 requests on one kept connection, in one write.
    let mut s = server.connect();
    let mut msg = Vec::new();
    for _ in 0..2_000 {
        msg.extend(request(1, KEEP_CONN, b"p"));
    }
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&msg))
    };
    let reply = read_until(&mut s, |b| count(b, &[1, END_REQUEST, 0, 1]) >= 2_000);
    writer.join().unwrap().unwrap();
    assert_eq!(ends(&reply.bytes, 1), 2_000);
    assert_serves(&server, "pipelined flood");
    server.assert_healthy("half-closed, reset, slow and flooded connections");
}
