//! gatekit-cgi: run a gatekit [`App`] as a CGI/1.1 program (RFC 3875).
//!
//! The web server starts the program once per request, with the request in
//! the environment and the body on stdin; the response goes to stdout and
//! log lines to stderr, which the server puts in its error log.
//!
//! | wsgiref | here |
//! |---|---|
//! | `CGIHandler().run(app)` | [`serve`], or [`CgiHandler::new`] + [`CgiHandler::run`] |
//! | `BaseCGIHandler(stdin, stdout, stderr, environ)` | [`run_with_streams`] |
//! | `IISCGIHandler` | [`CgiOptions::iis_path_fix`] |
//! | (no equivalent) NPH scripts, RFC 3875 §5 | [`CgiOptions::nph`] |
//! | `CGIHTTPServer`, fcgiwrap, Go's `cgi.Handler`: hosting CGI scripts | [`host::CgiHost`] |
//!
//! ```no_run
//! use gatekit_core::{Body, BoxError, Environ, StartResponse};
//!
//! fn hello(_: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
//!     sr.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(Body::from("Hello, world!\n"))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     gatekit_cgi::serve(&hello).exit_code()
//! }
//! ```
//!
//! # Design
//!
//! The environment is read once, as bytes (`vars_os`), when the handler is
//! made: a `PATH_INFO` of `/\xff` (Apache's decoding of `%FF`) reaches the app
//! unchanged instead of panicking as `std::env::vars` would. Output is
//! buffered so the headers and a one-block body leave in one `write(2)`, and
//! flushed after every block so streams are not delayed. A file body is sent
//! to stdout with `sendfile(2)` (a pipe under mod_cgi, a socket under
//! mod_cgid) and falls back to reads where the kernel refuses.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use gatekit_core::{App, Config, Environ, Gateway, Outcome, StreamTransport, Transport};

pub mod host;
mod sys;

/// How to run as CGI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CgiOptions {
    /// Strip `SCRIPT_NAME` from the front of `PATH_INFO`, for IIS, which
    /// sends the whole path there (wsgiref's `IISCGIHandler`).
    pub iis_path_fix: bool,
    /// Non-parsed-header output (RFC 3875 §5): a complete HTTP response with a
    /// status line, which the server passes on unmodified.
    pub nph: Nph,
    /// Bytes of stdout buffering (headers and small bodies leave in one write).
    pub output_buffer: usize,
}

/// When to write NPH output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nph {
    /// When the program's name or `SCRIPT_NAME`'s last segment starts with
    /// `nph-`, the convention servers use (RFC 3875 §5.1).
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl Default for CgiOptions {
    fn default() -> Self {
        CgiOptions {
            iis_path_fix: false,
            nph: Nph::Auto,
            output_buffer: 32 * 1024,
        }
    }
}

/// The process environment as bytes, losslessly.
#[must_use]
pub fn environ_vars() -> Vec<(Vec<u8>, Vec<u8>)> {
    std::env::vars_os()
        .map(|(k, v)| (os_bytes(k), os_bytes(v)))
        .collect()
}

#[cfg(unix)]
fn os_bytes(s: OsString) -> Vec<u8> {
    std::os::unix::ffi::OsStringExt::into_vec(s)
}

