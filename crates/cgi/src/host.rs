//! Hosting CGI scripts (RFC 3875, the server side): [`CgiHost`] is an
//! [`App`] that runs a script per request, as fcgiwrap does behind nginx or
//! Go's `net/http/cgi.Handler` does in a Go server.
//!
//! ```no_run
//! use std::time::Duration;
//! use gatekit_cgi::host::CgiHost;
//!
//! // Every script in /srv/cgi-bin, reached as SCRIPT_NAME/NAME/PATH_INFO.
//! let app = CgiHost::new("/srv/cgi-bin")?
//!     .timeout(Duration::from_secs(10))
//!     .env("TZ", "UTC");
//! # let _ = app;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Per request:
//! - **The script.** A host made on a file runs that file for every request
//!   (`SCRIPT_NAME` and `PATH_INFO` as the web server sent them). A host made
//!   on a directory takes the first segment of `PATH_INFO` as the script's
//!   name: `SCRIPT_NAME` gets it appended and `PATH_INFO` keeps the rest. A
//!   name that is empty, hidden (`.x`, `..`), not a regular executable file,
//!   or that resolves (through symlinks) outside the directory is a `404`.
//! - **Its environment** is built from the request, never inherited: the
//!   RFC 3875 §4.1 variables, `SCRIPT_FILENAME`, `REQUEST_URI` and
//!   `DOCUMENT_ROOT` when the web server sent them, every `HTTP_*` variable
//!   byte for byte except `HTTP_PROXY` (httpoxy), `PATH`, and the variables
//!   given with [`CgiHost::env`]. Its working directory is its own directory.
//! - **I/O.** The request body is written to its stdin from a thread while
//!   its stdout is read, so large bodies both ways never deadlock. Each line
//!   on its stderr goes to `wsgi.errors` (under FastCGI, the web server's
//!   error log). Its stdout is parsed as a CGI response ([`response`]): a
//!   `Status:` header, a `Location:` (a client redirect, `302` when no status
//!   is given, or a local redirect that the host follows itself as a `GET`,
//!   at most [`MAX_LOCAL_REDIRECTS`] times), then the body, streamed to the
//!   client block by block. Output that is not a CGI response is a `502`
//!   and a line on `wsgi.errors`.
//! - **Its lifetime.** The script runs in a process group of its own. At the
//!   timeout the group gets `SIGTERM`, then `SIGKILL` after a short grace:
//!   the client gets a `504` when the script had not finished its header
//!   block, else a body cut short (when the block was complete but no body
//!   byte had gone out yet, the gateway answers its `500` instead). The same happens at once when the client goes away
//!   ([`Environ::is_cancelled`]) or the response is dropped. The script is
//!   always reaped.

pub mod response;

use gatekit_core::util::percent_decode;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use gatekit_core::util::is_hop_by_hop;
use gatekit_core::{App, Body, BoxError, Chunk, Environ, Errors, Headers, Input, StartResponse};
use rustix::process::{Pid, Signal, kill_process_group};

use self::response::{Head, Kind, Limits};

/// The default [`CgiHost::timeout`]: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Local redirects (`Location: /path`) followed for one request; one more
/// is a `502`.
pub const MAX_LOCAL_REDIRECTS: usize = 10;

/// `PATH` for scripts when gatekit's own environment has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Bytes read from a script's stdout at a time; at most a few such blocks
/// are held per request.
const BLOCK: usize = 64 * 1024;

/// Blocks read ahead of the client.
const READ_AHEAD: usize = 2;

/// A stderr line longer than this is passed on in pieces.
const MAX_STDERR_LINE: u64 = 8 * 1024;

/// Between `SIGTERM` and `SIGKILL`.
const KILL_GRACE: Duration = Duration::from_millis(500);

/// How often a script that has not answered yet is checked for the
/// deadline and the client's departure.
const POLL: Duration = Duration::from_millis(50);

/// How long to wait for the last stderr lines once the script is done.
const STDERR_LINGER: Duration = Duration::from_millis(250);

