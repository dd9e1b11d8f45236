//! A `gatekit serve` process under test: started from the built binary on
//! 127.0.0.1 port 0 (the port is read from its banner), watched through
//! /proc (resident memory, CPU time, still alive) and its stderr (no
//! "panicked"), stopped by PID on drop. Shared by tests/abuse and
//! tests/faults (the latter includes this file by path).

#![allow(dead_code)] // each suite uses its own part of these helpers

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any single reply may take before the test calls it a hang.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound on a server's resident memory after a group of cases.
pub const MAX_RSS_KIB: u64 = 64 * 1024;

/// The built `gatekit` binary.
pub fn gatekit_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatekit"))
}

/// A running `gatekit serve`.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        gatekit_testkit::stop(&mut self.child);
    }
}

impl Running {
    /// `gatekit serve --FRONT 127.0.0.1:0 ARGS...` (e.g. `fastcgi`, `["echo"]`).
    pub fn start(front: &str, args: &[&str]) -> Running {
        Running::start_with(front, args, &[], None)
    }

    /// Like [`Running::start`], with extra environment variables and
    /// optionally under a [`Limit`] set by prlimit(1) (which execs the
    /// server in its own place, so the PID is the server's).
    /// Starts the server under a resource limit, or none; see [`Limit`].
    pub fn start_with(
        front: &str,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Option<Limit>,
    ) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let mut cmd = match limit {
            Some(Limit::Nofile(n)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(gatekit_bin());
                c
            }
            Some(Limit::Fsize(bytes)) => {
                // SIGXFSZ ignored (an ignored signal stays ignored across
                // exec), so a write past the limit fails with EFBIG instead
                // of killing the process.
                let mut c = Command::new("bash");
                c.arg("-c")
                    .arg(format!(
                        "trap '' XFSZ; exec prlimit --fsize={bytes}:{bytes} -- \"$0\" \"$@\""
                    ))
                    .arg(gatekit_bin());
                c
            }
            None => Command::new(gatekit_bin()),
        };
        cmd.arg("serve")
            .arg(format!("--{front}"))
            .arg("127.0.0.1:0")
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = banner_port(&text) {
                break port;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("gatekit exited early ({status}):\n{text}");
            }
            assert!(Instant::now() < deadline, "no banner in 15 s:\n{text}");
            std::thread::sleep(Duration::from_millis(10));
        };
        Running {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `VmRSS` from /proc, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// User plus system CPU time so far, in clock ticks (/proc/PID/stat).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Open descriptors of the process (/proc/PID/fd).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }

    /// Panics unless the process is alive, its stderr has no "panicked" and
    /// its resident memory is below [`MAX_RSS_KIB`].
    pub fn assert_healthy(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{what}: gatekit exited ({status}):\n{}", self.log());
        }
        let log = self.log();
        assert!(
            !log.contains("panicked"),
            "{what}: a panic in the log:\n{log}"
        );
        let rss = self.rss_kib();
        eprintln!("{what}: gatekit VmRSS {rss} KiB");
        assert!(
            rss < MAX_RSS_KIB,
            "{what}: VmRSS {rss} KiB is over {MAX_RSS_KIB} KiB"
        );
    }

    /// A connection with read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(REPLY_TIMEOUT)).unwrap();
        s
    }

    /// Sends a signal (`kill -SIG PID`) to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// The port in a banner such as `... on 127.0.0.1:38865 (Ctrl-C to stop)`.
fn banner_port(text: &str) -> Option<u16> {
    let at = text.find("127.0.0.1:")? + "127.0.0.1:".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What came back on a connection: the bytes, and how it ended.
#[derive(Debug)]
pub struct Reply {
    /// Every byte read.
    pub bytes: Vec<u8>,
    /// The peer closed (EOF) or reset the connection.
    pub closed: bool,
}

impl Reply {
    /// The bytes as lossy text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Writes `bytes` (a write the server refuses by closing is not an error),
/// then reads until the server closes; a read that times out fails the test.
pub fn send_and_read_to_close(stream: &mut TcpStream, bytes: &[u8], half_close: bool) -> Reply {
    let _ = stream.write_all(bytes); // the server may close early; the reply tells
    if half_close {
        let _ = stream.shutdown(Shutdown::Write); // may already be reset
    }
    read_to_close(stream)
}

/// Reads until EOF or a reset; a read that times out fails the test.
pub fn read_to_close(stream: &mut TcpStream) -> Reply {
    let deadline = Instant::now() + REPLY_TIMEOUT * 3;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        assert!(
            Instant::now() < deadline,
            "connection never closed; got so far:\n{}",
            String::from_utf8_lossy(&bytes)
        );
        match stream.read(&mut buf) {
            Ok(0) => {
                return Reply {
                    bytes,
                    closed: true,
                };
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "no answer and no close within {REPLY_TIMEOUT:?}; got so far:\n{}",
                    String::from_utf8_lossy(&bytes)
                )
            }
            Err(_) => {
                return Reply {
                    bytes,
                    closed: true,
                };
            }
        }
    }
}

/// Reads until `done(bytes)` holds, or the server closes; a timeout fails.
pub fn read_until(stream: &mut TcpStream, mut done: impl FnMut(&[u8]) -> bool) -> Reply {
    let deadline = Instant::now() + REPLY_TIMEOUT * 3;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !done(&bytes) {
        assert!(
            Instant::now() < deadline,
            "no complete answer; got so far:\n{}",
            String::from_utf8_lossy(&bytes)
        );
        match stream.read(&mut buf) {
            Ok(0) => {
                return Reply {
                    bytes,
                    closed: true,
                };
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "no complete answer within {REPLY_TIMEOUT:?}; got so far:\n{}",
                    String::from_utf8_lossy(&bytes)
                )
            }
            Err(_) => {
                return Reply {
                    bytes,
                    closed: true,
                };
            }
        }
    }
    Reply {
        bytes,
        closed: false,
    }
}

/// Closes a connection with a reset (SO_LINGER 0): the kernel sends RST,
/// not FIN, and drops anything unsent.
pub fn reset(stream: TcpStream) {
    rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// The status of the CGI-style response `out` (FastCGI's STDOUT, an SCGI
/// reply): its `Status:` header, or 200 when it has none (RFC 3875 §6.3.3;
/// the servers leave out `Status: 200 OK`); `None` for no complete head or
/// a malformed status.
pub fn cgi_status(out: &[u8]) -> Option<u16> {
    find(out, b"\r\n\r\n")?;
    match out.strip_prefix(b"Status: ") {
        Some(rest) => std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok(),
        None => Some(200),
    }
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How many times `needle` occurs in `hay` (not overlapping).
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while let Some(i) = find(&hay[at..], needle) {
        n += 1;
        at += i + needle.len();
    }
    n
}

/// A resource limit for the server process, set with prlimit(1).
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// RLIMIT_NOFILE: open descriptors.
    Nofile(u32),
    /// RLIMIT_FSIZE: the largest file the process may write, in bytes.
    Fsize(u64),
}
