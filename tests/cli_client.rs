//! `gatekit request` and `gatekit bench`, run as the built binary against
//! gatekit's own servers (the built binary too) over FastCGI, SCGI and HTTP,
//! on TCP and Unix sockets, and `request fastcgi` against a real php-fpm
//! started by the test.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use gatekit_testkit::wait_for_unix;

use crate::util::{free_port, gatekit_bin, pattern, require, stop, wait_for_port};

/// A process the test started, stopped by PID on drop.
struct Started {
    child: Child,
}

impl Drop for Started {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `gatekit serve --<flag> 127.0.0.1:PORT <app>`; returns it and its address.
fn serve_tcp(flag: &str, app: &str) -> (Started, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("gatekit-cli-client-{port}.log"));
    let mut child = Command::new(gatekit_bin())
        .env_clear()
        .args(["serve", &format!("--{flag}"), &addr, app])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    (Started { child }, addr)
}

/// `gatekit serve --<flag> unix:PATH <app>`.
fn serve_unix(flag: &str, app: &str, socket: &Path) -> Started {
    let child = Command::new(gatekit_bin())
        .env_clear()
        .args(["serve", &format!("--{flag}")])
        .arg(format!("unix:{}", socket.display()))
        .arg(app)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Started { child };
    wait_for_unix(socket);
    started
}

