//! Listener tests against real sockets: TCP on loopback, Unix sockets in a
//! temporary directory, and inherited sockets (fd 0, `fd:N`, `LISTEN_FDS`)
//! in a child process.
//!
//! The child is this test binary itself, re-run with `--exact <test>` and
//! `GATEKIT_LISTEN_CHILD=<mode>` set; the test function sees the variable
//! and plays the child's part. The socket under test is handed over as the
//! child's stdin (and moved to fd 3 by `sh` where needed), so no test needs
//! `unsafe`. Every wait is bounded: connects, accepts and children time out.

use std::fs;
use std::io::{Read, Seek, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatekit_server::listen::{
    self, Addr, DEFAULT_BACKLOG, ErrorKind, ListenOptions, Listener, Peer, Stream, fd0_is_listener,
    is_transient_accept_error, systemd_listeners,
};
use rustix::io::{Errno, FdFlags};

const CHILD_ENV: &str = "GATEKIT_LISTEN_CHILD";
const EXPECT_ENV: &str = "GATEKIT_LISTEN_EXPECT";
const CHILD_OK: &str = "GATEKIT-LISTEN-CHILD-OK";
const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// Accepts one connection within `TIMEOUT` (non-blocking accept, polled).
fn accept_within(l: &Listener) -> (Stream, Peer) {
    l.set_nonblocking(true).expect("set_nonblocking");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match l.accept() {
            Ok(pair) => return pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no connection within {TIMEOUT:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn connect_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    s
}

fn connect_unix(path: &std::path::Path) -> UnixStream {
    let s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    s
}

fn tcp_addr(l: &Listener) -> SocketAddr {
    match l.local_addr().expect("local_addr") {
        Addr::Ip(sa) => sa,
        other => panic!("not a TCP listener: {other}"),
    }
}

/// Sends a line one way and another back, so both ends are proven live.
fn exchange(server: &mut Stream, client: &mut (impl Read + Write)) {
    server
        .set_read_timeout(Some(TIMEOUT))
        .expect("server read timeout");
    client.write_all(b"ping\n").expect("client write");
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).expect("server read");
    assert_eq!(&buf, b"ping\n");
    server.write_all(b"pong\n").expect("server write");
    client.read_exact(&mut buf).expect("client read");
    assert_eq!(&buf, b"pong\n");
}

fn assert_cloexec(fd: impl AsFd) {
    let flags = rustix::io::fcntl_getfd(fd).expect("F_GETFD");
    assert!(
        flags.contains(FdFlags::CLOEXEC),
        "descriptor lacks FD_CLOEXEC"
    );
}

fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// How the child gets its socket.
enum Launch {
    /// Directly: the socket is the child's fd 0.
    Direct,
    /// Through `sh -c SCRIPT`, which moves fd 0 to fd 3 and execs us.
    Shell(&'static str),
}

/// Moves the socket on fd 0 to fd 3 and puts /dev/null on fd 0.
const TO_FD3: &str = r#"exec 3<&0 0</dev/null; exec "$0" "$@""#;
/// As `TO_FD3`, and says "for you" in systemd's words: LISTEN_PID is the
/// shell's pid, which the exec hands on to the test binary.
const TO_FD3_ACTIVATED: &str = r#"exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec "$0" "$@""#;

/// Runs the test `name` of this binary in child mode `mode`, with `stdin`
/// as its fd 0 (or fd 3, see [`Launch`]) and `env` added. Waits at most
/// 30 s, then kills it. Returns whether it exited 0, and its output.
fn run_child(
    name: &str,
    mode: &str,
    stdin: Stdio,
    launch: &Launch,
    env: &[(&str, &str)],
) -> (bool, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let test_args = [name, "--exact", "--nocapture", "--test-threads=1"];
    let mut cmd = match launch {
        Launch::Direct => {
            let mut c = Command::new(&exe);
            c.args(test_args);
            c
        }
        Launch::Shell(script) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(script).arg(&exe).args(test_args);
            c
        }
    };
    // The parent's own activation variables (if any) must not leak in.
    cmd.env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES");
    cmd.env(CHILD_ENV, mode).envs(env.iter().copied());
    let out = tempfile::tempfile().expect("tempfile");
    cmd.stdin(stdin)
        .stdout(out.try_clone().expect("dup"))
        .stderr(out.try_clone().expect("dup"));
    let mut child = cmd.spawn().expect("spawn child");
    drop(cmd); // closes our copy of the socket handed over
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill(); // Reason: it may have exited meanwhile.
            let _ = child.wait();
            panic!("child {name} ({mode}) did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut text = String::new();
    let mut out = out;
    out.rewind().expect("rewind");
    out.read_to_string(&mut text).expect("read child output");
    (status.success(), text)
}

fn assert_child_ok((ok, output): (bool, String)) {
    assert!(
        ok && output.contains(CHILD_OK),
        "child failed or did not run:\n{output}"
    );
}

// ---------------------------------------------------------------------------
// Addr
// ---------------------------------------------------------------------------

#[test]
fn addr_parses_every_form_and_displays_it_back() {
    let good: &[(&str, Addr, &str)] = &[
        (
            "127.0.0.1:8000",
            Addr::Ip("127.0.0.1:8000".parse().unwrap()),
            "127.0.0.1:8000",
        ),
        (
            "0.0.0.0:0",
            Addr::Ip("0.0.0.0:0".parse().unwrap()),
            "0.0.0.0:0",
        ),
        (
            "[::1]:8000",
            Addr::Ip("[::1]:8000".parse().unwrap()),
            "[::1]:8000",
        ),
        (
            "[::]:65535",
            Addr::Ip("[::]:65535".parse().unwrap()),
            "[::]:65535",
        ),
        (
            "[0:0::1]:80",
            Addr::Ip("[::1]:80".parse().unwrap()),
            "[::1]:80",
        ),
        (
            "localhost:8000",
            Addr::Host {
                host: "localhost".into(),
                port: 8000,
            },
            "localhost:8000",
        ),
        (
            "app-1.example_x.org:1",
            Addr::Host {
                host: "app-1.example_x.org".into(),
                port: 1,
            },
            "app-1.example_x.org:1",
        ),
        (
            "unix:/run/app.sock",
            Addr::Unix("/run/app.sock".into()),
            "unix:/run/app.sock",
        ),
        (
            "unix:rel/app.sock",
            Addr::Unix("rel/app.sock".into()),
            "unix:rel/app.sock",
        ),
        ("unix:/a:b", Addr::Unix("/a:b".into()), "unix:/a:b"),
        ("fd:0", Addr::Fd(0), "fd:0"),
        ("fd:3", Addr::Fd(3), "fd:3"),
    ];
    for (input, want, shown) in good {
        let got: Addr = input.parse().unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(&got, want, "{input:?}");
        assert_eq!(got.to_string(), *shown, "{input:?}");
        assert_eq!(
            shown.parse::<Addr>().ok().as_ref(),
            Some(want),
            "round trip {shown:?}"
        );
    }
}

#[test]
fn addr_rejects_malformed_input_with_a_reason() {
    let long = format!("unix:/{}", "x".repeat(200));
    let bad: &[(&str, &str)] = &[
        ("", "empty"),
        ("localhost", "missing port"),
        ("127.0.0.1", "missing port"),
        ("localhost:", "missing port"),
        (":8000", "missing host"),
        ("localhost:http", "invalid port \"http\""),
        ("localhost:65536", "invalid port"),
        ("localhost:-1", "invalid port"),
        ("localhost:+80", "invalid port"),
        ("::1:8000", "needs brackets"),
        ("[::1]", "missing port"),
        ("[::1]:", "missing port"),
        ("[::1:80", "missing ']'"),
        ("[1.2.3.4]:80", "invalid IPv6 address"),
        ("[::1]:99999", "invalid port"),
        ("256.0.0.1:80", "invalid IPv4 address"),
        ("1.2.3:80", "invalid IPv4 address"),
        ("bad host:80", "invalid host name"),
        ("a..b:80", "invalid host name"),
        ("tcp://127.0.0.1:80", "not a URL"),
        ("http://localhost:80", "not a URL"),
        ("unix:", "missing path"),
        ("unix:/a\0b", "NUL"),
        (long.as_str(), "too long"),
        ("fd:", "expected fd:N"),
        ("fd:-1", "expected fd:N"),
        ("fd:+3", "expected fd:N"),
        ("fd:x", "expected fd:N"),
        ("fd:99999999999", "expected fd:N"),
    ];
    for (input, reason) in bad {
        let err = match input.parse::<Addr>() {
            Ok(a) => panic!("{input:?} parsed as {a:?}"),
            Err(e) => e,
        };
        assert!(
            matches!(err.kind(), ErrorKind::InvalidAddr { .. }),
            "{input:?}: {:?}",
            err.kind()
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("invalid listen address {input:?}: ")),
            "{msg}"
        );
        assert!(msg.contains(reason), "{input:?}: {msg:?} lacks {reason:?}");
    }
}

#[test]
fn default_options_are_the_safe_ones() {
    let o = ListenOptions::default();
    assert_eq!(o.backlog, 1024);
    assert_eq!(DEFAULT_BACKLOG, 1024);
    assert!(o.reuse_addr);
    assert_eq!((o.unix_mode, o.unix_uid, o.unix_gid), (None, None, None));
}

// ---------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------

#[test]
fn tcp_v4_bind_connect_accept_sets_nodelay_and_cloexec() {
    let l = listen::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    assert!(!l.is_unix());
    assert_eq!(l.name(), None);
    let addr = tcp_addr(&l);
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    assert_eq!(
        l.local_addr().unwrap().to_string(),
        format!("127.0.0.1:{}", addr.port())
    );
    assert_cloexec(&l);
    assert!(rustix::net::sockopt::socket_reuseaddr(&l).unwrap());
    assert!(rustix::net::sockopt::socket_acceptconn(&l).unwrap());

    let mut client = connect_tcp(addr);
    let (mut server, peer) = accept_within(&l);
    assert_eq!(peer, Peer::Tcp(client.local_addr().unwrap()));
    assert_eq!(peer.to_string(), client.local_addr().unwrap().to_string());
    match &server {
        Stream::Tcp(s) => assert!(s.nodelay().unwrap(), "TCP_NODELAY not set"),
        Stream::Unix(_) => panic!("TCP listener gave a Unix stream"),
    }
    assert_cloexec(&server);
    // Accepted streams are blocking even though the listener is not.
    server
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 1];
    let err = server.read(&mut buf).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    exchange(&mut server, &mut client);
}

#[test]
fn tcp_v6_loopback_bind_connect_accept_sets_nodelay() {
    let l = match listen::bind(&"[::1]:0".parse().unwrap(), &ListenOptions::default()) {
        Ok(l) => l,
        Err(e)
            if matches!(
                e.io_error().and_then(Errno::from_io_error),
                Some(Errno::ADDRNOTAVAIL | Errno::AFNOSUPPORT)
            ) =>
        {
            eprintln!("skipped: no IPv6 loopback here ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let addr = tcp_addr(&l);
    assert!(addr.is_ipv6() && addr.ip().is_loopback());
    assert_eq!(
        l.local_addr().unwrap().to_string(),
        format!("[::1]:{}", addr.port())
    );
    let mut client = connect_tcp(addr);
    let (mut server, peer) = accept_within(&l);
    assert_eq!(peer, Peer::Tcp(client.local_addr().unwrap()));
    let Stream::Tcp(s) = &server else {
        panic!("not TCP")
    };
    assert!(s.nodelay().unwrap());
    exchange(&mut server, &mut client);
}

#[test]
fn accept_nonblocking_gives_a_nonblocking_stream_with_nodelay() {
    let l = listen::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    let _client = connect_tcp(tcp_addr(&l));
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let (server, _) = loop {
        match l.accept_nonblocking() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let mut buf = [0u8; 1];
    let err = (&server).read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    let Stream::Tcp(s) = &server else {
        panic!("not TCP")
    };
    assert!(s.nodelay().unwrap());
}

#[test]
fn localhost_is_resolved_and_bound_on_loopback() {
    let l = listen::bind(&"localhost:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    let addr = tcp_addr(&l);
    assert!(addr.ip().is_loopback(), "{addr}");
    let _client = connect_tcp(addr);
    accept_within(&l);
}

#[test]
fn default_backlog_queues_300_connections_before_any_accept() {
    // With std's 128 the 130th SYN would be dropped and its connect would
    // wait a second for the retransmit; with 1024 all 300 complete at once.
    let somaxconn: u32 = fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    if somaxconn < 300 {
        eprintln!("skipped: net.core.somaxconn is {somaxconn}");
        return;
    }
    let l = listen::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    let addr = tcp_addr(&l);
    let mut clients = Vec::new();
    for i in 0..300 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(700)) {
            Ok(c) => clients.push(c),
            Err(e) => panic!("connection {i} not queued: {e}"),
        }
    }
    assert_eq!(clients.len(), 300);
}

#[test]
fn custom_backlog_is_passed_to_listen() {
    // Reading the backlog back is not possible, but its effect is: with a
    // backlog of 4 the queue fills after a few connections and the next
    // SYN goes unanswered.
    let mut opts = ListenOptions::default();
    opts.backlog = 4;
    let l = listen::bind(&"127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    let addr = tcp_addr(&l);
    let mut clients = Vec::new();
    let mut refused_at = None;
    for i in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(c) => clients.push(c),
            Err(_) => {
                refused_at = Some(i);
                break;
            }
        }
    }
    let n = refused_at.expect("64 connections queued on a backlog of 4");
    assert!((4..=16).contains(&n), "queue full after {n} connections");
}

#[test]
fn tcp_bind_error_names_the_address_and_the_cause() {
    let first = listen::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    let addr = tcp_addr(&first);
    let err = listen::bind(&Addr::Ip(addr), &ListenOptions::default()).unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Bind {
            addr: addr.to_string()
        }
    );
    assert_eq!(
        err.to_string(),
        format!("cannot bind {addr}: address already in use")
    );
    assert_eq!(
        err.io_error().and_then(Errno::from_io_error),
        Some(Errno::ADDRINUSE)
    );
    assert!(std::error::Error::source(&err).is_none());
}

#[test]
fn nonblocking_accept_with_nothing_pending_would_block() {
    let l = listen::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    l.set_nonblocking(true).unwrap();
    let err = l.accept().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(!is_transient_accept_error(&err));
}

#[test]
fn accept_errors_are_classified_transient_or_fatal() {
    let os = |e: Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    for e in [
        Errno::MFILE,
        Errno::NFILE,
        Errno::NOBUFS,
        Errno::NOMEM,
        Errno::CONNABORTED,
        Errno::INTR,
        Errno::PROTO,
        Errno::NETUNREACH,
        Errno::PERM,
    ] {
        assert!(
            is_transient_accept_error(&os(e)),
            "{e:?} should be transient"
        );
    }
    for e in [
        Errno::BADF,
        Errno::INVAL,
        Errno::NOTSOCK,
        Errno::FAULT,
        Errno::AGAIN,
    ] {
        assert!(
            !is_transient_accept_error(&os(e)),
            "{e:?} should not be transient"
        );
    }
    let kind = |k: std::io::ErrorKind| std::io::Error::from(k);
    assert!(is_transient_accept_error(&kind(
        std::io::ErrorKind::Interrupted
    )));
    assert!(is_transient_accept_error(&kind(
        std::io::ErrorKind::ConnectionAborted
    )));
    assert!(!is_transient_accept_error(&kind(
        std::io::ErrorKind::WouldBlock
    )));
    assert!(!is_transient_accept_error(&kind(
        std::io::ErrorKind::InvalidInput
    )));
}

#[test]
fn listener_converts_to_owned_fd_and_back() {
    let l = listen::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
    let addr = tcp_addr(&l);
    let fd = OwnedFd::from(l);
    let l = Listener::from_owned_fd(fd).unwrap();
    assert_eq!(tcp_addr(&l), addr);
    let copy = l.try_clone().unwrap();
    drop(l);
    let _client = connect_tcp(addr);
    accept_within(&copy);
}

#[test]
fn non_listening_descriptors_are_refused_as_listeners() {
    let (a, _b) = UnixStream::pair().unwrap();
    let err = Listener::from_owned_fd(OwnedFd::from(a)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotListening { .. }),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("is not a listening socket"),
        "{err}"
    );

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = Listener::from_owned_fd(OwnedFd::from(udp)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotListening { .. }),
        "{err}"
    );

    let file = tempfile::tempfile().unwrap();
    let err = Listener::from_owned_fd(OwnedFd::from(file)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotListening { .. }),
        "{err}"
    );

    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(Listener::from_owned_fd(OwnedFd::from(tcp)).is_ok());
}

