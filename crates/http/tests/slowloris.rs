//! 1,000 slowloris connections (one header byte per second each, for about
//! 10 s) held open against the HTTP server while 50 normal requests are
//! served, each in under 2 s: a slow client costs a buffer, not a worker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::ChildProc;

const SLOW: usize = 1_000;
const ROUNDS: usize = 10;
const NORMAL: usize = 50;

/// Runs the server when a parent test asked for it (see `common`).
#[test]
#[ignore = "helper: run as a child process by the other tests"]
fn child() {
    common::child_main();
}

#[test]
fn thousand_slowloris_connections_do_not_delay_normal_requests() {
    let need = (SLOW + 100) as u64;
    if common::nofile_hard_limit() < need {
        eprintln!(
            "SKIPPED: open-file hard limit {} < {need}",
            common::nofile_hard_limit()
        );
        return;
    }
    // Default engine configuration: request_timeout 30 s, so no slowloris
    // connection is cut during the test; they all stay open.
    let (server, port) = ChildProc::server(&[]);
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        slow.push(s);
    }
    let request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 0123456789\r\n\r\n";
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut failed = 0usize;
            for round in 0..ROUNDS {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                for s in &mut slow {
                    if s.write_all(&request[round..=round]).is_err() {
                        failed += 1;
                    }
                }
                let next = start + Duration::from_secs(round as u64 + 1);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            (slow, failed)
        })
    };
    // Let the first bytes land, then check the server holds every connection.
    std::thread::sleep(Duration::from_millis(500));
    let fds = server.open_fds();
    assert!(
        fds >= SLOW,
        "server holds {fds} descriptors, fewer than the {SLOW} slow connections"
    );

    let mut latencies = Vec::with_capacity(NORMAL);
    let window = Instant::now();
    for i in 0..NORMAL {
        let t = Instant::now();
        let r = common::get(port, "/hello")
            .unwrap_or_else(|e| panic!("normal request {i}: {e:?}\n{}", server.stderr()));
        let took = t.elapsed();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello\n"[..]));
        latencies.push(took);
        // Spread the requests over the attack (about 8 s).
        let next = window + Duration::from_millis(160 * (i as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let served_within = window.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (slow, failed) = attacker.join().unwrap();
    let fds_after = server.open_fds();
    drop(slow);

    latencies.sort();
    let median = latencies[NORMAL / 2];
    let max = latencies[NORMAL - 1];
    eprintln!(
        "{SLOW} slowloris connections: {NORMAL} normal requests in {served_within:?}, \
         median {median:?}, max {max:?}; server fds during/after the attack \
         {fds}/{fds_after}; slow writes failed: {failed}"
    );
    assert!(
        max < Duration::from_secs(2),
        "a normal request took {max:?} (latencies: {latencies:?})"
    );
    assert_eq!(failed, 0, "the server closed slowloris connections early");
    server.sigterm();
    let status = {
        let mut server = server;
        let s = server.wait_exit(Duration::from_secs(20));
        assert!(s.is_some(), "server still running; {}", server.stderr());
        s
    };
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}");
}
