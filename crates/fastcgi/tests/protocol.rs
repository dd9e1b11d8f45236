//! The FastCGI server over real loopback sockets, driven by a raw client:
//! exact bytes, every role, keep-conn, management records, aborts, limits,
//! and the inputs that crash other Rust FastCGI libraries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Client, config, get, hello_works, request, start};
use gatekit_fastcgi::proto::{self, EndRequest, ProtocolStatus, RecordType, Role};

fn end(status: ProtocolStatus) -> EndRequest {
    EndRequest {
        app_status: 0,
        protocol_status: status,
    }
}

#[test]
fn hello_golden_bytes() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/hello"));
    let r = c.reply(1);
    // No `Status:` for 200 OK (`omit_status_200`, on by default here).
    let body = b"Content-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";
    let mut want = Vec::new();
    proto::encode_stream_data(RecordType::Stdout, 1, body, &mut want);
    proto::encode_stream_end(RecordType::Stdout, 1, &mut want);
    proto::encode_end_request(1, EndRequest::complete(0), &mut want);
    assert_eq!(r.raw, want, "{r:?}");
    // One STDOUT record, padded to 8 bytes: 8 + 64 + 2.
    assert_eq!(r.records[0], (RecordType::Stdout, 1, body.len()));
    assert!(c.closed(), "without KEEP_CONN the application closes");
}

#[test]
fn keep_conn_serves_many_requests_on_one_connection() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    for i in 1..=20u16 {
        c.send(&get(i, true, "/hello"));
        let r = c.reply(i);
        assert_eq!(r.end, Some(EndRequest::complete(0)));
        assert!(r.text().ends_with("Hello, world!\n"));
    }
    // Two requests written back to back are answered in order.
    let mut both = get(7, true, "/hello");
    both.extend(get(8, true, "/echo"));
    c.send(&both);
    assert_eq!(c.reply(7).end, Some(EndRequest::complete(0)));
    assert_eq!(c.reply(8).end, Some(EndRequest::complete(0)));
    // The web server closing an idle kept connection is a normal event.
    drop(c);
    hello_works(s.port());
}

#[test]
fn get_values_answers_from_the_configuration() {
    let mut cfg = config();
    cfg.engine.max_connections = 321;
    let s = start("127.0.0.1:0", cfg);
    let mut c = Client::connect(s.port());
    let mut q = Vec::new();
    proto::encode_get_values(
        &[
            proto::MAX_CONNS,
            proto::MAX_REQS,
            proto::MPXS_CONNS,
            b"FCGI_NOT_A_THING",
        ],
        &mut q,
    )
    .unwrap();
    c.send(&q);
    let (t, id, content) = c.record().unwrap();
    assert_eq!((t, id), (RecordType::GetValuesResult, 0));
    let mut want = Vec::new();
    for (n, v) in [
        (proto::MAX_CONNS, &b"321"[..]),
        (proto::MAX_REQS, b"321"),
        (proto::MPXS_CONNS, b"0"),
    ] {
        proto::encode_pair(n, v, &mut want).unwrap();
    }
    assert_eq!(content, want);
    // The connection goes on.
    c.send(&get(1, false, "/hello"));
    assert_eq!(c.reply(1).end, Some(EndRequest::complete(0)));
}

#[test]
fn unknown_management_type_gets_unknown_type() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    let mut wire = Vec::new();
    proto::encode_record(RecordType::Unknown(42), 0, b"whatever", &mut wire).unwrap();
    c.send(&wire);
    let (t, id, content) = c.record().unwrap();
    assert_eq!((t, id), (RecordType::UnknownType, 0));
    assert_eq!(content, [42, 0, 0, 0, 0, 0, 0, 0]);
    c.send(&get(1, false, "/hello"));
    assert_eq!(c.reply(1).end, Some(EndRequest::complete(0)));
}

#[test]
fn unknown_role_is_refused_and_the_connection_kept() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    let mut wire = Vec::new();
    proto::encode_begin_request(
        3,
        proto::BeginRequest {
            role: Role::Unknown(9),
            flags: proto::KEEP_CONN,
        },
        &mut wire,
    );
    c.send(&wire);
    let r = c.reply(3);
    assert_eq!(r.end, Some(end(ProtocolStatus::UnknownRole)));
    assert!(r.stdout.is_empty());
    c.send(&get(4, false, "/hello"));
    assert_eq!(c.reply(4).end, Some(EndRequest::complete(0)));
}