#[cfg(not(unix))]
fn os_bytes(s: OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

fn get<'v>(vars: &'v [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'v [u8]> {
    vars.iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// wsgiref's `IISCGIHandler` fix: IIS puts the script name in front of
/// `PATH_INFO`; take it off when it is there.
pub fn iis_path_fix(vars: &mut [(Vec<u8>, Vec<u8>)]) {
    let script = get(vars, "SCRIPT_NAME").unwrap_or_default().to_vec();
    let Some((_, path)) = vars.iter_mut().find(|(k, _)| k == b"PATH_INFO") else {
        return;
    };
    let mut with_slash = path.clone();
    with_slash.push(b'/');
    let mut script_slash = script.clone();
    script_slash.push(b'/');
    if with_slash.starts_with(&script_slash) {
        path.drain(..script.len());
    }
}

/// True when the NPH naming convention applies: the program's file name, or
/// the last segment of `SCRIPT_NAME`, starts with `nph-` (RFC 3875 §5.1).
#[must_use]
pub fn is_nph_name(vars: &[(Vec<u8>, Vec<u8>)], argv0: Option<&std::ffi::OsStr>) -> bool {
    let last = |p: &[u8]| {
        p.rsplit(|&b| b == b'/')
            .next()
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let script = get(vars, "SCRIPT_NAME").map(last).unwrap_or_default();
    let prog = argv0
        .map(|a| last(&os_bytes(a.to_os_string())))
        .unwrap_or_default();
    script.starts_with(b"nph-") || prog.starts_with(b"nph-")
}

/// The gateway policy for CGI: `run_once`, single-threaded, multi-process,
/// no `os_environ` (the request *is* the environment, bpo-7250); for NPH, an
/// origin server's output.
#[must_use]
pub fn cgi_config(nph: bool) -> Config {
    let mut config = if nph {
        let mut c = Config::origin();
        // The web server, not the script, is the server the client sees.
        c.server_software = None;
        c
    } else {
        Config::gateway()
    };
    config.run_once = true;
    config.multithread = false;
    config.multiprocess = true;
    config
}

/// stdin, stdout and stderr of this process, with `sendfile` to stdout.
pub struct StdioTransport {
    input: Option<Box<dyn BufRead + Send>>,
    output: BufWriter<sys::Stdout>,
    errors: Option<Box<dyn Write + Send>>,
    vars: Vec<(Vec<u8>, Vec<u8>)>,
    aborted: bool,
}

impl StdioTransport {
    /// A transport over the standard streams with these CGI variables.
    #[must_use]
    pub fn new(vars: Vec<(Vec<u8>, Vec<u8>)>, output_buffer: usize) -> StdioTransport {
        StdioTransport {
            input: Some(Box::new(BufReader::with_capacity(64 * 1024, sys::stdin()))),
            output: BufWriter::with_capacity(output_buffer.max(512), sys::stdout()),
            errors: Some(Box::new(sys::stderr())),
            vars,
            aborted: false,
        }
    }

    /// True when the gateway aborted the response.
    #[must_use]
    pub fn aborted(&self) -> bool {
        self.aborted
    }
}

impl std::fmt::Debug for StdioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioTransport")
            .field("vars", &self.vars.len())
            .field("aborted", &self.aborted)
            .finish_non_exhaustive()
    }
}

impl Transport for StdioTransport {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.output.write_all(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }

    fn input(&mut self) -> Box<dyn BufRead + Send> {
        self.input.take().unwrap_or_else(|| Box::new(io::empty()))
    }

    fn errors(&mut self) -> Box<dyn Write + Send> {
        self.errors.take().unwrap_or_else(|| Box::new(io::sink()))
    }

    fn add_cgi_vars(&mut self, environ: &mut Environ) {
        environ.extend(self.vars.drain(..));
    }

    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        self.output.flush()?;
        sys::sendfile(self.output.get_ref(), file, offset, count)
    }

    fn abort(&mut self) {
        // Nothing on the wire can mark a CGI body as cut short (the server
        // frames it); the exit status and the error log say it instead.
        self.aborted = true;
    }
}

/// wsgiref's `CGIHandler`: the request from this process's environment and
/// standard streams.
#[derive(Debug)]
pub struct CgiHandler {
    gateway: Gateway<StdioTransport>,
}

impl CgiHandler {
    /// A handler for this process's request, with default options.
    #[must_use]
    pub fn new() -> CgiHandler {
        CgiHandler::with_options(&CgiOptions::default())
    }

    /// A handler for this process's request.
    #[must_use]
    pub fn with_options(options: &CgiOptions) -> CgiHandler {
        let mut vars = environ_vars();
        if options.iis_path_fix {
            iis_path_fix(&mut vars);
        }
        let nph = match options.nph {
            Nph::On => true,
            Nph::Off => false,
            Nph::Auto => is_nph_name(&vars, std::env::args_os().next().as_deref()),
        };
        let transport = StdioTransport::new(vars, options.output_buffer);
        CgiHandler {
            gateway: Gateway::new(transport, cgi_config(nph)),
        }
    }

    /// Runs the app for this request.
    pub fn run<A: App + ?Sized>(mut self, app: &A) -> CgiOutcome {
        let outcome = self.gateway.run(app);
        CgiOutcome {
            outcome,
            aborted: self.gateway.transport().aborted(),
        }
    }
}

impl Default for CgiHandler {
    fn default() -> Self {
        CgiHandler::new()
    }
}

/// How a CGI request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgiOutcome {
    /// The gateway's account.
    pub outcome: Outcome,
    /// The response was cut short after its headers were sent.
    pub aborted: bool,
}

