//! FastCGI programs started by the web server itself, the way php-cgi and
//! libfcgi programs are deployed: Apache's `mod_fcgid` and lighttpd's
//! `mod_fastcgi` with `bin-path`. Each creates a Unix listening socket,
//! hands it to the program as fd 0 (`FCGI_LISTENSOCK_FILENO`, FastCGI
//! §2.2), sends requests to it, and stops it with SIGTERM when it stops.
//!
//! The web server runs a shell script that execs a copy of this test
//! binary, whose `child` test (with `GATEKIT_FCGID_CHILD=1` in the
//! environment the web server gives it) serves the shared test app from
//! fd 0 with the App server, or whose `sdk_child` test serves from fd 0
//! with the SDK-style API, as a ported libfcgi program would. An example
//! binary cannot be started from a crate's test, so the test binary starts
//! itself. The configurations are the ones docs/deploy-spawn-fcgi.md and
//! docs/deploy-lighttpd.md show.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Shared, config, test_app};
use gatekit_fastcgi::sdk;
use gatekit_fastcgi::server::Server;
use gatekit_testkit::{
    WebServer, curl, pattern, public_tempdir, reap_or_kill, require, set_mode, sha256,
};

/// Set to `1` in the environment of the program the web server starts.
const CHILD_ENV: &str = "GATEKIT_FCGID_CHILD";

/// A directory where each child leaves a file named by its PID, so the
/// test can check that every process the web server started has exited.
const PIDS_ENV: &str = "GATEKIT_FCGID_PIDS";

/// The file the child's `/file` route sends.
const FILE_ENV: &str = "GATEKIT_FCGID_FILE";

/// How long the children get to exit once the web server has stopped.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Not a test on its own: the FastCGI program the web server starts (a copy
/// of this binary, with `--exact child --ignored` and
/// `GATEKIT_FCGID_CHILD=1`). It serves until SIGTERM, then finishes its
/// requests and returns.
#[test]
#[ignore = "the FastCGI program of the other tests here; serves only with GATEKIT_FCGID_CHILD=1"]
fn child() {
    if std::env::var_os(CHILD_ENV).is_none_or(|v| v != "1") {
        return;
    }
    note_pid();
    let shared = Arc::new(Shared::default());
    *shared.file.lock().unwrap() = std::env::var_os(FILE_ENV).map(Into::into);
    let server = Server::from_fd0(test_app(shared), config())
        .expect("fd 0 is the listening socket from the web server");
    server.shutdown_handle().on_signals().unwrap();
    server.serve_forever().unwrap();
}

/// Which web server starts the program.
#[derive(Clone, Copy, Debug)]
enum Manager {
    /// Apache with mod_fcgid, at most 4 processes.
    ApacheFcgid,
    /// lighttpd's mod_fastcgi with `bin-path`, 2 processes.
    LighttpdBinPath,
}

/// A web server running `child_test` (a test of a copy of this binary) for
/// every URL; the child's `/file` sends `file` when given.
struct Spawned {
    ws: WebServer,
    pids: PathBuf,
    _dir: tempfile::TempDir,
}

impl Spawned {
    fn start(manager: Manager, child_test: &str, file: Option<&Path>) -> Option<Spawned> {
        if let Manager::ApacheFcgid = manager {
            require(&["/usr/lib/apache2/modules/mod_fcgid.so"])?;
        }
        // Apache's children run as www-data when the tests run as root:
        // the program and the PID directory must be theirs to use.
        let dir = public_tempdir();
        let exe = dir.path().join("gatekit-spawned-child");
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
        let mut env = vec![
            (CHILD_ENV, "1".to_owned()),
            (PIDS_ENV, pids.display().to_string()),
        ];
        if let Some(file) = file {
            env.push((FILE_ENV, file.display().to_string()));
        }
        let ws = match manager {
            Manager::ApacheFcgid => apache_fcgid(&wrapper, &env)?,
            Manager::LighttpdBinPath => lighttpd_with_bin_path(&wrapper, &env)?,
        };
        Some(Spawned {
            ws,
            pids,
            _dir: dir,
        })
    }

    /// Stops the web server, and checks that every process it started has
    /// exited (it sends SIGTERM); any left are killed by PID.
    fn stop(self) {
        let started: Vec<u32> = std::fs::read_dir(&self.pids)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let log = self.ws.error_log();
        assert!(!started.is_empty(), "no child wrote its PID:\n{log}");
        drop(self.ws);
        // Started (through the web server) by this test: killed by PID.
        let left = reap_or_kill(&started, EXIT_WAIT);
        assert!(
            left.is_empty(),
            "still running after the web server stopped: {left:?}\n{log}"
        );
    }
}