#[test]
fn second_request_on_a_connection_gets_cant_mpx_conn() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    let whole = get(1, true, "/hello");
    // BEGIN_REQUEST for id 1 and half its params, then a BEGIN for id 2.
    let mut wire = whole[..16].to_vec();
    proto::encode_begin_request(
        2,
        proto::BeginRequest {
            role: Role::Responder,
            flags: proto::KEEP_CONN,
        },
        &mut wire,
    );
    c.send(&wire);
    assert_eq!(c.reply(2).end, Some(end(ProtocolStatus::CantMpxConn)));
    // Id 2's records are ignored; id 1 completes.
    let mut more = Vec::new();
    proto::encode_stream_end(RecordType::Params, 2, &mut more);
    more.extend_from_slice(&whole[16..]);
    c.send(&more);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert!(r.text().ends_with("Hello, world!\n"));
}

#[test]
fn records_for_inactive_ids_are_ignored() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    let mut wire = Vec::new();
    proto::encode_stream_data(RecordType::Params, 9, b"\x01\x01AB", &mut wire);
    proto::encode_stream_end(RecordType::Stdin, 9, &mut wire);
    proto::encode_abort_request(9, &mut wire);
    proto::encode_stream_data(RecordType::Data, 9, b"data", &mut wire);
    wire.extend(get(1, false, "/hello"));
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert!(
        r.records.iter().all(|&(_, id, _)| id == 1),
        "{:?}",
        r.records
    );
}

#[test]
fn records_only_an_application_sends_are_ignored() {
    // The fastcgi 1.0 crate panics on each of these ("Record not receivable").
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    let mut wire = get(1, false, "/hello");
    let at = 16; // after BEGIN_REQUEST
    let mut junk = Vec::new();
    proto::encode_stream_data(RecordType::Stdout, 1, b"out", &mut junk);
    proto::encode_stream_data(RecordType::Stderr, 1, b"err", &mut junk);
    proto::encode_end_request(1, EndRequest::complete(0), &mut junk);
    proto::encode_record(RecordType::GetValuesResult, 1, b"", &mut junk).unwrap();
    proto::encode_record(RecordType::UnknownType, 1, &[0; 8], &mut junk).unwrap();
    wire.splice(at..at, junk);
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert!(r.text().ends_with("Hello, world!\n"));
}

#[test]
fn post_body_is_spooled_and_echoed() {
    let mut cfg = config();
    cfg.spool = cfg.spool.with_memory_threshold(64 * 1024);
    let s = start("127.0.0.1:0", cfg);
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let params = common::cgi_params("POST", "/echo", Some(body.len()));
    let refs: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let mut c = Client::connect(s.port());
    c.send(&request(1, Role::Responder, false, &refs, &body));
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    let split = r.stdout.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&r.stdout[split..], &body[..]);
    // Output records never exceed 65535 bytes of content.
    assert!(r.records.iter().all(|&(_, _, len)| len <= 65535));
}

#[test]
fn body_shorter_than_content_length_is_400() {
    let s = start("127.0.0.1:0", config());
    let params = common::cgi_params("POST", "/echo", Some(10));
    let refs: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let mut c = Client::connect(s.port());
    c.send(&request(1, Role::Responder, false, &refs, b"short"));
    let r = c.reply(1);
    assert!(r.text().starts_with("Status: 400"), "{}", r.text());
    assert_eq!(r.end, Some(EndRequest::complete(0)));
}

#[test]
fn body_over_the_limit_is_413() {
    let mut cfg = config();
    cfg.spool = cfg.spool.with_max_body(1000);
    let s = start("127.0.0.1:0", cfg);
    let params = common::cgi_params("POST", "/echo", Some(5000));
    let refs: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let mut c = Client::connect(s.port());
    c.send(&request(1, Role::Responder, true, &refs, &[b'x'; 5000]));
    let r = c.reply(1);
    assert!(r.text().starts_with("Status: 413"), "{}", r.text());
    // The rest of that request's STDIN is ignored; the connection goes on.
    c.send(&get(2, false, "/hello"));
    assert_eq!(c.reply(2).end, Some(EndRequest::complete(0)));
}

