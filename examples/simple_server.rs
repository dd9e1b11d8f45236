//! wsgiref's `simple_server` example: the demo app on http://127.0.0.1:8000/.
//! `cargo run --example simple_server`, then open the address; Ctrl-C stops it
//! (in-flight requests finish first).

use gatekit::demo_app;
use gatekit::http::make_server;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = make_server("127.0.0.1:8000", demo_app)?;
    server.shutdown_handle().on_signals()?;
    eprintln!("Serving HTTP on http://127.0.0.1:8000/ ...");
    server.serve_forever()?;
    Ok(())
}
