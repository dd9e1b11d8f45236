//! "Hello, world!" over SCGI or gatekit's own HTTP server: the gatekit rows of `bench/run` for
//! those front-ends (FastCGI is `examples/hello_fastcgi`, CGI `examples/hello_cgi`). The same
//! app as `hello_fastcgi`: `Hello, world!\n` as `text/plain`, default server configuration.
//!
//! ```sh
//! cargo build --release --example bench_hello
//! target/release/examples/bench_hello scgi 127.0.0.1:4000
//! target/release/examples/bench_hello scgi unix:/tmp/hello.sock
//! target/release/examples/bench_hello http 127.0.0.1:8000
//! ```
//!
//! A Unix socket is made mode 0666, for a web server running as another user. SIGTERM or
//! Ctrl-C stops the server once in-flight requests are done.

use std::process::ExitCode;

use gatekit::{Body, BoxError, Environ, StartResponse};

fn hello(_: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
    sr.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok(Body::from("Hello, world!\n"))
}

/// Binds `addr` with the front-end `kind` and serves until a signal.
fn serve(kind: &str, addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    match kind {
        "scgi" => {
            let mut config = gatekit::scgi::ServerConfig::default();
            config.listen.unix_mode = Some(0o666);
            let server = gatekit::scgi::Server::bind(addr, hello, config)?;
            server.shutdown_handle().on_signals()?;
            eprintln!("bench_hello: SCGI on {addr}");
            server.serve_forever()?;
        }
        "http" => {
            let mut config = gatekit::http::ServerConfig::default();
            config.listen.unix_mode = Some(0o666);
            let server = gatekit::http::Server::bind(addr, hello, config)?;
            server.shutdown_handle().on_signals()?;
            eprintln!("bench_hello: HTTP on {addr}");
            server.serve_forever()?;
        }
        _ => return Err(format!("unknown front-end {kind:?} (scgi or http)").into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, addr] = args.as_slice() else {
        eprintln!("usage: bench_hello scgi|http ADDR");
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
