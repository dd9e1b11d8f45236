//! Graceful shutdown under load: 64 client threads make keep-alive
//! requests without pause; SIGTERM (or the in-process shutdown handle)
//! stops the server. Every response that starts arrives whole (status 200,
//! all of its body), a connection error happens only after the shutdown
//! and only as "refused" or "closed before any byte of a response", and the
//! server ends cleanly (exit 0 / `serve_forever` returns `Ok`) within the
//! grace period.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ChildProc, ReadError};
use gatekit_http::{Server, ServerConfig};
use gatekit_server::listen::Addr;

const CLIENTS: usize = 64;
const LOAD_BEFORE_STOP: Duration = Duration::from_millis(1500);
const GRACE: Duration = Duration::from_secs(5);

/// Runs the server when a parent test asked for it (see `common`).
#[test]
#[ignore = "helper: run as a child process by the other tests"]
fn child() {
    common::child_main();
}

/// What became of one request (or connection attempt).
#[derive(Debug)]
enum Kind {
    /// A whole response: status 200 and all of the body.
    Complete,
    /// `connect` refused.
    Refused,
    /// The connection ended (EOF, reset) before any byte of a response.
    Closed,
    /// Anything else (a truncated or wrong response, a stall, an error):
    /// always a failure.
    Bad(String),
}

#[derive(Debug)]
struct Event {
    /// When the request was in the server's receive queue (`write_all`
    /// returned; loopback delivers at once), if it got that far.
    sent: Option<Instant>,
    /// When the outcome was seen.
    at: Instant,
    kind: Kind,
}

#[derive(Debug, Default)]
struct Tally {
    complete_before: usize,
    complete_after: usize,
    refused_after: usize,
    /// Closed before a response, the request sent after the stop began.
    closed_after: usize,
    /// Closed before a response although the request had reached the
    /// server before the stop began: a request dropped by the shutdown.
    dropped: usize,
    /// Each one fails the test.
    failures: Vec<String>,
}

impl Tally {
    fn new(events: &[Event], stop_at: Instant) -> Tally {
        let mut t = Tally::default();
        for e in events {
            let after = e.at >= stop_at;
            match &e.kind {
                Kind::Complete if after => t.complete_after += 1,
                Kind::Complete => t.complete_before += 1,
                Kind::Refused if after => t.refused_after += 1,
                Kind::Closed if after && e.sent.is_some_and(|s| s < stop_at) => t.dropped += 1,
                Kind::Closed if after => t.closed_after += 1,
                other => {
                    let what = match other {
                        Kind::Bad(msg) => msg.clone(),
                        kind => format!("{kind:?}"),
                    };
                    t.failures.push(format!(
                        "{what}, {:?} {} the stop",
                        e.at.max(stop_at) - e.at.min(stop_at),
                        if after { "after" } else { "before" }
                    ));
                }
            }
        }
        t
    }
}

/// Runs the load, calls `stop` after `LOAD_BEFORE_STOP`, and returns what
/// the clients saw once every one of them has met a refused connection (or
/// 30 s have passed).
fn load(port: u16, stop: impl FnOnce()) -> Tally {
    let want = Arc::new(common::work_body());
    let deadline = Instant::now() + Duration::from_secs(30);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let want = Arc::clone(&want);
            std::thread::spawn(move || client(port, &want, deadline))
        })
        .collect();
    std::thread::sleep(LOAD_BEFORE_STOP);
    let stop_at = Instant::now();
    stop();
    let mut events = Vec::new();
    for t in threads {
        events.extend(t.join().unwrap());
    }
    Tally::new(&events, stop_at)
}