#[test]
fn body_without_content_length_gets_its_real_length() {
    let s = start("127.0.0.1:0", config());
    let params = common::cgi_params("POST", "/env", None);
    let refs: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let mut c = Client::connect(s.port());
    c.send(&request(1, Role::Responder, false, &refs, b"12345"));
    let r = c.reply(1);
    assert!(r.text().contains("\nCONTENT_LENGTH=5\n"), "{}", r.text());
    assert!(r.text().contains("\nFCGI_ROLE=RESPONDER\n"), "{}", r.text());
}

#[test]
fn params_straddle_records_and_stay_byte_exact() {
    let s = start("127.0.0.1:0", config());
    let mut pairs = Vec::new();
    for (n, v) in common::cgi_params("GET", "/env", None) {
        proto::encode_pair(&n, &v, &mut pairs).unwrap();
    }
    proto::encode_pair(b"X_BINARY", b"\xff\x00\xfe", &mut pairs).unwrap();
    proto::encode_pair(b"PATH_\xffNAME", b"caf\xe9", &mut pairs).unwrap();
    let long = vec![b'v'; 300];
    proto::encode_pair(b"X_LONG", &long, &mut pairs).unwrap();
    let mut wire = Vec::new();
    proto::encode_begin_request(
        1,
        proto::BeginRequest {
            role: Role::Responder,
            flags: 0,
        },
        &mut wire,
    );
    // Three bytes per PARAMS record: every pair and length straddles.
    for chunk in pairs.chunks(3) {
        proto::encode_stream_data(RecordType::Params, 1, chunk, &mut wire);
    }
    proto::encode_stream_end(RecordType::Params, 1, &mut wire);
    proto::encode_stream_end(RecordType::Stdin, 1, &mut wire);
    let mut c = Client::connect(s.port());
    c.send(&wire);
    let r = c.reply(1);
    let out = &r.stdout;
    let has = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\nX_BINARY=\xff\x00\xfe\n"));
    assert!(has(b"\nPATH_\xffNAME=caf\xe9\n"));
    assert!(has(&[b"\nX_LONG=".as_slice(), &long, b"\n"].concat()));
}

/// A closed connection's session serves the next connection (engine
/// `Protocol::recycle`): whatever state the first was cut off in, the next
/// request sees only its own variables, body and log lines.
#[test]
fn a_connection_cut_off_leaves_nothing_to_the_next() {
    let s = start("127.0.0.1:0", config());
    let first_params = |uri: &str| {
        let mut params = common::cgi_params("POST", uri, Some(5));
        params.push((b"X_FIRST".to_vec(), b"1".to_vec()));
        params
    };
    let encoded = |params: &[(Vec<u8>, Vec<u8>)]| {
        let mut pairs = Vec::new();
        for (n, v) in params {
            proto::encode_pair(n, v, &mut pairs).unwrap();
        }
        pairs
    };
    let begin = |wire: &mut Vec<u8>| {
        proto::encode_begin_request(
            1,
            proto::BeginRequest {
                role: Role::Responder,
                flags: proto::KEEP_CONN,
            },
            wire,
        );
    };
    // Cut off in the PARAMS, in the body, and after a kept request that
    // logged to wsgi.errors.
    let pairs = encoded(&first_params("/env"));
    let mut in_params = Vec::new();
    begin(&mut in_params);
    proto::encode_stream_data(
        RecordType::Params,
        1,
        &pairs[..pairs.len() / 2],
        &mut in_params,
    );
    let mut in_body = Vec::new();
    begin(&mut in_body);
    proto::encode_stream_data(RecordType::Params, 1, &pairs, &mut in_body);
    proto::encode_stream_end(RecordType::Params, 1, &mut in_body);
    proto::encode_stream_data(RecordType::Stdin, 1, b"ab", &mut in_body);
    for (cut, answered) in [
        (in_params, false),
        (in_body, false),
        (get(1, true, "/stderr"), true),
    ] {
        let mut c = Client::connect(s.port());
        c.send(&cut);
        if answered {
            assert!(!c.reply(1).stderr.is_empty());
        }
        drop(c);
        for (id, keep_conn) in [(3, true), (4, false)] {
            let mut next = Client::connect(s.port());
            next.send(&get(id, keep_conn, "/env"));
            let r = next.reply(id);
            assert_eq!(r.end, Some(EndRequest::complete(0)), "{r:?}");
            let env = r.text();
            assert!(env.contains("\nREQUEST_METHOD=GET\n"), "{env}");
            assert!(!env.contains("X_FIRST"), "{env}");
            assert!(r.stderr.is_empty(), "{r:?}");
            assert_eq!(r.records.iter().filter(|rec| rec.1 != id).count(), 0);
        }
    }
    hello_works(s.port());
}