#[test]
fn from_inherited_fd_refuses_negative_and_closed_descriptors() {
    let err = Listener::from_inherited_fd(-1).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadFd { fd: -1 });
    assert_eq!(err.to_string(), "cannot use fd -1: bad file descriptor");
    // Far above any descriptor this test binary opens.
    let err = Listener::from_inherited_fd(999_999).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadFd { fd: 999_999 });
}

#[test]
fn systemd_listeners_is_empty_without_activation() {
    // The test runner is not socket-activated (and a LISTEN_PID it may
    // have inherited names another process).
    assert!(systemd_listeners().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// Unix sockets
// ---------------------------------------------------------------------------

#[test]
fn unix_bind_connect_accept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let addr = Addr::Unix(path.clone());
    let l = listen::bind(&addr, &ListenOptions::default()).unwrap();
    assert!(l.is_unix());
    assert_eq!(l.local_addr().unwrap(), addr);
    assert_eq!(
        l.local_addr().unwrap().to_string(),
        format!("unix:{}", path.display())
    );
    assert_cloexec(&l);
    let mut client = connect_unix(&path);
    let (mut server, peer) = accept_within(&l);
    assert_eq!(peer, Peer::Unix);
    assert!(matches!(server, Stream::Unix(_)));
    assert_cloexec(&server);
    exchange(&mut server, &mut client);
}

#[test]
fn unix_stale_socket_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    // A server that died: its socket file stays, nobody accepts on it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let l = listen::bind(&Addr::Unix(path.clone()), &ListenOptions::default()).unwrap();
    let _client = connect_unix(&path);
    accept_within(&l);
}

