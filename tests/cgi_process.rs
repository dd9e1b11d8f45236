//! The built binary as a CGI child (Go's re-exec trick): a controlled
//! environment in, exact bytes out.

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};

use crate::util::{gatekit_bin, pattern};

fn cgi(vars: &[(&str, &[u8])], args: &[&str], stdin: &[u8]) -> Output {
    cgi_bin(&gatekit_bin(), vars, args, stdin)
}

fn cgi_bin(bin: &std::path::Path, vars: &[(&str, &[u8])], args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env("GATEWAY_INTERFACE", "CGI/1.1");
    for (k, v) in vars {
        cmd.env(k, std::ffi::OsStr::from_bytes(v));
    }
    // A copy of the binary written just before (nph_name_...) can still be
    // open for writing in a child another test thread has forked and not
    // yet exec'd, and exec then fails with ETXTBSY: wait for it to go.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            spawned => break spawned.unwrap(),
        }
    };
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may stop reading early; a broken pipe is fine here.
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[track_caller]
fn eq_bytes(got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "\nwant: {}\n got: {}",
        want.escape_ascii(),
        got.escape_ascii()
    );
}

fn split(out: &[u8]) -> (&[u8], &[u8]) {
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block")
        + 4;
    out.split_at(at)
}

#[test]
fn demo_app_byte_exact() {
    let out = cgi(
        &[
            ("REQUEST_METHOD", b"GET"),
            ("PATH_INFO", b"/x"),
            ("QUERY_STRING", b"a=1"),
            ("SERVER_PROTOCOL", b"HTTP/1.1"),
        ],
        &[],
        b"",
    );
    assert!(out.status.success());
    let body = "Hello world!\n\n\
        GATEWAY_INTERFACE = 'CGI/1.1'\n\
        PATH_INFO = '/x'\n\
        QUERY_STRING = 'a=1'\n\
        REQUEST_METHOD = 'GET'\n\
        SERVER_PROTOCOL = 'HTTP/1.1'\n\
        wsgi.errors = <wsgi.errors>\n\
        wsgi.file_wrapper = True\n\
        wsgi.input = <wsgi.input: 0 bytes>\n\
        wsgi.multiprocess = True\n\
        wsgi.multithread = False\n\
        wsgi.run_once = True\n\
        wsgi.url_scheme = 'http'\n\
        wsgi.version = (1, 0)\n";
    let want = format!(
        "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    eq_bytes(&out.stdout, want.as_bytes());
    eq_bytes(&out.stderr, b"");
}

#[test]
fn echo_post_round_trips_a_body() {
    let data = pattern(1 << 20);
    let len = data.len().to_string();
    let out = cgi(
        &[
            ("REQUEST_METHOD", b"POST"),
            ("CONTENT_LENGTH", len.as_bytes()),
            ("CONTENT_TYPE", b"application/x-test"),
        ],
        &["serve", "echo"],
        &data,
    );
    assert!(out.status.success());
    let (head, body) = split(&out.stdout);
    eq_bytes(head, format!("Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n").as_bytes());
    assert!(body == data.as_slice(), "echoed body differs");
}

#[test]
fn input_never_reads_past_content_length() {
    let out = cgi(
        &[("REQUEST_METHOD", b"POST"), ("CONTENT_LENGTH", b"5")],
        &["serve", "echo"],
        b"hello, and more",
    );
    let (_, body) = split(&out.stdout);
    eq_bytes(body, b"hello");
}

#[test]
fn missing_content_length_means_no_body() {
    let out = cgi(
        &[("REQUEST_METHOD", b"POST")],
        &["serve", "echo"],
        b"ignored",
    );
    eq_bytes(
        &out.stdout,
        b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 0\r\n\r\n",
    );
}

#[test]
fn garbage_content_length_is_a_400() {
    for bad in [&b"abc"[..], b"-1", b"99999999999999999999999", b"1 2"] {
        let out = cgi(
            &[("REQUEST_METHOD", b"POST"), ("CONTENT_LENGTH", bad)],
            &["serve", "echo"],
            b"xyz",
        );
        assert!(out.status.success(), "{bad:?}");
        eq_bytes(
            &out.stdout,
            b"Status: 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nBad Request\n",
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid CONTENT_LENGTH"));
    }
}

#[test]
fn short_body_is_a_500_and_a_log_line_not_a_panic() {
    let out = cgi(
        &[("REQUEST_METHOD", b"POST"), ("CONTENT_LENGTH", b"100")],
        &["serve", "echo"],
        b"only ten b",
    );
    assert!(out.status.success());
    assert!(
        out.stdout
            .starts_with(b"Status: 500 Internal Server Error\r\n")
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("request body ended after 10 of 100 bytes"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn non_utf8_environment_passes_through() {
    let out = Command::new(gatekit_bin())
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "GET")
        .env("PATH_INFO", std::ffi::OsStr::from_bytes(b"/caf\xff"))
        .env(
            std::ffi::OsStr::from_bytes(b"HTTP_X_\xe9"),
            std::ffi::OsStr::from_bytes(b"\xfe\xff"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PATH_INFO = '/caf\\xff'\n"), "{text}");
    assert!(text.contains("HTTP_X_\u{fffd} = '\\xfe\\xff'\n"), "{text}");
    eq_bytes(&out.stderr, b"");
}

#[test]
fn isindex_arguments_are_ignored() {
    // RFC 3875 §4.4: a query without '=' may arrive as arguments too.
    let out = cgi(
        &[
            ("REQUEST_METHOD", b"GET"),
            ("QUERY_STRING", b"hello+w%6Frld"),
        ],
        &["hello", "world"],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("QUERY_STRING = 'hello+w%6Frld'"));
}

/// Apache mod_cgid hands the script a connected Unix socket as stdin and
/// stdout. That is a CGI request, not a FastCGI listener (outer_cgi gets this wrong).
#[test]
fn socket_stdin_under_cgi_is_still_cgi() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs_out = theirs.try_clone().unwrap();
    let mut child = Command::new(gatekit_bin())
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "POST")
        .env("CONTENT_LENGTH", "4")
        .args(["serve", "echo"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ours = ours;
    ours.write_all(b"ping").unwrap();
    let status = child.wait().unwrap();
    ours.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    ours.read_to_end(&mut out).unwrap();
    assert!(status.success());
    eq_bytes(&out, b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\nping");
}

#[test]
fn nph_name_gives_a_complete_http_response() {
    let dir = tempfile::tempdir().unwrap();
    let nph = dir.path().join("nph-demo.cgi");
    std::fs::copy(gatekit_bin(), &nph).unwrap();
    let out = cgi_bin(
        &nph,
        &[("REQUEST_METHOD", b"GET"), ("SERVER_PROTOCOL", b"HTTP/1.1")],
        &[],
        b"",
    );
    assert!(out.status.success());
    let (head, body) = split(&out.stdout);
    let head = String::from_utf8_lossy(head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\nDate: "), "{head}");
    assert!(head.contains("\r\nContent-Length: "), "{head}");
    assert!(body.starts_with(b"Hello world!\n"));
}

#[test]
fn client_gone_is_quiet() {
    let data = pattern(4 << 20);
    let len = data.len().to_string();
    let mut child = Command::new(gatekit_bin())
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "POST")
        .env("CONTENT_LENGTH", &len)
        .args(["serve", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end of stdout before the response is written.
    drop(child.stdout.take());
    let mut input = child.stdin.take().unwrap();
    input.write_all(&data).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    eq_bytes(&out.stderr, b"");
}

#[test]
fn errors_are_one_clear_line() {
    // An address in use: the bind error names the address and the cause.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(gatekit_bin())
        .env_clear()
        .args(["serve", "--http", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!("gatekit: cannot bind {addr}")),
        "{err}"
    );
    assert!(err.contains("in use"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A malformed FastCGI allow-list: one line, exit 1, before serving.
    let out = Command::new(gatekit_bin())
        .env_clear()
        .env("FCGI_WEB_SERVER_ADDRS", "127.0.0.1,not-an-address")
        .args(["serve", "--fastcgi", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("gatekit: FCGI_WEB_SERVER_ADDRS: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = Command::new(gatekit_bin())
        .env_clear()
        .args(["serve", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