/// One client: keep-alive requests until a connection is refused.
fn client(port: u16, want: &[u8], deadline: Instant) -> Vec<Event> {
    let request = b"GET /work HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut events = Vec::new();
    let mut note = |sent, kind| {
        events.push(Event {
            sent,
            at: Instant::now(),
            kind,
        });
    };
    while Instant::now() < deadline {
        let mut s = match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                note(None, Kind::Refused);
                return events;
            }
            Err(e) => {
                note(None, Kind::Bad(format!("connect: {e}")));
                return events;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        loop {
            if s.write_all(request).is_err() {
                note(None, Kind::Closed);
                break;
            }
            let sent = Some(Instant::now());
            match common::read_response(&mut s) {
                Ok(r) if r.status == 200 && r.body == want => {
                    note(sent, Kind::Complete);
                    if r.close {
                        break;
                    }
                }
                Ok(r) => {
                    let msg = format!("status {} with {} body bytes", r.status, r.body.len());
                    note(sent, Kind::Bad(msg));
                    return events;
                }
                Err(ReadError::ClosedBeforeResponse(e))
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    note(sent, Kind::Closed);
                    break;
                }
                Err(e) => {
                    note(sent, Kind::Bad(format!("{e:?}")));
                    return events;
                }
            }
        }
    }
    note(None, Kind::Bad("still running at the deadline".into()));
    events
}

fn check(tally: &Tally, what: &str) {
    eprintln!(
        "{what}: {} complete responses before the stop, {} after; then {} connections closed \
         before a response to a request sent after the stop, {} requests sent before the stop \
         dropped, {} connects refused; failures: {:?}",
        tally.complete_before,
        tally.complete_after,
        tally.closed_after,
        tally.dropped,
        tally.refused_after,
        tally.failures
    );
    assert!(tally.failures.is_empty(), "{what}: {:?}", tally.failures);
    assert!(
        tally.complete_before > CLIENTS,
        "{what}: too little load: {tally:?}"
    );
    assert_eq!(tally.refused_after, CLIENTS, "{what}: {tally:?}");
}

/// Starts a server child, loads it, SIGTERMs it; returns the tally and how
/// long it took to exit (asserting it exited 0).
fn sigterm_run() -> (Tally, Duration) {
    let (mut server, port) = ChildProc::server(&[
        ("GK_WORKERS", "8".into()),
        ("GK_GRACE_MS", GRACE.as_millis().to_string()),
    ]);
    let mut signalled = None;
    let tally = load(port, || {
        server.sigterm();
        signalled = Some(Instant::now());
    });
    let status = server.wait_exit(GRACE + Duration::from_secs(5));
    let exited_in = signalled.unwrap().elapsed();
    check(&tally, "SIGTERM");
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?} after {exited_in:?}; stderr:\n{}",
        server.stderr()
    );
    server.wait_for("SERVED", Duration::from_secs(5));
    (tally, exited_in)
}

#[test]
fn sigterm_under_load_finishes_every_response_and_exits_0() {
    let (_, exited_in) = sigterm_run();
    assert!(exited_in < GRACE + Duration::from_secs(1), "{exited_in:?}");
    eprintln!("SIGTERM: the server exited 0 within {exited_in:?} of the signal");
}

/// A request that is in the server's receive queue before the shutdown
/// begins should be answered (with `Connection: close`), not reset: the
/// sweeper closes every keep-alive connection no worker holds, including
/// those whose next request has arrived and waits for a free worker.
#[test]
fn sigterm_under_load_answers_requests_that_arrived_before_it() {
    let (tally, _) = sigterm_run();
    assert_eq!(tally.dropped, 0, "{tally:?}");
}

#[test]
fn shutdown_handle_under_load_returns_ok_within_the_grace_period() {
    let mut config = ServerConfig::default();
    config.engine.workers = 8;
    config.engine.shutdown_grace = GRACE;
    let server = Server::bind("127.0.0.1:0", common::app, config).unwrap();
    let port = match server.local_addrs().first() {
        Some(Addr::Ip(a)) => a.port(),
        other => panic!("unexpected local address {other:?}"),
    };
    let handle = server.shutdown_handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let result = server.serve_forever();
        let _ = tx.send(Instant::now());
        result
    });
    let mut triggered = None;
    let tally = load(port, || {
        handle.trigger();
        triggered = Some(Instant::now());
    });
    let returned = rx
        .recv_timeout(GRACE + Duration::from_secs(5))
        .expect("serve_forever did not return");
    let took = returned.duration_since(triggered.unwrap());
    thread.join().unwrap().unwrap();
    check(&tally, "shutdown handle");
    assert!(took < GRACE + Duration::from_secs(1), "{took:?}");
    eprintln!("shutdown handle: serve_forever returned Ok within {took:?}");
}
