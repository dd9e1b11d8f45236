//! Test helpers shared by gatekit's crates: finding real web servers,
//! starting nginx, Apache httpd and lighttpd on loopback with their own
//! configuration in a temp prefix, curl, free ports, and stopping what a
//! test started, by PID. Not published; a dev-dependency only.
//!
//! A missing server prints `SKIPPED` and the test returns, except under
//! `CI=true`, where it is a failure ([`require`]).

#![allow(clippy::missing_panics_doc, clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed unwrap is a failed test

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when running under CI, where a missing server is a failure.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The path of a program, or `None` (printing why) when it is not
/// installed; under `CI=true` a missing program fails the test instead.
#[must_use]
pub fn require(paths: &[&str]) -> Option<PathBuf> {
    if let Some(p) = paths.iter().map(PathBuf::from).find(|p| p.exists()) {
        return Some(p);
    }
    assert!(
        !in_ci(),
        "CI=true and none of {paths:?} is installed: .ci/run must install it"
    );
    eprintln!("SKIPPED: none of {paths:?} is installed (set CI=true to make this a failure)");
    None
}

/// A port on 127.0.0.1 that was free a moment ago.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on 127.0.0.1:`port`; panics
/// with the log's text if `child` exits first or 15 s pass.
pub fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "server exited early ({status}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "nothing listening on port {port}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Waits until a Unix socket at `path` accepts connections (15 s at most).
pub fn wait_for_unix(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {}", path.display());
}

/// Sends SIGTERM to a process we started, waits up to 15 s, then SIGKILLs it.
pub fn stop(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// True once process `pid` is gone, or a zombie that no one can run
/// again (its parent, or init, reaps it later).
#[must_use]
pub fn is_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Waits up to `timeout` for every process in `pids` to be gone
/// ([`is_gone`]); kills the ones left with SIGKILL (by PID: only processes
/// the test started, directly or through a web server it started) and
/// returns them.
#[must_use]
pub fn reap_or_kill(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    while !pids.iter().all(|&pid| is_gone(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| !is_gone(p)).collect();
    for pid in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    left
}

/// A temp dir readable by other users (web servers drop to www-data).
#[must_use]
pub fn public_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("gatekit-test-")
        .tempdir()
        .unwrap();
    set_mode(dir.path(), 0o755);
    dir
}

/// `chmod`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A response as curl saw it.
#[derive(Debug)]
pub struct Response {
    /// The (last) status code.
    pub status: u16,
    /// The response head(s), as text.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as (lossy) text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header value from the response head, case-insensitively.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// Every value of a header, in order.
    #[must_use]
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .collect()
    }
}