#[test]
fn request_sent_one_byte_at_a_time() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    for b in get(1, false, "/hello") {
        c.send(&[b]);
    }
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert!(r.text().ends_with("Hello, world!\n"));
}

#[test]
fn oversized_params_get_431() {
    let mut cfg = config();
    cfg.max_params = 4096;
    let s = start("127.0.0.1:0", cfg);
    let big = vec![b'x'; 5000];
    let mut c = Client::connect(s.port());
    c.send(&request(
        1,
        Role::Responder,
        true,
        &[(b"HTTP_X_BIG", &big)],
        b"",
    ));
    let r = c.reply(1);
    assert!(r.text().starts_with("Status: 431"), "{}", r.text());
    c.send(&get(2, false, "/hello"));
    assert_eq!(c.reply(2).end, Some(EndRequest::complete(0)));
}

#[test]
fn wsgi_errors_become_stderr_records() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/stderr"));
    let r = c.reply(1);
    assert_eq!(r.stderr, b"gatekit-stderr-marker from the app\n");
    // The STDERR stream is ended by an empty record too, before END_REQUEST.
    let n = r.records.len();
    assert_eq!(r.records[n - 1].0, RecordType::EndRequest);
    assert!(r.records[..n - 1].contains(&(RecordType::Stderr, 1, 0)));
    assert!(r.records[..n - 1].contains(&(RecordType::Stdout, 1, 0)));
}

#[test]
fn app_panic_is_a_500_and_the_server_goes_on() {
    let s = start("127.0.0.1:0", config());
    for _ in 0..10 {
        let mut c = Client::connect(s.port());
        c.send(&get(1, false, "/panic"));
        let r = c.reply(1);
        assert!(r.text().starts_with("Status: 500"), "{}", r.text());
        assert_eq!(
            r.end.map(|e| e.protocol_status),
            Some(ProtocolStatus::RequestComplete)
        );
        assert_eq!(r.end.map(|e| e.app_status), Some(1));
        assert!(String::from_utf8_lossy(&r.stderr).contains("panic"));
    }
    hello_works(s.port());
}

#[test]
fn abort_before_the_app_runs_ends_the_request() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    let whole = get(1, true, "/hello");
    let mut wire = whole[..16].to_vec(); // BEGIN_REQUEST only
    proto::encode_abort_request(1, &mut wire);
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert!(r.stdout.is_empty());
    c.send(&get(2, false, "/hello"));
    assert_eq!(c.reply(2).end, Some(EndRequest::complete(0)));
}

#[test]
fn abort_while_the_app_runs_sets_its_cancel_flag() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(&get(1, true, "/wait-cancel"));
    std::thread::sleep(Duration::from_millis(300));
    let mut abort = Vec::new();
    proto::encode_abort_request(1, &mut abort);
    c.send(&abort);
    let r = c.reply(1);
    assert!(
        s.shared.saw_cancel.load(Ordering::SeqCst),
        "the app saw no cancellation"
    );
    // The app's response and END_REQUEST still come, from the app (§5.4).
    assert_eq!(r.end, Some(EndRequest::complete(0)));
}

#[test]
fn web_server_closing_mid_request_sets_the_cancel_flag() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(&get(1, true, "/wait-cancel"));
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !s.shared.saw_cancel.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.shared.saw_cancel.load(Ordering::SeqCst));
    hello_works(s.port());
}

#[test]
fn filter_role_reads_stdin_then_data() {
    let s = start("127.0.0.1:0", config());
    let mut params = common::cgi_params("GET", "/filter", Some(3));
    params.push((b"FCGI_DATA_LENGTH".to_vec(), b"4".to_vec()));
    params.push((b"FCGI_DATA_LAST_MOD".to_vec(), b"0".to_vec()));
    let refs: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let mut wire = request(1, Role::Filter, false, &refs, b"abc");
    proto::encode_stream_data(RecordType::Data, 1, b"da", &mut wire);
    proto::encode_stream_data(RecordType::Data, 1, b"ta", &mut wire);
    proto::encode_stream_end(RecordType::Data, 1, &mut wire);
    let mut c = Client::connect(s.port());
    c.send(&wire);
    let r = c.reply(1);
    assert!(
        r.text().ends_with("\r\n\r\nstdin=abc;data=data"),
        "{}",
        r.text()
    );
}