/// Request variables passed to scripts as they are (RFC 3875 §4.1 and the
/// common extensions); `HTTP_*` are passed too, see [`is_passed`].
const PASSED: &[&str] = &[
    "AUTH_TYPE",
    "CONTENT_TYPE",
    "DOCUMENT_ROOT",
    "DOCUMENT_URI",
    "HTTPS",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_IDENT",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "REQUEST_SCHEME",
    "REQUEST_URI",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
];

#[derive(Debug, Clone)]
enum Target {
    Script(PathBuf),
    Directory(PathBuf),
}

/// An [`App`] that runs CGI scripts: one script, or any script of a
/// directory (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CgiHost {
    target: Target,
    timeout: Duration,
    limits: Limits,
    path_var: Vec<u8>,
    extra_env: Vec<(Vec<u8>, Vec<u8>)>,
}

impl CgiHost {
    /// A host for `path`: an executable file (run for every request) or a
    /// directory of them (the first `PATH_INFO` segment names the script).
    ///
    /// # Errors
    /// `path` does not exist, is a file with no execute bit
    /// ([`io::ErrorKind::PermissionDenied`]), or is neither a file nor a
    /// directory ([`io::ErrorKind::InvalidInput`]).
    pub fn new(path: impl Into<PathBuf>) -> io::Result<CgiHost> {
        let path = path.into().canonicalize()?;
        let meta = std::fs::metadata(&path)?;
        let target = if meta.is_dir() {
            Target::Directory(path)
        } else if meta.is_file() {
            if meta.permissions().mode() & 0o111 == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} is not executable", path.display()),
                ));
            }
            Target::Script(path)
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is neither a file nor a directory", path.display()),
            ));
        };
        let path_var = std::env::var_os("PATH")
            .filter(|p| !p.is_empty())
            .map_or_else(
                || DEFAULT_PATH.as_bytes().to_vec(),
                |p| p.as_bytes().to_vec(),
            );
        Ok(CgiHost {
            target,
            timeout: DEFAULT_TIMEOUT,
            limits: Limits::default(),
            path_var,
            extra_env: Vec::new(),
        })
    }

    /// How long a script may run, headers and body (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> CgiHost {
        self.timeout = timeout;
        self
    }

    /// Passes one more variable to every script (after the request's, so it
    /// wins). A name that is empty or holds `=` or NUL, or a value with NUL,
    /// cannot be in an environment and is ignored.
    #[must_use]
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> CgiHost {
        let (name, value) = (name.as_ref().as_bytes(), value.as_ref().as_bytes());
        if env_ok(name, value) {
            self.extra_env.retain(|(n, _)| n != name);
            self.extra_env.push((name.to_vec(), value.to_vec()));
        }
        self
    }

    /// The largest header block a script may write (default 64 KiB; a
    /// `502` beyond).
    #[must_use]
    pub fn max_header_bytes(mut self, n: usize) -> CgiHost {
        self.limits = self.limits.with_max_header_bytes(n);
        self
    }

    /// The script or directory served (canonical).
    #[must_use]
    pub fn path(&self) -> &Path {
        match &self.target {
            Target::Script(p) | Target::Directory(p) => p,
        }
    }

    /// True for a host made on a directory of scripts.
    #[must_use]
    pub fn is_directory(&self) -> bool {
        matches!(self.target, Target::Directory(_))
    }

    /// The script for a request, its `SCRIPT_NAME` and its `PATH_INFO`;
    /// `None` when there is none to run (a `404`).
    fn resolve(&self, mount: &[u8], path_info: &[u8]) -> Option<(PathBuf, Vec<u8>, Vec<u8>)> {
        let dir = match &self.target {
            Target::Script(script) => {
                return Some((script.clone(), mount.to_vec(), path_info.to_vec()));
            }
            Target::Directory(dir) => dir,
        };
        let rest = path_info.strip_prefix(b"/")?;
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let (name, tail) = rest.split_at(end);
        if name.is_empty() || name.starts_with(b".") || name.contains(&0) {
            return None;
        }
        let real = dir.join(OsStr::from_bytes(name)).canonicalize().ok()?;
        if real.parent() != Some(dir.as_path()) {
            return None;
        }
        let meta = std::fs::metadata(&real).ok()?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return None;
        }
        let mut script_name = mount.strip_suffix(b"/").unwrap_or(mount).to_vec();
        script_name.push(b'/');
        script_name.extend_from_slice(name);
        Some((real, script_name, tail.to_vec()))
    }

    /// The script's whole environment.
    fn script_env(
        &self,
        request: &BTreeMap<Vec<u8>, Vec<u8>>,
        script: &Path,
        script_name: Vec<u8>,
        path_info: Vec<u8>,
    ) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut env = request.clone();
        env.insert(b"GATEWAY_INTERFACE".to_vec(), b"CGI/1.1".to_vec());
        env.entry(b"SERVER_SOFTWARE".to_vec())
            .or_insert_with(|| b"gatekit".to_vec());
        env.entry(b"QUERY_STRING".to_vec()).or_default();
        if !path_info.is_empty() {
            if let Some(root) = request.get(b"DOCUMENT_ROOT".as_slice()) {
                let mut translated = root.strip_suffix(b"/").unwrap_or(root).to_vec();
                translated.extend_from_slice(&path_info);
                env.insert(b"PATH_TRANSLATED".to_vec(), translated);
            }
        }
        env.insert(b"SCRIPT_NAME".to_vec(), script_name);
        env.insert(b"PATH_INFO".to_vec(), path_info);
        env.insert(
            b"SCRIPT_FILENAME".to_vec(),
            script.as_os_str().as_bytes().to_vec(),
        );
        env.insert(b"PATH".to_vec(), self.path_var.clone());
        for (n, v) in &self.extra_env {
            env.insert(n.clone(), v.clone());
        }
        env
    }
}

