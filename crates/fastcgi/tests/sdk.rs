//! The FastCGI-SDK-style API (`gatekit_fastcgi::sdk`) over real loopback sockets: an accept
//! loop on 4 threads of one listener, driven by a raw client (exact bytes, keep-conn, management
//! records, roles, aborts, the inputs that crash other Rust FastCGI libraries), then behind real
//! nginx and libfcgi's `cgi-fcgi`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod sdk_common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gatekit_fastcgi::proto::{self, EndRequest, ProtocolStatus, RecordType, Role};
use gatekit_fastcgi::sdk::{Config, Listener};
use gatekit_testkit::{WebServer, curl, curl_parallel, pattern, require, sha256};
use sdk_common::{
    Client, Mode, Running, begin, big_body, get, hello_works, params, request, start, stream,
};

const THREADS: usize = 4;

fn server() -> Running {
    start(THREADS, Config::default(), Mode::Acceptor)
}

fn refused(status: ProtocolStatus) -> EndRequest {
    EndRequest {
        app_status: 0,
        protocol_status: status,
    }
}

// ---------------------------------------------------------------------------------------------
// Exact bytes and connection handling
// ---------------------------------------------------------------------------------------------

#[test]
fn get_golden_bytes() {
    let s = server();
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/hello"));
    let r = c.reply(1);
    let want: &[u8] = b"\
        \x01\x06\x00\x01\x00\x2a\x06\x00\
        Content-Type: text/plain\r\n\r\nHello, world!\n\0\0\0\0\0\0\
        \x01\x06\x00\x01\x00\x00\x00\x00\
        \x01\x03\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    assert_eq!(
        r.raw.escape_ascii().to_string(),
        want.escape_ascii().to_string()
    );
    assert!(c.closed(), "without KEEP_CONN the application closes");
}

#[test]
fn keep_conn_serves_many_requests_on_one_connection() {
    let s = server();
    let mut c = Client::connect(s.port());
    for i in 1..=20u16 {
        c.send(&get(i, true, "/keep"));
        let r = c.reply(i);
        assert_eq!(r.end, Some(EndRequest::complete(0)));
        assert_eq!(r.text(), "keep_conn=true\n");
    }
    // Two requests written back to back are answered in order.
    let mut both = get(7, true, "/hello");
    both.extend(request(8, true, "/echo", b"abc"));
    c.send(&both);
    assert_eq!(c.reply(7).text(), "Hello, world!\n");
    assert_eq!(c.reply(8).body(), b"abc");
    // The thread holding the kept connection does not stop the others.
    hello_works(s.port());
    // The web server closing an idle kept connection is a normal event; the last request
    // without KEEP_CONN is closed by the application.
    c.send(&get(9, false, "/hello"));
    assert_eq!(c.reply(9).text(), "Hello, world!\n");
    assert!(c.closed());
    drop(c);
    let mut idle = Client::connect(s.port());
    idle.send(&get(1, true, "/hello"));
    assert_eq!(idle.reply(1).text(), "Hello, world!\n");
    drop(idle);
    for _ in 0..THREADS * 2 {
        hello_works(s.port());
    }
    assert!(s.errors().is_empty(), "{:?}", s.errors());
}

#[test]
fn keep_conn_with_listener_accept_thread_local() {
    let s = start(2, Config::default(), Mode::ListenerAccept);
    let mut a = Client::connect(s.port());
    let mut b = Client::connect(s.port());
    for i in 1..=5u16 {
        a.send(&get(i, true, "/hello"));
        b.send(&get(i, true, "/keep"));
        assert_eq!(a.reply(i).text(), "Hello, world!\n");
        assert_eq!(b.reply(i).text(), "keep_conn=true\n");
    }
    drop(a);
    b.send(&get(9, true, "/hello"));
    assert_eq!(b.reply(9).end, Some(EndRequest::complete(0)));
    drop(b);
    hello_works(s.port());
}

