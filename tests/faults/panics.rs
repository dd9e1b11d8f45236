//! An app that panics on 1 % of requests, under load on gatekit's own HTTP
//! server in this process: every other request succeeds, each panic is
//! answered 500, and afterwards the worker pool is still whole (as many
//! slow requests as there are workers run side by side).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatekit::http::{Server, ServerConfig};
use gatekit::{Body, BoxError, Environ, StartResponse};

use crate::client::{Answer, Client, get};

const WORKERS: usize = 4;
const DELIBERATE: &str = "deliberate panic from the 1% app";

/// Keeps the deliberate panics out of the test output; any other panic is
/// reported as usual.
fn quiet_deliberate_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
        if msg != Some(DELIBERATE) {
            previous(info);
        }
    }));
}

#[test]
fn panics_in_one_percent_of_requests_lose_nothing_else() {
    quiet_deliberate_panics();
    let calls = Arc::new(AtomicU64::new(0));
    let panics = Arc::new(AtomicU64::new(0));
    let app = {
        let calls = Arc::clone(&calls);
        let panics = Arc::clone(&panics);
        move |environ: &mut Environ, sr: &mut StartResponse<'_>| -> Result<Body, BoxError> {
            let path = environ.get("PATH_INFO").unwrap_or_default().to_owned();
            if path == "/slow" {
                std::thread::sleep(Duration::from_millis(600));
            } else if calls.fetch_add(1, Ordering::SeqCst) % 100 == 99 {
                panics.fetch_add(1, Ordering::SeqCst);
                panic!("{}", DELIBERATE);
            }
            sr.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(Body::from("fine\n"))
        }
    };
    let mut config = ServerConfig::default();
    config.engine.workers = WORKERS;
    let server = Server::bind("127.0.0.1:0", app, config).unwrap();
    let port = match &server.local_addrs()[0] {
        gatekit::server::listen::Addr::Ip(addr) => addr.port(),
        other => panic!("bound to {other:?}"),
    };
    let shutdown = server.shutdown_handle();
    let serving = std::thread::spawn(move || server.serve_forever());

    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut errors, mut lost) = (0u64, 0u64, 0u64);
                let mut client = Client::connect(port).unwrap();
                for _ in 0..250 {
                    match client.exchange(&get("/")) {
                        Answer::Complete(200) => ok += 1,
                        Answer::Complete(500) => {
                            // The error response closes the connection.
                            errors += 1;
                            client = Client::connect(port).unwrap();
                        }
                        _ => {
                            lost += 1;
                            client = Client::connect(port).unwrap();
                        }
                    }
                }
                (ok, errors, lost)
            })
        })
        .collect();
    let (mut ok, mut errors, mut lost) = (0, 0, 0);
    for t in threads {
        let (o, e, l) = t.join().unwrap();
        ok += o;
        errors += e;
        lost += l;
    }
    let panicked = panics.load(Ordering::SeqCst);
    eprintln!(
        "1% panics: {ok} answered 200, {errors} answered 500, {lost} lost, {panicked} panics"
    );
    assert_eq!(ok + errors + lost, 2_000);
    assert_eq!(panicked, 20);
    assert_eq!(
        errors, panicked,
        "each panic is one 500, nothing else fails"
    );
    assert_eq!(lost, 0);

    // The pool is whole: WORKERS slow requests at once take one slow
    // request's time, not several.
    let started = Instant::now();
    let slow: Vec<_> = (0..WORKERS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port).unwrap();
                c.exchange(&get("/slow"))
            })
        })
        .collect();
    for s in slow {
        assert_eq!(s.join().unwrap(), Answer::Complete(200));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1_150),
        "{WORKERS} slow requests took {took:?}: workers were lost"
    );
    shutdown.trigger();
    serving.join().unwrap().unwrap();
}