#[test]
fn unix_live_socket_is_refused_and_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let live = UnixListener::bind(&path).unwrap();
    let err = listen::bind(&Addr::Unix(path.clone()), &ListenOptions::default()).unwrap_err();
    let label = format!("unix:{}", path.display());
    assert_eq!(
        err.kind(),
        &ErrorKind::AddrInUse {
            addr: label.clone()
        }
    );
    assert_eq!(
        err.to_string(),
        format!("cannot bind {label}: address in use by a live socket")
    );
    // Still there, still answering.
    let _client = connect_unix(&path);
    live.set_nonblocking(true).unwrap();
    let l = Listener::from(live);
    accept_within(&l);
}

#[test]
fn unix_regular_file_at_path_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    fs::write(&path, b"precious").unwrap();
    let err = listen::bind(&Addr::Unix(path.clone()), &ListenOptions::default()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotASocket { .. }), "{err}");
    assert!(
        err.to_string().contains("is not a socket (left in place)"),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), b"precious");
}

#[test]
fn unix_symlink_to_a_stale_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("old.sock");
    drop(UnixListener::bind(&target).unwrap());
    let path = dir.path().join("s.sock");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let err = listen::bind(&Addr::Unix(path.clone()), &ListenOptions::default()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotASocket { .. }), "{err}");
    assert!(
        fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(target.exists());
}

