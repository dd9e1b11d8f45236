//! EMFILE: the server runs with 64 file descriptors (`prlimit --nofile`),
//! and more connections arrive than it can accept. It must not spin on
//! `accept` (its CPU time during the flood stays small), must not panic,
//! and must serve again once the connections are gone.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::client::{Answer, Client, get};
use crate::running::{Limit, Running};

#[test]
fn out_of_descriptors_backs_off_and_recovers() {
    if gatekit_testkit::require(&["/usr/bin/prlimit"]).is_none() {
        return;
    }
    let mut server = Running::start_with("http", &["echo"], &[], Some(Limit::Nofile(64)));
    let port = server.port;
    assert_eq!(
        crate::client::once(port, &get("/")),
        Some(Answer::Complete(200))
    );
    // 300 connections: far more than 64 descriptors allow.
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let cpu = server.cpu_ticks() - cpu_before;
    let fds = server.open_fds();
    eprintln!(
        "EMFILE: {} connections open, server holds {fds} descriptors, {cpu} ticks of CPU in 2 s",
        flood.len()
    );
    // The flood did use up the descriptors (a few inherited ones above
    // the limit may be counted too).
    assert!(
        fds >= 60,
        "only {fds} descriptors in use: EMFILE not reached"
    );
    // A busy loop would burn about 200 ticks (2 s at 100 Hz) here.
    assert!(cpu < 40, "{cpu} CPU ticks in 2 s: accept is spinning");
    drop(flood);
    // Recovery: a normal request is served again within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = Client::connect(port).map(|mut c| c.exchange(&get("/")));
        if answer == Some(Answer::Complete(200)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not serving 10 s after the flood: {answer:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.assert_healthy("EMFILE");
}
