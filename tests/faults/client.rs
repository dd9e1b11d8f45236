//! A minimal HTTP/1.1 client for the load generators: one response read at
//! a time from a kept connection, told apart as complete, never started
//! (the server closed an idle connection or never accepted it) or cut short.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::running::find;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A whole response with this status.
    Complete(u16),
    /// Not one byte came back before the close or reset.
    NotStarted,
    /// Some of a response came, then the connection ended or stalled.
    CutShort,
}

/// A kept connection with a read buffer.
pub struct Client {
    stream: TcpStream,
    port: u16,
    buf: Vec<u8>,
    /// The last response said `Connection: close` (nginx does on the
    /// last of `keepalive_requests`, 1,000 by default): the next exchange
    /// opens a new connection first, as an HTTP client must.
    closing: bool,
}

impl Client {
    /// Connects to 127.0.0.1:`port`; `None` when refused.
    pub fn connect(port: u16) -> Option<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        Some(Client {
            stream,
            port,
            buf: Vec::new(),
            closing: false,
        })
    }

    /// Sends `request` and reads one response (framed by Content-Length).
    pub fn exchange(&mut self, request: &[u8]) -> Answer {
        if self.closing {
            match Client::connect(self.port) {
                Some(fresh) => *self = fresh,
                None => return Answer::NotStarted,
            }
        }
        if self.stream.write_all(request).is_err() {
            // The server closed first; whatever it sent tells the rest.
            return self.read_response();
        }
        self.read_response()
    }

    fn read_response(&mut self) -> Answer {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    self.closing = head.lines().any(|l| {
                        l.split_once(':').is_some_and(|(n, v)| {
                            n.eq_ignore_ascii_case("connection")
                                && v.trim().eq_ignore_ascii_case("close")
                        })
                    });
                    self.buf.drain(..end + 4 + len);
                    return Answer::Complete(status);
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if self.buf.is_empty() {
            Answer::NotStarted
        } else {
            Answer::CutShort
        }
    }
}

/// `GET path` on a kept connection.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// `POST /` of `body` on a kept connection.
pub fn post(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request on a new connection; `None` when the connection is refused.
pub fn once(port: u16, request: &[u8]) -> Option<Answer> {
    Some(Client::connect(port)?.exchange(request))
}
