//! SIGTERM while 64 connections keep the HTTP server busy: every request
//! the server had started on completes, and the process exits with 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Answer, Client, post};
use crate::running::Running;

/// What one load thread saw.
#[derive(Debug, Default)]
struct Tally {
    complete: u64,
    complete_before_signal: u64,
    not_started: u64,
    cut_short: u64,
    not_ok: u64,
}

#[test]
fn sigterm_under_load_finishes_every_started_request() {
    let mut server = Running::start("http", &["--shutdown-grace", "20", "echo"]);
    let port = server.port;
    let signalled = Arc::new(AtomicBool::new(false));
    // 256 KiB each way, so that at the signal many requests are part-way
    // through their body or their response.
    let body = Arc::new(gatekit_testkit::pattern(256 * 1024));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let signalled = Arc::clone(&signalled);
            let body = Arc::clone(&body);
            std::thread::spawn(move || {
                let request = post(&body);
                let mut tally = Tally::default();
                let deadline = Instant::now() + Duration::from_secs(40);
                // Connections until the server refuses them; requests on
                // each until it closes.
                'conns: while Instant::now() < deadline {
                    let Some(mut client) = Client::connect(port) else {
                        break;
                    };
                    while Instant::now() < deadline {
                        let before = !signalled.load(Ordering::SeqCst);
                        match client.exchange(&request) {
                            Answer::Complete(status) => {
                                tally.complete += 1;
                                tally.complete_before_signal += u64::from(before);
                                tally.not_ok += u64::from(status != 200);
                            }
                            Answer::NotStarted => {
                                tally.not_started += 1;
                                if signalled.load(Ordering::SeqCst) {
                                    break 'conns;
                                }
                                continue 'conns;
                            }
                            Answer::CutShort => {
                                tally.cut_short += 1;
                                continue 'conns;
                            }
                        }
                    }
                }
                tally
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    signalled.store(true, Ordering::SeqCst);
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30));
    let mut total = Tally::default();
    for t in threads {
        let t = t.join().unwrap();
        total.complete += t.complete;
        total.complete_before_signal += t.complete_before_signal;
        total.not_started += t.not_started;
        total.cut_short += t.cut_short;
        total.not_ok += t.not_ok;
    }
    eprintln!("sigterm under load: {total:?}");
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    let status = status.expect("gatekit did not exit within 30 s of SIGTERM");
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(
        total.complete_before_signal >= 64,
        "too little load: {total:?}"
    );
    assert_eq!(total.cut_short, 0, "responses cut short: {total:?}");
    assert_eq!(total.not_ok, 0, "answers other than 200: {total:?}");
}