#[test]
fn one_thread_serves_more_kept_connections_than_threads() {
    // libfcgi's thread would wait on the first kept connection and never see the others.
    for mode in [Mode::Acceptor, Mode::ListenerAccept] {
        let s = start(1, Config::default(), mode);
        let mut clients: Vec<Client> = (0..5).map(|_| Client::connect(s.port())).collect();
        for round in 1..=4u16 {
            // The last connection first: each waits idle while the others are served.
            for c in clients.iter_mut().rev() {
                c.send(&get(round, true, "/keep"));
                assert_eq!(c.reply(round).text(), "keep_conn=true\n", "{mode:?}");
            }
        }
        // A new connection is served while they are all idle.
        hello_works(s.port());
        // Closing idle kept connections is normal; the others stay usable.
        clients.truncate(2);
        for c in &mut clients {
            c.send(&get(9, true, "/hello"));
            assert_eq!(c.reply(9).text(), "Hello, world!\n");
        }
        assert!(s.errors().is_empty(), "{:?}", s.errors());
    }
}

#[test]
fn silent_connections_hold_no_thread() {
    let mut config = Config::default();
    config.max_kept_conns = 3;
    let s = start(1, config, Mode::Acceptor);
    // Connections that send nothing, or half a record header, wait without the only thread.
    let mut silent: Vec<Client> = (0..3).map(|_| Client::connect(s.port())).collect();
    silent[1].send(b"\x01\x01");
    std::thread::sleep(Duration::from_millis(100));
    hello_works(s.port());
    // One more than the limit is new: it may be a web server whose request is a moment
    // behind its connection, so the thread waits for it rather than close it.
    let mut extra = Client::connect(s.port());
    std::thread::sleep(Duration::from_millis(100));
    extra.send(&get(1, false, "/hello"));
    assert_eq!(extra.reply(1).text(), "Hello, world!\n");
    // The one with half a header is served once the rest arrives.
    let mut rest = get(1, false, "/hello");
    rest.drain(..2);
    silent[1].send(&rest);
    assert_eq!(silent[1].reply(1).text(), "Hello, world!\n");
    hello_works(s.port());
}

#[test]
fn kept_connections_beyond_the_limit_are_closed_after_their_request() {
    let mut config = Config::default();
    config.max_kept_conns = 1;
    let s = start(2, config, Mode::Acceptor);
    let mut a = Client::connect(s.port());
    a.send(&get(1, true, "/keep"));
    assert_eq!(a.reply(1).text(), "keep_conn=true\n");
    let mut b = Client::connect(s.port());
    b.send(&get(1, true, "/keep"));
    assert_eq!(b.reply(1).text(), "keep_conn=true\n");
    assert!(b.closed(), "one idle connection is held, and that is a's");
    a.send(&get(2, true, "/hello"));
    assert_eq!(a.reply(2).text(), "Hello, world!\n");
}

#[test]
fn idle_kept_connections_are_closed_after_the_read_timeout() {
    let mut config = Config::default();
    config.read_timeout = Some(Duration::from_millis(300));
    let s = start(1, config, Mode::Acceptor);
    let mut a = Client::connect(s.port());
    a.send(&get(1, true, "/hello"));
    assert_eq!(a.reply(1).text(), "Hello, world!\n");
    let began = Instant::now();
    assert!(a.closed());
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    hello_works(s.port());
}

#[test]
fn get_values_answered_truthfully_at_any_time() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut q = Vec::new();
    proto::encode_get_values(
        &[
            proto::MAX_CONNS,
            proto::MAX_REQS,
            proto::MPXS_CONNS,
            b"X_UNKNOWN",
        ],
        &mut q,
    )
    .unwrap();
    c.send(&q);
    let (_, raw) = c.raw_record().unwrap();
    // A request at a time per thread (4), and a connection for each of those and for each of
    // the 256 idle kept connections it may hold.
    let want: &[u8] = b"\x01\x0a\x00\x00\x00\x35\x03\x00\
        \x0e\x03FCGI_MAX_CONNS260\x0d\x01FCGI_MAX_REQS4\x0f\x01FCGI_MPXS_CONNS0\0\0\0";
    assert_eq!(
        raw.escape_ascii().to_string(),
        want.escape_ascii().to_string()
    );

    // An unknown management type gets UNKNOWN_TYPE.
    let mut unknown = Vec::new();
    proto::encode_record(RecordType::Unknown(42), 0, b"", &mut unknown).unwrap();
    c.send(&unknown);
    let (_, raw) = c.raw_record().unwrap();
    assert_eq!(raw, b"\x01\x0b\x00\x00\x00\x08\x00\x00\x2a\0\0\0\0\0\0\0");

    // In the middle of a request, while the application reads STDIN.
    let mut head = begin(1, Role::Responder, true);
    head.extend(params(
        1,
        &[(b"REQUEST_URI", b"/echo"), (b"CONTENT_LENGTH", b"4")],
    ));
    c.send(&head);
    let (first, _) = c.raw_record().unwrap();
    assert_eq!(first.0, RecordType::Stdout, "the head, before STDIN");
    c.send(&q);
    let (answer, _) = c.raw_record().unwrap();
    assert_eq!((answer.0, answer.1), (RecordType::GetValuesResult, 0));
    c.send(&stream(RecordType::Stdin, 1, b"body"));
    let r = c.reply(1);
    assert_eq!(r.stdout, b"body");
    assert_eq!(r.end, Some(EndRequest::complete(0)));

    // A fixed answer from the configuration.
    let mut config = Config::default();
    config.max_conns = Some(50);
    let fixed = start(1, config, Mode::Acceptor);
    let mut c = Client::connect(fixed.port());
    let mut q = Vec::new();
    proto::encode_get_values(&[proto::MAX_REQS], &mut q).unwrap();
    c.send(&q);
    let (answer, _) = c.raw_record().unwrap();
    assert_eq!(answer.2, b"\x0d\x02FCGI_MAX_REQS50");
}

