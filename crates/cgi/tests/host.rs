//! `CgiHost` run in-process through a memory gateway, against the real
//! scripts in tests/scripts (POSIX shell and Python): the environment a
//! script sees, bodies both ways, `Status:`, local redirects, malformed
//! output, the timeout killing the script's process group, refused names.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use gatekit_cgi::host::CgiHost;
use gatekit_core::Config;
use gatekit_core::testing::memory_gateway;
use gatekit_testkit::{is_gone, pattern, set_mode};

/// The test scripts copied into a temp dir, executable, plus `noexec.sh`
/// (mode 0644) and a hidden `.secret.sh`.
fn scripts() -> tempfile::TempDir {
    let dir = gatekit_testkit::public_tempdir();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dir.path().join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
        set_mode(&to, 0o755);
    }
    let noexec = dir.path().join("noexec.sh");
    std::fs::copy(dir.path().join("env.sh"), &noexec).unwrap();
    set_mode(&noexec, 0o644);
    let hidden = dir.path().join(".secret.sh");
    std::fs::copy(dir.path().join("env.sh"), &hidden).unwrap();
    set_mode(&hidden, 0o755);
    dir
}

struct Reply {
    status: String,
    head: String,
    body: Vec<u8>,
    errors: String,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn run(host: &CgiHost, vars: &[(&str, &[u8])], input: &[u8]) -> Reply {
    let (mut gateway, errors) = memory_gateway(vars, input, Config::gateway());
    gateway.run(host);
    let out = gateway.transport().output().clone();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .lines()
        .find_map(|l| l.strip_prefix("Status: "))
        .unwrap_or_default()
        .to_owned();
    Reply {
        status,
        head,
        body: out[split + 4..].to_vec(),
        errors: errors.text(),
    }
}

fn get(host: &CgiHost, script_name: &str, path_info: &str) -> Reply {
    run(
        host,
        &[
            ("SCRIPT_NAME", script_name.as_bytes()),
            ("PATH_INFO", path_info.as_bytes()),
        ],
        b"",
    )
}

#[test]
fn environment_is_built_from_the_request() {
    let dir = scripts();
    let host = CgiHost::new(dir.path()).unwrap().env("EXTRA", "given");
    let r = run(
        &host,
        &[
            ("SCRIPT_NAME", b"/cgi"),
            ("PATH_INFO", b"/env.sh/a/b"),
            ("QUERY_STRING", b"x=1&y=2"),
            ("REQUEST_METHOD", b"GET"),
            ("REQUEST_URI", b"/cgi/env.sh/a/b?x=1&y=2"),
            ("DOCUMENT_ROOT", b"/srv/www"),
            ("REMOTE_ADDR", b"127.0.0.1"),
            ("REMOTE_PORT", b"40000"),
            ("SERVER_SOFTWARE", b"nginx/1.22"),
            ("HTTP_X_BYTES", b"caf\xe9"),
            ("HTTP_PROXY", b"http://evil.example/"),
            ("FCGI_ROLE", b"RESPONDER"),
        ],
        b"",
    );
    assert_eq!(r.status, "200 OK", "{}", r.errors);
    let lines: Vec<&[u8]> = r.body.split(|&b| b == b'\n').collect();
    let has = |line: &[u8]| lines.contains(&line);
    for want in [
        &b"GATEWAY_INTERFACE=CGI/1.1"[..],
        b"SCRIPT_NAME=/cgi/env.sh",
        b"PATH_INFO=/a/b",
        b"PATH_TRANSLATED=/srv/www/a/b",
        b"QUERY_STRING=x=1&y=2",
        b"REQUEST_METHOD=GET",
        b"REQUEST_URI=/cgi/env.sh/a/b?x=1&y=2",
        b"REMOTE_ADDR=127.0.0.1",
        b"REMOTE_PORT=40000",
        b"SERVER_NAME=127.0.0.1",
        b"SERVER_PORT=80",
        b"SERVER_PROTOCOL=HTTP/1.0",
        b"SERVER_SOFTWARE=nginx/1.22",
        b"HTTP_X_BYTES=caf\xe9",
        b"EXTRA=given",
    ] {
        assert!(
            has(want),
            "{} missing in\n{}",
            String::from_utf8_lossy(want),
            r.text()
        );
    }
    let script = dir.path().canonicalize().unwrap().join("env.sh");
    let filename = format!("SCRIPT_FILENAME={}", script.display());
    assert!(has(filename.as_bytes()), "{}", r.text());
    let cwd = format!("cwd={}", dir.path().canonicalize().unwrap().display());
    assert!(has(cwd.as_bytes()), "{}", r.text());
    let text = r.text();
    assert!(!text.contains("HTTP_PROXY"), "httpoxy: {text}");
    assert!(!text.contains("FCGI_ROLE"), "{text}");
    assert!(!text.contains("CONTENT_LENGTH"), "{text}");
    // Nothing from this process's environment but PATH.
    assert!(text.lines().any(|l| l.starts_with("PATH=")), "{text}");
    for name in ["HOME=", "CARGO", "RUST"] {
        assert!(
            !text.lines().any(|l| l.starts_with(name)),
            "{name} leaked: {text}"
        );
    }
}

#[test]
fn one_script_for_every_request() {
    let dir = scripts();
    let host = CgiHost::new(dir.path().join("env.sh")).unwrap();
    assert!(!host.is_directory());
    let r = get(&host, "/app", "/any/path");
    assert_eq!(r.status, "200 OK");
    assert!(r.text().contains("\nSCRIPT_NAME=/app\n"), "{}", r.text());
    assert!(r.text().contains("\nPATH_INFO=/any/path\n"), "{}", r.text());
}

#[test]
fn bodies_both_ways_do_not_deadlock() {
    let dir = scripts();
    let host = CgiHost::new(dir.path()).unwrap();
    // Larger than any pipe buffer, so the script writes while we write.
    let body = pattern(4 * 1024 * 1024);
    for script in ["/echo.sh", "/echo.py"] {
        let len = body.len().to_string();
        let r = run(
            &host,
            &[
                ("REQUEST_METHOD", b"POST"),
                ("SCRIPT_NAME", b""),
                ("PATH_INFO", script.as_bytes()),
                ("CONTENT_LENGTH", len.as_bytes()),
                ("CONTENT_TYPE", b"application/octet-stream"),
            ],
            &body,
        );
        assert_eq!(r.status, "200 OK", "{script}: {}", r.errors);
        assert!(r.body == body, "{script}: {} bytes back", r.body.len());
    }
}

#[test]
fn python_script_headers_and_stderr() {
    let dir = scripts();
    let host = CgiHost::new(dir.path()).unwrap();
    let r = run(
        &host,
        &[
            ("SCRIPT_NAME", b"/cgi"),
            ("PATH_INFO", b"/echo.py/p/q"),
            ("QUERY_STRING", b"k=v"),
        ],
        b"",
    );
    assert_eq!(r.status, "200 OK", "{}", r.errors);
    assert!(r.head.contains("X-Path-Info: /p/q"), "{}", r.head);
    assert!(r.head.contains("X-Query: k=v"), "{}", r.head);
    assert!(
        r.errors.contains("gatekit-python-marker GET"),
        "{}",
        r.errors
    );
}

#[test]
fn status_and_stderr_pass_through() {
    let dir = scripts();
    let host = CgiHost::new(dir.path()).unwrap();
    let r = get(&host, "", "/status.sh");
    assert_eq!(r.status, "404 Not Here");
    assert_eq!(r.text(), "no such thing\n");
    let r = get(&host, "", "/stderr.sh");
    assert_eq!(r.status, "200 OK");
    assert!(
        r.errors
            .contains("gatekit-stderr-marker one\ngatekit-stderr-marker two\n"),
        "{}",
        r.errors
    );
}

#[test]
fn local_redirect_is_followed_as_a_get() {
    let dir = scripts();
    let host = CgiHost::new(dir.path()).unwrap();
    let r = run(
        &host,
        &[
            ("REQUEST_METHOD", b"POST"),
            ("SCRIPT_NAME", b"/cgi"),
            ("PATH_INFO", b"/redirect.sh"),
            ("CONTENT_LENGTH", b"3"),
            ("CONTENT_TYPE", b"text/plain"),
        ],
        b"abc",
    );
    assert_eq!(r.status, "200 OK", "{}", r.errors);
    let text = r.text();
    for want in [
        "\nREQUEST_METHOD=GET\n",
        "\nSCRIPT_NAME=/cgi/env.sh\n",
        "\nPATH_INFO=/redirected\n",
        "\nQUERY_STRING=via=redirect\n",
        "\nREQUEST_URI=/cgi/env.sh/redirected?via=redirect\n",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    assert!(!text.contains("CONTENT_LENGTH"), "{text}");
}

#[test]
fn redirect_loops_are_bounded() {
    let dir = scripts();
    let looping = dir.path().join("loop.sh");
    std::fs::write(&looping, "#!/bin/sh\nprintf 'Location: /loop.sh\\n\\n'\n").unwrap();
    set_mode(&looping, 0o755);
    let host = CgiHost::new(dir.path()).unwrap();
    let r = get(&host, "", "/loop.sh");
    assert_eq!(r.status, "502 Bad Gateway");
    assert!(r.errors.contains("local redirects"), "{}", r.errors);
}

#[test]
fn client_redirect_gets_302() {
    let dir = scripts();
    let script = dir.path().join("away.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Location: http://example.com/x\\r\\n\\r\\n'\n",
    )
    .unwrap();
    set_mode(&script, 0o755);
    let host = CgiHost::new(&script).unwrap();
    let r = get(&host, "", "");
    assert_eq!(r.status, "302 Found");
    assert!(
        r.head.contains("Location: http://example.com/x"),
        "{}",
        r.head
    );
}

#[test]
fn malformed_output_is_502() {
    let dir = scripts();
    let host = CgiHost::new(dir.path()).unwrap();
    let r = get(&host, "", "/garbage.sh");
    assert_eq!(r.status, "502 Bad Gateway");
    assert!(r.errors.contains("malformed output"), "{}", r.errors);

    let big = dir.path().join("big.sh");
    std::fs::write(&big, "#!/bin/sh\nprintf 'X-Big: %0200d\\n\\n' 0\n").unwrap();
    set_mode(&big, 0o755);
    let host = CgiHost::new(dir.path()).unwrap().max_header_bytes(100);
    let r = get(&host, "", "/big.sh");
    assert_eq!(r.status, "502 Bad Gateway");
    assert!(r.errors.contains("too large"), "{}", r.errors);

    let silent = dir.path().join("silent.sh");
    std::fs::write(&silent, "#!/bin/sh\nexit 3\n").unwrap();
    set_mode(&silent, 0o755);
    let r = get(&host, "", "/silent.sh");
    assert_eq!(r.status, "502 Bad Gateway");
    assert!(r.errors.contains("no output"), "{}", r.errors);
    assert!(r.errors.contains("exit status: 3"), "{}", r.errors);
}

#[test]
fn refused_names_are_404() {
    let dir = scripts();
    let host = CgiHost::new(dir.path()).unwrap();
    for path in [
        "/noexec.sh",
        "/.secret.sh",
        "/missing.sh",
        "/../env.sh",
        "/",
        "",
    ] {
        let r = get(&host, "/cgi", path);
        assert_eq!(r.status, "404 Not Found", "{path}");
    }
}

/// The pid a script wrote to `path` (waiting up to 5 s for it).
fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn timeout_kills_the_process_group() {
    let dir = scripts();
    let pids = tempfile::tempdir().unwrap();
    let host = CgiHost::new(dir.path())
        .unwrap()
        .timeout(Duration::from_secs(1))
        .env("PID_DIR", pids.path());
    let started = Instant::now();
    let r = get(&host, "", "/hang.sh");
    let took = started.elapsed();
    assert_eq!(r.status, "504 Gateway Timeout");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(r.errors.contains("timed out"), "{}", r.errors);
    let script = read_pid(&pids.path().join("script.pid"));
    let grandchild = read_pid(&pids.path().join("grandchild.pid"));
    // The script was reaped by the host; the grandchild was killed with
    // its group (reaped by init, or a zombie of it for a moment).
    assert!(is_gone(script), "script {script} still there");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !is_gone(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        is_gone(grandchild),
        "grandchild sleep {grandchild} survived"
    );
}

/// A `start_response` that records the status only.
#[derive(Default)]
struct Sink(Option<String>);

impl gatekit_core::ResponseSink for Sink {
    fn start_response(
        &mut self,
        status: gatekit_core::Status,
        _headers: gatekit_core::Headers,
        _error: Option<gatekit_core::BoxError>,
    ) -> Result<(), gatekit_core::StartError> {
        self.0 = Some(status.as_str().to_owned());
        Ok(())
    }

    fn write(&mut self, _data: &[u8]) -> std::io::Result<()> {
        Ok(())
    }

    fn headers_sent(&self) -> bool {
        false
    }
}

#[test]
fn client_going_away_kills_the_script() {
    use gatekit_core::App;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = scripts();
    let pids = tempfile::tempdir().unwrap();
    let host = CgiHost::new(dir.path())
        .unwrap()
        .env("PID_DIR", pids.path());
    let mut environ: gatekit_core::Environ = [("SCRIPT_NAME", ""), ("PATH_INFO", "/hang.sh")]
        .into_iter()
        .collect();
    let cancel = Arc::new(AtomicBool::new(false));
    environ.set_cancel_flag(Arc::clone(&cancel));
    let pid_file = pids.path().join("grandchild.pid");
    let flag = Arc::clone(&cancel);
    let canceller = std::thread::spawn(move || {
        let _ = read_pid(&pid_file);
        flag.store(true, Ordering::SeqCst);
    });
    let mut sink = Sink::default();
    let started = Instant::now();
    let result = host.call(
        &mut environ,
        &mut gatekit_core::StartResponse::new(&mut sink),
    );
    canceller.join().unwrap();
    assert!(result.is_err(), "a cancelled request has no response");
    assert!(sink.0.is_none());
    assert!(started.elapsed() < Duration::from_secs(10));
    let script = read_pid(&pids.path().join("script.pid"));
    let grandchild = read_pid(&pids.path().join("grandchild.pid"));
    assert!(is_gone(script), "script {script} survived");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !is_gone(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        is_gone(grandchild),
        "grandchild sleep {grandchild} survived"
    );
}