impl CgiOutcome {
    /// The process exit status to report: 0 when a response went out whole
    /// (an error page counts), 1 when it was cut short. A client that went
    /// away is not the program's failure: 0.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        if self.aborted && !self.outcome.client_gone {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Runs `app` for the request this process was started for (`CGIHandler().run(app)`).
pub fn serve<A: App + ?Sized>(app: &A) -> CgiOutcome {
    CgiHandler::new().run(app)
}

/// wsgiref's `BaseCGIHandler`: CGI over any streams and variables, for tests
/// and for hosts that run CGI apps in-process.
pub fn run_with_streams<A, I, O, E>(
    app: &A,
    input: I,
    output: O,
    errors: E,
    mut vars: Vec<(Vec<u8>, Vec<u8>)>,
    options: &CgiOptions,
) -> (O, Outcome)
where
    A: App + ?Sized,
    I: BufRead + Send + 'static,
    O: Write,
    E: Write + Send + 'static,
{
    if options.iis_path_fix {
        iis_path_fix(&mut vars);
    }
    let nph = match options.nph {
        Nph::On => true,
        Nph::Off => false,
        Nph::Auto => is_nph_name(&vars, None),
    };
    let mut gateway = Gateway::new(
        StreamTransport::new(input, output, errors, vars),
        cgi_config(nph),
    );
    let outcome = gateway.run(app);
    (gateway.into_transport().into_output(), outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekit_core::{Body, BoxError, StartResponse};

    fn vars(pairs: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    fn path_app(e: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
        let body = [
            e.get_bytes("SCRIPT_NAME").unwrap_or_default(),
            b"|",
            e.get_bytes("PATH_INFO").unwrap_or_default(),
        ]
        .concat();
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::from(body))
    }

    fn run(v: &[(&str, &[u8])], options: &CgiOptions) -> Vec<u8> {
        run_with_streams(
            &path_app,
            io::empty(),
            Vec::new(),
            io::sink(),
            vars(v),
            options,
        )
        .0
    }

    #[test]
    fn iis_fix_strips_script_name() {
        let options = CgiOptions {
            iis_path_fix: true,
            ..CgiOptions::default()
        };
        let out = run(
            &[("SCRIPT_NAME", b"/app.cgi"), ("PATH_INFO", b"/app.cgi/x/y")],
            &options,
        );
        assert!(out.ends_with(b"\r\n\r\n/app.cgi|/x/y"));
        let out = run(
            &[("SCRIPT_NAME", b"/app.cgi"), ("PATH_INFO", b"/app.cgi")],
            &options,
        );
        assert!(out.ends_with(b"\r\n\r\n/app.cgi|"));
        // Only whole segments: /app.cgix is not under /app.cgi.
        let out = run(
            &[("SCRIPT_NAME", b"/app.cgi"), ("PATH_INFO", b"/app.cgix")],
            &options,
        );
        assert!(out.ends_with(b"\r\n\r\n/app.cgi|/app.cgix"));
        let out = run(
            &[("SCRIPT_NAME", b"/app.cgi"), ("PATH_INFO", b"/app.cgi/x")],
            &CgiOptions::default(),
        );
        assert!(out.ends_with(b"\r\n\r\n/app.cgi|/app.cgi/x"));
    }

    #[test]
    fn nph_by_name_writes_a_status_line() {
        let out = run(
            &[
                ("SCRIPT_NAME", b"/cgi-bin/nph-app"),
                ("SERVER_PROTOCOL", b"HTTP/1.1"),
                ("PATH_INFO", b""),
            ],
            &CgiOptions::default(),
        );
        assert!(
            out.starts_with(b"HTTP/1.1 200 OK\r\nDate: "),
            "{}",
            out.escape_ascii()
        );
        let out = run(&[("SCRIPT_NAME", b"/cgi-bin/app")], &CgiOptions::default());
        assert!(out.starts_with(b"Status: 200 OK\r\n"));
        let options = CgiOptions {
            nph: Nph::Off,
            ..CgiOptions::default()
        };
        assert!(run(&[("SCRIPT_NAME", b"/nph-x")], &options).starts_with(b"Status: "));
    }

    #[test]
    fn cgi_policy() {
        let c = cgi_config(false);
        assert!(c.run_once && !c.multithread && c.multiprocess && !c.origin_server);
        assert!(c.os_environ.is_empty());
    }
}
