//! A FastCGI backend: "Hello, world!" behind nginx `fastcgi_pass`, Apache
//! `mod_proxy_fcgi` or lighttpd `mod_fastcgi`.
//!
//! ```sh
//! cargo run --release --example hello_fastcgi                  # 127.0.0.1:9000
//! cargo run --release --example hello_fastcgi -- unix:/tmp/hello.sock
//! spawn-fcgi -n -a 127.0.0.1 -p 9000 -- target/release/examples/hello_fastcgi
//! ```
//!
//! With no address and a listening socket on fd 0 (spawn-fcgi, mod_fcgid)
//! or from systemd, `gatekit::run` finds it; otherwise it listens on
//! 127.0.0.1:9000.

use std::process::ExitCode;

use gatekit::fastcgi::{Server, ServerConfig};
use gatekit::{Body, BoxError, Environ, StartResponse};

fn hello(_: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
    sr.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok(Body::from("Hello, world!\n"))
}

fn main() -> ExitCode {
    let addr = std::env::args().nth(1);
    if addr.is_none() && gatekit::detect().is_some() {
        return gatekit::run(hello).unwrap_or_else(|e| {
            eprintln!("hello_fastcgi: {e}");
            ExitCode::FAILURE
        });
    }
    let addr = addr.unwrap_or_else(|| "127.0.0.1:9000".into());
    let mut config = ServerConfig::default();
    // A Unix socket the web server (another user) can connect to.
    config.listen.unix_mode = Some(0o666);
    let served = Server::bind(&addr, hello, config).and_then(|server| {
        eprintln!("hello_fastcgi: FastCGI on {addr}");
        server
            .shutdown_handle()
            .on_signals()
            .map_err(gatekit::fastcgi::server::Error::Io)?;
        server.serve_forever()
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello_fastcgi: {e}");
            ExitCode::FAILURE
        }
    }
}
