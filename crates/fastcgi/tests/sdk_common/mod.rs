//! What the SDK tests share: the test application (an accept loop per thread over
//! `gatekit_fastcgi::sdk`), an in-process server that stops cleanly, and a raw FastCGI client.

#![allow(dead_code)] // not every helper is used by every test

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gatekit_fastcgi::proto::{self, BeginRequest, EndRequest, RecordType, Role};
use gatekit_fastcgi::sdk::{Config, Listener, Request};

/// How long a test waits for anything before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the test application shares with the test.
#[derive(Default)]
pub struct Shared {
    /// Set when `/abort` saw its request aborted.
    pub saw_abort: AtomicBool,
    /// Requests handled.
    pub handled: AtomicUsize,
    /// Errors the handler returned.
    pub errors: std::sync::Mutex<Vec<String>>,
}

/// The path part of `REQUEST_URI`.
fn path(req: &Request<'_>) -> Option<Vec<u8>> {
    let uri = req.param("REQUEST_URI")?;
    let end = uri.iter().position(|&b| b == b'?').unwrap_or(uri.len());
    Some(uri[..end].to_vec())
}

const TEXT: &[u8] = b"Content-Type: text/plain\r\n\r\n";

/// The test application: one request, routed on `REQUEST_URI`.
pub fn handle(mut req: Request<'_>, shared: &Shared) -> io::Result<()> {
    shared.handled.fetch_add(1, Ordering::SeqCst);
    match path(&req).as_deref() {
        None => {
            let n = req.params().len();
            write!(req.stdout(), "Content-Type: text/plain\r\n\r\nparams={n}\n")?;
        }
        Some(b"/hello") => req
            .stdout()
            .write_all(b"Content-Type: text/plain\r\n\r\nHello, world!\n")?,
        Some(b"/echo") => {
            // The head goes out before any of STDIN is read: the test sees it first.
            req.stdout()
                .write_all(b"Content-Type: application/octet-stream\r\n\r\n")?;
            req.stdout().flush()?;
            let mut chunk = vec![0; 40_000];
            loop {
                let n = req.stdin().read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                req.stdout().write_all(&chunk[..n])?;
            }
        }
        Some(b"/params") => {
            let mut out = TEXT.to_vec();
            for (name, value) in req.params() {
                out.extend_from_slice(name);
                out.push(b'=');
                out.extend_from_slice(value);
                out.push(b'\n');
            }
            req.stdout().write_all(&out)?;
        }
        Some(b"/filter") => {
            let mut stdin = Vec::new();
            req.stdin().read_to_end(&mut stdin)?;
            let mut data = Vec::new();
            req.data().read_to_end(&mut data)?;
            let mut out = TEXT.to_vec();
            out.extend_from_slice(b"stdin=");
            out.extend_from_slice(&stdin);
            out.extend_from_slice(b" data=");
            out.extend_from_slice(&data);
            req.stdout().write_all(&out)?;
        }
        Some(b"/data-only") => {
            let mut data = Vec::new();
            req.data().read_to_end(&mut data)?;
            req.stdout().write_all(TEXT)?;
            req.stdout().write_all(&data)?;
        }
        Some(b"/abort") => {
            req.stdout().write_all(TEXT)?;
            req.stdout().flush()?;
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                if req.abort_requested() {
                    shared.saw_abort.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            // Ignored: after a close the write fails, and that is expected.
            let _ = req.stdout().write_all(b"aborted\n");
            let _ = req.finish(0);
            return Ok(());
        }
        Some(b"/drop") => {
            req.stdout().write_all(TEXT)?;
            req.stdout().write_all(b"partial")?;
            drop(req);
            return Ok(());
        }
        Some(b"/stderr") => {
            req.stderr().write_all(b"sdk-stderr-marker\n")?;
            req.stdout().write_all(TEXT)?;
            req.stdout().write_all(b"logged\n")?;
        }
        Some(b"/keep") => {
            let keep = req.keep_conn();
            write!(
                req.stdout(),
                "Content-Type: text/plain\r\n\r\nkeep_conn={keep}\n"
            )?;
        }
        Some(b"/status") => {
            req.stdout().write_all(TEXT)?;
            return req.finish(7);
        }
        Some(b"/big") => {
            // One write larger than a record, then small writes that share a record.
            req.stdout().write_all(TEXT)?;
            req.stdout().write_all(&gatekit_testkit::pattern(150_000))?;
            for _ in 0..3 {
                req.stdout().write_all(b"tail")?;
            }
        }
        Some(_) => req
            .stdout()
            .write_all(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found\n")?,
    }
    req.finish(0)
}

/// What `/big` sends after its head.
pub fn big_body() -> Vec<u8> {
    let mut body = gatekit_testkit::pattern(150_000);
    body.extend_from_slice(b"tailtailtail");
    body
}

/// How the accept threads take requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `listener.acceptor()` per thread.
    Acceptor,
    /// `listener.accept()`, the thread-local form.
    ListenerAccept,
}

/// The SDK application on `threads` threads of one listener; stopped (flag, wake-up, bounded
/// join) on drop.
pub struct Running {
    pub listener: Arc<Listener>,
    pub shared: Arc<Shared>,
    handles: Vec<JoinHandle<io::Result<()>>>,
    exited: mpsc::Receiver<()>,
}

pub fn start(threads: usize, config: Config, mode: Mode) -> Running {
    let listener = Arc::new(Listener::bind("127.0.0.1:0").unwrap().with_config(config));
    let shared = Arc::new(Shared::default());
    let (tx, exited) = mpsc::channel();
    // Every thread has its acceptor before the test starts (GET_VALUES counts them).
    let ready = Arc::new(Barrier::new(threads + 1));
    let handles = (0..threads)
        .map(|_| {
            let listener = Arc::clone(&listener);
            let shared = Arc::clone(&shared);
            let ready = Arc::clone(&ready);
            let tx = tx.clone();
            std::thread::spawn(move || {
                let served = serve(&listener, &shared, mode, &ready);
                // The test may already be gone.
                let _ = tx.send(());
                served
            })
        })
        .collect();
    ready.wait();
    Running {
        listener,
        shared,
        handles,
        exited,
    }
}

fn serve(listener: &Listener, shared: &Shared, mode: Mode, ready: &Barrier) -> io::Result<()> {
    match mode {
        Mode::Acceptor => {
            let mut acceptor = listener.acceptor();
            ready.wait();
            while let Some(req) = acceptor.accept()? {
                if let Err(e) = handle(req, shared) {
                    shared.errors.lock().unwrap().push(e.to_string());
                }
            }
        }
        Mode::ListenerAccept => {
            ready.wait();
            while let Some(req) = listener.accept()? {
                if let Err(e) = handle(req, shared) {
                    shared.errors.lock().unwrap().push(e.to_string());
                }
            }
        }
    }
    Ok(())
}

impl Running {
    pub fn port(&self) -> u16 {
        match self.listener.local_addr().unwrap() {
            gatekit_server::listen::Addr::Ip(sa) => sa.port(),
            other => panic!("not TCP: {other}"),
        }
    }

    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }

    /// The errors once one contains each of `needles`, or as they are after `WAIT`. A thread
    /// records its handler's error after the request is dropped, so after the web server saw
    /// END_REQUEST.
    pub fn errors_containing(&self, needles: &[&str]) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let errors = self.errors();
            let all = needles.iter().all(|n| errors.iter().any(|e| e.contains(n)));
            if all || Instant::now() >= deadline {
                return errors;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.listener.shutdown();
        let deadline = Instant::now() + WAIT;
        let mut exited = 0;
        while exited < self.handles.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.exited.recv_timeout(left).is_err() {
                break;
            }
            exited += 1;
        }
        if exited < self.handles.len() {
            assert!(
                std::thread::panicking(),
                "{} of {} accept threads did not stop",
                self.handles.len() - exited,
                self.handles.len()
            );
            return;
        }
        for handle in self.handles.drain(..) {
            let result = handle.join().expect("an accept thread panicked");
            if !std::thread::panicking() {
                result.expect("an accept loop failed");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire builders
// ---------------------------------------------------------------------------------------------

pub fn begin(id: u16, role: Role, keep_conn: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let flags = if keep_conn { proto::KEEP_CONN } else { 0 };
    proto::encode_begin_request(id, BeginRequest { role, flags }, &mut out);
    out
}

/// A whole PARAMS stream (records of at most 1,000 bytes, so pairs straddle records).
pub fn params(id: u16, pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut stream = Vec::new();
    for (name, value) in pairs {
        proto::encode_pair(name, value, &mut stream).unwrap();
    }
    let mut out = Vec::new();
    for chunk in stream.chunks(1000) {
        proto::encode_record(RecordType::Params, id, chunk, &mut out).unwrap();
    }
    proto::encode_stream_end(RecordType::Params, id, &mut out);
    out
}

/// A whole input stream (`STDIN` or `DATA`): the data in records, then the empty record.
pub fn stream(record_type: RecordType, id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    proto::encode_stream_data(record_type, id, data, &mut out);
    proto::encode_stream_end(record_type, id, &mut out);
    out
}

/// A Responder request: BEGIN_REQUEST, PARAMS, and a whole STDIN.
pub fn request(id: u16, keep_conn: bool, uri: &str, body: &[u8]) -> Vec<u8> {
    let length = body.len().to_string();
    let method: &[u8] = if body.is_empty() { b"GET" } else { b"POST" };
    let mut out = begin(id, Role::Responder, keep_conn);
    out.extend(params(
        id,
        &[
            (b"REQUEST_METHOD", method),
            (b"REQUEST_URI", uri.as_bytes()),
            (
                b"CONTENT_LENGTH",
                if body.is_empty() {
                    b""
                } else {
                    length.as_bytes()
                },
            ),
        ],
    ));
    out.extend(stream(RecordType::Stdin, id, body));
    out
}

/// A GET request.
pub fn get(id: u16, keep_conn: bool, uri: &str) -> Vec<u8> {
    request(id, keep_conn, uri, b"")
}

// ---------------------------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------------------------

/// One request's answer.
#[derive(Debug, Default)]
pub struct Reply {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub end: Option<EndRequest>,
    /// Every byte received for the request, records as sent.
    pub raw: Vec<u8>,
    /// (type, id, content length) of each record.
    pub records: Vec<(RecordType, u16, usize)>,
}

impl Reply {
    /// The body after the CGI head.
    pub fn body(&self) -> &[u8] {
        let at = self
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |p| p + 4);
        &self.stdout[at..]
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }
}

/// A record as (type, request id, content).
pub type Rec = (RecordType, u16, Vec<u8>);

pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// A second handle on the socket (for a writer thread).
    pub fn writer(&self) -> TcpStream {
        self.stream.try_clone().unwrap()
    }

    /// Half-closes the connection: the application sees EOF.
    pub fn shutdown_write(&self) {
        self.stream.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// The next record, raw bytes included; `None` at EOF (or a reset). Fails after [`WAIT`].
    pub fn raw_record(&mut self) -> Option<(Rec, Vec<u8>)> {
        loop {
            if let Some((record, used)) = proto::decode_record(&self.buf).unwrap() {
                let got = (
                    record.record_type,
                    record.request_id,
                    record.content.to_vec(),
                );
                let raw = self.buf.drain(..used).collect();
                return Some((got, raw));
            }
            let mut chunk = vec![0; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("no record within {WAIT:?}: {e}"),
            }
        }
    }

    pub fn record(&mut self) -> Option<Rec> {
        self.raw_record().map(|(record, _)| record)
    }

    /// The records for `id` up to its END_REQUEST (records for other ids fail the test).
    pub fn reply(&mut self, id: u16) -> Reply {
        let mut reply = Reply::default();
        while let Some(((record_type, rid, content), raw)) = self.raw_record() {
            assert_eq!(
                rid, id,
                "a {record_type} record for id {rid}, expected {id}"
            );
            reply.raw.extend_from_slice(&raw);
            reply.records.push((record_type, rid, content.len()));
            match record_type {
                RecordType::Stdout => reply.stdout.extend_from_slice(&content),
                RecordType::Stderr => reply.stderr.extend_from_slice(&content),
                RecordType::EndRequest => {
                    reply.end = Some(EndRequest::decode(&content).unwrap());
                    return reply;
                }
                other => panic!("unexpected {other}"),
            }
        }
        reply
    }

    /// Whether the application closed the connection (EOF or reset) within [`WAIT`], with
    /// nothing more sent.
    pub fn closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut chunk = [0; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

/// A GET on a fresh connection works.
pub fn hello_works(port: u16) {
    let mut c = Client::connect(port);
    c.send(&get(1, false, "/hello"));
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)), "{r:?}");
    assert_eq!(r.text(), "Hello, world!\n");
}
