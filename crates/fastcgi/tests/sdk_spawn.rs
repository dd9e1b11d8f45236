//! The SDK under a real process manager: `spawn-fcgi -n` binds a socket, leaves it on fd 0
//! (`FCGI_LISTENSOCK_FILENO`, FastCGI §2.2) and execs this test binary, whose `child` test (run
//! with `GATEKIT_SDK_CHILD=1`) serves a hello and an echo from `Listener::from_fd0()` on 4
//! threads. Real nginx is put in front, with and without `fastcgi_keep_conn`, and the child is
//! stopped by its PID.
//!
//! An example binary cannot be started from a crate's test, so the test binary starts itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use gatekit_fastcgi::sdk::{Listener, Request};
use gatekit_testkit::{WebServer, curl, curl_parallel, free_port, pattern, require, sha256};

/// Set to `1` in the environment of the process spawn-fcgi starts: it makes `child` serve.
const CHILD_ENV: &str = "GATEKIT_SDK_CHILD";

/// Accepting threads in the child.
const THREADS: usize = 4;

/// What the child writes to stderr when a request fails.
const CHILD_ERROR: &str = "sdk_spawn child error";

/// How long the child gets to exit after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// The child: the FastCGI application spawn-fcgi runs
// ---------------------------------------------------------------------------------------------

