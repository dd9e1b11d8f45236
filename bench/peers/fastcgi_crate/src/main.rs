//! `fastcgi_crate ADDR`: "Hello, world!" with the `fastcgi` 1.0 crate, as its documentation
//! shows it (a thread per connection). ADDR is `HOST:PORT` or `unix:PATH` (made mode 0666).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;

fn hello(mut req: fastcgi::Request) {
    // A write error means the web server went away; nothing to do about it.
    let _ = req
        .stdout()
        .write_all(b"Content-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .ok_or("usage: fastcgi_crate HOST:PORT|unix:PATH")?;
    if let Some(path) = addr.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        eprintln!("fastcgi_crate: FastCGI on {addr}");
        fastcgi::run_raw(hello, listener.as_raw_fd());
    } else {
        let listener = std::net::TcpListener::bind(&addr)?;
        eprintln!("fastcgi_crate: FastCGI on {addr}");
        fastcgi::run_tcp(hello, &listener);
    }
    Ok(())
}