#[test]
fn unknown_role_refused_and_the_connection_kept() {
    let s = server();
    let mut c = Client::connect(s.port());
    c.send(&begin(1, Role::Unknown(9), true));
    assert_eq!(c.reply(1).end, Some(refused(ProtocolStatus::UnknownRole)));
    // Its PARAMS and STDIN, if sent anyway, belong to an inactive id.
    c.send(&params(1, &[(b"REQUEST_URI", b"/hello")]));
    c.send(&get(2, true, "/hello"));
    assert_eq!(c.reply(2).text(), "Hello, world!\n");
    // Without KEEP_CONN the connection is closed after the refusal.
    c.send(&begin(3, Role::Unknown(0), false));
    assert_eq!(c.reply(3).end, Some(refused(ProtocolStatus::UnknownRole)));
    assert!(c.closed());
}

#[test]
fn second_begin_request_gets_cant_mpx_conn() {
    let s = server();
    let mut c = Client::connect(s.port());
    // While PARAMS are being read.
    c.send(&begin(1, Role::Responder, true));
    c.send(&begin(2, Role::Responder, true));
    assert_eq!(c.reply(2).end, Some(refused(ProtocolStatus::CantMpxConn)));
    // While the application runs (reading STDIN).
    c.send(&params(
        1,
        &[(b"REQUEST_URI", b"/echo"), (b"CONTENT_LENGTH", b"2")],
    ));
    assert_eq!(c.record().unwrap().0, RecordType::Stdout);
    c.send(&begin(3, Role::Responder, false));
    assert_eq!(c.reply(3).end, Some(refused(ProtocolStatus::CantMpxConn)));
    // A repeated BEGIN_REQUEST for the active id means nothing.
    c.send(&begin(1, Role::Responder, true));
    c.send(&stream(RecordType::Stdin, 1, b"ok"));
    let r = c.reply(1);
    assert_eq!(r.stdout, b"ok");
    assert_eq!(r.end, Some(EndRequest::complete(0)));
}

#[test]
fn records_for_inactive_ids_are_ignored() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut noise = Vec::new();
    for t in [
        RecordType::Params,
        RecordType::Stdin,
        RecordType::Data,
        RecordType::AbortRequest,
        RecordType::Stdout,
        RecordType::EndRequest,
    ] {
        proto::encode_record(t, 5, b"\x01\x01ab", &mut noise).unwrap();
    }
    c.send(&noise);
    let mut wire = begin(1, Role::Responder, true);
    wire.extend(&noise);
    wire.extend(params(
        1,
        &[(b"REQUEST_URI", b"/echo"), (b"CONTENT_LENGTH", b"3")],
    ));
    wire.extend(&noise);
    c.send(&wire);
    c.send(&noise);
    c.send(&stream(RecordType::Stdin, 1, b"xyz"));
    let r = c.reply(1);
    assert_eq!(r.body(), b"xyz");
    // The same id after its END_REQUEST is inactive too.
    c.send(&stream(RecordType::Stdin, 1, b"late"));
    let mut abort = Vec::new();
    proto::encode_abort_request(1, &mut abort);
    c.send(&abort);
    c.send(&get(1, true, "/hello"));
    assert_eq!(c.reply(1).text(), "Hello, world!\n");
}