/// Answers one request: `/hello`, `/info` (what the child knows about itself), `/echo`.
fn respond(req: &mut Request<'_>, is_cgi: bool) -> io::Result<()> {
    let uri = req.param("REQUEST_URI").unwrap_or_default();
    let path = uri
        .split(|&b| b == b'?')
        .next()
        .unwrap_or_default()
        .to_vec();
    match &path[..] {
        b"/hello" => req
            .stdout()
            .write_all(b"Content-Type: text/plain\r\n\r\nHello, world!\n"),
        b"/info" => {
            let keep_conn = req.keep_conn();
            write!(
                req.stdout(),
                "Content-Type: text/plain\r\n\r\nis_cgi={is_cgi} pid={} keep_conn={keep_conn}\n",
                std::process::id()
            )
        }
        b"/echo" => {
            let mut body = Vec::new();
            req.stdin().read_to_end(&mut body)?;
            let method = req.param_str("REQUEST_METHOD").unwrap_or("?").to_owned();
            write!(
                req.stdout(),
                "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
                 X-Method: {method}\r\n\r\n",
                body.len()
            )?;
            req.stdout().write_all(&body)
        }
        _ => req
            .stdout()
            .write_all(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found\n"),
    }
}

/// Not a test on its own: the FastCGI application that `spawn-fcgi` starts (this binary, with
/// `--exact child --ignored` and `GATEKIT_SDK_CHILD=1`). It runs until it is killed. Without
/// that variable it returns at once.
#[test]
#[ignore = "the FastCGI child of the spawn_fcgi_* tests; serves only with GATEKIT_SDK_CHILD=1"]
fn child() {
    if std::env::var_os(CHILD_ENV).is_none_or(|v| v != "1") {
        return;
    }
    // FCGX_IsCGI(), before anything else: fd 0 is the socket spawn-fcgi made.
    let is_cgi = Listener::is_cgi();
    let listener = Listener::from_fd0().expect("fd 0 is the listening socket from spawn-fcgi");
    std::thread::scope(|threads| {
        for _ in 0..THREADS {
            threads.spawn(|| {
                let mut acceptor = listener.acceptor();
                while let Some(mut req) = acceptor.accept().expect("accept") {
                    match respond(&mut req, is_cgi) {
                        Ok(()) => {
                            if let Err(e) = req.finish(0) {
                                eprintln!("{CHILD_ERROR}: finish: {e}");
                            }
                        }
                        Err(e) => {
                            eprintln!("{CHILD_ERROR}: {e}");
                            // Ignored: the connection is closed if this fails too.
                            let _ = req.finish(1);
                        }
                    }
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The parent: spawn-fcgi, nginx, curl
// ---------------------------------------------------------------------------------------------

/// The child under spawn-fcgi; stopped by its PID on drop.
struct Spawned {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Spawned {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// SIGTERM to `child` (a process this test started), up to [`STOP_WAIT`] for it to exit, then
/// SIGKILL. Returns how it ended.
fn terminate(child: &mut Child) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().unwrap()
}

/// Whether something accepts connections on 127.0.0.1:`port`, waiting up to 5 s unless `child`
/// exits first.
fn wait_listening(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Starts `spawn-fcgi -n -a 127.0.0.1 -p PORT -- <this binary> --exact child --ignored
/// --nocapture` with `GATEKIT_SDK_CHILD=1`, and waits until the port accepts. A port taken
/// between [`free_port`] and spawn-fcgi's `bind` is retried with another.
fn spawn(spawn_fcgi: &Path) -> Spawned {
    let exe = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("child.log");
    for _ in 0..3 {
        let port = free_port();
        let out = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(spawn_fcgi)
            .args(["-n", "-a", "127.0.0.1", "-p", &port.to_string(), "--"])
            .arg(&exe)
            .args(["--exact", "child", "--ignored", "--nocapture"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        if wait_listening(port, &mut child) {
            return Spawned {
                child,
                port,
                log,
                _dir: dir,
            };
        }
        let status = terminate(&mut child);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("bind failed") || text.contains("Address already in use"),
            "spawn-fcgi did not start the child ({status}):\n{text}"
        );
    }
    panic!("spawn-fcgi could not bind a free port three times");
}

fn spawn_fcgi_case(keep_conn: bool) {
    let Some(spawn_fcgi) = require(&["/usr/bin/spawn-fcgi"]) else {
        return;
    };
    let mut spawned = spawn(&spawn_fcgi);
    let port = spawned.port;
    // At most as many idle kept connections as accepting threads (docs/fastcgi-sdk.md).
    let (keepalive, keep) = if keep_conn {
        ("keepalive 2;", "fastcgi_keep_conn on;")
    } else {
        ("", "")
    };
    let Some(ws) = WebServer::nginx(|p| {
        format!(
            "upstream spawned {{ server 127.0.0.1:{port}; {keepalive} }}\n\
             server {{\n  listen 127.0.0.1:{};\n  location / {{\n    \
             include /etc/nginx/fastcgi_params;\n    fastcgi_pass spawned;\n    {keep}\n  }}\n}}\n",
            p.port
        )
    }) else {
        return;
    };
    let ctx = || {
        format!(
            "nginx error log:\n{}\nchild log:\n{}",
            ws.error_log(),
            spawned.log()
        )
    };

    // GET, a few times (on one kept connection with keep-conn).
    for _ in 0..3 {
        let r = curl(&[], &ws.url("/hello?x=1"));
        assert_eq!(r.status, 200, "{}", ctx());
        assert_eq!(r.text(), "Hello, world!\n", "{}", ctx());
    }
    // The process nginx talks to is the one spawn-fcgi exec'd (-n: same PID), and it found a
    // listening socket on fd 0: FCGX_IsCGI() is false.
    let pid = spawned.child.id();
    let r = curl(&[], &ws.url("/info"));
    assert_eq!(r.status, 200, "{}", ctx());
    assert_eq!(
        r.text(),
        format!("is_cgi=false pid={pid} keep_conn={keep_conn}\n"),
        "{}",
        ctx()
    );
    // POST, echoed: a small body, and one of many STDIN records.
    let r = curl(&["--data-binary", "hello, echo"], &ws.url("/echo"));
    assert_eq!(r.status, 200, "{}", ctx());
    assert_eq!(r.header("X-Method").as_deref(), Some("POST"), "{}", ctx());
    assert_eq!(r.body, b"hello, echo", "{}", ctx());
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("upload.bin");
    let body = pattern(1024 * 1024 + 3);
    std::fs::write(&upload, &body).unwrap();
    let at = format!("@{}", upload.display());
    let r = curl(&["--data-binary", &at], &ws.url("/echo"));
    assert_eq!(r.status, 200, "{}", ctx());
    assert_eq!(sha256(&r.body), sha256(&body), "{}", ctx());
    // 16 at once, over the 4 accepting threads.
    let urls: Vec<String> = (0..16).map(|i| ws.url(&format!("/hello?n={i}"))).collect();
    let got = curl_parallel(&urls, 10);
    assert_eq!(got.ok, 16, "{}\n{}", got.report, ctx());
    let r = curl(&[], &ws.url("/missing"));
    assert_eq!(r.status, 404, "{}", ctx());

    let log = ws.error_log();
    assert!(!log.contains("upstream prematurely closed"), "{}", ctx());
    drop(ws);
    // Stopped by its PID: SIGTERM's default action ends it.
    let status = terminate(&mut spawned.child);
    assert_eq!(status.signal(), Some(15), "{status}; {}", spawned.log());
    assert!(!spawned.log().contains(CHILD_ERROR), "{}", spawned.log());
}

#[test]
fn spawn_fcgi_nginx() {
    spawn_fcgi_case(false);
}

#[test]
fn spawn_fcgi_nginx_keep_conn() {
    spawn_fcgi_case(true);
}
