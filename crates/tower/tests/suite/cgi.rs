//! The router as a CGI program: in-process through `gatekit_cgi`'s
//! `run_with_streams` (the real CGI gateway policy over memory streams), as
//! the example binary started with a CGI environment, and under Apache
//! `mod_cgid`.

use std::io::{self, Cursor, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatekit_cgi::CgiOptions;
use gatekit_core::testing::SharedBuf;
use gatekit_testkit::{APACHE_MODULES, WebServer, curl, in_ci, set_mode};

use crate::common::{self, check_common, check_sse};

/// Each write, with when it happened.
type Writes = Arc<Mutex<Vec<(Duration, Vec<u8>)>>>;

/// An output stream that remembers when each write happened.
#[derive(Clone)]
struct Recorder {
    start: Instant,
    writes: Writes,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            writes: Arc::default(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.writes
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect()
    }

    /// When the bytes that complete `needle` were written.
    fn time_of(&self, needle: &str) -> Option<Duration> {
        let mut seen = Vec::new();
        for (t, b) in self.writes.lock().unwrap().iter() {
            seen.extend_from_slice(b);
            if String::from_utf8_lossy(&seen).contains(needle) {
                return Some(*t);
            }
        }
        None
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes
            .lock()
            .unwrap()
            .push((self.start.elapsed(), buf.to_vec()));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs one CGI request in-process; returns the output and the error log.
fn run(method: &str, path_info: &str, content_type: &str, body: &[u8]) -> (Recorder, String) {
    let app = common::app().strip_script_name(true);
    let vars: Vec<(Vec<u8>, Vec<u8>)> = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REQUEST_METHOD", method),
        ("SCRIPT_NAME", "/cgi-bin/app.cgi"),
        ("PATH_INFO", path_info),
        ("QUERY_STRING", ""),
        ("CONTENT_TYPE", content_type),
        ("CONTENT_LENGTH", &body.len().to_string()),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "192.0.2.7"),
        ("HTTP_HOST", "example.test"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    let errors = SharedBuf::new();
    let (out, _outcome) = gatekit_cgi::run_with_streams(
        &app,
        Cursor::new(body.to_vec()),
        Recorder::new(),
        errors.clone(),
        vars,
        &CgiOptions::default(),
    );
    (out, errors.text())
}

#[test]
fn cgi_in_process() {
    let (out, _) = run("POST", "/json", "application/json", br#"{"name":"cgi"}"#);
    let text = String::from_utf8(out.bytes()).unwrap();
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n{\"echo\":\"cgi\"}"), "{text}");

    let (out, _) = run("GET", "/cookies", "", b"");
    let text = String::from_utf8(out.bytes()).unwrap();
    assert!(
        text.contains("set-cookie: a=1; Path=/\r\nset-cookie: b=2; Path=/; HttpOnly\r\n"),
        "{text}"
    );

    let (out, _) = run("GET", "/info", "", b"");
    let text = String::from_utf8(out.bytes()).unwrap();
    assert!(text.contains("uri=http://example.test/info\n"), "{text}");
    assert!(text.contains("remote=192.0.2.7:0\n"), "{text}");
    assert!(text.contains("script_name=/cgi-bin/app.cgi\n"), "{text}");

    let (out, log) = run("GET", "/panic", "", b"");
    let text = String::from_utf8(out.bytes()).unwrap();
    assert!(
        text.starts_with("Status: 500 Internal Server Error\r\n"),
        "{text}"
    );
    assert!(
        log.contains("service panicked: the /panic route panics"),
        "{log}"
    );

    let (out, _) = run("GET", "/sse", "", b"");
    let first = out.time_of("data: 0").unwrap();
    let last = out.time_of("data: 2").unwrap();
    assert!(
        first < Duration::from_millis(250),
        "first event at {first:?}"
    );
    assert!(last > Duration::from_millis(550), "last event at {last:?}");
}

/// The example binary, built by `cargo test` next to this test's binary.
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent()?.parent()?.join("examples/axum_app");
    if bin.exists() {
        return Some(bin);
    }
    assert!(!in_ci(), "{} not built", bin.display());
    eprintln!(
        "SKIPPED: {} not built (cargo test builds it)",
        bin.display()
    );
    None
}

#[test]
fn cgi_example_binary_as_process() {
    let Some(bin) = example_binary() else { return };
    let body = br#"{"name":"process"}"#;
    let mut child = Command::new(bin)
        .env_clear()
        .envs([
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/cgi-bin/app.cgi"),
            ("PATH_INFO", "/json"),
            ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", &body.len().to_string()),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n{\"echo\":\"process\"}"), "{text}");
}

#[test]
fn cgi_apache_mod_cgid() {
    let Some(bin) = example_binary() else { return };
    let m = APACHE_MODULES;
    let Some(ws) = WebServer::apache(|p| {
        let d = p.dir.display();
        let cgi_bin = p.dir.join("cgi-bin");
        std::fs::create_dir(&cgi_bin).unwrap();
        set_mode(&cgi_bin, 0o755);
        let script = cgi_bin.join("app.cgi");
        std::fs::copy(&bin, &script).unwrap();
        set_mode(&script, 0o755);
        format!(
            "LoadModule alias_module {m}/mod_alias.so\n\
             LoadModule cgid_module {m}/mod_cgid.so\n\
             ScriptSock \"{d}/logs/cgid.sock\"\n\
             ScriptAlias /cgi-bin/ \"{d}/cgi-bin/\"\n\
             <Directory \"{d}/cgi-bin\">\n    Require all granted\n</Directory>\n"
        )
    }) else {
        return;
    };
    let ctx = |what: &str| format!("apache mod_cgid: {what}; error log:\n{}", ws.error_log());
    let base = |p: &str| ws.url(&format!("/cgi-bin/app.cgi{p}"));
    check_common(&base, &ctx);
    check_sse(&base("/sse"), &ctx);
    let r = curl(&[], &base("/info"));
    assert!(
        r.text().contains("script_name=/cgi-bin/app.cgi\n"),
        "{}",
        ctx(&r.text())
    );
}