#[test]
fn records_only_an_application_sends_are_ignored() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Responder, true);
    wire.extend(params(1, &[(b"REQUEST_URI", b"/hello")]));
    for t in [
        RecordType::Stdout,
        RecordType::Stderr,
        RecordType::EndRequest,
        RecordType::UnknownType,
    ] {
        proto::encode_record(t, 1, b"12345678", &mut wire).unwrap();
    }
    wire.extend(stream(RecordType::Stdin, 1, b""));
    c.send(&wire);
    assert_eq!(c.reply(1).text(), "Hello, world!\n");
    // The same types on id 0 are unknown management types.
    let mut mgmt = Vec::new();
    proto::encode_record(RecordType::GetValuesResult, 0, b"", &mut mgmt).unwrap();
    c.send(&mgmt);
    let (answer, _) = c.raw_record().unwrap();
    assert_eq!(answer.0, RecordType::UnknownType);
    assert_eq!(answer.2[0], 10);
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[test]
fn stdin_is_read_lazily_and_a_1mb_post_echoed() {
    let s = server();
    let mut c = Client::connect(s.port());
    let body = pattern(1024 * 1024);
    let mut head = begin(1, Role::Responder, false);
    head.extend(params(
        1,
        &[
            (b"REQUEST_METHOD", b"POST"),
            (b"REQUEST_URI", b"/echo"),
            (b"CONTENT_LENGTH", body.len().to_string().as_bytes()),
        ],
    ));
    c.send(&head);
    // accept() returned with PARAMS complete and no STDIN sent yet: the head comes first.
    let (first, _) = c.raw_record().unwrap();
    assert_eq!(first.0, RecordType::Stdout);
    assert_eq!(first.2, b"Content-Type: application/octet-stream\r\n\r\n");
    // Then the body, in records of several sizes, from another thread while we read.
    let mut writer = c.writer();
    let sent = body.clone();
    let feeder = std::thread::spawn(move || {
        let mut wire = Vec::new();
        let mut rest = &sent[..];
        for size in [1, 7, 65535, 1000, 4096].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            proto::encode_record(RecordType::Stdin, 1, chunk, &mut wire).unwrap();
            rest = tail;
        }
        proto::encode_stream_end(RecordType::Stdin, 1, &mut wire);
        for piece in wire.chunks(100_000) {
            writer.write_all(piece).unwrap();
        }
    });
    let r = c.reply(1);
    feeder.join().unwrap();
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert_eq!(sha256(&r.stdout), sha256(&body));
    assert!(c.closed());
}

#[test]
fn stdin_is_bounded_by_content_length() {
    let s = server();
    // More STDIN than CONTENT_LENGTH: the reader fails, the request ends with status 1.
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Responder, true);
    wire.extend(params(
        1,
        &[(b"REQUEST_URI", b"/echo"), (b"CONTENT_LENGTH", b"3")],
    ));
    wire.extend(stream(RecordType::Stdin, 1, b"abcdef"));
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(1)), "{r:?}");
    // Less than CONTENT_LENGTH: the same.
    let mut wire = begin(2, Role::Responder, true);
    wire.extend(params(
        2,
        &[(b"REQUEST_URI", b"/echo"), (b"CONTENT_LENGTH", b"9")],
    ));
    wire.extend(stream(RecordType::Stdin, 2, b"abc"));
    c.send(&wire);
    let r = c.reply(2);
    assert_eq!(r.body(), b"abc");
    assert_eq!(r.end, Some(EndRequest::complete(1)));
    // Exactly CONTENT_LENGTH on the same connection.
    c.send(&request(3, true, "/echo", b"exact"));
    assert_eq!(c.reply(3).body(), b"exact");
    let errors = s.errors_containing(&["longer than CONTENT_LENGTH", "ended after 3 of the 9"]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("longer than CONTENT_LENGTH")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("ended after 3 of the 9")),
        "{errors:?}"
    );
}

