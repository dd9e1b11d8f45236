//! What to send, and what came back.

use gatekit_core::util::percent_decode;
use std::path::PathBuf;

use crate::{Error, Target};

/// One request, described as a web server in front of the backend would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// The method, `GET` by default.
    pub method: String,
    /// The request target: a path with an optional `?query` (`/app/x?y=1`).
    pub path: String,
    /// HTTP headers, in order. Behind FastCGI and SCGI each becomes an `HTTP_*` variable
    /// (`Content-Type` becomes `CONTENT_TYPE`; `Content-Length` is always computed).
    pub headers: Vec<(String, String)>,
    /// CGI variables that replace (or add to) the defaults of [`Request::cgi_params`]; ignored
    /// by HTTP.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// The request body.
    pub body: Vec<u8>,
    /// The script the backend should run (`SCRIPT_FILENAME`, which php-fpm needs).
    pub script_filename: Option<PathBuf>,
}

impl Request {
    /// A request with `method` for `path`, no headers and no body.
    #[must_use]
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            params: Vec::new(),
            body: Vec::new(),
            script_filename: None,
        }
    }

    /// A `GET` request for `path`.
    #[must_use]
    pub fn get(path: &str) -> Self {
        Request::new("GET", path)
    }

    /// The path without its query string, and the query string (empty when there is none).
    #[must_use]
    pub fn split_path(&self) -> (&str, &str) {
        self.path.split_once('?').unwrap_or((&self.path, ""))
    }

    /// The header named `name` (case-insensitively), if the request has one.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The CGI variables (RFC 3875 §4.1) a web server would pass for this request to a backend
    /// at `target`, with [`Request::params`] applied last (a param with a default's name
    /// replaces it in place).
    ///
    /// The defaults: `GATEWAY_INTERFACE`, `SERVER_SOFTWARE`, `SERVER_PROTOCOL`,
    /// `SERVER_NAME` and `SERVER_PORT` (from `target`), `REMOTE_ADDR` (127.0.0.1),
    /// `REQUEST_METHOD`, `REQUEST_URI`, `QUERY_STRING`, `SCRIPT_NAME` and `PATH_INFO`,
    /// `CONTENT_LENGTH` and `CONTENT_TYPE` when there is a body, `SCRIPT_FILENAME` when one
    /// is given, and an `HTTP_*` variable per header (`HTTP_HOST` by default). Without a
    /// script file the app is taken to be mounted at the root: `SCRIPT_NAME` is empty and
    /// `PATH_INFO` is the decoded path. With one, `SCRIPT_NAME` is the decoded path and
    /// `PATH_INFO` is empty, as nginx's `fastcgi_params` gives php-fpm.
    ///
    /// With `content_length_first` (SCGI), `CONTENT_LENGTH` comes first and is always present,
    /// and `SCGI=1` follows.
    #[must_use]
    pub fn cgi_params(
        &self,
        target: &Target,
        content_length_first: bool,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(16 + self.headers.len());
        let mut add = |name: &[u8], value: &[u8]| out.push((name.to_vec(), value.to_vec()));
        let length = self.body.len().to_string();
        if content_length_first {
            add(b"CONTENT_LENGTH", length.as_bytes());
            add(b"SCGI", b"1");
        }
        add(b"GATEWAY_INTERFACE", b"CGI/1.1");
        add(
            b"SERVER_SOFTWARE",
            concat!("gatekit/", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        add(b"SERVER_PROTOCOL", b"HTTP/1.1");
        add(b"SERVER_NAME", target.server_name().as_bytes());
        add(b"SERVER_PORT", target.server_port().to_string().as_bytes());
        add(b"REMOTE_ADDR", b"127.0.0.1");
        add(b"REQUEST_METHOD", self.method.as_bytes());
        add(b"REQUEST_URI", self.path.as_bytes());
        let (path, query) = self.split_path();
        let decoded = percent_decode(path.as_bytes());
        add(b"QUERY_STRING", query.as_bytes());
        match &self.script_filename {
            Some(file) => {
                add(b"SCRIPT_NAME", &decoded);
                add(b"PATH_INFO", b"");
                add(b"SCRIPT_FILENAME", file.as_os_str().as_encoded_bytes());
            }
            None => {
                add(b"SCRIPT_NAME", b"");
                add(b"PATH_INFO", &decoded);
            }
        }
        if !content_length_first && !self.body.is_empty() {
            add(b"CONTENT_LENGTH", length.as_bytes());
        }
        if let Some(ctype) = self.header("content-type") {
            add(b"CONTENT_TYPE", ctype.as_bytes());
        } else if !self.body.is_empty() {
            add(b"CONTENT_TYPE", b"application/x-www-form-urlencoded");
        }
        if self.header("host").is_none() {
            add(b"HTTP_HOST", host_header(target).as_bytes());
        }
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-type")
                || name.eq_ignore_ascii_case("content-length")
            {
                continue;
            }
            let mut var = b"HTTP_".to_vec();
            var.extend(name.bytes().map(|b| match b {
                b'-' => b'_',
                b => b.to_ascii_uppercase(),
            }));
            add(&var, value.as_bytes());
        }
        for (name, value) in &self.params {
            match out.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1.clone_from(value),
                None => out.push((name.clone(), value.clone())),
            }
        }
        out
    }
}