fn env_ok(name: &[u8], value: &[u8]) -> bool {
    !name.is_empty() && !name.contains(&b'=') && !name.contains(&0) && !value.contains(&0)
}

/// True for a request variable passed to scripts as it is.
fn is_passed(name: &[u8]) -> bool {
    if let Some(rest) = name.strip_prefix(b"HTTP_") {
        // httpoxy: a `Proxy:` request header must not become the
        // HTTP_PROXY a script's HTTP client would obey.
        return !rest.is_empty() && rest != b"PROXY";
    }
    PASSED.iter().any(|p| p.as_bytes() == name)
}

/// The request's variables a script sees (before the per-script ones).
fn request_vars(environ: &Environ) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut vars: BTreeMap<Vec<u8>, Vec<u8>> = environ
        .iter()
        .filter(|(n, v)| is_passed(n) && env_ok(n, v))
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    let length = environ.input.content_length();
    if length > 0 {
        vars.insert(b"CONTENT_LENGTH".to_vec(), length.to_string().into_bytes());
    }
    vars
}

/// `wsgi.errors`, shared by the request's thread and its stderr reader.
type SharedErrors = Arc<Mutex<Errors>>;

struct ErrorsHandle(SharedErrors);

impl Write for ErrorsHandle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

fn log(errors: &SharedErrors, script: &Path, what: &str) {
    let line = format!("gatekit cgi: {}: {what}\n", script.display());
    let mut e = errors.lock().unwrap_or_else(PoisonError::into_inner);
    // The error log is best effort.
    let _ = e.write_all(line.as_bytes());
    let _ = e.flush();
}

fn error_page(sr: &mut StartResponse<'_>, status: &'static str) -> Result<Body, BoxError> {
    sr.start(status, [("Content-Type", "text/plain; charset=utf-8")])?;
    Ok(Body::from(format!("{status}\n")))
}