#[test]
fn filter_reads_stdin_then_data() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Filter, true);
    wire.extend(params(
        1,
        &[
            (b"REQUEST_URI", b"/filter"),
            (b"CONTENT_LENGTH", b"5"),
            (b"FCGI_DATA_LENGTH", b"7"),
            (b"FCGI_DATA_LAST_MOD", b"0"),
        ],
    ));
    wire.extend(stream(RecordType::Stdin, 1, b"hello"));
    wire.extend(stream(RecordType::Data, 1, b"datadat"));
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.text(), "stdin=hello data=datadat");
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    // Reading DATA skips the STDIN the application did not read.
    let mut wire = begin(2, Role::Filter, true);
    wire.extend(params(
        2,
        &[
            (b"REQUEST_URI", b"/data-only"),
            (b"CONTENT_LENGTH", b"70000"),
            (b"FCGI_DATA_LENGTH", b"4"),
        ],
    ));
    wire.extend(stream(RecordType::Stdin, 2, &pattern(70_000)));
    wire.extend(stream(RecordType::Data, 2, b"file"));
    c.send(&wire);
    assert_eq!(c.reply(2).text(), "file");
    // A Responder has no DATA.
    let mut wire = begin(3, Role::Responder, true);
    wire.extend(params(3, &[(b"REQUEST_URI", b"/data-only")]));
    wire.extend(stream(RecordType::Stdin, 3, b""));
    c.send(&wire);
    assert_eq!(c.reply(3).text(), "");
}

#[test]
fn authorizer_runs_on_params_alone() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Authorizer, false);
    wire.extend(params(1, &[(b"REQUEST_URI", b"/echo")]));
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert_eq!(r.body(), b"");
}

#[test]
fn stdout_and_stderr_are_framed_and_ended() {
    let s = server();
    let mut c = Client::connect(s.port());
    c.send(&get(1, true, "/stderr"));
    let r = c.reply(1);
    assert_eq!(r.stderr, b"sdk-stderr-marker\n");
    assert_eq!(r.text(), "logged\n");
    // Both streams ended (the empty STDERR because it was used), then END_REQUEST, in one
    // write at finish.
    let ends: Vec<_> = r.records.iter().filter(|(_, _, len)| *len == 0).collect();
    assert_eq!(
        ends,
        [&(RecordType::Stdout, 1, 0), &(RecordType::Stderr, 1, 0)]
    );
    // A write larger than a record goes out as whole records, then small writes share one.
    c.send(&get(2, true, "/big"));
    let r = c.reply(2);
    assert_eq!(r.body(), big_body());
    let sizes: Vec<usize> = r.records.iter().map(|&(_, _, len)| len).collect();
    assert_eq!(sizes, [28, 65535, 65535, 150_000 - 2 * 65535, 12, 0, 8]);
    // The application's status reaches END_REQUEST.
    c.send(&get(3, true, "/status"));
    assert_eq!(c.reply(3).end, Some(EndRequest::complete(7)));
}

#[test]
fn unbuffered_output_sends_each_write() {
    let mut config = Config::default();
    config.buffer_size = 0;
    let s = start(1, config, Mode::Acceptor);
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/big"));
    let r = c.reply(1);
    assert_eq!(r.body(), big_body());
    let sizes: Vec<usize> = r.records.iter().map(|&(_, _, len)| len).collect();
    assert_eq!(
        sizes,
        [28, 65535, 65535, 150_000 - 2 * 65535, 4, 4, 4, 0, 8]
    );
}

// ---------------------------------------------------------------------------------------------
// Aborts and unfinished requests
// ---------------------------------------------------------------------------------------------

#[test]
fn abort_request_raises_the_flag() {
    let s = server();
    let mut c = Client::connect(s.port());
    c.send(&get(1, true, "/abort"));
    assert_eq!(c.record().unwrap().0, RecordType::Stdout);
    let mut abort = Vec::new();
    proto::encode_abort_request(1, &mut abort);
    c.send(&abort);
    let r = c.reply(1);
    assert_eq!(r.text(), "aborted\n");
    assert_eq!(
        r.end,
        Some(EndRequest::complete(0)),
        "the application answers (§5.4)"
    );
    assert!(s.shared.saw_abort.load(Ordering::SeqCst));
    // The connection goes on.
    c.send(&get(2, true, "/hello"));
    assert_eq!(c.reply(2).text(), "Hello, world!\n");
}