/// Runs curl with `args` (plus the URL last) and returns the response;
/// panics if curl itself fails (no connection, timeout).
#[must_use]
pub fn curl(args: &[&str], url: &str) -> Response {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let out: Output = Command::new("curl")
        .args(["-sS", "--max-time", "120", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?} {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Response {
        status,
        head: String::from_utf8_lossy(&std::fs::read(&head).unwrap()).into_owned(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// What [`curl_parallel`] got back.
#[derive(Debug)]
pub struct Parallel {
    /// How many of the requests were answered 200.
    pub ok: usize,
    /// Every status curl wrote, and its error output, for a failed assertion.
    pub report: String,
}

/// GETs every URL of `urls` at once (`curl -Z`, all in parallel), each in at
/// most `max_time` seconds, and counts the answers with status 200.
#[must_use]
pub fn curl_parallel(urls: &[String], max_time: u32) -> Parallel {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", &max_time.to_string(), "-Z"])
        .args(["--parallel-max", &urls.len().max(1).to_string()])
        .args(["-w", "%{http_code}\n"])
        .args(urls.iter().flat_map(|u| ["-o", "/dev/null", u.as_str()]))
        .output()
        .expect("curl runs");
    let codes = String::from_utf8_lossy(&out.stdout);
    Parallel {
        ok: codes.lines().filter(|l| *l == "200").count(),
        report: format!("{codes}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Downloads `url` into `dest` with curl and returns the HTTP status.
#[must_use]
pub fn curl_to_file(args: &[&str], url: &str, dest: &Path) -> u16 {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "300", "-o"])
        .arg(dest)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?} {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The SHA-256 of a file, in hex (`sha256sum`, from coreutils).
#[must_use]
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The SHA-256 of some bytes, in hex.
#[must_use]
pub fn sha256(data: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), data).unwrap();
    sha256_file(file.path())
}

/// `len` bytes of a repeatable pseudo-random pattern.
#[must_use]
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The modules directory of Debian's Apache.
pub const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

/// Where a web server under test lives: its temp prefix and its port.
#[derive(Debug)]
pub struct Prefix {
    /// The prefix directory (mode 0755): configs, logs, sockets.
    pub dir: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
}

/// A real web server started on 127.0.0.1 for a test; stopped (by PID) on drop.
#[derive(Debug)]
pub struct WebServer {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    error_log: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl WebServer {
    /// nginx with `http_block` (the text inside `http { }`, after the
    /// prefix's temp paths; it must hold a `server` that listens on
    /// `127.0.0.1:{prefix.port}`). `None` when nginx is not installed.
    pub fn nginx(http_block: impl FnOnce(&Prefix) -> String) -> Option<WebServer> {
        let nginx = require(&["/usr/sbin/nginx"])?;
        let (dir, prefix) = new_prefix();
        let d = prefix.dir.display();
        let user = if is_root() { "user root root;\n" } else { "" };
        let conf = format!(
            "{user}daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/logs/error.log info;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  \
             proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  \
             scgi_temp_path {d}/tmp/scgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  \
             client_max_body_size 0;\n{}\n}}\n",
            http_block(&prefix)
        );
        let path = prefix.dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let mut cmd = Command::new(nginx);
        cmd.arg("-p").arg(&prefix.dir).arg("-c").arg(&path);
        Some(start(cmd, dir, &prefix, "logs/error.log"))
    }

    /// Apache httpd (event MPM, as www-data when root) with `conf` appended
    /// to a base configuration (ServerRoot, Listen, logs, mod_authz_core,
    /// mod_unixd). `conf` loads the modules it needs from
    /// [`APACHE_MODULES`]. `None` when Apache is not installed.
    pub fn apache(conf: impl FnOnce(&Prefix) -> String) -> Option<WebServer> {
        let apache = require(&["/usr/sbin/apache2"])?;
        let (dir, prefix) = new_prefix();
        let d = prefix.dir.display();
        let port = prefix.port;
        let user = if is_root() {
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let m = APACHE_MODULES;
        let text = format!(
            "ServerRoot \"{d}\"\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\n\
             PidFile \"{d}/logs/httpd.pid\"\nErrorLog \"{d}/logs/error.log\"\nLogLevel info\n\
             DefaultRuntimeDir \"{d}/logs\"\n\
             LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
             LoadModule authz_core_module {m}/mod_authz_core.so\n{user}\
             DocumentRoot \"{d}/htdocs\"\n<Directory \"{d}/htdocs\">\n    Require all granted\n</Directory>\n{}\n",
            conf(&prefix)
        );
        let path = prefix.dir.join("httpd.conf");
        std::fs::write(&path, text).unwrap();
        let mut cmd = Command::new(apache);
        cmd.arg("-f").arg(&path).arg("-DFOREGROUND");
        Some(start(cmd, dir, &prefix, "logs/error.log"))
    }

    /// lighttpd with `conf` appended to a base configuration (document
    /// root, bind, port, error log). `conf` adds its `server.modules`.
    /// `None` when lighttpd is not installed.
    pub fn lighttpd(conf: impl FnOnce(&Prefix) -> String) -> Option<WebServer> {
        let lighttpd = require(&["/usr/sbin/lighttpd"])?;
        let (dir, prefix) = new_prefix();
        let d = prefix.dir.display();
        let port = prefix.port;
        let text = format!(
            "server.document-root = \"{d}/htdocs\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n\
             server.errorlog = \"{d}/logs/error.log\"\nserver.pid-file = \"{d}/lighttpd.pid\"\n\
             server.upload-dirs = ( \"{d}/tmp\" )\nserver.max-request-size = 0\n\
             server.stream-request-body = 2\nserver.stream-response-body = 2\n{}\n",
            conf(&prefix)
        );
        let path = prefix.dir.join("lighttpd.conf");
        std::fs::write(&path, text).unwrap();
        let mut cmd = Command::new(lighttpd);
        cmd.arg("-D").arg("-f").arg(&path);
        Some(start(cmd, dir, &prefix, "logs/error.log"))
    }

    /// `http://127.0.0.1:PORT` + `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The server's error log so far.
    #[must_use]
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }

    /// The prefix directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn new_prefix() -> (tempfile::TempDir, Prefix) {
    let dir = public_tempdir();
    for sub in ["logs", "tmp", "htdocs", "run"] {
        let p = dir.path().join(sub);
        std::fs::create_dir(&p).unwrap();
        set_mode(&p, 0o777);
    }
    let prefix = Prefix {
        dir: dir.path().to_path_buf(),
        port: free_port(),
    };
    (dir, prefix)
}

fn start(mut cmd: Command, dir: tempfile::TempDir, prefix: &Prefix, log: &str) -> WebServer {
    // Its own process group: some servers signal their whole group on shutdown.
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let error_log = prefix.dir.join(log);
    wait_for_port(prefix.port, &mut child, &error_log);
    WebServer {
        child,
        port: prefix.port,
        error_log,
        dir,
    }
}