/// The `Host` header for `target`: `host:port` (bracketed for IPv6), or `localhost` for a
/// Unix socket.
pub(crate) fn host_header(target: &Target) -> String {
    match target {
        Target::Unix(_) => "localhost".to_owned(),
        Target::Tcp { .. } => target.to_string(),
    }
}

/// A backend's response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code: from the HTTP status line, or from a CGI `Status:` header (200 without
    /// one, 302 with a `Location:` and no `Status:`).
    pub status: u16,
    /// The reason phrase, possibly empty.
    pub reason: String,
    /// The headers in order, as text (bytes that are not UTF-8 are replaced). A CGI `Status:`
    /// header is not among them: it is [`Response::status`].
    pub headers: Vec<(String, String)>,
    /// The head exactly as received: status line or CGI header lines, up to and including the
    /// blank line.
    pub head: Vec<u8>,
    /// The body (de-chunked for HTTP).
    pub body: Vec<u8>,
    /// FastCGI: everything the application wrote to `STDERR` records.
    pub stderr: Vec<u8>,
    /// FastCGI: the application's status from `END_REQUEST`.
    pub app_status: Option<u32>,
}

impl Response {
    /// The first header named `name` (case-insensitively).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Splits a CGI response (RFC 3875 §6: header lines, a blank line, the body), as FastCGI's
/// `STDOUT` stream or an SCGI response carries it, into status, headers and body.
///
/// Lines may end in CRLF or LF. A first line starting with `HTTP/` (a non-parsed-header
/// response, which some SCGI servers send) is read as a status line. The head must end within
/// `max_head` bytes.
///
/// # Errors
///
/// [`Error::HeadTooLarge`], or [`Error::BadResponse`] for an empty output, a head with no
/// blank line, a header line without a colon or a bad `Status:`.
pub fn parse_cgi_response(output: Vec<u8>, max_head: usize) -> Result<Response, Error> {
    if output.is_empty() {
        return Err(Error::BadResponse("the backend sent no output"));
    }
    let mut response = Response::default();
    let mut status: Option<(u16, String)> = None;
    let mut pos = 0;
    let mut first = true;
    let head_end = loop {
        let Some(nl) = output
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        else {
            if output.len() > max_head {
                return Err(Error::HeadTooLarge { limit: max_head });
            }
            return Err(Error::BadResponse(
                "the response head has no end (no blank line)",
            ));
        };
        let line_end = pos + nl + 1;
        if line_end > max_head {
            return Err(Error::HeadTooLarge { limit: max_head });
        }
        let line = output.get(pos..pos + nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = line_end;
        if line.is_empty() {
            break line_end;
        }
        if first && line.starts_with(b"HTTP/") {
            first = false;
            let text = String::from_utf8_lossy(line);
            let mut parts = text.splitn(3, ' ');
            let _version = parts.next();
            status = Some(parse_status(parts.next().unwrap_or(""), parts.next())?);
            continue;
        }
        first = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Error::BadResponse("a response header line has no colon"));
        };
        let (name, value) = line.split_at(colon);
        let name = String::from_utf8_lossy(name).trim().to_owned();
        let value = String::from_utf8_lossy(value.get(1..).unwrap_or_default())
            .trim()
            .to_owned();
        if name.eq_ignore_ascii_case("status") {
            let (code, reason) = value.split_once(' ').unwrap_or((&value, ""));
            status = Some(parse_status(code, Some(reason))?);
        } else {
            response.headers.push((name, value));
        }
    };
    let (code, reason) = status.unwrap_or_else(|| {
        if response.header("location").is_some() {
            (302, "Found".to_owned())
        } else {
            (200, "OK".to_owned())
        }
    });
    response.status = code;
    response.reason = reason;
    let mut output = output;
    response.body = output.split_off(head_end);
    response.head = output;
    Ok(response)
}