#[test]
fn unix_missing_directory_is_a_bind_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("s.sock");
    let err = listen::bind(&Addr::Unix(path.clone()), &ListenOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot bind unix:{}: no such file or directory",
            path.display()
        )
    );
}

#[test]
fn unix_mode_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o600, 0o660, 0o777] {
        let path = dir.path().join(format!("m{mode:o}.sock"));
        let mut opts = ListenOptions::default();
        opts.unix_mode = Some(mode);
        let l = listen::bind(&Addr::Unix(path.clone()), &opts).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "mode {mode:o}");
        let _client = connect_unix(&path);
        accept_within(&l);
    }
}

#[test]
fn unix_owner_and_group_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.sock");
    let me = rustix::process::getuid().as_raw();
    let my_group = rustix::process::getgid().as_raw();
    // Root may give the socket away; anyone may "change" it to themselves.
    let (uid, gid) = if me == 0 {
        (65_534, 65_534)
    } else {
        (me, my_group)
    };
    let mut opts = ListenOptions::default();
    opts.unix_uid = Some(uid);
    opts.unix_gid = Some(gid);
    opts.unix_mode = Some(0o660);
    let _l = listen::bind(&Addr::Unix(path.clone()), &opts).unwrap();
    let meta = fs::symlink_metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
}