#[test]
fn abort_before_accept_returns_is_answered_by_the_library() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Responder, true);
    proto::encode_abort_request(1, &mut wire);
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    assert!(r.stdout.is_empty());
    c.send(&get(2, true, "/hello"));
    assert_eq!(c.reply(2).text(), "Hello, world!\n");
    assert_eq!(s.shared.handled.load(Ordering::SeqCst), 1);
}

#[test]
fn web_server_closing_raises_the_flag() {
    let s = server();
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/abort"));
    assert_eq!(c.record().unwrap().0, RecordType::Stdout);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.shared.saw_abort.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(s.shared.saw_abort.load(Ordering::SeqCst));
    hello_works(s.port());
}

#[test]
fn drop_without_finish_gives_app_status_1() {
    let s = server();
    let mut c = Client::connect(s.port());
    c.send(&get(1, true, "/drop"));
    let r = c.reply(1);
    assert_eq!(r.text(), "partial");
    assert_eq!(r.end, Some(EndRequest::complete(1)));
    // Not silent, and the connection is still good.
    c.send(&get(2, true, "/hello"));
    assert_eq!(c.reply(2).text(), "Hello, world!\n");
}

// ---------------------------------------------------------------------------------------------
// Limits, listeners, shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn oversized_params_get_431_and_the_connection_goes_on() {
    let mut config = Config::default();
    config.max_params = 1000;
    let s = start(2, config, Mode::Acceptor);
    let mut c = Client::connect(s.port());
    let big = vec![b'x'; 2000];
    let mut wire = begin(1, Role::Responder, true);
    wire.extend(params(1, &[(b"REQUEST_URI", b"/hello"), (b"BIG", &big)]));
    wire.extend(stream(RecordType::Stdin, 1, b""));
    c.send(&wire);
    let r = c.reply(1);
    assert!(r.stdout.starts_with(b"Status: 431 "), "{r:?}");
    assert_eq!(r.end, Some(EndRequest::complete(0)));
    c.send(&get(2, true, "/hello"));
    assert_eq!(c.reply(2).text(), "Hello, world!\n");
    assert_eq!(s.shared.handled.load(Ordering::SeqCst), 1);
}

#[test]
fn peer_outside_web_server_addrs_is_closed() {
    let mut config = Config::default();
    config.web_server_addrs = Some(vec!["10.9.8.7".parse().unwrap()]);
    let s = start(1, config, Mode::Acceptor);
    let mut c = Client::connect(s.port());
    c.send(&get(1, false, "/hello"));
    assert!(c.closed());
    assert_eq!(s.shared.handled.load(Ordering::SeqCst), 0);
}

#[test]
fn listeners_and_cgi_detection() {
    // Under the test harness fd 0 is not a listening socket.
    assert!(Listener::is_cgi());
    assert!(Listener::from_fd0().is_err());
    let e = Listener::bind("no-port").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    // A Unix socket.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sdk.sock");
    let listener = Listener::bind(&format!("unix:{}", path.display())).unwrap();
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let mut acceptor = listener.acceptor();
            let mut req = acceptor.accept().unwrap().unwrap();
            assert_eq!(req.param_str("REQUEST_URI"), Some("/unix"));
            req.stdout()
                .write_all(b"Content-Type: text/plain\r\n\r\nunix\n")
                .unwrap();
            req.finish(0).unwrap();
            assert!(!acceptor.has_kept_connection());
        });
        let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream.write_all(&get(1, false, "/unix")).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut got).unwrap();
        drop(stream);
        assert!(got.windows(6).any(|w| w == b"\nunix\n"));
        server.join().unwrap();
    });
}