fn parse_status(code: &str, reason: Option<&str>) -> Result<(u16, String), Error> {
    let bad = Error::BadResponse("the status is not a three-digit code");
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let code: u16 = code.parse().map_err(|_| bad)?;
    Ok((code, reason.unwrap_or("").trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(params: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        params
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn default_params_like_a_web_server() {
        let target: Target = "127.0.0.1:9000".parse().unwrap();
        let mut r = Request::new("POST", "/a%20b/c?x=1&y=2");
        r.body = b"hello".to_vec();
        r.headers.push(("X-Thing".into(), "v".into()));
        r.params
            .push((b"REMOTE_ADDR".to_vec(), b"10.0.0.1".to_vec()));
        r.params.push((b"EXTRA".to_vec(), b"e".to_vec()));
        let p = r.cgi_params(&target, false);
        assert_eq!(param(&p, "REQUEST_METHOD"), Some(&b"POST"[..]));
        assert_eq!(param(&p, "REQUEST_URI"), Some(&b"/a%20b/c?x=1&y=2"[..]));
        assert_eq!(param(&p, "QUERY_STRING"), Some(&b"x=1&y=2"[..]));
        assert_eq!(param(&p, "SCRIPT_NAME"), Some(&b""[..]));
        assert_eq!(param(&p, "PATH_INFO"), Some(&b"/a b/c"[..]));
        assert_eq!(param(&p, "SERVER_NAME"), Some(&b"127.0.0.1"[..]));
        assert_eq!(param(&p, "SERVER_PORT"), Some(&b"9000"[..]));
        assert_eq!(param(&p, "CONTENT_LENGTH"), Some(&b"5"[..]));
        assert_eq!(
            param(&p, "CONTENT_TYPE"),
            Some(&b"application/x-www-form-urlencoded"[..])
        );
        assert_eq!(param(&p, "HTTP_X_THING"), Some(&b"v"[..]));
        assert_eq!(param(&p, "HTTP_HOST"), Some(&b"127.0.0.1:9000"[..]));
        assert_eq!(param(&p, "REMOTE_ADDR"), Some(&b"10.0.0.1"[..]));
        assert_eq!(param(&p, "EXTRA"), Some(&b"e"[..]));
        assert_eq!(p.iter().filter(|(n, _)| n == b"REMOTE_ADDR").count(), 1);
        assert_eq!(param(&p, "SCRIPT_FILENAME"), None);
    }

    #[test]
    fn script_filename_and_scgi_order() {
        let target: Target = "unix:/tmp/s".parse().unwrap();
        let mut r = Request::get("/hello.php");
        r.script_filename = Some("/srv/hello.php".into());
        let p = r.cgi_params(&target, true);
        assert_eq!(p[0], (b"CONTENT_LENGTH".to_vec(), b"0".to_vec()));
        assert_eq!(p[1], (b"SCGI".to_vec(), b"1".to_vec()));
        assert_eq!(param(&p, "SCRIPT_NAME"), Some(&b"/hello.php"[..]));
        assert_eq!(param(&p, "PATH_INFO"), Some(&b""[..]));
        assert_eq!(param(&p, "SCRIPT_FILENAME"), Some(&b"/srv/hello.php"[..]));
        assert_eq!(param(&p, "SERVER_NAME"), Some(&b"localhost"[..]));
        assert_eq!(param(&p, "CONTENT_TYPE"), None);
    }

    #[test]
    fn cgi_response_with_status() {
        let r = parse_cgi_response(
            b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope".to_vec(),
            1024,
        )
        .unwrap();
        assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
        assert_eq!(r.headers, [("Content-Type".into(), "text/plain".into())]);
        assert_eq!(r.body, b"nope");
        assert_eq!(
            r.head,
            b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n"
        );
    }

    #[test]
    fn cgi_response_defaults_and_lf() {
        let r = parse_cgi_response(b"Content-Type: text/html\n\n<p>".to_vec(), 1024).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"<p>");
        let r = parse_cgi_response(b"Location: http://x/\r\n\r\n".to_vec(), 1024).unwrap();
        assert_eq!(r.status, 302);
        assert!(r.body.is_empty());
        let r =
            parse_cgi_response(b"HTTP/1.1 201 Created\r\nA: b\r\n\r\nx".to_vec(), 1024).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
        assert_eq!(r.header("a"), Some("b"));
    }

    #[test]
    fn cgi_response_errors() {
        for bad in [
            &b""[..],
            b"Content-Type: x\r\n",
            b"no colon\r\n\r\n",
            b"Status: 2000 Odd\r\n\r\n",
            b"Status: abc\r\n\r\n",
        ] {
            assert!(parse_cgi_response(bad.to_vec(), 1024).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse_cgi_response(vec![b'a'; 100], 10),
            Err(Error::HeadTooLarge { limit: 10 })
        ));
        assert!(matches!(
            parse_cgi_response(b"A: 1234567890\r\n\r\n".to_vec(), 10),
            Err(Error::HeadTooLarge { limit: 10 })
        ));
    }
}
