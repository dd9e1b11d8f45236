//! Shared by the real-world test files: the test app, the server (and load
//! client) run as a child process, and a small HTTP/1.1 client.
//!
//! A child process is the test binary itself, re-executed with
//! `--exact child --ignored` and `GATEKIT_CHILD_SERVER` (or
//! `GATEKIT_CHILD_CLIENT`) set, under `sh -c 'ulimit -n <hard>; exec ...'`.
//! Each test file defines the `#[ignore]`d `child` test that calls
//! [`child_main`]; without the variable it does nothing. The server child
//! prints `PORT <n>` on stdout; the parent reads it, measures the child's
//! `/proc/PID/status`, and stops it by PID (SIGTERM, or SIGKILL on drop).

#![allow(dead_code)] // each test file uses a different part of this module
#![allow(clippy::cast_precision_loss)] // figures for messages

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gatekit_core::{Body, BoxError, Environ, FileWrapper, StartResponse};
use gatekit_http::{Server, ServerConfig};
use gatekit_server::listen::Addr;

/// Set (to anything) in a child that is to run the server.
pub const CHILD_SERVER: &str = "GATEKIT_CHILD_SERVER";
/// Set to a client mode (`idle`) in a child that is to run a load client.
pub const CHILD_CLIENT: &str = "GATEKIT_CHILD_CLIENT";

/// The test app, routed by `PATH_INFO`:
///
/// - `/hello`: `hello\n`.
/// - `/env`: `NAME=value` lines of a few request variables.
/// - `/port`: the client's `REMOTE_PORT` (which connection carried the request).
/// - `/echo`: the request body back (in memory; for bodies of a few MB).
/// - `/sum`: reads `wsgi.input` to the end through `b2sum` (BLAKE2b, three
///   times as fast as `sha256sum` here) and answers `<bytes> <digest>`: a
///   body of any size checked in constant memory.
/// - `/file`: the file named by the query string, as a [`FileWrapper`].
/// - `/stream`: 100 blocks of 10,000 bytes, no length (chunked framing).
/// - `/work`: 64 KiB with an explicit `Content-Length`, streamed as four
///   blocks 5 ms apart (so a shutdown finds responses half sent).
pub fn app(env: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
    let path = env.get_lossy("PATH_INFO").unwrap_or_default().into_owned();
    let text = [("Content-Type", "text/plain")];
    match path.as_str() {
        "/hello" => {
            sr.start("200 OK", text)?;
            Ok(Body::from("hello\n"))
        }
        "/env" => {
            use std::fmt::Write as _;
            let mut out = String::new();
            for name in [
                "REQUEST_METHOD",
                "PATH_INFO",
                "QUERY_STRING",
                "SERVER_PROTOCOL",
                "HTTP_HOST",
                "HTTP_CONNECTION",
                "HTTP_X_FORWARDED_FOR",
                "REMOTE_ADDR",
            ] {
                let value = env.get_lossy(name).unwrap_or_default();
                let _ = writeln!(out, "{name}={value}");
            }
            sr.start("200 OK", text)?;
            Ok(Body::from(out))
        }
        "/port" => {
            let port = env
                .get_lossy("REMOTE_PORT")
                .unwrap_or_default()
                .into_owned();
            sr.start("200 OK", text)?;
            Ok(Body::from(port))
        }
        "/echo" => gatekit_core::echo_app(env, sr),
        "/sum" => {
            let mut sum = Command::new("b2sum")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut stdin = sum.stdin.take().ok_or("no stdin")?;
            let copied = io::copy(&mut env.input, &mut stdin);
            drop(stdin);
            let out = sum.wait_with_output()?;
            let bytes = copied?;
            let digest = first_word(&out.stdout);
            sr.start("200 OK", text)?;
            Ok(Body::from(format!("{bytes} {digest}")))
        }
        "/file" => {
            let name = env
                .get_lossy("QUERY_STRING")
                .unwrap_or_default()
                .into_owned();
            let file = std::fs::File::open(name)?;
            sr.start("200 OK", [("Content-Type", "application/octet-stream")])?;
            Ok(Body::File(FileWrapper::from_file(file)))
        }
        "/stream" => {
            sr.start("200 OK", [("Content-Type", "application/octet-stream")])?;
            Ok(Body::chunks(
                (0..100u8).map(|i| vec![b'a' + i % 26; 10_000]),
            ))
        }
        "/work" => {
            let len = WORK_BLOCK * 4;
            sr.start(
                "200 OK",
                [
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", &len.to_string()),
                ],
            )?;
            Ok(Body::chunks((0..4u8).map(|i| {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                work_block(i)
            })))
        }
        _ => {
            sr.start("404 Not Found", text)?;
            Ok(Body::from("not found\n"))
        }
    }
}

