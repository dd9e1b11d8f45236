//! The smallest gatekit CGI program: build it with
//! `cargo build --release --example hello_cgi` and copy
//! `target/release/examples/hello_cgi` into a cgi-bin directory.

use gatekit::{Body, BoxError, Environ, StartResponse};

fn hello(_: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
    sr.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok(Body::from("Hello, world!\n"))
}

fn main() -> std::process::ExitCode {
    gatekit::cgi::serve(&hello).exit_code()
}