#[test]
fn unix_bad_mode_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let mut opts = ListenOptions::default();
    opts.unix_mode = Some(0o20000);
    let err = listen::bind(&Addr::Unix(path.clone()), &opts).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidOption { .. }),
        "{err}"
    );
    assert!(!path.exists());
}

// ---------------------------------------------------------------------------
// Inherited sockets, in a child process
// ---------------------------------------------------------------------------

#[test]
fn fd0_listening_tcp_socket_is_detected_and_adopted() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "fd0-tcp");
        assert!(fd0_is_listener(), "fd 0 should be a listener");
        let l = Listener::from_fd0().expect("from_fd0");
        assert!(!l.is_unix());
        let want = std::env::var(EXPECT_ENV).expect("expected address");
        assert_eq!(l.local_addr().unwrap().to_string(), want);
        let (mut s, peer) = accept_within(&l);
        assert!(matches!(peer, Peer::Tcp(sa) if sa.ip().is_loopback()));
        let Stream::Tcp(tcp) = &s else {
            panic!("not TCP")
        };
        assert!(tcp.nodelay().unwrap());
        s.write_all(b"hello from fd 0\n").unwrap();
        println!("{CHILD_OK}");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Queued before the child starts; the child accepts it.
    let mut client = connect_tcp(addr);
    let result = run_child(
        "fd0_listening_tcp_socket_is_detected_and_adopted",
        "fd0-tcp",
        Stdio::from(OwnedFd::from(listener)),
        &Launch::Direct,
        &[(EXPECT_ENV, &addr.to_string())],
    );
    assert_child_ok(result);
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello from fd 0\n");
}

