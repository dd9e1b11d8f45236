//! The app `bench/extra` measures big bodies with: `GET /file` sends one
//! file through a `FileWrapper` (sendfile(2), or an `X-Accel-Redirect`
//! header for nginx to send it), and `POST /upload` reads the request body
//! to its end in 64 KiB blocks and answers how many bytes came. Any other
//! path answers `Hello, world!` (the HTTP hello of `bench/profile`).
//!
//! ```sh
//! cargo run --release --example bench_file -- http 127.0.0.1:8000 /tmp/big.bin
//! cargo run --release --example bench_file -- fastcgi unix:/tmp/f.sock /tmp/big.bin
//! cargo run --release --example bench_file -- scgi 127.0.0.1:4000 /tmp/big.bin
//! # FastCGI, nginx sends the file: an `internal` location at PREFIX with `alias ROOT/;`
//! cargo run --release --example bench_file -- fastcgi 127.0.0.1:9000 /srv/f/big.bin /srv/f /_files/
//! ```
//!
//! Request bodies up to 4 GiB are accepted (spooled to a temp file past
//! 512 KiB), requests may take 10 minutes to arrive, and up to 20,000
//! connections are held open. SIGTERM or Ctrl-C stops the server once
//! in-flight requests are done.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatekit::server::engine::EngineConfig;
use gatekit::server::offload::Offload;
use gatekit::server::spool::SpoolConfig;
use gatekit::{Body, BoxError, Environ, FileWrapper, StartResponse};

const USAGE: &str = "usage: bench_file http|fastcgi|scgi ADDR FILE [OFFLOAD_ROOT OFFLOAD_PREFIX]";

fn app(
    file: Arc<PathBuf>,
) -> impl Fn(&mut Environ, &mut StartResponse<'_>) -> Result<Body, BoxError> {
    move |env, sr| {
        let path = env.get_bytes("PATH_INFO").unwrap_or_default();
        let script = env.get_bytes("SCRIPT_NAME").unwrap_or_default();
        // nginx's fastcgi_params put the whole URI in SCRIPT_NAME.
        let upload = path.ends_with(b"/upload") || script.ends_with(b"/upload");
        if upload {
            let mut block = vec![0u8; 64 * 1024];
            let mut total: u64 = 0;
            loop {
                let n = env.input.read(&mut block)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            sr.start("200 OK", [("Content-Type", "text/plain")])?;
            return Ok(Body::from(format!("{total}\n")));
        }
        let wants_file = path.ends_with(b"/file") || script.ends_with(b"/file");
        if !wants_file {
            sr.start("200 OK", [("Content-Type", "text/plain")])?;
            return Ok(Body::from("Hello, world!\n"));
        }
        let opened = std::fs::File::open(file.as_ref())?;
        sr.start("200 OK", [("Content-Type", "application/octet-stream")])?;
        Ok(Body::File(FileWrapper::from_file(opened)))
    }
}

fn engine() -> EngineConfig {
    let mut engine = EngineConfig::default();
    engine.max_connections = 20_000;
    engine.request_timeout = Duration::from_secs(600);
    engine.idle_timeout = Duration::from_secs(600);
    engine.shutdown_grace = Duration::from_secs(5);
    engine
}

fn spool() -> SpoolConfig {
    SpoolConfig::new().with_max_body(4 << 30)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (front, addr, file, offload) = match args.as_slice() {
        [front, addr, file] => (front, addr, file, None),
        [front, addr, file, root, prefix] => (
            front,
            addr,
            file,
            Some(Offload::XAccelRedirect {
                root: PathBuf::from(root).canonicalize()?,
                prefix: prefix.clone(),
            }),
        ),
        _ => return Err(USAGE.into()),
    };
    let file = Arc::new(PathBuf::from(file).canonicalize()?);
    let app = app(file);
    eprintln!("bench_file: {front} on {addr}");
    match front.as_str() {
        "http" => {
            let mut config = gatekit::http::ServerConfig::default();
            config.engine = engine();
            config.spool = spool();
            let server = gatekit::http::Server::bind(addr, app, config)?;
            server.shutdown_handle().on_signals()?;
            server.serve_forever()?;
        }
        "fastcgi" => {
            let mut config = gatekit::fastcgi::ServerConfig::default();
            config.engine = engine();
            config.spool = spool();
            config.listen.unix_mode = Some(0o666);
            config.offload = offload;
            let server = gatekit::fastcgi::Server::bind(addr, app, config)?;
            server.shutdown_handle().on_signals()?;
            server.serve_forever()?;
        }
        "scgi" => {
            let mut config = gatekit::scgi::ServerConfig::default();
            config.engine = engine();
            config.spool = spool();
            config.listen.unix_mode = Some(0o666);
            let server = gatekit::scgi::Server::bind(addr, app, config)?;
            server.shutdown_handle().on_signals()?;
            server.serve_forever()?;
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
