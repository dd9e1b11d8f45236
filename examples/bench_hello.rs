//! "Hello, world!" over SCGI or gatekit's own HTTP server: the gatekit rows of `bench/run` for
//! those front-ends (FastCGI is `examples/hello_fastcgi`, CGI `examples/hello_cgi`). The same
//! app as `hello_fastcgi`: `Hello, world!\n` as `text/plain`, default server configuration.
//!
//! ```sh
//! cargo build --release --example bench_hello
//! target/release/examples/bench_hello scgi 127.0.0.1:4000
//! target/release/examples/bench_hello scgi unix:/tmp/hello.sock
//! target/release/examples/bench_hello http 127.0.0.1:8000
//! BENCH_SPIN_US=200 target/release/examples/bench_hello fastcgi 127.0.0.1:9000
//! ```
//!
//! The app can be made to cost more, to see how the engine spreads such work over its workers
//! (`bench/fastcgi` with `APP_SPIN_US` or `APP_SLEEP_MS`): `BENCH_SPIN_US=N` computes for N µs
//! (a busy loop) before each answer, `BENCH_SLEEP_MS=N` sleeps N ms (an app that waits on
//! something, such as a database).
//!
//! A Unix socket is made mode 0666, for a web server running as another user. SIGTERM or
//! Ctrl-C stops the server once in-flight requests are done.

use gatekit::{Body, BoxError, Environ, StartResponse};
use std::process::ExitCode;

#[path = "support/app_cost.rs"]
mod app_cost;

fn hello(_: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
    app_cost::spend();
    sr.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok(Body::from("Hello, world!\n"))
}

/// Binds `addr` with the front-end module `$m` (its `ServerConfig` and `Server` have the same
/// shape in each), a Unix socket mode 0666, and serves until a signal.
macro_rules! serve_with {
    ($m:path, $name:literal, $addr:expr) => {{
        use $m as front;
        let mut config = front::ServerConfig::default();
        config.listen.unix_mode = Some(0o666);
        let server = front::Server::bind($addr, hello, config)?;
        server.shutdown_handle().on_signals()?;
        eprintln!("bench_hello: {} on {}", $name, $addr);
        server.serve_forever()?;
    }};
}

/// Binds `addr` with the front-end `kind` and serves until a signal.
fn serve(kind: &str, addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    match kind {
        "scgi" => serve_with!(gatekit::scgi, "SCGI", addr),
        "fastcgi" => serve_with!(gatekit::fastcgi, "FastCGI", addr),
        "http" => serve_with!(gatekit::http, "HTTP", addr),
        _ => return Err(format!("unknown front-end {kind:?} (scgi, http or fastcgi)").into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, addr] = args.as_slice() else {
        eprintln!("usage: bench_hello scgi|http|fastcgi ADDR");
        return ExitCode::from(2);
    };
    match serve(kind, addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_hello: {e}");
            ExitCode::FAILURE
        }
    }
}
