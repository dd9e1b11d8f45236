//! The HTTP front-end over real sockets on 127.0.0.1: the built binary as
//! `gatekit serve --http`, curl for the ordinary paths, raw bytes for every
//! framing and smuggling case.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{curl, free_port, gatekit_bin, pattern, stop, wait_for_port};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn start(extra: &[&str]) -> Server {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("gatekit-http-test-{port}.log"));
    let mut child = Command::new(gatekit_bin())
        .env_clear()
        .args(["serve", "--http", &addr])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    Server { child, port }
}

fn url(s: &Server, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", s.port)
}

/// Sends raw bytes, half-closes, and reads everything until the server closes.
fn raw(s: &Server, request: &[u8]) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(request).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends raw bytes and reads until the server closes, without half-closing
/// (the server must close on its own).
fn raw_open(s: &Server, request: &[u8]) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(request).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[track_caller]
fn assert_status(response: &str, status: &str) {
    assert!(
        response.starts_with(&format!("HTTP/1.1 {status}")),
        "want {status}, got:\n{response}"
    );
}

#[test]
fn get_demo_app() {
    let s = start(&[]);
    let r = curl(&[], &url(&s, "/p%61th/x?query=test"));
    assert_eq!(r.status, 200);
    let body = r.text();
    for line in [
        "PATH_INFO = '/path/x'",
        "QUERY_STRING = 'query=test'",
        "REQUEST_METHOD = 'GET'",
        "SERVER_PROTOCOL = 'HTTP/1.1'",
        "SCRIPT_NAME = ''",
        "REMOTE_ADDR = '127.0.0.1'",
        "wsgi.multithread = True",
        "wsgi.run_once = False",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} missing:\n{body}");
    }
    assert_eq!(r.header("Server").as_deref(), Some("gatekit/0.1.0"));
    assert!(r.header("Date").is_some());
}

#[test]
fn keep_alive_reuses_the_connection() {
    let s = start(&[]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..3 {
        c.write_all(format!("GET /n{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let text = read_one_response(&mut c);
        assert_status(&text, "200");
        assert!(text.contains(&format!("PATH_INFO = '/n{i}'")), "{text}");
        assert!(!text.contains("Connection: close"), "{text}");
    }
}

/// Reads one response framed by Content-Length.
fn read_one_response(c: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            c.read(&mut byte).unwrap(),
            1,
            "connection closed early: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0; len];
    c.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = start(&[]);
    let out = raw(
        &s,
        b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let first = out.find("PATH_INFO = '/first'").unwrap();
    let second = out.find("PATH_INFO = '/second'").unwrap();
    let third = out.find("PATH_INFO = '/third'").unwrap();
    assert!(first < second && second < third);
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3);
}

#[test]
fn http10_gets_connection_close() {
    let s = start(&[]);
    let r = curl(&["--http1.0"], &url(&s, "/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection").as_deref(), Some("close"));
    // HTTP/1.0 keep-alive is honoured: a second request on the same connection.
    let out = raw(
        &s,
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
    );
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(
        out.contains("Connection: keep-alive\r\n") && out.contains("PATH_INFO = '/b'"),
        "{out}"
    );
}

#[test]
fn head_has_headers_but_no_body() {
    let s = start(&[]);
    let out = raw(
        &s,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_status(&out, "200");
    assert!(out.contains("Content-Length: "), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "a body was sent: {out}");
}

#[test]
fn post_with_content_length_echoes() {
    let s = start(&["echo"]);
    let data = pattern(3 * 1024 * 1024);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &data).unwrap();
    // curl sends `Expect: 100-continue` for a body this size.
    let r = curl(
        &["--data-binary", &format!("@{}", file.path().display())],
        &url(&s, "/"),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body == data,
        "echoed body differs ({} vs {} bytes)",
        r.body.len(),
        data.len()
    );
}

#[test]
fn chunked_upload_is_dechunked() {
    let s = start(&["echo"]);
    let data = pattern(1024 * 1024 + 7);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &data).unwrap();
    let r = curl(
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &format!("@{}", file.path().display()),
        ],
        &url(&s, "/"),
    );
    assert_eq!(r.status, 200);
    assert!(r.body == data, "echoed body differs");
    let out = raw(
        &s,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    );
    assert_status(&out, "200");
    assert!(
        out.contains("Content-Length: 11\r\n") && out.ends_with("hello world"),
        "{out}"
    );
}

#[test]
fn expect_100_continue_is_answered() {
    let s = start(&["echo"]);
    let out = raw(
        &s,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nping",
    );
    assert!(
        out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{out}"
    );
    assert!(out.ends_with("ping"));
}

#[test]
fn absolute_form_target() {
    let s = start(&[]);
    let out = raw(&s, b"GET http://example.test:8080/abs/path?q=1 HTTP/1.1\r\nHost: ignored\r\nConnection: close\r\n\r\n");
    assert_status(&out, "200");
    assert!(
        out.contains("PATH_INFO = '/abs/path'") && out.contains("QUERY_STRING = 'q=1'"),
        "{out}"
    );
    assert!(out.contains("HTTP_HOST = 'example.test:8080'"), "{out}");
}

#[test]
fn percent_ff_path_is_a_byte() {
    let s = start(&[]);
    let out = raw(
        &s,
        b"GET /caf%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(out.contains("PATH_INFO = '/caf\\xff'"), "{out}");
}

// ---- framing and smuggling: 400 (or the codec's status) and close ----

fn refused(request: &[u8], status: &str) {
    let s = start(&[]);
    let out = raw_open(&s, request);
    assert_status(&out, status);
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert_eq!(
        out.matches("HTTP/1.1").count(),
        1,
        "a second response was sent: {out}"
    );
}

#[test]
fn cl_and_te_together_rejected() {
    refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "400");
}

#[test]
fn duplicate_content_length_rejected() {
    refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "400",
    );
}