#[test]
fn authorizer_role_runs_on_params_alone() {
    let s = start("127.0.0.1:0", config());
    let params = [
        (&b"REQUEST_METHOD"[..], &b"GET"[..]),
        (b"REQUEST_URI", b"/auth"),
        (b"HTTP_AUTHORIZATION", b"Bearer good"),
    ];
    let mut wire = request(1, Role::Authorizer, true, &params, b"");
    // Only BEGIN_REQUEST and PARAMS: no STDIN at all.
    let stdin_end = wire.len() - 8;
    wire.truncate(stdin_end);
    let mut c = Client::connect(s.port());
    c.send(&wire);
    let r = c.reply(1);
    assert!(
        r.text().starts_with(
            "Status: 200 OK\r\nVariable-AUTH_USER: alice\r\nVariable-REMOTE_USER: alice\r\n"
        ),
        "{}",
        r.text()
    );
    // A late empty STDIN for the finished id is ignored.
    let mut late = Vec::new();
    proto::encode_stream_end(RecordType::Stdin, 1, &mut late);
    let denied = request(2, Role::Authorizer, false, &params[..2], b"");
    late.extend_from_slice(&denied);
    c.send(&late);
    let r = c.reply(2);
    assert!(
        r.text().starts_with("Status: 403 Forbidden\r\n"),
        "{}",
        r.text()
    );
}

#[test]
fn file_wrapper_body_is_sent_with_sendfile_in_records() {
    let s = start("127.0.0.1:0", config());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    *s.shared.file.lock().unwrap() = Some(path);
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/file"));
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    let split = r.stdout.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(r.text().contains("Content-Length: 3000000\r\n"));
    assert_eq!(r.stdout[split..].len(), data.len());
    assert!(r.stdout[split..] == data[..]);
    assert!(r.records.iter().all(|&(_, _, len)| len <= 65535));
}

#[test]
fn streamed_body_arrives_whole() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/stream"));
    let r = c.reply(1);
    assert!(r.text().contains("line 0\nline 1\n"));
    assert!(r.text().ends_with("line 99\n"));
}

#[test]
fn peer_outside_web_server_addrs_is_closed() {
    let mut cfg = config();
    cfg.web_server_addrs = Some(vec!["10.9.9.9".parse().unwrap()]);
    let s = start("127.0.0.1:0", cfg);
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/hello"));
    let r = c.reply(1);
    assert!(r.end.is_none() && r.stdout.is_empty());

    let mut cfg = config();
    cfg.web_server_addrs = Some(vec!["::ffff:127.0.0.1".parse().unwrap()]);
    let s = start("127.0.0.1:0", cfg);
    hello_works(s.port());
}

#[test]
fn unix_socket_listener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fcgi.sock");
    let s = start(&format!("unix:{}", path.display()), config());
    let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    stream.write_all(&get(1, false, "/hello")).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    assert!(out.windows(13).any(|w| w == b"Hello, world!"));
    drop(s);
}

// ---------------------------------------------------------------------------
// Inputs that crash or exhaust other Rust FastCGI crates (../shared/specs.md).
// Each: a clean answer or a close, and the server keeps serving.
// ---------------------------------------------------------------------------

fn survives(wire: &[u8]) {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(wire);
    let _ = c.stream.shutdown(std::net::Shutdown::Write);
    let _ = c.reply(1);
    hello_works(s.port());
}

#[test]
fn crash_begin_request_body_too_short() {
    // fastcgi 1.0: index out of bounds; tokio-fastcgi: read_u16().unwrap().
    for len in [0usize, 1, 2, 3, 7] {
        let mut wire = Vec::new();
        proto::encode_record(
            RecordType::BeginRequest,
            1,
            &vec![0, 1, 0, 0, 0, 0, 0][..len],
            &mut wire,
        )
        .unwrap();
        survives(&wire);
    }
}

#[test]
fn crash_version_not_one() {
    let mut wire = get(1, false, "/hello");
    wire[0] = 2;
    survives(&wire);
}

