//! A connection to a backend, kept open between requests when the protocol allows.

use std::io::{ErrorKind, Read, Write};

use crate::fastcgi::{REQUEST_ID, ResponseDecoder};
use crate::{Error, Options, Protocol, Request, Response, Stream, Target, http, scgi};

/// A request encoded once for one protocol, to send any number of times.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    bytes: Vec<u8>,
    head_request: bool,
}

impl PreparedRequest {
    /// The bytes that go on the wire.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A client for one backend speaking one protocol. It connects on first use and reconnects
/// when the last response did not leave the connection reusable: always for SCGI, for FastCGI
/// unless [`Options::keep_conn`], for HTTP when the server closes or the body ran to the
/// close (HTTP uses a persistent connection when [`Options::keep_conn`] is set, and sends
/// `Connection: close` otherwise).
#[derive(Debug)]
pub struct Connection {
    protocol: Protocol,
    target: Target,
    options: Options,
    stream: Option<Stream>,
    buf: Vec<u8>,
}

impl Connection {
    /// A client for `target`; nothing is connected yet.
    #[must_use]
    pub fn new(protocol: Protocol, target: Target, options: Options) -> Self {
        Connection {
            protocol,
            target,
            options,
            stream: None,
            buf: Vec::new(),
        }
    }

    /// Encodes `request` for this connection's protocol and options.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`], [`Error::FastCgi`] or [`Error::Scgi`] when the request
    /// cannot be expressed in the protocol.
    pub fn prepare(&self, request: &Request) -> Result<PreparedRequest, Error> {
        let mut bytes = Vec::new();
        match self.protocol {
            Protocol::FastCgi => {
                let params = request.cgi_params(&self.target, false);
                crate::fastcgi::encode_request(
                    REQUEST_ID,
                    self.options.keep_conn,
                    &params,
                    &request.body,
                    &mut bytes,
                )?;
            }
            Protocol::Scgi => {
                let params = request.cgi_params(&self.target, true);
                scgi::encode_request(&params, &request.body, &mut bytes)?;
            }
            Protocol::Http => {
                http::encode_request(request, &self.target, self.options.keep_conn, &mut bytes)?;
            }
        }
        Ok(PreparedRequest {
            bytes,
            head_request: request.method.eq_ignore_ascii_case("HEAD"),
        })
    }

    /// Sends one request and reads its response.
    ///
    /// # Errors
    ///
    /// See [`Connection::prepare`] and [`Connection::exchange`].
    pub fn send(&mut self, request: &Request) -> Result<Response, Error> {
        let prepared = self.prepare(request)?;
        self.exchange(&prepared)
    }

    /// Sends a prepared request (connecting first if need be) and reads its response. After an
    /// error the connection is dropped, so the next call starts a new one.
    ///
    /// A kept connection that the backend closed while it was idle (the request meets a reset
    /// or an end of stream before any byte of a response) is replaced by a new one and the
    /// request sent once more, as browsers do.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`], [`Error::Io`], [`Error::UnexpectedEof`], the size limits, and the
    /// protocol's own errors for a malformed response.
    pub fn exchange(&mut self, prepared: &PreparedRequest) -> Result<Response, Error> {
        let reused = self.stream.is_some();
        let mut received = 0;
        let mut result = self.exchange_inner(prepared, &mut received);
        if reused && received == 0 && result.as_ref().is_err_and(is_closed_while_idle) {
            self.stream = None;
            self.buf.clear();
            result = self.exchange_inner(prepared, &mut received);
        }
        match &result {
            Ok((_, true)) => {}
            _ => {
                self.stream = None;
                self.buf.clear();
            }
        }
        result.map(|(response, _)| response)
    }

    fn exchange_inner(
        &mut self,
        prepared: &PreparedRequest,
        received: &mut usize,
    ) -> Result<(Response, bool), Error> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            slot @ None => slot.insert(
                self.target
                    .connect(self.options.connect_timeout, self.options.io_timeout)?,
            ),
        };
        stream.write_all(&prepared.bytes)?;
        let stream = &mut Counting {
            inner: stream,
            count: received,
        };
        let options = &self.options;
        match self.protocol {
            Protocol::FastCgi => {
                let mut decoder = ResponseDecoder::new(REQUEST_ID, options.max_response);
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    let used = decoder.feed(&self.buf)?;
                    self.buf.drain(..used);
                    if decoder.is_done() {
                        break;
                    }
                    let n = read_some(stream, &mut chunk)?;
                    if n == 0 {
                        return Err(Error::UnexpectedEof);
                    }
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
                let (stdout, stderr, app_status) = decoder
                    .finish()
                    .ok_or(Error::BadResponse("no END_REQUEST"))?;
                let mut response = crate::parse_cgi_response(stdout, options.max_head)?;
                response.stderr = stderr;
                response.app_status = Some(app_status);
                Ok((response, options.keep_conn))
            }
            Protocol::Scgi => {
                let mut out = std::mem::take(&mut self.buf);
                scgi::read_to_end_bounded(stream, &mut out, options.max_response)?;
                Ok((crate::parse_cgi_response(out, options.max_head)?, false))
            }
            Protocol::Http => {
                let limits = http::Limits {
                    max_head: options.max_head,
                    max_response: options.max_response,
                };
                let (response, reusable) =
                    http::read_response(stream, &mut self.buf, prepared.head_request, limits)?;
                Ok((response, reusable && options.keep_conn))
            }
        }
    }
}

/// Whether an error is what a backend that closed an idle kept connection causes.
fn is_closed_while_idle(e: &Error) -> bool {
    match e {
        Error::UnexpectedEof => true,
        Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
        ),
        _ => false,
    }
}

/// A reader that counts the bytes it has read.
struct Counting<'a, R> {
    inner: &'a mut R,
    count: &'a mut usize,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.count += n;
        Ok(n)
    }
}

fn read_some<R: Read>(stream: &mut R, chunk: &mut [u8]) -> Result<usize, Error> {
    loop {
        match stream.read(chunk) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
}

/// Sends one request to `target` over a new connection and returns the response.
///
/// # Errors
///
/// See [`Connection::exchange`].
pub fn send(
    protocol: Protocol,
    target: &Target,
    request: &Request,
    options: &Options,
) -> Result<Response, Error> {
    Connection::new(protocol, target.clone(), options.clone()).send(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// An HTTP server that answers one request per connection and then closes without saying
    /// so, for exactly `connections` connections.
    fn one_shot_server(connections: usize) -> (Target, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            for _ in 0..connections {
                let (mut s, _) = listener.accept().unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
                    head.push(byte[0]);
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
            }
        });
        (format!("127.0.0.1:{port}").parse().unwrap(), handle)
    }

    #[test]
    fn a_kept_connection_closed_while_idle_is_replaced() {
        let (target, server) = one_shot_server(2);
        let options = Options {
            keep_conn: true,
            ..Options::default()
        };
        let mut conn = Connection::new(Protocol::Http, target, options);
        let request = Request::get("/");
        assert_eq!(conn.send(&request).unwrap().body, b"ok");
        // Let the server close the first connection before it is used again.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(conn.send(&request).unwrap().body, b"ok");
        server.join().unwrap();
    }
}