#[test]
fn fd0_listening_unix_socket_is_detected_and_adopted() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "fd0-unix");
        assert!(fd0_is_listener());
        let l = Listener::from_fd0().expect("from_fd0");
        assert!(l.is_unix());
        let (mut s, peer) = accept_within(&l);
        assert_eq!(peer, Peer::Unix);
        s.write_all(b"hello over unix\n").unwrap();
        println!("{CHILD_OK}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fcgi.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut client = connect_unix(&path);
    let result = run_child(
        "fd0_listening_unix_socket_is_detected_and_adopted",
        "fd0-unix",
        Stdio::from(OwnedFd::from(listener)),
        &Launch::Direct,
        &[],
    );
    assert_child_ok(result);
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello over unix\n");
}

/// The child's part for every "fd 0 is not a listener" case: detection says
/// no, and adoption fails with a typed error, leaving fd 0 alone.
fn child_fd0_is_not_a_listener(expect_socket: bool) {
    let stat = rustix::fs::fstat(std::io::stdin()).expect("fstat 0");
    let is_socket =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket;
    assert_eq!(is_socket, expect_socket, "test setup: fd 0 socket-ness");
    assert!(!fd0_is_listener(), "fd 0 taken for a listener");
    let err = Listener::from_fd0().expect_err("adopted a non-listener");
    assert_eq!(err.kind(), &ErrorKind::NotListening { fd: 0 }, "{err}");
    assert_eq!(err.to_string(), "fd 0 is not a listening socket");
    rustix::fs::fstat(std::io::stdin()).expect("fd 0 still open");
    println!("{CHILD_OK}");
}

