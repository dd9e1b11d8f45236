//! 10,000 idle keep-alive connections (each has made one request) held at
//! once against the HTTP server, in separate server and client processes;
//! the server's RSS is reported and a normal request is still answered
//! promptly.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::cast_precision_loss)] // figures for messages

mod common;

use std::time::{Duration, Instant};

use common::{ChildProc, mib};

const WANT: u64 = 10_000;

/// Runs the server or the load client when a parent test asked for it.
#[test]
#[ignore = "helper: run as a child process by the other tests"]
fn child() {
    common::child_main();
}

#[test]
fn ten_thousand_idle_keep_alive_connections() {
    // Each side holds one descriptor per connection; both children raise
    // their soft limit to the hard one.
    let hard = common::nofile_hard_limit();
    let count = WANT.min(hard.saturating_sub(200));
    if count < WANT {
        eprintln!("open-file hard limit is {hard}: holding {count} connections instead of {WANT}");
    }
    assert!(
        count >= 500,
        "open-file hard limit {hard} is too low for this test"
    );
    // Room for the held connections plus the normal requests checked below
    // (past max_connections new connections wait in the backlog).
    let (server, port) = ChildProc::server(&[("GK_MAX_CONNECTIONS", (count + 64).to_string())]);
    let base_rss = server.status_kib("VmRSS");

    let t = Instant::now();
    let client = hold(port, count, true);
    let opened_in = t.elapsed();
    let rss = server.status_kib("VmRSS");
    let hwm = server.status_kib("VmHWM");
    let fds = server.open_fds();
    assert!(fds as u64 >= count, "server holds {fds} descriptors");

    // A normal request while they are all held.
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let r =
            common::get(port, "/hello").unwrap_or_else(|e| panic!("{e:?}\n{}", server.stderr()));
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello\n"[..]));
        worst = worst.max(t.elapsed());
    }
    let per_conn = (rss.saturating_sub(base_rss)) as f64 / count as f64;
    eprintln!(
        "{count} idle keep-alive connections (opened and used in {opened_in:?}): server VmRSS \
         {:.1} MiB (baseline {:.1} MiB, {per_conn:.1} KiB per connection), VmHWM {:.1} MiB; \
         {fds} fds; a normal request meanwhile took at most {worst:?}",
        mib(rss),
        mib(base_rss),
        mib(hwm)
    );
    assert!(
        worst < Duration::from_secs(2),
        "normal request took {worst:?}"
    );

    release(client);
    stop(server);
}

/// A client child holding `count` connections to `port`, each having made
/// one request if `send`.
fn hold(port: u16, count: u64, send: bool) -> ChildProc {
    let mut client = ChildProc::spawn(&[
        (common::CHILD_CLIENT, "idle".into()),
        ("GK_PORT", port.to_string()),
        ("GK_COUNT", count.to_string()),
        ("GK_SEND", u8::from(send).to_string()),
    ]);
    let held: u64 = client
        .wait_for("HELD ", Duration::from_secs(90))
        .parse()
        .unwrap();
    assert_eq!(held, count);
    // Let the server settle (the last responses flushed, buffers as idle).
    std::thread::sleep(Duration::from_millis(300));
    client
}

/// Lets the client go: it first checks a sample of its connections still works.
fn release(mut client: ChildProc) {
    client.close_stdin();
    client.wait_for("RELEASED", Duration::from_secs(30));
    let status = client.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "client: {status:?}\n{}",
        client.stderr()
    );
}

fn stop(mut server: ChildProc) {
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "server: {status:?}\n{}",
        server.stderr()
    );
}

/// Server RSS growth per held connection, in KiB.
fn kib_per_connection(count: u64, send: bool) -> f64 {
    let (server, port) = ChildProc::server(&[]);
    let base = server.status_kib("VmRSS");
    let client = hold(port, count, send);
    let rss = server.status_kib("VmRSS");
    release(client);
    stop(server);
    rss.saturating_sub(base) as f64 / count as f64
}

/// An idle keep-alive connection should cost the server about what a
/// connection that never sent anything costs (nginx: about 1 KiB): the
/// engine gives back the buffers a request grew once it is answered.
#[test]
fn idle_keep_alive_connection_costs_under_4_kib() {
    let count = 2_000.min(common::nofile_hard_limit().saturating_sub(200));
    let fresh = kib_per_connection(count, false);
    let used = kib_per_connection(count, true);
    eprintln!(
        "server RSS per idle connection: {fresh:.1} KiB never used, {used:.1} KiB after a request"
    );
    assert!(
        used <= 4.0,
        "an idle keep-alive connection costs {used:.1} KiB (a never-used one {fresh:.1} KiB)"
    );
}