#[test]
fn invalid_content_length_rejected() {
    refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        "400",
    );
}

#[test]
fn bad_chunk_size_rejected() {
    refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "400",
    );
}

#[test]
fn obs_fold_rejected() {
    refused(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
        "400",
    );
}

#[test]
fn bare_cr_rejected() {
    refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", "400");
}

#[test]
fn header_name_with_space_rejected() {
    refused(b"GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", "400");
}

#[test]
fn missing_host_on_http11_rejected() {
    refused(b"GET / HTTP/1.1\r\n\r\n", "400");
}

#[test]
fn unknown_transfer_coding_is_501() {
    refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "501",
    );
}

#[test]
fn oversized_head_is_431() {
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..2000 {
        req.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(40)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    refused(&req, "431");
}

#[test]
fn body_over_the_limit_is_413() {
    let s = start(&["--max-body", "1000", "echo"]);
    let out = raw_open(
        &s,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n",
    );
    assert_status(&out, "413");
    let mut chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(format!("7d0\r\n{}\r\n", "x".repeat(2000)).as_bytes());
    let out = raw_open(&s, &chunked);
    assert_status(&out, "413");
}

#[test]
fn slow_head_is_408() {
    let s = start(&["--timeout", "1"]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert_status(&String::from_utf8_lossy(&out), "408");
}

#[test]
fn sigterm_lets_the_server_exit_cleanly() {
    let mut s = start(&[]);
    assert_eq!(curl(&[], &url(&s, "/")).status, 200);
    let _ = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn access_log_in_common_log_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let s = start(&["--access-log", log.to_str().unwrap()]);
    let r = curl(&[], &url(&s, "/logged?x=1"));
    assert_eq!(r.status, 200);
    let r = curl(&["-X", "POST", "--data-binary", "abc"], &url(&s, "/posted"));
    assert_eq!(r.status, 200);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{text}");
    assert!(
        lines[0].contains("] \"GET /logged?x=1 HTTP/1.1\" 200 "),
        "{text}"
    );
    assert!(
        lines[1].contains("] \"POST /posted HTTP/1.1\" 200 "),
        "{text}"
    );
}