/// The size of one `/work` block.
pub const WORK_BLOCK: usize = 16 * 1024;

/// Block `i` of the `/work` response.
#[must_use]
pub fn work_block(i: u8) -> Vec<u8> {
    (0..WORK_BLOCK).map(|j| (j as u8).wrapping_add(i)).collect()
}

/// The whole `/work` response body.
#[must_use]
pub fn work_body() -> Vec<u8> {
    (0..4u8).flat_map(work_block).collect()
}

/// The BLAKE2b digest of a file, in hex (`b2sum`, from coreutils).
#[must_use]
pub fn b2sum_file(path: &std::path::Path) -> String {
    let out = Command::new("b2sum").arg(path).output().unwrap();
    assert!(out.status.success(), "b2sum {}", path.display());
    first_word(&out.stdout)
}

/// The first word of a command's output (a digest).
#[must_use]
pub fn first_word(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// The body of the `#[ignore]`d `child` test: runs the server (or a load
/// client) when the parent asked for it, else returns at once.
pub fn child_main() {
    if std::env::var_os(CHILD_SERVER).is_some() {
        child_server();
    } else if let Ok(mode) = std::env::var(CHILD_CLIENT) {
        match mode.as_str() {
            "idle" => child_idle_client(),
            other => panic!("unknown client mode {other}"),
        }
    }
}

/// The server child. Configured by `GK_MAX_CONNECTIONS`, `GK_WORKERS`,
/// `GK_REQUEST_TIMEOUT_MS`, `GK_GRACE_MS`; bodies up to 4 GiB.
fn child_server() {
    let mut config = ServerConfig::default();
    config.spool = config.spool.with_max_body(4 << 30);
    if let Some(n) = env_u64("GK_MAX_CONNECTIONS") {
        config.engine.max_connections = n as usize;
    }
    if let Some(n) = env_u64("GK_WORKERS") {
        config.engine.workers = n as usize;
    }
    if let Some(ms) = env_u64("GK_REQUEST_TIMEOUT_MS") {
        config.engine.request_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = env_u64("GK_GRACE_MS") {
        config.engine.shutdown_grace = Duration::from_millis(ms);
    }
    let server = Server::bind("127.0.0.1:0", app, config).expect("bind");
    server.shutdown_handle().on_signals().expect("signals");
    let port = match server.local_addrs().first() {
        Some(Addr::Ip(a)) => a.port(),
        other => panic!("unexpected local address {other:?}"),
    };
    let mut out = io::stdout();
    writeln!(out, "\nPORT {port}").unwrap();
    out.flush().unwrap();
    server.serve_forever().expect("serve_forever");
    writeln!(out, "\nSERVED").unwrap();
    out.flush().unwrap();
}

/// Opens `GK_COUNT` connections to `GK_PORT`, makes one keep-alive request
/// on each (none with `GK_SEND=0`), prints `HELD <n>` and holds them until
/// stdin closes.
fn child_idle_client() {
    let port: u16 = env_u64("GK_PORT").expect("GK_PORT") as u16;
    let count = env_u64("GK_COUNT").expect("GK_COUNT") as usize;
    let send = env_u64("GK_SEND") != Some(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held = Vec::with_capacity(count);
    let request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    while held.len() < count {
        assert!(
            Instant::now() < deadline,
            "took too long; held {}",
            held.len()
        );
        let batch = (count - held.len()).min(500);
        let mut fresh = Vec::with_capacity(batch);
        for _ in 0..batch {
            let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            fresh.push(s);
        }
        for s in fresh.iter_mut().filter(|_| send) {
            s.write_all(request).expect("send");
        }
        for s in fresh.iter_mut().filter(|_| send) {
            let r = read_response(s).expect("response");
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello\n"[..]));
            assert!(
                !r.close,
                "the server wants to close a keep-alive connection"
            );
        }
        held.extend(fresh);
    }
    println!("\nHELD {}", held.len());
    io::stdout().flush().unwrap();
    // Hold until the parent closes our stdin (bounded by the parent).
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    // Every connection must still be open: a request on a few still works.
    for s in held.iter_mut().step_by(997) {
        s.write_all(request).expect("send again");
        let r = read_response(s).expect("response again");
        assert_eq!(r.status, 200);
    }
    println!("\nRELEASED");
    drop(held);
}

/// A child process running this test binary's `child` test.
#[derive(Debug)]
pub struct ChildProc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdin: Option<ChildStdin>,
    /// Where the child's stderr goes.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill(); // SIGKILL to this one PID
            let _ = self.child.wait();
        }
    }
}

