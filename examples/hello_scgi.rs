//! An SCGI backend: "Hello" and the request path, behind nginx `scgi_pass`,
//! Apache `mod_proxy_scgi` or lighttpd `mod_scgi` (docs/deploy-scgi.md).
//!
//! ```sh
//! cargo run --release --example hello_scgi                       # 127.0.0.1:4000
//! cargo run --release --example hello_scgi -- unix:/run/hello.sock
//! cargo run --release --example hello_scgi -- 127.0.0.1:4000 ""  # behind Apache: mounted at /
//! ```
//!
//! The optional second argument is where the app is mounted
//! (`ServerConfig::script_name`), needed behind Apache, which sends the
//! whole path as `SCRIPT_NAME`. SIGTERM or Ctrl-C stops the server once
//! in-flight requests are done.

use gatekit::scgi::{Server, ServerConfig};
use gatekit::{Body, BoxError, Environ, StartResponse};

fn hello(env: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
    let script = env
        .get_lossy("SCRIPT_NAME")
        .unwrap_or_default()
        .into_owned();
    let path = env.get_lossy("PATH_INFO").unwrap_or_default().into_owned();
    sr.start("200 OK", [("Content-Type", "text/plain; charset=utf-8")])?;
    Ok(Body::from(format!(
        "Hello from SCRIPT_NAME={script:?} PATH_INFO={path:?}\n"
    )))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4000".to_owned());
    let mut config = ServerConfig::default();
    config.script_name = args.next();
    // The web server's user (www-data) must be able to connect to a Unix
    // socket; in production prefer 0o660 with `unix_gid` set to its group.
    config.listen.unix_mode = Some(0o666);
    let server = Server::bind(&addr, hello, config)?;
    server.shutdown_handle().on_signals()?;
    eprintln!("Serving SCGI on {addr} ...");
    server.serve_forever()?;
    Ok(())
}