/// Apache with mod_fcgid running `wrapper` for every URL under `/`.
fn apache_fcgid(wrapper: &Path, env: &[(&str, String)]) -> Option<WebServer> {
    let m = gatekit_testkit::APACHE_MODULES;
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("FcgidInitialEnv {k} \"{v}\"\n"))
        .collect();
    let env = env.concat();
    WebServer::apache(|p| {
        let d = p.dir.display();
        let ipc = p.dir.join("fcgid");
        std::fs::create_dir(&ipc).unwrap();
        set_mode(&ipc, 0o777);
        format!(
            "LoadModule fcgid_module {m}/mod_fcgid.so\n\
             FcgidIPCDir \"{d}/fcgid\"\n\
             FcgidProcessTableFile \"{d}/fcgid/shm\"\n{env}\
             FcgidMaxProcessesPerClass 4\n\
             FcgidMaxRequestLen 16777216\n\
             FcgidIOTimeout 60\n\
             <Location \"/\">\n\
             \x20   SetHandler fcgid-script\n\
             \x20   Options +ExecCGI\n\
             \x20   FcgidWrapper \"{}\" virtual\n\
             </Location>\n",
            wrapper.display()
        )
    })
}

/// lighttpd starting `wrapper` itself (`bin-path`, 2 processes, each on its
/// own socket) for every URL under `/`.
fn lighttpd_with_bin_path(wrapper: &Path, env: &[(&str, String)]) -> Option<WebServer> {
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("\"{k}\" => \"{v}\""))
        .collect();
    let env = env.join(", ");
    WebServer::lighttpd(|p| {
        let d = p.dir.display();
        format!(
            "server.modules += ( \"mod_fastcgi\" )\n\
             fastcgi.server = ( \"/\" => ((\n\
             \x20 \"socket\" => \"{d}/run/app.sock\",\n\
             \x20 \"bin-path\" => \"{}\",\n\
             \x20 \"bin-environment\" => ( {env} ),\n\
             \x20 \"max-procs\" => 2,\n\
             \x20 \"check-local\" => \"disable\"\n\
             )) )\n",
            wrapper.display()
        )
    })
}

/// Writes this process's PID into the directory the test gave, if any.
fn note_pid() {
    if let Some(dir) = std::env::var_os(PIDS_ENV) {
        let path = Path::new(&dir).join(std::process::id().to_string());
        std::fs::write(path, b"").unwrap();
    }
}

/// The App server's checks ([`common::web::check_all`]), and its
/// environment.
fn app_case(manager: Manager) {
    // Read by the child, as www-data when the tests run as root.
    let files = public_tempdir();
    let big = common::web::big_file(files.path());
    let Some(spawned) = Spawned::start(manager, "child", Some(&big)) else {
        return;
    };
    let ws = &spawned.ws;

    // The program saw fd 0 as a listening socket: its environment says
    // FastCGI (a CGI launch would have no FCGI_ROLE).
    let r = curl(&[], &ws.url("/env"));
    assert_eq!(r.status, 200, "{}", ws.error_log());
    assert!(r.text().contains("FCGI_ROLE=RESPONDER\n"), "{}", r.text());
    assert!(r.text().contains("REQUEST_URI=/env\n"), "{}", r.text());

    // mod_fcgid sends one request at a time to each of at most 4
    // processes (the others queue in Apache); lighttpd sends them all at
    // once to its 2 processes.
    common::web::check_all(ws, &format!("{manager:?}"), &big);
    spawned.stop();
}

#[test]
fn apache_mod_fcgid() {
    app_case(Manager::ApacheFcgid);
}

#[test]
fn lighttpd_bin_path() {
    app_case(Manager::LighttpdBinPath);
}

/// Not a test on its own: a FastCGI-SDK-style program (the `sdk` API) that
/// the web server starts, with `--exact sdk_child --ignored` and
/// `GATEKIT_FCGID_CHILD=1`: two threads, each with its own accept loop on
/// fd 0, answering `/hello`, `/info` and `/echo`. SIGTERM ends it.
#[test]
#[ignore = "the SDK program of the other tests here; serves only with GATEKIT_FCGID_CHILD=1"]
fn sdk_child() {
    use std::io::{Read, Write};
    if std::env::var_os(CHILD_ENV).is_none_or(|v| v != "1") {
        return;
    }
    note_pid();
    let is_cgi = sdk::Listener::is_cgi();
    let listener =
        sdk::Listener::from_fd0().expect("fd 0 is the listening socket from the web server");
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
/// program that a web server runs.
fn sdk_case(manager: Manager) {
    let Some(spawned) = Spawned::start(manager, "sdk_child", None) else {
        return;
    };
    let ws = &spawned.ws;
    let ctx = |what: &str| format!("{manager:?} sdk: {what}; error log:\n{}", ws.error_log());
    for _ in 0..3 {
        let r = curl(&[], &ws.url("/hello?x=1"));
        assert_eq!(r.status, 200, "{}", ctx("GET"));
        assert_eq!(r.text(), "Hello, world!\n", "{}", ctx("GET body"));
    }
    // FCGX_IsCGI() is false: fd 0 is the socket the web server made.
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
    common::web::concurrent_hellos(ws, 50, &ctx);
    let r = curl(&[], &ws.url("/missing"));
    assert_eq!(r.status, 404, "{}", ctx("404"));
    spawned.stop();
}

#[test]
fn apache_mod_fcgid_sdk() {
    sdk_case(Manager::ApacheFcgid);
}

#[test]
fn lighttpd_bin_path_sdk() {
    sdk_case(Manager::LighttpdBinPath);
}