#[test]
fn fd0_connected_socket_is_not_a_listener() {
    // Apache mod_cgid hands a CGI script a connected Unix socket as stdin.
    if child_mode().is_some() {
        return child_fd0_is_not_a_listener(true);
    }
    let (ours, theirs) = UnixStream::pair().unwrap();
    let result = run_child(
        "fd0_connected_socket_is_not_a_listener",
        "fd0-connected",
        Stdio::from(OwnedFd::from(theirs)),
        &Launch::Direct,
        &[],
    );
    drop(ours);
    assert_child_ok(result);
}

#[test]
fn fd0_connected_tcp_socket_is_not_a_listener() {
    if child_mode().is_some() {
        return child_fd0_is_not_a_listener(true);
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = connect_tcp(l.local_addr().unwrap());
    let (_server, _) = l.accept().unwrap(); // queued already: does not block
    let result = run_child(
        "fd0_connected_tcp_socket_is_not_a_listener",
        "fd0-connected-tcp",
        Stdio::from(OwnedFd::from(client)),
        &Launch::Direct,
        &[],
    );
    assert_child_ok(result);
}

#[test]
fn fd0_pipe_is_not_a_listener() {
    if child_mode().is_some() {
        return child_fd0_is_not_a_listener(false);
    }
    let result = run_child(
        "fd0_pipe_is_not_a_listener",
        "fd0-pipe",
        Stdio::piped(),
        &Launch::Direct,
        &[],
    );
    assert_child_ok(result);
}

#[test]
fn fd0_dev_null_is_not_a_listener() {
    if child_mode().is_some() {
        return child_fd0_is_not_a_listener(false);
    }
    let result = run_child(
        "fd0_dev_null_is_not_a_listener",
        "fd0-null",
        Stdio::null(),
        &Launch::Direct,
        &[],
    );
    assert_child_ok(result);
}

#[test]
fn fd_n_inherited_listener_is_adopted_once_and_made_cloexec() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "fd3");
        // `sh` left fd 3 inheritable, the way a parent passes a socket.
        let l =
            listen::bind(&"fd:3".parse().unwrap(), &ListenOptions::default()).expect("bind fd:3");
        assert_cloexec(&l);
        let err = Listener::from_inherited_fd(3).expect_err("adopted fd 3 twice");
        assert_eq!(err.kind(), &ErrorKind::BadFd { fd: 3 });
        assert_eq!(
            err.to_string(),
            "cannot use fd 3: already adopted by this process"
        );
        let (mut s, _) = accept_within(&l);
        s.write_all(b"hello from fd 3\n").unwrap();
        println!("{CHILD_OK}");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = connect_tcp(listener.local_addr().unwrap());
    let result = run_child(
        "fd_n_inherited_listener_is_adopted_once_and_made_cloexec",
        "fd3",
        Stdio::from(OwnedFd::from(listener)),
        &Launch::Shell(TO_FD3),
        &[],
    );
    assert_child_ok(result);
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello from fd 3\n");
}