/// The hard limit on open files (`/proc/self/limits`).
#[must_use]
pub fn nofile_hard_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

impl ChildProc {
    /// Starts the `child` test of this binary with `envs`, its open-file
    /// limit raised to the hard limit, stdin piped.
    #[must_use]
    pub fn spawn(envs: &[(&str, String)]) -> ChildProc {
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec \"$0\" \"$@\"")
            .arg(exe)
            .args([
                "--exact",
                "child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env_remove(CHILD_SERVER)
            .env_remove(CHILD_CLIENT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Drains stdout to the end, so the child never blocks on it.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        ChildProc {
            child,
            lines: rx,
            stdin,
            log,
            _dir: dir,
        }
    }

    /// Starts a server child (`GATEKIT_CHILD_SERVER=1` plus `envs`) and
    /// waits for its port.
    #[must_use]
    pub fn server(envs: &[(&str, String)]) -> (ChildProc, u16) {
        let mut all = vec![(CHILD_SERVER, "1".to_owned())];
        all.extend(envs.iter().cloned());
        let mut c = ChildProc::spawn(&all);
        let port = c
            .wait_for("PORT ", Duration::from_secs(30))
            .parse()
            .unwrap();
        (c, port)
    }

    /// The rest of the first stdout line holding `marker`, after it; panics
    /// with the child's stderr if the child ends or `timeout` passes first.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(i) = line.find(marker) {
                        return line[i + marker.len()..].trim().to_owned();
                    }
                }
                Err(e) => panic!(
                    "child: no {marker:?} within {timeout:?} ({e}); stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// The child's stderr so far.
    #[must_use]
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` field in KiB (`VmHWM`, `VmRSS`).
    #[must_use]
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Open descriptors of the child.
    #[must_use]
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }

    /// Closes the child's stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends SIGTERM to the child (by PID).
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {}", self.pid());
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A response read off a socket.
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The body (by `Content-Length`).
    pub body: Vec<u8>,
    /// The server said `Connection: close`.
    pub close: bool,
}

/// Why no whole response arrived.
#[derive(Debug)]
pub enum ReadError {
    /// The connection ended (EOF, reset) before the first byte of a response.
    ClosedBeforeResponse(io::Error),
    /// Part of a response arrived, then the connection ended or stalled.
    Truncated {
        /// Bytes of the response received (head and body).
        got: usize,
        /// What ended it.
        error: io::Error,
    },
}

/// Reads one response framed by `Content-Length` (the test app always sends
/// one, except `/stream`).
pub fn read_response(s: &mut TcpStream) -> Result<Resp, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    let truncated = |got: usize, error: io::Error| {
        if got == 0 {
            ReadError::ClosedBeforeResponse(error)
        } else {
            ReadError::Truncated { got, error }
        }
    };
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(truncated(buf.len(), io::Error::other("head too long")));
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(truncated(buf.len(), io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(truncated(buf.len(), e)),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| truncated(buf.len(), io::Error::other(format!("bad head {head:?}"))))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| truncated(buf.len(), io::Error::other("no Content-Length")))?;
    let mut body = buf.split_off(head_end);
    while body.len() < len {
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err(truncated(
                    head_end + body.len(),
                    io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(truncated(head_end + body.len(), e)),
        }
    }
    if body.len() > len {
        return Err(ReadError::Truncated {
            got: head_end + body.len(),
            error: io::Error::other(format!("{} bytes past Content-Length", body.len() - len)),
        });
    }
    Ok(Resp {
        status,
        body,
        close,
    })
}

/// One `GET path` on a new connection (`Connection: close`).
pub fn get(port: u16, path: &str) -> Result<Resp, ReadError> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(ReadError::ClosedBeforeResponse)?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(ReadError::ClosedBeforeResponse)?;
    read_response(&mut s)
}

/// KiB as MiB, for messages.
#[must_use]
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
