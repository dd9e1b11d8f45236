//! Raw SCGI bytes over TCP and Unix sockets: golden responses, bodies,
//! every malformed head (one named test each, then a normal request on the
//! same server), and the allow-list.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gatekit_scgi::IpNet;
use gatekit_scgi::proto::Limits;

use crate::common::{
    HELLO, Running, assert_serves, big_file, config, exchange, head, request, start,
};

fn server() -> Running {
    start("127.0.0.1:0", config())
}

/// `block` framed as a netstring.
fn netstring(block: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", block.len()).into_bytes();
    out.extend_from_slice(block);
    out.push(b',');
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sends `bytes`, expects the error response `status`, then checks the
/// server still serves.
#[track_caller]
fn assert_refused(s: &Running, bytes: &[u8], status: &str) {
    let out = text(&exchange(&s.addr, bytes));
    let reason = status.split_once(' ').map_or("", |(_, r)| r);
    let want = format!(
        "Status: {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{reason}\n",
        reason.len() + 1
    );
    assert_eq!(out, want);
    assert_serves(&s.addr);
}

#[test]
fn get_golden_response() {
    let s = server();
    let out = exchange(&s.addr, &request("GET", "/hello", b""));
    assert_eq!(text(&out), text(HELLO));
}

#[test]
fn unix_socket_get_golden_response() {
    let dir = gatekit_testkit::public_tempdir();
    let path = dir.path().join("scgi.sock");
    let s = start(&format!("unix:{}", path.display()), config());
    let out = exchange(&s.addr, &request("GET", "/hello", b""));
    assert_eq!(text(&out), text(HELLO));
}

#[test]
fn post_body_is_echoed() {
    let s = server();
    // Over the 512 KiB memory threshold: spooled to a temp file.
    let body = gatekit_testkit::pattern(3 * 1024 * 1024 + 7);
    let out = exchange(&s.addr, &request("POST", "/echo", &body));
    let head = format!(
        "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert!(out.starts_with(head.as_bytes()), "{}", text(&out[..200]));
    assert!(out[head.len()..] == body[..], "echoed body differs");
}

#[test]
fn head_and_body_split_across_writes() {
    let s = server();
    let wire = request("POST", "/echo", b"split body");
    let mut c = TcpStream::connect(s.tcp()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for piece in wire.chunks(5) {
        c.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert!(text(&out).ends_with("\r\n\r\nsplit body"), "{}", text(&out));
}

#[test]
fn extra_bytes_after_the_body_are_ignored() {
    let s = server();
    let mut wire = request("POST", "/echo", b"abc");
    wire.extend_from_slice(b"garbage after the body");
    let out = text(&exchange(&s.addr, &wire));
    assert!(out.ends_with("Content-Length: 3\r\n\r\nabc"), "{out}");
}

#[test]
fn streamed_response_ends_with_the_connection() {
    let s = server();
    let out = exchange(&s.addr, &request("GET", "/stream", b""));
    assert_eq!(
        text(&out),
        "Content-Type: text/plain\r\n\r\none\ntwo\nthree\n"
    );
}

#[test]
fn file_wrapper_is_sent_whole() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let path = big_file(dir.path(), 5);
    let uri = format!("/file?{}", path.display());
    let out = exchange(&s.addr, &request("GET", &uri, b""));
    let want = std::fs::read(&path).unwrap();
    let head = format!(
        "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        want.len()
    );
    assert!(out.starts_with(head.as_bytes()), "{}", text(&out[..200]));
    assert!(out[head.len()..] == want[..], "file body differs");
}

#[test]
fn environ_has_derived_script_name_and_path_info() {
    let s = server();
    // nginx's stock scgi_params: no SCRIPT_NAME, no PATH_INFO.
    let wire = head(&[
        (b"CONTENT_LENGTH", b"0"),
        (b"REQUEST_METHOD", b"GET"),
        (b"REQUEST_URI", b"/env?x=%41"),
        (b"QUERY_STRING", b"x=%41"),
        (b"DOCUMENT_URI", b"/env"),
        (b"SCGI", b"1"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"HTTPS", b""),
    ]);
    let out = text(&exchange(&s.addr, &wire));
    for line in [
        "SCRIPT_NAME = ''",
        "PATH_INFO = '/env'",
        "QUERY_STRING = 'x=%41'",
        "SCGI = '1'",
        "CONTENT_LENGTH = '0'",
        "wsgi.multithread = True",
        "wsgi.multiprocess = False",
        "wsgi.run_once = False",
        "wsgi.url_scheme = 'http'",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} missing:\n{out}");
    }
}

#[test]
fn non_utf8_names_and_values_are_served() {
    let s = server();
    let wire = head(&[
        (b"CONTENT_LENGTH", b"0"),
        (b"SCGI", b"1"),
        (b"REQUEST_METHOD", b"GET"),
        (b"PATH_INFO", b"/env"),
        (b"HTTP_X_\xff", b"caf\xe9"),
        (b"HTTP_X_LATIN", b"\xc0\xaf\x80"),
    ]);
    let out = text(&exchange(&s.addr, &wire));
    assert!(out.starts_with("Content-Type: text/plain"), "{out}");
    assert!(
        out.lines().any(|l| l == "HTTP_X_LATIN = '\\xc0\\xaf\\x80'"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l == "HTTP_X_\u{fffd} = 'caf\\xe9'"),
        "{out}"
    );
}

#[test]
fn app_panic_is_500_and_the_server_keeps_serving() {
    let s = server();
    let out = text(&exchange(&s.addr, &request("GET", "/panic", b"")));
    assert_eq!(
        out,
        "Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 59\r\n\r\n\
         A server error occurred.  Please contact the administrator."
    );
    assert_serves(&s.addr);
}

// --- malformed heads: one named test each -------------------------------

#[test]
fn leading_zero_length_is_400() {
    let s = server();
    assert_refused(
        &s,
        b"024:CONTENT_LENGTH\x000\x00SCGI\x001\x00,",
        "400 Bad Request",
    );
}

#[test]
fn eleven_digit_length_is_refused_at_once() {
    let s = server();
    // scgi 0.3.4 indexed past a 10-byte array here. The length passes the
    // 64 KiB head limit at its sixth digit: 431, without waiting for more.
    assert_refused(&s, b"99999999999:", "431 Request Header Fields Too Large");
}

#[test]
fn eleven_digit_length_is_400_under_a_huge_head_limit() {
    let mut c = config();
    c.limits = Limits::default().with_max_head(usize::MAX);
    let s = start("127.0.0.1:0", c);
    assert_refused(&s, b"99999999999:", "400 Bad Request");
}

#[test]
fn nine_gigabyte_length_does_not_allocate() {
    let s = server();
    // scgi 0.3.4 allocated 9.3 GB for these 11 bytes. Refused from the
    // length prefix alone; the client need not close its side.
    let started = Instant::now();
    assert_refused(&s, b"9999999999:", "431 Request Header Fields Too Large");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn missing_trailing_comma_is_400() {
    let s = server();
    assert_refused(
        &s,
        b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;",
        "400 Bad Request",
    );
}

#[test]
fn head_cut_short_is_400() {
    let s = server();
    // The client sends no comma and half-closes.
    let mut c = TcpStream::connect(s.tcp()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00")
        .unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert!(
        text(&out).starts_with("Status: 400 Bad Request\r\n"),
        "{}",
        text(&out)
    );
    assert_serves(&s.addr);
}

#[test]
fn body_cut_short_is_400() {
    let s = server();
    let mut wire = request("POST", "/echo", b"0123456789");
    wire.truncate(wire.len() - 4);
    let mut c = TcpStream::connect(s.tcp()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&wire).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert!(
        text(&out).starts_with("Status: 400 Bad Request\r\n"),
        "{}",
        text(&out)
    );
    assert_serves(&s.addr);
}

#[test]
fn content_length_not_first_is_400() {
    let s = server();
    assert_refused(
        &s,
        &netstring(b"SCGI\x001\x00CONTENT_LENGTH\x000\x00"),
        "400 Bad Request",
    );
}

#[test]
fn scgi_header_missing_is_400() {
    let s = server();
    assert_refused(
        &s,
        &netstring(b"CONTENT_LENGTH\x000\x00REQUEST_METHOD\x00GET\x00"),
        "400 Bad Request",
    );
}

#[test]
fn scgi_version_two_is_400() {
    let s = server();
    assert_refused(
        &s,
        &netstring(b"CONTENT_LENGTH\x000\x00SCGI\x002\x00"),
        "400 Bad Request",
    );
}

#[test]
fn duplicate_names_are_400() {
    let s = server();
    assert_refused(
        &s,
        &netstring(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00A\x00x\x00A\x00y\x00"),
        "400 Bad Request",
    );
}

#[test]
fn bad_content_length_is_400() {
    let s = server();
    assert_refused(
        &s,
        &netstring(b"CONTENT_LENGTH\x00-1\x00SCGI\x001\x00"),
        "400 Bad Request",
    );
}

#[test]
fn not_a_netstring_is_400() {
    let s = server();
    assert_refused(&s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request");
}

#[test]
fn head_over_the_limit_is_431() {
    let mut c = config();
    c.limits = Limits::default().with_max_head(200);
    let s = start("127.0.0.1:0", c);
    let filler = vec![b'x'; 300];
    let wire = head(&[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"X", &filler)]);
    assert_refused(&s, &wire, "431 Request Header Fields Too Large");
}

#[test]
fn body_over_the_limit_is_413() {
    let mut c = config();
    c.spool = c.spool.with_max_body(1000);
    let s = start("127.0.0.1:0", c);
    // Refused from CONTENT_LENGTH, before the body is read.
    let wire = head(&[(b"CONTENT_LENGTH", b"1001"), (b"SCGI", b"1")]);
    assert_refused(&s, &wire, "413 Content Too Large");
    let ok = request("POST", "/echo", &[b'a'; 1000]);
    assert!(
        text(&exchange(&s.addr, &ok)).starts_with("Content-Type: application/octet-stream\r\n")
    );
}

#[test]
fn content_length_over_u64_is_413() {
    let s = server();
    assert_refused(
        &s,
        &netstring(b"CONTENT_LENGTH\x0018446744073709551616\x00SCGI\x001\x00"),
        "413 Content Too Large",
    );
}

#[test]
fn silent_client_gets_408_after_the_request_timeout() {
    let mut c = config();
    c.engine.request_timeout = Duration::from_millis(300);
    let s = start("127.0.0.1:0", c);
    let mut conn = TcpStream::connect(s.tcp()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"24:CONTENT_LEN").unwrap();
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    assert!(
        text(&out).starts_with("Status: 408 Request Timeout\r\n"),
        "{}",
        text(&out)
    );
    assert_serves(&s.addr);
}

// --- the allow-list ------------------------------------------------------

#[test]
fn peer_not_in_the_allow_list_is_closed() {
    let mut c = config();
    c.allow = vec!["10.0.0.0/8".parse().unwrap(), "::2".parse().unwrap()];
    let s = start("127.0.0.1:0", c);
    let started = Instant::now();
    // Not even a request: the connection is closed without waiting for one.
    let mut conn = TcpStream::connect(s.tcp()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    assert!(out.is_empty(), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    // With a request: closed, nothing served.
    assert!(exchange(&s.addr, &request("GET", "/hello", b"")).is_empty());
}

#[test]
fn loopback_is_allowed_by_default_and_unix_peers_always() {
    assert_eq!(
        gatekit_scgi::ServerConfig::default().allow,
        IpNet::loopback()
    );
    let dir = gatekit_testkit::public_tempdir();
    let path = dir.path().join("scgi.sock");
    let mut c = config();
    c.allow = Vec::new();
    let s = start(&format!("unix:{}", path.display()), c);
    assert_serves(&s.addr);
}
