//! The router on gatekit's own HTTP server, driven by curl.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gatekit_testkit::curl;

use crate::common::{self, check_common, check_sse};

fn no_ctx(what: &str) -> String {
    what.to_owned()
}

#[test]
fn http_json_cookies_panic() {
    let s = common::http();
    check_common(&|p| s.url(p), &no_ctx);
}

#[test]
fn http_form_post() {
    let s = common::http();
    let r = curl(&["--data", "name=Ada+L%C3%B6w"], &s.url("/form"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "Hello, Ada Löw!\n");
    // Without the form content type axum refuses it: the header got through.
    let r = curl(
        &["--data", "name=x", "-H", "Content-Type: text/plain"],
        &s.url("/form"),
    );
    assert_eq!(r.status, 415, "{}", r.text());
}

#[test]
fn http_path_param() {
    let s = common::http();
    let r = curl(&[], &s.url("/users/42"));
    assert_eq!((r.status, r.text().as_str()), (200, "user 42\n"));
    let r = curl(&[], &s.url("/users/not-a-number"));
    assert_eq!(r.status, 400);
    let r = curl(&[], &s.url("/nowhere"));
    assert_eq!(r.status, 404);
}

#[test]
fn http_two_set_cookie_headers() {
    let s = common::http();
    let r = curl(&[], &s.url("/cookies"));
    assert_eq!(
        r.headers("set-cookie"),
        ["a=1; Path=/", "b=2; Path=/; HttpOnly"],
        "{}",
        r.head
    );
}

/// Sends raw bytes as a request and returns the status code.
fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn http_hostile_paths_do_not_panic() {
    let s = common::http();
    // %2F is decoded into PATH_INFO (CGI has no way to keep it): a plain slash.
    let r = curl(&[], &s.url("/path/a%2Fb"));
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("rest=a/b\n"), "{}", r.text());
    // %FF is a 0xFF byte in PATH_INFO, encoded back as %FF; axum's Path
    // extractor refuses non-UTF-8: a 400, not a panic.
    let r = curl(&[], &s.url("/path/x%FFy%2F%00"));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = curl(&[], &s.url("/%FF%2F"));
    assert_eq!(r.status, 404);
    // Characters a path may hold arrive as they are; the query as sent.
    let r = curl(&[], &s.url("/path/a:b@c;d=e?q=%20x&r=%FF"));
    assert_eq!(r.status, 200);
    assert!(
        r.text().ends_with("/path/a:b@c;d=e?q=%20x&r=%FF\n"),
        "{}",
        r.text()
    );
    // A raw 0xFF byte and a space-free but odd target straight on the wire.
    for request in [
        &b"GET /path/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /path/%zz%%/\x7e HTTP/1.1\r\nHost: \xff\xff\r\nConnection: close\r\n\r\n",
        b"GET //users//3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let status = raw_status(s.addr, request);
        assert!(
            (200..500).contains(&status),
            "{status} for {}",
            String::from_utf8_lossy(request)
        );
    }
    // Still serving.
    let r = curl(&[], &s.url("/users/1"));
    assert_eq!(r.status, 200);
}

#[test]
fn http_sse_first_event_early() {
    let s = common::http();
    check_sse(&s.url("/sse"), &no_ctx);
}

#[test]
fn http_panic_is_500_and_server_goes_on() {
    let s = common::http();
    for _ in 0..3 {
        let r = curl(&[], &s.url("/panic"));
        assert_eq!(r.status, 500);
        let r = curl(&[], &s.url("/"));
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Hello from axum on gatekit!\n");
    }
}

#[test]
fn http_request_body_streams_in_blocks() {
    let s = common::http();
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("up.bin");
    std::fs::write(&upload, gatekit_testkit::pattern(1_000_000)).unwrap();
    let at = format!("@{}", upload.display());
    let r = curl(&["--data-binary", &at], &s.url("/count"));
    assert_eq!(r.status, 200, "{}", r.text());
    // 64 KiB blocks, never the whole body at once.
    assert_eq!(r.text(), "1000000 bytes in 16 blocks\n");
    // Chunked upload (no Content-Length from the client).
    let r = curl(
        &["--data-binary", &at, "-H", "Transfer-Encoding: chunked"],
        &s.url("/count"),
    );
    assert_eq!(r.text(), "1000000 bytes in 16 blocks\n");
}

#[test]
fn http_request_extensions_and_head() {
    let s = common::http();
    let r = curl(&["-H", "Host: example.test:8080"], &s.url("/info?x=1"));
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("uri=http://example.test:8080/info?x=1\n"),
        "{text}"
    );
    assert!(text.contains("remote=127.0.0.1:"), "{text}");
    assert!(text.contains("gateway=CGI/1.1\n"), "{text}");
    assert!(text.contains("version=HTTP/1.1\n"), "{text}");
    // HEAD: GET's Content-Length, no body.
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"HEAD /users/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\ncontent-length: 7\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}
