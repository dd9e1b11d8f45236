//! Real nginx in front of two gatekit FastCGI backends with
//! `fastcgi_next_upstream error timeout`; one backend is killed with
//! SIGKILL under load, and no client sees an error.
//!
//! nginx closes a client's kept connection after `keepalive_requests`
//! (set low here, so every client meets it several times); the client
//! then reconnects, as it must after `Connection: close`.
//!
//! The load is GET: nginx passes a request that failed on one backend to
//! the next only while nothing of its response has reached the client, and
//! (since nginx 1.9.13) never for a non-idempotent method such as POST
//! unless `non_idempotent` is given. GET is what the guarantee covers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gatekit_testkit::WebServer;

use crate::client::{Answer, Client, get};
use crate::running::Running;

#[test]
fn sigkill_of_one_backend_is_invisible_to_clients() {
    let mut a = Running::start("fastcgi", &["demo"]);
    let mut b = Running::start("fastcgi", &["demo"]);
    let (pa, pb) = (a.port, b.port);
    let Some(nginx) = WebServer::nginx(|p| {
        format!(
            "upstream gatekit {{\n  server 127.0.0.1:{pa} max_fails=1 fail_timeout=30s;\n  \
             server 127.0.0.1:{pb} max_fails=1 fail_timeout=30s;\n}}\n\
             server {{\n  listen 127.0.0.1:{};\n  keepalive_requests 200;\n  location / {{\n    \
             include /etc/nginx/fastcgi_params;\n    fastcgi_param PATH_INFO $uri;\n    \
             fastcgi_pass gatekit;\n    fastcgi_next_upstream error timeout;\n    \
             fastcgi_next_upstream_tries 2;\n    fastcgi_connect_timeout 2s;\n    \
             fastcgi_read_timeout 10s;\n  }}\n}}\n",
            p.port
        )
    }) else {
        return;
    };
    let port = nginx.port;
    let killed = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let killed = Arc::clone(&killed);
            std::thread::spawn(move || {
                let (mut ok, mut ok_after, mut bad) = (0u64, 0u64, Vec::new());
                let stop = Instant::now() + Duration::from_secs(3);
                let mut client = Client::connect(port).expect("nginx accepts");
                while Instant::now() < stop {
                    let after = killed.load(Ordering::SeqCst);
                    match client.exchange(&get(&format!("/load/{i}"))) {
                        Answer::Complete(200) => {
                            ok += 1;
                            ok_after += u64::from(after);
                        }
                        other => {
                            bad.push(other);
                            client = Client::connect(port).expect("nginx accepts");
                        }
                    }
                }
                (ok, ok_after, bad)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    a.signal("KILL");
    killed.store(true, Ordering::SeqCst);
    assert!(a.wait_exit(Duration::from_secs(5)).is_some());
    let (mut ok, mut ok_after, mut bad) = (0, 0, Vec::new());
    for t in threads {
        let (o, oa, b) = t.join().unwrap();
        ok += o;
        ok_after += oa;
        bad.extend(b);
    }
    eprintln!(
        "killed backend: {ok} answered 200 ({ok_after} after the kill), {} not: {bad:?}",
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "client-visible errors: {bad:?}\n{}",
        nginx.error_log()
    );
    assert!(ok_after > 100, "too little load after the kill");
    b.assert_healthy("the surviving backend");
}
