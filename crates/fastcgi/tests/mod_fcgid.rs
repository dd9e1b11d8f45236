//! The App server under Apache's `mod_fcgid`, the process manager that
//! starts FastCGI programs itself: it creates a Unix listening socket, hands
//! it to the program as fd 0 (`FCGI_LISTENSOCK_FILENO`, FastCGI §2.2), sends
//! requests to it, and stops it with SIGTERM when Apache stops.
//!
//! `FcgidWrapper` runs a shell script that execs a copy of this test binary,
//! whose `child` test (with `GATEKIT_FCGID_CHILD=1`, set by
//! `FcgidInitialEnv`) serves the shared test app from fd 0 with the App
//! server, or whose `sdk_child` test serves from fd 0 with the SDK-style
//! API, as a ported libfcgi program would. An example
//! binary cannot be started from a crate's test, so the test binary starts
//! itself. The configuration is the one docs/deploy-spawn-fcgi.md shows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Shared, config, test_app};
use gatekit_fastcgi::sdk;
use gatekit_fastcgi::server::Server;
use gatekit_testkit::{
    WebServer, curl, curl_parallel, curl_to_file, pattern, public_tempdir, require, set_mode,
    sha256, sha256_file,
};

/// Set to `1` in the environment of the program mod_fcgid starts.
const CHILD_ENV: &str = "GATEKIT_FCGID_CHILD";

/// A directory where each child leaves a file named by its PID, so the
/// test can check that every process mod_fcgid started has exited.
const PIDS_ENV: &str = "GATEKIT_FCGID_PIDS";

/// The file the child's `/file` route sends.
const FILE_ENV: &str = "GATEKIT_FCGID_FILE";

/// How long the children get to exit once Apache has stopped.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Not a test on its own: the FastCGI program mod_fcgid starts (a copy of
/// this binary, with `--exact child --ignored` and `GATEKIT_FCGID_CHILD=1`).
/// It serves until SIGTERM, then finishes its requests and returns.
#[test]
#[ignore = "the FastCGI program of the mod_fcgid test; serves only with GATEKIT_FCGID_CHILD=1"]
fn child() {
    if std::env::var_os(CHILD_ENV).is_none_or(|v| v != "1") {
        return;
    }
    note_pid();
    let shared = Arc::new(Shared::default());
    *shared.file.lock().unwrap() = std::env::var_os(FILE_ENV).map(Into::into);
    let server = Server::from_fd0(test_app(shared), config())
        .expect("fd 0 is the listening socket from mod_fcgid");
    server.shutdown_handle().on_signals().unwrap();
    server.serve_forever().unwrap();
}

