//! "Hello, world!" in the FastCGI SDK style (`gatekit::fastcgi::sdk`): N threads, each with its
//! own accept loop on one listening socket, as libfcgi's `threaded.c` does. It is bench/fastcgi's
//! "gatekit sdk" backend, the counterpart of bench/peers/hello_libfcgi.c.
//!
//! ```sh
//! cargo build --release --example hello_fastcgi_sdk
//! target/release/examples/hello_fastcgi_sdk 127.0.0.1:9000        # 4 threads
//! target/release/examples/hello_fastcgi_sdk unix:/tmp/hello.sock 8
//! ```
//!
//! Arguments: an address (`HOST:PORT`, `[IPV6]:PORT`, `unix:PATH`; default 127.0.0.1:9000) and
//! a number of threads (default 4). `BENCH_SPIN_US=N` makes each request compute for N µs and
//! `BENCH_SLEEP_MS=N` sleep N ms before its answer (`bench/fastcgi` with `APP_SPIN_US` or
//! `APP_SLEEP_MS`). A Unix socket is made mode 0666, for a web server running as
//! another user. SIGTERM ends it (the default action: nothing is left to clean up but the
//! socket file).

use std::io::{self, Write};
use std::process::ExitCode;

use gatekit::fastcgi::sdk::Listener;
use gatekit::server::listen::ListenOptions;

#[path = "support/app_cost.rs"]
mod app_cost;

/// The whole response, as the libfcgi peer sends it.
const REPLY: &[u8] = b"Content-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";

/// One thread's accept loop: `FCGX_InitRequest`, then `FCGX_Accept_r` / `FCGX_Finish_r`.
fn serve(listener: &Listener) -> io::Result<()> {
    let mut acceptor = listener.acceptor();
    while let Some(mut req) = acceptor.accept()? {
        // A failed write or finish means the web server went away; the connection is closed
        // and the loop goes on, as libfcgi's does.
        app_cost::spend();
        if req.stdout().write_all(REPLY).is_ok() {
            let _ = req.finish(0);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let threads = match args.next().map(|n| n.parse::<usize>()) {
        None => 4,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: hello_fastcgi_sdk [HOST:PORT|unix:PATH] [THREADS]");
            return ExitCode::from(2);
        }
    };
    let mut options = ListenOptions::backend();
    options.unix_mode = Some(0o666);
    let listener = match Listener::bind_with(&addr, &options) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("hello_fastcgi_sdk: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("hello_fastcgi_sdk: FastCGI on {addr}, {threads} threads");
    let failed = std::thread::scope(|scope| {
        let loops: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let served = serve(&listener);
                    if served.is_err() {
                        // The listener is broken: stop the other threads too.
                        listener.shutdown();
                    }
                    served
                })
            })
            .collect();
        loops.into_iter().find_map(|t| match t.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("an accept thread panicked".to_owned()),
        })
    });
    match failed {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("hello_fastcgi_sdk: {e}");
            ExitCode::FAILURE
        }
    }
}