#[test]
fn shutdown_wakes_every_accepting_thread() {
    let s = start(8, Config::default(), Mode::Acceptor);
    hello_works(s.port());
    let began = Instant::now();
    drop(s);
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Inputs that crash the fastcgi 1.0 and tokio-fastcgi crates (specs.md): each one is survived
// and followed by a normal request that works.
// ---------------------------------------------------------------------------------------------

/// Sends `wire` on a connection, then expects that connection closed, with nothing sent.
fn closes(s: &Running, wire: &[u8]) {
    let mut c = Client::connect(s.port());
    c.send(wire);
    assert!(
        c.closed(),
        "the connection stays open after {:?}",
        wire.escape_ascii()
    );
    hello_works(s.port());
}

#[test]
fn crash_begin_request_body_too_short() {
    let s = server();
    for len in [0usize, 1, 2, 7] {
        let mut wire = Vec::new();
        proto::encode_record(
            RecordType::BeginRequest,
            1,
            &[0, 1, 1, 0, 0, 0, 0][..len],
            &mut wire,
        )
        .unwrap();
        wire.extend(params(1, &[(b"REQUEST_URI", b"/hello")]));
        closes(&s, &wire);
    }
}

#[test]
fn crash_version_not_one() {
    let s = server();
    for version in [0u8, 2, 255] {
        let mut wire = get(1, false, "/hello");
        wire[0] = version;
        closes(&s, &wire);
        // In the middle of a kept connection too.
        let mut c = Client::connect(s.port());
        c.send(&get(1, true, "/hello"));
        assert_eq!(c.reply(1).text(), "Hello, world!\n");
        let mut bad = get(2, true, "/hello");
        bad[0] = version;
        c.send(&bad);
        assert!(c.closed());
    }
    hello_works(s.port());
}

#[test]
fn crash_truncated_records() {
    let s = server();
    let whole = get(1, false, "/hello");
    // Cut inside the header, the content and the padding of several records.
    for cut in [3, 8, 12, 16, 20, 27, whole.len() - 1] {
        let c = Client::connect(s.port());
        c.writer().write_all(&whole[..cut]).unwrap();
        c.shutdown_write();
        drop(c);
    }
    // A truncated 4-byte length at the end of PARAMS: 400, nothing reaches the application.
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Responder, true);
    proto::encode_record(RecordType::Params, 1, b"\x0b\x80\x00", &mut wire).unwrap();
    proto::encode_stream_end(RecordType::Params, 1, &mut wire);
    c.send(&wire);
    let r = c.reply(1);
    assert!(r.stdout.starts_with(b"Status: 400 "), "{r:?}");
    hello_works(s.port());
}

/// The process's peak virtual size, in KiB.
fn vm_peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn crash_huge_declared_pair_lengths_allocate_nothing() {
    let s = server();
    let before = vm_peak_kib();
    // fastcgi 1.0: a 24-byte PARAMS record claiming a 2^31-1-byte name.
    let fastcgi: &[u8] = b"\x01\x04\x00\x01\x00\x10\x00\x00\xff\xff\xff\xff\x00AAAAAAAAAAA";
    // tokio-fastcgi: a 16-byte record claiming two huge lengths.
    let tokio: &[u8] = b"\x01\x04\x00\x01\x00\x08\x00\x00\xff\xff\xff\xf0\xff\xff\xff\xf0";
    for record in [fastcgi, tokio] {
        let mut c = Client::connect(s.port());
        let mut wire = begin(1, Role::Responder, true);
        wire.extend_from_slice(record);
        c.send(&wire);
        let r = c.reply(1);
        assert!(r.stdout.starts_with(b"Status: 431 "), "{r:?}");
        c.send(&get(2, true, "/hello"));
        assert_eq!(c.reply(2).text(), "Hello, world!\n");
    }
    let grown = vm_peak_kib().saturating_sub(before);
    assert!(grown < 1024 * 1024, "VmPeak grew by {grown} KiB");
    hello_works(s.port());
}

#[test]
fn crash_ten_thousand_empty_pairs() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Responder, true);
    proto::encode_record(RecordType::Params, 1, &vec![0; 20_000], &mut wire).unwrap();
    proto::encode_stream_end(RecordType::Params, 1, &mut wire);
    wire.extend(stream(RecordType::Stdin, 1, b""));
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(r.text(), "params=10000\n");
    c.send(&get(2, false, "/hello"));
    assert_eq!(c.reply(2).text(), "Hello, world!\n");
}

#[test]
fn crash_non_utf8_params_are_kept() {
    let s = server();
    let mut c = Client::connect(s.port());
    let mut wire = begin(1, Role::Responder, true);
    wire.extend(params(
        1,
        &[
            (b"ABC", b"xyz"),
            (b"REQUEST_URI", b"/params"),
            (b"PATH", b"/\xff"),
            (b"N\xfeME", b"\x00\x80"),
            (b"LAST", b"z"),
        ],
    ));
    wire.extend(stream(RecordType::Stdin, 1, b""));
    c.send(&wire);
    let r = c.reply(1);
    assert_eq!(
        r.body(),
        b"ABC=xyz\nREQUEST_URI=/params\nPATH=/\xff\nN\xfeME=\x00\x80\nLAST=z\n"
    );
    hello_works(s.port());
}

