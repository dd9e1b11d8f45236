//! The FastCGI SDK's classic "echo" program, written against `gatekit::fastcgi::sdk`: an
//! accept loop per thread, each request answered with a request counter, the process id, the
//! parameters it got and the standard input it got, as `text/plain`.
//!
//! ```sh
//! cargo build --example fastcgi_sdk_style
//! target/debug/examples/fastcgi_sdk_style                      # 127.0.0.1:9001, 4 threads
//! target/debug/examples/fastcgi_sdk_style unix:/tmp/echo.sock 8
//! spawn-fcgi -n -a 127.0.0.1 -p 9001 -- target/debug/examples/fastcgi_sdk_style
//! ```
//!
//! Arguments, in any order: an address (`HOST:PORT`, `unix:PATH`) and a number of threads.
//! Started with a listening socket on fd 0 (spawn-fcgi, mod_fcgid) and no address, it accepts
//! on that socket (`FCGX_IsCGI()` is false). Behind nginx: `fastcgi_pass 127.0.0.1:9001;
//! include fastcgi_params;`.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use gatekit::fastcgi::sdk::{Listener, Request};

/// Requests answered by this process, over all threads.
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Most standard input shown; the rest is read and counted.
const SHOWN_INPUT: usize = 64 * 1024;

/// Answers one request, as the SDK's echo.c does.
fn echo(req: &mut Request<'_>) -> io::Result<()> {
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    let mut page = Vec::with_capacity(4096);
    write!(page, "Content-Type: text/plain\r\n\r\n")?;
    writeln!(page, "FastCGI echo (gatekit::fastcgi::sdk)")?;
    writeln!(
        page,
        "Request number {n}, process ID {}, role {:?}, keep_conn {}",
        std::process::id(),
        req.role(),
        req.keep_conn()
    )?;
    writeln!(page, "\nRequest environment:")?;
    for (name, value) in req.params() {
        page.extend_from_slice(name);
        page.push(b'=');
        page.extend_from_slice(value);
        page.push(b'\n');
    }
    // STDIN is read here, record by record, at most CONTENT_LENGTH bytes.
    let mut input = Vec::new();
    let mut total = 0u64;
    let mut chunk = [0u8; 8192];
    loop {
        let got = req.stdin().read(&mut chunk)?;
        if got == 0 {
            break;
        }
        total += got as u64;
        let room = SHOWN_INPUT.saturating_sub(input.len());
        input.extend_from_slice(&chunk[..got.min(room)]);
    }
    if total == 0 {
        writeln!(page, "\nNo data from standard input.")?;
    } else {
        writeln!(page, "\nStandard input ({total} bytes):")?;
        page.extend_from_slice(&input);
        if total > input.len() as u64 {
            writeln!(page, "\n[... {} more bytes]", total - input.len() as u64)?;
        }
    }
    req.stdout().write_all(&page)
}

/// One thread's accept loop: `FCGX_InitRequest`, then `FCGX_Accept_r` / `FCGX_Finish_r`.
fn serve(listener: &Listener) -> io::Result<()> {
    let mut acceptor = listener.acceptor();
    while let Some(mut req) = acceptor.accept()? {
        match echo(&mut req) {
            Ok(()) => {
                if let Err(e) = req.finish(0) {
                    eprintln!("fastcgi_sdk_style: the web server went away: {e}");
                }
            }
            Err(e) => {
                eprintln!("fastcgi_sdk_style: request {}: {e}", req.id());
                // Ignored: the connection is closed if this fails, which is all there is left
                // to do.
                let _ = req.finish(1);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut addr = None;
    let mut threads = 4usize;
    for arg in std::env::args().skip(1) {
        match arg.parse::<usize>() {
            Ok(n) if n > 0 => threads = n,
            _ => addr = Some(arg),
        }
    }
    let listener = match addr {
        None if !Listener::is_cgi() => Listener::from_fd0(),
        addr => {
            let addr = addr.unwrap_or_else(|| "127.0.0.1:9001".to_owned());
            Listener::bind(&addr).inspect(|_| {
                eprintln!("fastcgi_sdk_style: FastCGI on {addr}, {threads} threads");
            })
        }
    };
    let listener = match listener {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("fastcgi_sdk_style: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        let errors: Vec<String> = loops
            .into_iter()
            .filter_map(|t| match t.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("an accept thread panicked".to_owned()),
            })
            .collect();
        errors.into_iter().next()
    });
    match failed {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("fastcgi_sdk_style: {e}");
            ExitCode::FAILURE
        }
    }
}