impl App for CgiHost {
    fn call(&self, environ: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
        let deadline = Instant::now() + self.timeout;
        let errors: SharedErrors = Arc::new(Mutex::new(std::mem::replace(
            &mut environ.errors,
            Errors::sink(),
        )));
        environ.errors = Errors::new(Box::new(ErrorsHandle(Arc::clone(&errors))));
        let mut request = request_vars(environ);
        let mount = environ
            .get_bytes("SCRIPT_NAME")
            .unwrap_or_default()
            .to_vec();
        let mut path_info = environ.get_bytes("PATH_INFO").unwrap_or_default().to_vec();
        let mut input = Some(std::mem::replace(&mut environ.input, Input::empty()));

        for _ in 0..=MAX_LOCAL_REDIRECTS {
            let Some((script, script_name, script_path_info)) = self.resolve(&mount, &path_info)
            else {
                return error_page(sr, "404 Not Found");
            };
            let env = self.script_env(&request, &script, script_name, script_path_info);
            let mut run = match Run::spawn(&script, &env, input.take(), &errors) {
                Ok(run) => run,
                Err(e) => {
                    log(&errors, &script, &format!("cannot run: {e}"));
                    return error_page(sr, "500 Internal Server Error");
                }
            };
            let (head, first) = match run.read_head(&self.limits, deadline, environ) {
                Ok(got) => got,
                Err(HeadError::Timeout) => {
                    run.kill();
                    run.log(&format!(
                        "timed out after {:?} before its headers; killed",
                        self.timeout
                    ));
                    return error_page(sr, "504 Gateway Timeout");
                }
                Err(HeadError::Cancelled) => {
                    run.kill();
                    return Err("cgi: the client went away before the script answered".into());
                }
                Err(HeadError::Bad(why)) => {
                    run.kill();
                    run.log(&format!("malformed output: {why}"));
                    return error_page(sr, "502 Bad Gateway");
                }
            };
            match head.kind() {
                Kind::LocalRedirect(location) => {
                    let location = location.to_vec();
                    run.finish(deadline);
                    let (path, query) = match location.iter().position(|&b| b == b'?') {
                        Some(q) => (&location[..q], &location[q + 1..]),
                        None => (location.as_slice(), &b""[..]),
                    };
                    let base = mount.strip_suffix(b"/").unwrap_or(&mount);
                    let Some(rest) = path
                        .strip_prefix(base)
                        .filter(|r| r.is_empty() || r.starts_with(b"/"))
                    else {
                        // Outside this host: the client fetches it.
                        sr.start("302 Found", [("Location", &*latin1(&location))])?;
                        return Ok(Body::empty());
                    };
                    path_info = percent_decode(rest);
                    request.insert(b"REQUEST_METHOD".to_vec(), b"GET".to_vec());
                    request.insert(b"QUERY_STRING".to_vec(), query.to_vec());
                    request.insert(b"REQUEST_URI".to_vec(), location.clone());
                    request.remove(b"CONTENT_LENGTH".as_slice());
                    request.remove(b"CONTENT_TYPE".as_slice());
                }
                Kind::Document => return start_document(sr, run, &head, first, deadline),
            }
        }
        log(
            &errors,
            self.path(),
            &format!("more than {MAX_LOCAL_REDIRECTS} local redirects"),
        );
        error_page(sr, "502 Bad Gateway")
    }
}

fn latin1(bytes: &[u8]) -> String {
    gatekit_core::latin1_to_string(bytes)
}

fn start_document(
    sr: &mut StartResponse<'_>,
    mut run: Run,
    head: &Head,
    first: Vec<u8>,
    deadline: Instant,
) -> Result<Body, BoxError> {
    let mut headers = Headers::new();
    for (name, value) in head.headers() {
        // Framing is the gateway's (and the web server's) job.
        if is_hop_by_hop(name) {
            continue;
        }
        if let Err(e) = headers.append_bytes(name, value) {
            run.kill();
            run.log(&format!("malformed output: header {name}: {e}"));
            return error_page(sr, "502 Bad Gateway");
        }
    }
    sr.start(head.response_status(), headers)?;
    Ok(Body::Stream(Box::new(BodyStream {
        run,
        first: Some(first),
        deadline,
        done: false,
    })))
}

enum HeadError {
    Timeout,
    Cancelled,
    Bad(String),
}

/// One running script: its process, the threads that feed and drain it.
struct Run {
    script: PathBuf,
    /// `None` once reaped.
    child: Option<Child>,
    stdout: Receiver<io::Result<Vec<u8>>>,
    /// Disconnects when the stderr reader is done.
    stderr_done: Receiver<()>,
    errors: SharedErrors,
}