#[test]
fn crash_stdin_before_params_end_closes() {
    let s = server();
    let mut wire = begin(1, Role::Responder, false);
    proto::encode_record(RecordType::Params, 1, b"\x01\x01ab", &mut wire).unwrap();
    wire.extend(stream(RecordType::Stdin, 1, b"early"));
    closes(&s, &wire);
}

// ---------------------------------------------------------------------------------------------
// Real web servers
// ---------------------------------------------------------------------------------------------

fn nginx_case(keep_conn: bool) {
    let s = server();
    let port = s.port();
    // More idle kept connections than accepting threads: they wait together, not each on a
    // thread (docs/fastcgi-sdk.md).
    let (keepalive, keep) = if keep_conn {
        ("keepalive 32;", "fastcgi_keep_conn on;")
    } else {
        ("", "")
    };
    let Some(ws) = WebServer::nginx(|p| {
        format!(
            "upstream sdk {{ server 127.0.0.1:{port}; {keepalive} }}\n\
             server {{\n  listen 127.0.0.1:{};\n  location / {{\n    \
             include /etc/nginx/fastcgi_params;\n    fastcgi_pass sdk;\n    {keep}\n  }}\n}}\n",
            p.port
        )
    }) else {
        return;
    };
    let ctx = || ws.error_log();
    for _ in 0..3 {
        let r = curl(&[], &ws.url("/hello?x=1"));
        assert_eq!(r.status, 200, "{}", ctx());
        assert_eq!(r.text(), "Hello, world!\n");
        let r = curl(&[], &ws.url("/keep"));
        assert_eq!(r.text(), format!("keep_conn={keep_conn}\n"), "{}", ctx());
    }
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("upload.bin");
    let body = pattern(3 * 1024 * 1024 + 5);
    std::fs::write(&upload, &body).unwrap();
    let at = format!("@{}", upload.display());
    let r = curl(&["--data-binary", &at], &ws.url("/echo"));
    assert_eq!(r.status, 200, "{}", ctx());
    assert_eq!(sha256(&r.body), sha256(&body), "{}", ctx());
    let r = curl(&[], &ws.url("/stderr"));
    assert_eq!(r.text(), "logged\n");
    let r = curl(&[], &ws.url("/missing"));
    assert_eq!(r.status, 404);
    // 100 requests at once over up to 32 kept connections, on the server's threads.
    let urls: Vec<String> = (0..100).map(|i| ws.url(&format!("/hello?n={i}"))).collect();
    let got = curl_parallel(&urls, 30);
    assert_eq!(got.ok, 100, "{}\n{}", got.report, ctx());
    let log = ws.error_log();
    assert!(log.contains("sdk-stderr-marker"), "{log}");
    assert!(!log.contains("upstream prematurely closed"), "{log}");
    drop(ws);
    assert!(s.errors().is_empty(), "{:?}", s.errors());
}

#[test]
fn nginx_fastcgi_pass() {
    nginx_case(false);
}

#[test]
fn nginx_fastcgi_pass_keep_conn() {
    nginx_case(true);
}

#[test]
fn cgi_fcgi_client() {
    let Some(cgi_fcgi) = require(&["/usr/bin/cgi-fcgi"]) else {
        return;
    };
    let s = server();
    let body = pattern(300_000);
    let mut child = Command::new(&cgi_fcgi)
        .args(["-bind", "-connect", &format!("127.0.0.1:{}", s.port())])
        .env_clear()
        .env("REQUEST_METHOD", "POST")
        .env("REQUEST_URI", "/echo")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let sent = body.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&sent));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    let head = b"Content-Type: application/octet-stream\r\n\r\n";
    assert!(out.stdout.starts_with(head));
    assert_eq!(sha256(&out.stdout[head.len()..]), sha256(&body));
    // And a GET.
    let out = Command::new(&cgi_fcgi)
        .args(["-bind", "-connect", &format!("127.0.0.1:{}", s.port())])
        .env_clear()
        .env("REQUEST_METHOD", "GET")
        .env("REQUEST_URI", "/hello")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        b"Content-Type: text/plain\r\n\r\nHello, world!\n"
    );
}
