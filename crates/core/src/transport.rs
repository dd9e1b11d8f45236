//! The hooks a front-end fills in: wsgiref's abstract methods of `BaseHandler`.

use std::fs::File;
use std::io::{self, BufRead, Write};

use crate::Environ;

/// What a front-end supplies to the [`Gateway`](crate::Gateway): where bytes
/// go, where the body and the error log come from, and the CGI variables.
///
/// These are wsgiref's `_write`, `_flush`, `get_stdin`, `get_stderr`,
/// `add_cgi_vars` and `sendfile`; everything else (status line, headers,
/// `Content-Length`, error pages, logging) is the gateway's.
pub trait Transport {
    /// Sends bytes to the client, all of them (`_write`). May buffer.
    ///
    /// # Errors
    /// An I/O error; `BrokenPipe`, `ConnectionReset` and `ConnectionAborted`
    /// mean the client went away, and the gateway then stops quietly.
    fn write(&mut self, data: &[u8]) -> io::Result<()>;

    /// Pushes buffered bytes out (`_flush`). Called after each body block, so
    /// streamed responses are not delayed (PEP 3333 "Buffering and Streaming").
    ///
    /// # Errors
    /// As for [`write`](Transport::write).
    fn flush(&mut self) -> io::Result<()>;

    /// The response is complete: push everything out (called once, last,
    /// instead of a final [`flush`](Transport::flush), and only when the
    /// whole response was written). A front-end with end-of-response framing
    /// of its own (FastCGI's empty `STDOUT` record and `END_REQUEST`) may
    /// hold the bytes back to send them with that framing in one write, as
    /// long as it sends them as soon as the gateway returns. The default flushes.
    ///
    /// # Errors
    /// As for [`write`](Transport::write).
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// The request body stream (`get_stdin`). Called once, by `setup_environ`;
    /// the gateway bounds it by `CONTENT_LENGTH`.
    fn input(&mut self) -> Box<dyn BufRead + Send>;

    /// The error stream (`get_stderr`). Called once, by `setup_environ`; it
    /// becomes `wsgi.errors` and receives the gateway's own log lines.
    fn errors(&mut self) -> Box<dyn Write + Send>;

    /// Adds this request's CGI variables to the environ (`add_cgi_vars`).
    /// Called by `setup_environ` after the configured `os_environ` was copied
    /// in, so request variables win.
    fn add_cgi_vars(&mut self, environ: &mut Environ);

    /// Pushes buffered bytes out before [`sendfile`](Transport::sendfile),
    /// so that they precede the file. The default calls
    /// [`flush`](Transport::flush). A transport whose `sendfile` sends its
    /// buffered bytes first itself may do nothing here, so that the head
    /// and the file can leave together (gatekit's socket front-ends send
    /// them in one `TCP_CORK`, as nginx does with `tcp_nopush`).
    ///
    /// # Errors
    /// As for [`write`](Transport::write).
    fn flush_before_sendfile(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// Sends `count` bytes of `file` from `offset` without copying them
    /// through user space, if the transport can (`sendfile`).
    ///
    /// Called after the headers were written and
    /// [`flush_before_sendfile`](Transport::flush_before_sendfile) was called. Returns how many
    /// bytes were sent: `Ok(0)` means "not supported here", and the gateway
    /// sends the rest (all of it, or what follows a partial send) by reading
    /// the file. The default sends nothing.
    ///
    /// # Errors
    /// An I/O error while sending; the response is then aborted.
    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        let _ = (file, offset, count);
        Ok(0)
    }

    /// Offers to let the web server send a whole file itself, the way
    /// `X-Sendfile` (Apache mod_xsendfile, lighttpd) and `X-Accel-Redirect`
    /// (nginx) work: returns the header that names the file, and the gateway
    /// sends that header, with no body, instead of the file's bytes.
    ///
    /// Called before the headers go out, for a `200` response whose body is a
    /// file sent from its start (`len` bytes, the whole file). The default
    /// declines (`None`), and the file is sent as usual.
    fn offload(&mut self, file: &File, len: u64) -> Option<(String, String)> {
        let _ = (file, len);
        None
    }

    /// Makes an incomplete response visible to the client. Called when an
    /// error happens after the headers were sent, or when the app sent fewer
    /// bytes than its `Content-Length`: close the connection, end the FastCGI
    /// request with an error status, never finish the response cleanly. The
    /// default does nothing (a stream that simply stops).
    fn abort(&mut self) {}
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        (**self).write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn flush_before_sendfile(&mut self) -> io::Result<()> {
        (**self).flush_before_sendfile()
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
    fn input(&mut self) -> Box<dyn BufRead + Send> {
        (**self).input()
    }
    fn errors(&mut self) -> Box<dyn Write + Send> {
        (**self).errors()
    }
    fn add_cgi_vars(&mut self, environ: &mut Environ) {
        (**self).add_cgi_vars(environ);
    }
    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        (**self).sendfile(file, offset, count)
    }
    fn offload(&mut self, file: &File, len: u64) -> Option<(String, String)> {
        (**self).offload(file, len)
    }
    fn abort(&mut self) {
        (**self).abort();
    }
}

/// A transport over plain streams and a list of CGI variables:
/// wsgiref's `SimpleHandler` / `BaseCGIHandler`.
///
/// ```
/// use gatekit_core::{Config, Gateway, StreamTransport, Body};
/// let vars = vec![("REQUEST_METHOD".into(), "GET".into())];
/// let t = StreamTransport::new(std::io::empty(), Vec::new(), std::io::sink(), vars);
/// let mut gw = Gateway::new(t, Config::gateway());
/// gw.run(&|_: &mut _, sr: &mut gatekit_core::StartResponse<'_>| {
///     sr.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(Body::from("hi"))
/// });
/// assert_eq!(gw.transport().output(),
///     b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
/// ```
#[derive(Debug)]
pub struct StreamTransport<I, O, E> {
    input: Option<I>,
    output: O,
    errors: Option<E>,
    vars: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<I, O, E> StreamTransport<I, O, E>
where
    I: BufRead + Send + 'static,
    O: Write,
    E: Write + Send + 'static,
{
    /// A transport reading `input`, writing `output`, logging to `errors`,
    /// with these request variables.
    pub fn new(input: I, output: O, errors: E, vars: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        StreamTransport {
            input: Some(input),
            output,
            errors: Some(errors),
            vars,
        }
    }

    /// The output stream.
    pub fn output(&self) -> &O {
        &self.output
    }

    /// The output stream, mutably.
    pub fn output_mut(&mut self) -> &mut O {
        &mut self.output
    }

    /// Gives back the output stream.
    pub fn into_output(self) -> O {
        self.output
    }
}

impl<I, O, E> Transport for StreamTransport<I, O, E>
where
    I: BufRead + Send + 'static,
    O: Write,
    E: Write + Send + 'static,
{
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        // write_all retries partial writes (test_wsgiref testPartialWrite).
        self.output.write_all(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }

    fn input(&mut self) -> Box<dyn BufRead + Send> {
        match self.input.take() {
            Some(i) => Box::new(i),
            None => Box::new(io::empty()),
        }
    }

    fn errors(&mut self) -> Box<dyn Write + Send> {
        match self.errors.take() {
            Some(e) => Box::new(e),
            None => Box::new(io::sink()),
        }
    }

    fn add_cgi_vars(&mut self, environ: &mut Environ) {
        environ.extend(self.vars.drain(..));
    }
}