/// Whether process `pid` is gone (or a zombie, reaped by its parent later).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Apache with mod_fcgid running `child_test` (a test of a copy of this
/// binary) for every URL, at most 4 processes; the child's `/file` sends
/// `file` when given.
struct Fcgid {
    ws: WebServer,
    pids: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fcgid {
    fn start(child_test: &str, file: Option<&Path>) -> Option<Fcgid> {
        require(&["/usr/lib/apache2/modules/mod_fcgid.so"])?;
        // Apache's children run as www-data when the tests run as root:
        // the program and the PID directory must be theirs to use.
        let dir = public_tempdir();
        let exe = dir.path().join("gatekit-fcgid-child");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        set_mode(&exe, 0o755);
        let wrapper = dir.path().join("app.fcgi");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec '{}' --exact {child_test} --ignored --nocapture --quiet\n",
                exe.display()
            ),
        )
        .unwrap();
        set_mode(&wrapper, 0o755);
        let pids = dir.path().join("pids");
        std::fs::create_dir(&pids).unwrap();
        set_mode(&pids, 0o777);
        let file_env = file
            .map(|f| format!("FcgidInitialEnv {FILE_ENV} \"{}\"\n", f.display()))
            .unwrap_or_default();
        let m = gatekit_testkit::APACHE_MODULES;
        let ws = WebServer::apache(|p| {
            let d = p.dir.display();
            let ipc = p.dir.join("fcgid");
            std::fs::create_dir(&ipc).unwrap();
            set_mode(&ipc, 0o777);
            format!(
                "LoadModule fcgid_module {m}/mod_fcgid.so\n\
                 FcgidIPCDir \"{d}/fcgid\"\n\
                 FcgidProcessTableFile \"{d}/fcgid/shm\"\n\
                 FcgidInitialEnv {CHILD_ENV} 1\n\
                 FcgidInitialEnv {PIDS_ENV} \"{}\"\n{file_env}\
                 FcgidMaxProcessesPerClass 4\n\
                 FcgidMaxRequestLen 16777216\n\
                 FcgidIOTimeout 60\n\
                 <Location \"/\">\n\
                 \x20   SetHandler fcgid-script\n\
                 \x20   Options +ExecCGI\n\
                 \x20   FcgidWrapper \"{}\" virtual\n\
                 </Location>\n",
                pids.display(),
                wrapper.display()
            )
        })?;
        Some(Fcgid {
            ws,
            pids,
            _dir: dir,
        })
    }

    /// Stops Apache, and checks that every process mod_fcgid started has
    /// exited (mod_fcgid sends SIGTERM); any left are killed by PID.
    fn stop(self) {
        let started: Vec<u32> = std::fs::read_dir(&self.pids)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let log = self.ws.error_log();
        assert!(!started.is_empty(), "no child wrote its PID:\n{log}");
        drop(self.ws);
        let deadline = Instant::now() + EXIT_WAIT;
        while !started.iter().all(|&pid| is_gone(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left: Vec<u32> = started.iter().copied().filter(|&p| !is_gone(p)).collect();
        for pid in &left {
            // Started (through Apache) by this test: killed by PID.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        assert!(
            left.is_empty(),
            "still running after Apache stopped: {left:?}\n{log}"
        );
    }
}

/// Writes this process's PID into the directory the test gave, if any.
fn note_pid() {
    if let Some(dir) = std::env::var_os(PIDS_ENV) {
        let path = Path::new(&dir).join(std::process::id().to_string());
        std::fs::write(path, b"").unwrap();
    }
}

#[test]
fn apache_mod_fcgid() {
    let work = tempfile::tempdir().unwrap();
    // Read by the child, as www-data when the tests run as root.
    let files = public_tempdir();
    let big = files.path().join("big.bin");
    {
        let chunk = pattern(1024 * 1024);
        let mut f = std::fs::File::create(&big).unwrap();
        for _ in 0..100 {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
    }
    set_mode(&big, 0o644);
    let Some(fcgid) = Fcgid::start("child", Some(&big)) else {
        return;
    };
    let ws = &fcgid.ws;
    let ctx = |what: &str| format!("mod_fcgid: {what}; error log:\n{}", ws.error_log());

    // GET
    let r = curl(&[], &ws.url("/hello?x=1"));
    assert_eq!(r.status, 200, "{}", ctx("GET"));
    assert_eq!(r.text(), "Hello, world!\n", "{}", ctx("GET body"));

    // The program saw fd 0 as a listening socket: its environment says
    // FastCGI (a CGI launch would have no FCGI_ROLE).
    let r = curl(&[], &ws.url("/env"));
    assert_eq!(r.status, 200, "{}", ctx("env"));
    assert!(r.text().contains("FCGI_ROLE=RESPONDER\n"), "{}", r.text());
    assert!(r.text().contains("REQUEST_URI=/env\n"), "{}", r.text());

    // POST 10 MB, echoed back; the hashes match.
    let upload = work.path().join("upload.bin");
    std::fs::write(&upload, pattern(10 * 1024 * 1024)).unwrap();
    let echoed = work.path().join("echoed.bin");
    let at = format!("@{}", upload.display());
    let status = curl_to_file(
        &[
            "--data-binary",
            &at,
            "-H",
            "Content-Type: application/octet-stream",
        ],
        &ws.url("/echo"),
        &echoed,
    );
    assert_eq!(status, 200, "{}", ctx("POST"));
    assert_eq!(
        sha256_file(&echoed),
        sha256_file(&upload),
        "{}",
        ctx("POST echo")
    );

    // A 100 MB FileWrapper download; the hashes match.
    let got = work.path().join("got.bin");
    let status = curl_to_file(&[], &ws.url("/file"), &got);
    assert_eq!(status, 200, "{}", ctx("download"));
    assert_eq!(
        sha256_file(&got),
        sha256_file(&big),
        "{}",
        ctx("download hash")
    );

    // wsgi.errors (FCGI_STDERR records) reaches Apache's error log.
    let r = curl(&[], &ws.url("/stderr"));
    assert_eq!(r.status, 200, "{}", ctx("stderr"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ws.error_log().contains("gatekit-stderr-marker") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ws.error_log().contains("gatekit-stderr-marker"),
        "{}",
        ctx("stderr in log")
    );

    // An app panic is a 500, and the process goes on.
    let r = curl(&[], &ws.url("/panic"));
    assert_eq!(r.status, 500, "{}", ctx("panic"));
    let r = curl(&[], &ws.url("/hello"));
    assert_eq!(r.status, 200, "{}", ctx("after panic"));

    // 200 concurrent requests, zero errors (mod_fcgid sends one request at
    // a time to each of at most 4 processes; the others queue in Apache).
    let urls: Vec<String> = (0..200).map(|i| ws.url(&format!("/hello?n={i}"))).collect();
    let got = curl_parallel(&urls, 60);
    assert_eq!(
        got.ok,
        200,
        "{}",
        ctx(&format!("concurrent: {}", got.report))
    );

    fcgid.stop();
}

/// Not a test on its own: a FastCGI-SDK-style program (the `sdk` API) that
/// mod_fcgid starts, with `--exact sdk_child --ignored` and
/// `GATEKIT_FCGID_CHILD=1`: two threads, each with its own accept loop on
/// fd 0, answering `/hello`, `/info` and `/echo`. SIGTERM ends it.
#[test]
#[ignore = "the SDK program of the mod_fcgid test; serves only with GATEKIT_FCGID_CHILD=1"]
fn sdk_child() {
    use std::io::{Read, Write};
    if std::env::var_os(CHILD_ENV).is_none_or(|v| v != "1") {
        return;
    }
    note_pid();
    let is_cgi = sdk::Listener::is_cgi();
    let listener = sdk::Listener::from_fd0().expect("fd 0 is the listening socket from mod_fcgid");
    std::thread::scope(|threads| {
        for _ in 0..2 {
            threads.spawn(|| {
                let mut acceptor = listener.acceptor();
                while let Some(mut req) = acceptor.accept().expect("accept") {
                    let uri = req.param("REQUEST_URI").unwrap_or_default().to_vec();
                    let path = uri.split(|&b| b == b'?').next().unwrap_or_default();
                    let answered = match path {
                        b"/hello" => req
                            .stdout()
                            .write_all(b"Content-Type: text/plain\r\n\r\nHello, world!\n"),
                        b"/info" => write!(
                            req.stdout(),
                            "Content-Type: text/plain\r\n\r\nis_cgi={is_cgi} pid={}\n",
                            std::process::id()
                        ),
                        b"/echo" => {
                            let mut body = Vec::new();
                            req.stdin().read_to_end(&mut body).and_then(|_| {
                                write!(
                                    req.stdout(),
                                    "Content-Type: application/octet-stream\r\n\
                                     Content-Length: {}\r\n\r\n",
                                    body.len()
                                )?;
                                req.stdout().write_all(&body)
                            })
                        }
                        _ => req.stdout().write_all(
                            b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found\n",
                        ),
                    };
                    let status = u32::from(answered.is_err());
                    // Ignored: the connection is closed if this fails.
                    let _ = req.finish(status);
                }
            });
        }
    });
}

/// A program written against the SDK-style API, the shape of a libfcgi
/// program that mod_fcgid runs.
#[test]
fn apache_mod_fcgid_sdk() {
    let Some(fcgid) = Fcgid::start("sdk_child", None) else {
        return;
    };
    let ws = &fcgid.ws;
    let ctx = |what: &str| format!("mod_fcgid sdk: {what}; error log:\n{}", ws.error_log());
    for _ in 0..3 {
        let r = curl(&[], &ws.url("/hello?x=1"));
        assert_eq!(r.status, 200, "{}", ctx("GET"));
        assert_eq!(r.text(), "Hello, world!\n", "{}", ctx("GET body"));
    }
    // FCGX_IsCGI() is false: fd 0 is the socket mod_fcgid made.
    let r = curl(&[], &ws.url("/info"));
    assert_eq!(r.status, 200, "{}", ctx("info"));
    assert!(r.text().starts_with("is_cgi=false pid="), "{}", r.text());
    let body = pattern(1024 * 1024 + 3);
    let work = tempfile::tempdir().unwrap();
    let upload = work.path().join("upload.bin");
    std::fs::write(&upload, &body).unwrap();
    let at = format!("@{}", upload.display());
    let r = curl(&["--data-binary", &at], &ws.url("/echo"));
    assert_eq!(r.status, 200, "{}", ctx("POST"));
    assert_eq!(sha256(&r.body), sha256(&body), "{}", ctx("POST echo"));
    let urls: Vec<String> = (0..50).map(|i| ws.url(&format!("/hello?n={i}"))).collect();
    let got = curl_parallel(&urls, 60);
    assert_eq!(
        got.ok,
        50,
        "{}",
        ctx(&format!("concurrent: {}", got.report))
    );
    let r = curl(&[], &ws.url("/missing"));
    assert_eq!(r.status, 404, "{}", ctx("404"));
    fcgid.stop();
}