#[test]
fn crash_truncated_header_content_and_padding() {
    let whole = get(1, false, "/hello");
    for cut in [1, 5, 7, 9, 15, 17, 30, whole.len() - 1] {
        survives(&whole[..cut]);
    }
}

#[test]
fn crash_truncated_four_byte_length() {
    let mut wire = Vec::new();
    proto::encode_begin_request(
        1,
        proto::BeginRequest {
            role: Role::Responder,
            flags: 0,
        },
        &mut wire,
    );
    proto::encode_stream_data(RecordType::Params, 1, &[0x80, 0x00], &mut wire);
    proto::encode_stream_end(RecordType::Params, 1, &mut wire);
    proto::encode_stream_end(RecordType::Stdin, 1, &mut wire);
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(&wire);
    let r = c.reply(1);
    assert!(r.text().starts_with("Status: 400"), "{}", r.text());
    hello_works(s.port());
}

#[test]
fn crash_huge_declared_pair_length_allocates_nothing() {
    // fastcgi 1.0 and tokio-fastcgi allocate the declared 2 GiB and abort.
    let mut pair = vec![0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
    pair.extend_from_slice(b"abcdefgh");
    let mut wire = Vec::new();
    proto::encode_begin_request(
        1,
        proto::BeginRequest {
            role: Role::Responder,
            flags: 0,
        },
        &mut wire,
    );
    proto::encode_stream_data(RecordType::Params, 1, &pair, &mut wire);
    let s = start("127.0.0.1:0", config());
    let before = rss_kib();
    let mut c = Client::connect(s.port());
    c.send(&wire);
    let r = c.reply(1);
    assert!(r.text().starts_with("Status: 431"), "{}", r.text());
    assert!(rss_kib() < before + 64 * 1024, "RSS jumped");
    hello_works(s.port());
}

#[test]
fn crash_ten_thousand_empty_pairs() {
    // fastcgi 1.0 recurses once per pair and overflows its stack.
    let pairs = vec![0u8; 20_000];
    let mut wire = Vec::new();
    proto::encode_begin_request(
        1,
        proto::BeginRequest {
            role: Role::Responder,
            flags: 0,
        },
        &mut wire,
    );
    proto::encode_stream_data(RecordType::Params, 1, &pairs, &mut wire);
    let mut p = Vec::new();
    proto::encode_pair(b"REQUEST_URI", b"/hello", &mut p).unwrap();
    proto::encode_stream_data(RecordType::Params, 1, &p, &mut wire);
    proto::encode_stream_end(RecordType::Params, 1, &mut wire);
    proto::encode_stream_end(RecordType::Stdin, 1, &mut wire);
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    c.send(&wire);
    let r = c.reply(1);
    assert!(r.text().ends_with("Hello, world!\n"), "{}", r.text());
}

#[test]
fn crash_non_utf8_params_are_kept() {
    // fastcgi 1.0 silently drops every pair after a non-UTF-8 one.
    let s = start("127.0.0.1:0", config());
    let params = [
        (&b"ABC"[..], &b"xyz"[..]),
        (b"PATH", b"/\xff"),
        (b"REQUEST_URI", b"/env"),
        (b"LAST", b"z"),
    ];
    let mut c = Client::connect(s.port());
    c.send(&request(1, Role::Responder, false, &params, b""));
    let r = c.reply(1);
    let out = &r.stdout;
    for needle in [&b"\nABC=xyz\n"[..], b"\nPATH=/\xff\n", b"\nLAST=z\n"] {
        assert!(
            out.windows(needle.len()).any(|w| w == needle),
            "{}",
            r.text()
        );
    }
}

#[test]
fn crash_begin_request_twice_and_interleaved() {
    let s = start("127.0.0.1:0", config());
    let mut c = Client::connect(s.port());
    let whole = get(1, false, "/hello");
    let mut wire = whole[..16].to_vec();
    wire.extend_from_slice(&whole[..16]); // the same BEGIN_REQUEST again
    wire.extend_from_slice(&whole[16..]);
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    hello_works(s.port());
}

#[test]
fn crash_stdin_before_params_end_closes() {
    let mut wire = Vec::new();
    proto::encode_begin_request(
        1,
        proto::BeginRequest {
            role: Role::Responder,
            flags: 0,
        },
        &mut wire,
    );
    proto::encode_stream_data(RecordType::Stdin, 1, b"early", &mut wire);
    survives(&wire);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