#[test]
fn fd_n_connected_socket_is_refused_and_left_open() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "fd3-connected");
        let err = Listener::from_inherited_fd(3).expect_err("adopted a connected socket");
        assert_eq!(err.kind(), &ErrorKind::NotListening { fd: 3 }, "{err}");
        // Refused without being taken: fd 3 is still open, and can be tried again.
        assert!(
            fs::symlink_metadata("/proc/self/fd/3").is_ok(),
            "fd 3 was closed"
        );
        let err = Listener::from_inherited_fd(3).expect_err("adopted on second try");
        assert_eq!(err.kind(), &ErrorKind::NotListening { fd: 3 }, "{err}");
        println!("{CHILD_OK}");
        return;
    }
    let (ours, theirs) = UnixStream::pair().unwrap();
    let result = run_child(
        "fd_n_connected_socket_is_refused_and_left_open",
        "fd3-connected",
        Stdio::from(OwnedFd::from(theirs)),
        &Launch::Shell(TO_FD3),
        &[],
    );
    drop(ours);
    assert_child_ok(result);
}

#[test]
fn listen_fds_socket_activation_adopts_fd3_with_its_name() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "systemd");
        let pid: u32 = std::env::var("LISTEN_PID").unwrap().parse().unwrap();
        assert_eq!(pid, std::process::id(), "test setup: LISTEN_PID");
        let listeners = systemd_listeners().expect("systemd_listeners");
        assert_eq!(listeners.len(), 1);
        let l = &listeners[0];
        assert_eq!(l.name(), Some("web"));
        assert!(!l.is_unix());
        assert_cloexec(l);
        // The variables stay set, as documented.
        assert!(std::env::var_os("LISTEN_FDS").is_some());
        let (mut s, _) = accept_within(l);
        s.write_all(b"hello, activated\n").unwrap();
        println!("{CHILD_OK}");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = connect_tcp(listener.local_addr().unwrap());
    let result = run_child(
        "listen_fds_socket_activation_adopts_fd3_with_its_name",
        "systemd",
        Stdio::from(OwnedFd::from(listener)),
        &Launch::Shell(TO_FD3_ACTIVATED),
        &[("LISTEN_FDNAMES", "web")],
    );
    assert_child_ok(result);
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello, activated\n");
}

#[test]
fn listen_fds_for_another_pid_is_ignored() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "systemd-other-pid");
        assert!(systemd_listeners().expect("systemd_listeners").is_empty());
        println!("{CHILD_OK}");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // The socket is on fd 3 and LISTEN_FDS=1, but LISTEN_PID names pid 1:
    // the variables were meant for another process.
    let result = run_child(
        "listen_fds_for_another_pid_is_ignored",
        "systemd-other-pid",
        Stdio::from(OwnedFd::from(listener)),
        &Launch::Shell(TO_FD3),
        &[("LISTEN_PID", "1"), ("LISTEN_FDS", "1")],
    );
    assert_child_ok(result);
}

#[test]
fn listen_fds_name_count_mismatch_is_an_error() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "systemd-names");
        let err = systemd_listeners().expect_err("accepted 2 names for 1 fd");
        assert!(matches!(
            err.kind(),
            ErrorKind::Systemd {
                var: "LISTEN_FDNAMES",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "invalid LISTEN_FDNAMES: 2 names, but LISTEN_FDS is 1"
        );
        println!("{CHILD_OK}");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let result = run_child(
        "listen_fds_name_count_mismatch_is_an_error",
        "systemd-names",
        Stdio::from(OwnedFd::from(listener)),
        &Launch::Shell(TO_FD3_ACTIVATED),
        &[("LISTEN_FDNAMES", "a:b")],
    );
    assert_child_ok(result);
}