/// Runs the built binary with `args`; a 15 s I/O timeout bounds each request.
fn gatekit(args: &[&str]) -> Output {
    Command::new(gatekit_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The head a protocol's 200 response starts with: a status line, or, behind
/// FastCGI and SCGI, the app's first header (`Status: 200 OK` is left out,
/// the servers' default `omit_status_200`).
fn status_line(protocol: &str) -> &'static str {
    if protocol == "http" {
        "HTTP/1.1 200 OK\r\n"
    } else {
        "Content-Type: "
    }
}

const PROTOCOLS: [&str; 3] = ["fastcgi", "scgi", "http"];

#[test]
fn request_get_each_protocol() {
    for protocol in PROTOCOLS {
        let (_server, addr) = serve_tcp(protocol, "demo");
        let out = gatekit(&[
            "request",
            protocol,
            &addr,
            "--timeout",
            "15",
            "--header",
            "X-Test: yes",
            "/some/path?x=1",
        ]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{protocol}: {}", text(&out.stderr));
        assert!(
            stdout.starts_with(status_line(protocol)),
            "{protocol}: {stdout}"
        );
        assert!(stdout.contains("\r\n\r\nHello world!\n"), "{stdout}");
        assert!(stdout.contains("PATH_INFO = '/some/path'"), "{stdout}");
        assert!(stdout.contains("QUERY_STRING = 'x=1'"), "{stdout}");
        assert!(stdout.contains("REQUEST_METHOD = 'GET'"), "{stdout}");
        assert!(stdout.contains("HTTP_X_TEST = 'yes'"), "{stdout}");
        if protocol != "http" {
            assert!(stdout.contains("GATEWAY_INTERFACE = 'CGI/1.1'"), "{stdout}");
        }
    }
}

#[test]
fn request_post_body_each_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    let body = pattern(300_000);
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    for protocol in PROTOCOLS {
        let (_server, addr) = serve_tcp(protocol, "echo");
        let out = gatekit(&[
            "request",
            protocol,
            &addr,
            "--timeout",
            "15",
            "--data",
            &data,
            "--body-only",
            "/echo",
        ]);
        assert!(out.status.success(), "{protocol}: {}", text(&out.stderr));
        assert_eq!(out.stdout.len(), body.len(), "{protocol}");
        assert!(out.stdout == body, "{protocol}: the body came back changed");
    }
}

#[test]
fn request_body_from_stdin_and_text() {
    let (_server, addr) = serve_tcp("fastcgi", "echo");
    let mut child = Command::new(gatekit_bin())
        .args(["request", "fastcgi", &addr, "--data", "-", "/"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"from stdin").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(status_line("fastcgi")), "{stdout}");
    assert!(stdout.ends_with("\r\n\r\nfrom stdin"), "{stdout}");

    let out = gatekit(&["request", "fastcgi", &addr, "--data", "a=1&b=2", "-b", "/"]);
    assert_eq!(text(&out.stdout), "a=1&b=2");
}

#[test]
fn request_over_unix_sockets() {
    let dir = tempfile::tempdir().unwrap();
    for protocol in PROTOCOLS {
        let socket = dir.path().join(format!("{protocol}.sock"));
        let _server = serve_unix(protocol, "echo", &socket);
        let addr = format!("unix:{}", socket.display());
        let out = gatekit(&[
            "request",
            protocol,
            &addr,
            "--timeout",
            "15",
            "--data",
            "over unix",
            "/",
        ]);
        assert!(out.status.success(), "{protocol}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with(status_line(protocol)), "{stdout}");
        assert!(
            stdout.ends_with("\r\n\r\nover unix"),
            "{protocol}: {stdout}"
        );
    }
}

#[test]
fn request_params_override_defaults() {
    let (_server, addr) = serve_tcp("fastcgi", "demo");
    let out = gatekit(&[
        "request",
        "fastcgi",
        &addr,
        "-X",
        "DELETE",
        "--param",
        "REMOTE_ADDR=10.9.8.7",
        "--param",
        "EXTRA_VAR=yes",
        "--script-filename",
        "/srv/app.fcgi",
        "/app.fcgi",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("REMOTE_ADDR = '10.9.8.7'"), "{stdout}");
    assert!(stdout.contains("EXTRA_VAR = 'yes'"), "{stdout}");
    assert!(stdout.contains("REQUEST_METHOD = 'DELETE'"), "{stdout}");
    assert!(
        stdout.contains("SCRIPT_FILENAME = '/srv/app.fcgi'"),
        "{stdout}"
    );
    assert!(stdout.contains("SCRIPT_NAME = '/app.fcgi'"), "{stdout}");
}

#[test]
fn request_errors_exit_1() {
    // Nothing listens on a port that was free a moment ago.
    let addr = format!("127.0.0.1:{}", free_port());
    for protocol in PROTOCOLS {
        let out = gatekit(&["request", protocol, &addr, "/"]);
        assert_eq!(out.status.code(), Some(1), "{protocol}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("gatekit: "), "{stderr}");
        assert!(stderr.contains("cannot connect"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // An HTTP server is not a FastCGI backend: a protocol error, exit 1.
    let (_server, addr) = serve_tcp("http", "demo");
    let out = gatekit(&["request", "fastcgi", &addr, "--timeout", "5", "/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("FastCGI"),
        "{}",
        text(&out.stderr)
    );
    // Usage errors are clap's exit 2.
    let out = gatekit(&["request", "gopher", &addr, "/"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn request_broken_pipe_is_not_an_error() {
    let (_server, addr) = serve_tcp("fastcgi", "echo");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    std::fs::write(&file, pattern(4 << 20)).unwrap();
    // `head -c 1` exits after one byte; the rest meets a closed pipe.
    let script = format!(
        "'{}' request fastcgi {addr} --data @'{}' / | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        gatekit_bin().display(),
        file.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(text(&out.stdout).trim(), "0", "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// The text of a field of the one-line JSON summary.
fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let pattern = format!("\"{key}\":");
    let at = json
        .find(&pattern)
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + pattern.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap();
    &rest[..end]
}

/// A number field of the one-line JSON summary.
fn json_number(json: &str, key: &str) -> f64 {
    json_field(json, key).parse().unwrap()
}

fn bench(protocol: &str, addr: &str, extra: &[&str]) -> String {
    let mut args = vec!["bench", protocol, addr, "-c", "8", "-d", "2", "--json"];
    args.extend_from_slice(extra);
    let out = gatekit(&args);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{protocol}: {stdout} {}",
        text(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(json_number(&stdout, "requests_per_s") > 0.0, "{stdout}");
    let count = |key: &str| json_field(&stdout, key).parse::<u64>().unwrap();
    assert!(count("requests") > 0, "{stdout}");
    assert_eq!(count("errors"), 0, "{stdout}");
    assert_eq!(count("non_2xx"), 0, "{stdout}");
    assert_eq!(count("connections"), 8, "{stdout}");
    let elapsed = json_number(&stdout, "elapsed_s");
    assert!((2.0..10.0).contains(&elapsed), "{stdout}");
    let p50 = json_number(&stdout, "p50");
    let p99 = json_number(&stdout, "p99");
    let max = json_number(&stdout, "max");
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{stdout}");
    stdout
}

#[test]
fn bench_fastcgi_keep_conn_and_not() {
    let (_server, addr) = serve_tcp("fastcgi", "demo");
    let kept = bench("fastcgi", &addr, &["--keep-conn"]);
    assert!(kept.contains("\"keep_conn\":true"), "{kept}");
    let fresh = bench("fastcgi", &addr, &[]);
    assert!(fresh.contains("\"keep_conn\":false"), "{fresh}");
}

#[test]
fn bench_scgi_and_http() {
    let (_scgi, addr) = serve_tcp("scgi", "demo");
    bench("scgi", &addr, &[]);
    let (_http, addr) = serve_tcp("http", "echo");
    // A POST body on every request, over kept-alive connections.
    bench("http", &addr, &["--data", "ping", "/echo"]);
}

#[test]
fn bench_human_summary() {
    let (_server, addr) = serve_tcp("http", "demo");
    let out = gatekit(&["bench", "http", &addr, "-c", "2", "-d", "1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("requests:"), "{stdout}");
    assert!(stdout.contains("p50 "), "{stdout}");
    assert!(stdout.contains("p99 "), "{stdout}");
    assert!(stdout.contains("errors:    0"), "{stdout}");
}

#[test]
fn request_fastcgi_to_php_fpm() {
    let Some(fpm) = require(&[
        "/usr/sbin/php-fpm8.4",
        "/usr/sbin/php-fpm8.3",
        "/usr/sbin/php-fpm8.2",
        "/usr/sbin/php-fpm8.1",
        "/usr/sbin/php-fpm",
    ]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let socket = d.join("php.sock");
    std::fs::write(
        d.join("hello.php"),
        "<?php\nheader('X-Hello: yes');\nerror_log('a note from php');\n\
         echo 'Hello, ', $_GET['name'] ?? 'nobody', ' via ', $_SERVER['REQUEST_METHOD'], \
         ': ', file_get_contents('php://input'), \"\\n\";\n",
    )
    .unwrap();
    std::fs::write(
        d.join("fpm.conf"),
        format!(
            "[global]\npid = {dir}/php-fpm.pid\nerror_log = {dir}/php-fpm.log\ndaemonize = no\n\
             [test]\nlisten = {sock}\npm = static\npm.max_children = 2\n",
            dir = d.display(),
            sock = socket.display()
        ),
    )
    .unwrap();
    let mut command = Command::new(fpm);
    command
        .arg("-F")
        .arg("-y")
        .arg(d.join("fpm.conf"))
        // No php.ini: the same behaviour whatever the machine's PHP settings.
        .arg("-n")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if is_root() {
        command.arg("-R");
    }
    let fpm = Started {
        child: command.spawn().unwrap(),
    };
    wait_for_unix(&socket);
    let addr = format!("unix:{}", socket.display());
    let script = d.join("hello.php");
    let out = gatekit(&[
        "request",
        "fastcgi",
        &addr,
        "--timeout",
        "15",
        "--script-filename",
        script.to_str().unwrap(),
        "--data",
        "body bytes",
        "/hello.php?name=gatekit",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        std::fs::read_to_string(d.join("php-fpm.log")).unwrap_or_default()
    );
    assert!(stdout.contains("X-Hello: yes\r\n"), "{stdout}");
    assert!(
        stdout.ends_with("\r\n\r\nHello, gatekit via POST: body bytes\n"),
        "{stdout}"
    );
    // error_log() goes to the FastCGI STDERR stream, which goes to our stderr.
    assert!(stderr.contains("a note from php"), "{stderr}");
    // A missing script: php-fpm answers 404 itself, still a response (exit 0).
    let out = gatekit(&[
        "request",
        "fastcgi",
        &addr,
        "--script-filename",
        d.join("missing.php").to_str().unwrap(),
        "/missing.php",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Status: 404 Not Found\r\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(d.join("php-fpm.pid").exists());
    drop(fpm);
}

/// Whether the tests run as root (php-fpm then needs `-R`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