impl Run {
    fn spawn(
        script: &Path,
        env: &BTreeMap<Vec<u8>, Vec<u8>>,
        input: Option<Input>,
        errors: &SharedErrors,
    ) -> io::Result<Run> {
        let mut cmd = Command::new(script);
        cmd.env_clear()
            .envs(
                env.iter()
                    .filter(|(n, v)| env_ok(n, v))
                    .map(|(n, v)| (OsStr::from_bytes(n), OsStr::from_bytes(v))),
            )
            .stdin(if input.as_ref().is_some_and(|i| i.content_length() > 0) {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(dir) = script.parent() {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (out_tx, out_rx) = mpsc::sync_channel(READ_AHEAD);
        let (err_tx, err_rx) = mpsc::channel::<()>();
        let run = Run {
            script: script.to_path_buf(),
            child: Some(child),
            stdout: out_rx,
            stderr_done: err_rx,
            errors: Arc::clone(errors),
        };
        if let (Some(mut stdin), Some(mut input)) = (stdin, input) {
            thread::Builder::new()
                .name("cgi-stdin".into())
                .spawn(move || {
                    // A script that exits without reading its body closes
                    // the pipe (EPIPE): not an error of ours.
                    let _ = io::copy(&mut input, &mut stdin);
                })?;
        }
        if let Some(stdout) = stdout {
            thread::Builder::new()
                .name("cgi-stdout".into())
                .spawn(move || read_stdout(stdout, &out_tx))?;
        }
        if let Some(stderr) = stderr {
            let errors = Arc::clone(errors);
            thread::Builder::new()
                .name("cgi-stderr".into())
                .spawn(move || {
                    read_stderr(stderr, &errors);
                    drop(err_tx);
                })?;
        }
        Ok(run)
    }

    fn log(&self, what: &str) {
        log(&self.errors, &self.script, what);
    }

    /// Reads stdout until the header block is complete.
    fn read_head(
        &mut self,
        limits: &Limits,
        deadline: Instant,
        environ: &Environ,
    ) -> Result<(Head, Vec<u8>), HeadError> {
        let mut buf = Vec::new();
        let mut fresh = true;
        loop {
            if fresh {
                match response::parse_head(&buf, limits) {
                    Ok(Some((head, n))) => return Ok((head, buf.split_off(n))),
                    Ok(None) => {}
                    Err(e) => return Err(HeadError::Bad(e.to_string())),
                }
                fresh = false;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HeadError::Timeout);
            }
            if environ.is_cancelled() {
                return Err(HeadError::Cancelled);
            }
            match self.stdout.recv_timeout(POLL.min(deadline - now)) {
                Ok(Ok(block)) => {
                    buf.extend_from_slice(&block);
                    fresh = true;
                }
                Ok(Err(e)) => return Err(HeadError::Bad(format!("reading its output: {e}"))),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.finish(deadline);
                    let what = if buf.is_empty() {
                        "no output"
                    } else {
                        "output ended inside the header block"
                    };
                    return Err(HeadError::Bad(match status {
                        Some(s) => format!("{what} (script {s})"),
                        None => what.to_owned(),
                    }));
                }
            }
        }
    }

    /// The normal end: output drained (discarded) to its end, the script
    /// reaped, its last stderr lines passed on. Past `deadline`, killed.
    fn finish(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.kill();
                return None;
            }
            if let Err(RecvTimeoutError::Disconnected) = self.stdout.recv_timeout(deadline - now) {
                break;
            }
        }
        let mut pause = Duration::from_millis(1);
        let status = loop {
            let child = self.child.as_mut()?;
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    break Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(POLL);
                }
                Ok(None) | Err(_) => {
                    self.kill();
                    return None;
                }
            }
        };
        self.await_stderr(STDERR_LINGER);
        status
    }

    /// Timeout or cancellation: `SIGTERM` to the group, a short grace
    /// (until its output closes), `SIGKILL`, reap.
    fn kill(&mut self) {
        let Some(child) = &self.child else {
            return;
        };
        // The leader is not reaped yet, so its pid still names our group.
        let _ = kill_process_group(Pid::from_child(child), Signal::TERM);
        let grace_end = Instant::now() + KILL_GRACE;
        loop {
            let now = Instant::now();
            if now >= grace_end {
                break;
            }
            match self.stdout.recv_timeout(grace_end - now) {
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.kill_now();
        self.await_stderr(STDERR_LINGER);
    }

    /// `SIGKILL` to the group, then reap.
    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill_process_group(Pid::from_child(&child), Signal::KILL);
            let _ = child.wait();
        }
    }

    fn await_stderr(&self, at_most: Duration) {
        let _ = self.stderr_done.recv_timeout(at_most);
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.kill_now();
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("script", &self.script)
            .field("running", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

fn read_stdout(mut stdout: ChildStdout, tx: &mpsc::SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut block = vec![0; BLOCK];
        match stdout.read(&mut block) {
            Ok(0) => return,
            Ok(n) => {
                block.truncate(n);
                if tx.send(Ok(block)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

fn read_stderr(stderr: ChildStderr, errors: &SharedErrors) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader
            .by_ref()
            .take(MAX_STDERR_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                let mut e = errors.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = e.write_all(&line);
                let _ = e.flush();
            }
        }
    }
}

/// The response body: the script's stdout after its headers, block by block.
struct BodyStream {
    run: Run,
    first: Option<Vec<u8>>,
    deadline: Instant,
    done: bool,
}

impl Iterator for BodyStream {
    type Item = Result<Chunk, BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take().filter(|b| !b.is_empty()) {
            return Some(Ok(Chunk::Owned(first)));
        }
        let now = Instant::now();
        let got = self
            .run
            .stdout
            .recv_timeout(self.deadline.saturating_duration_since(now));
        match got {
            Ok(Ok(block)) => Some(Ok(Chunk::Owned(block))),
            Ok(Err(e)) => {
                self.done = true;
                self.run.kill();
                Some(Err(Box::new(e)))
            }
            Err(RecvTimeoutError::Timeout) => {
                self.done = true;
                self.run.kill();
                self.run.log("timed out while sending its body; killed");
                Some(Err("cgi script timed out; response cut short".into()))
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                self.run.finish(self.deadline);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"/a%20b/%zz%4"), b"/a b/%zz%4");
        assert_eq!(percent_decode(b"%2F%2e"), b"/.");
    }

    #[test]
    fn passed_variables() {
        assert!(is_passed(b"HTTP_HOST"));
        assert!(is_passed(b"REMOTE_ADDR"));
        assert!(!is_passed(b"HTTP_PROXY"));
        assert!(!is_passed(b"HTTP_"));
        assert!(!is_passed(b"LD_PRELOAD"));
        assert!(!is_passed(b"SCRIPT_FILENAME"));
        assert!(!env_ok(b"A=B", b"x"));
        assert!(!env_ok(b"A", b"x\0"));
    }

    #[test]
    fn directory_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("plain.txt"), "x").unwrap();
        std::fs::write(dir.path().join(".hidden"), "x").unwrap();
        std::fs::set_permissions(
            dir.path().join(".hidden"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("out")).unwrap();
        let host = CgiHost::new(dir.path()).unwrap();
        assert!(host.is_directory());
        let (path, name, info) = host.resolve(b"/cgi", b"/run.sh/a/b").unwrap();
        assert_eq!(path, script.canonicalize().unwrap());
        assert_eq!(name, b"/cgi/run.sh");
        assert_eq!(info, b"/a/b");
        let (_, name, info) = host.resolve(b"", b"/run.sh").unwrap();
        assert_eq!(
            (name.as_slice(), info.as_slice()),
            (&b"/run.sh"[..], &b""[..])
        );
        for bad in [
            &b""[..],
            b"/",
            b"/plain.txt",
            b"/.hidden",
            b"/..",
            b"/../run.sh",
            b"/nothing",
            b"/out",
            b"run.sh",
        ] {
            assert!(host.resolve(b"/cgi", bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_plain_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let err = CgiHost::new(&file).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(CgiHost::new(dir.path().join("missing")).is_err());
    }
}
