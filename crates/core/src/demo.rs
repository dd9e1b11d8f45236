//! `demo_app`: "Hello world!" and the sorted environ (`wsgiref.simple_server.demo_app`).

use std::fmt::Write as _;
use std::io::Read;

use crate::{Body, BoxError, Environ, StartResponse};

/// Writes `v` as a quoted string: printable ASCII as is, `\\`, `\'`, and
/// `\t`/`\n`/`\r`/`\xNN` escapes for the rest, so non-UTF-8 bytes show exactly.
fn repr_bytes(out: &mut String, v: &[u8]) {
    out.push('\'');
    for &b in v {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7E => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('\'');
}

/// The demo app: `Hello world!`, a blank line, then every environ entry as
/// `NAME = 'value'`, sorted, the `wsgi.*` keys included. Values are shown
/// byte-exact (`\xff` for a non-UTF-8 byte).
///
/// # Errors
/// Only if `start_response` refuses, which it does not for these headers.
pub fn demo_app(
    environ: &mut Environ,
    start_response: &mut StartResponse<'_>,
) -> Result<Body, BoxError> {
    let mut lines: Vec<(String, String)> = Vec::with_capacity(environ.len() + 8);
    for (k, v) in environ.iter() {
        let mut value = String::new();
        repr_bytes(&mut value, v);
        lines.push((String::from_utf8_lossy(k).into_owned(), value));
    }
    let flag = |b: bool| if b { "True" } else { "False" }.to_owned();
    lines.push(("wsgi.errors".into(), "<wsgi.errors>".into()));
    lines.push(("wsgi.file_wrapper".into(), flag(environ.file_wrapper)));
    lines.push((
        "wsgi.input".into(),
        format!("<wsgi.input: {} bytes>", environ.input.content_length()),
    ));
    lines.push(("wsgi.multiprocess".into(), flag(environ.multiprocess)));
    lines.push(("wsgi.multithread".into(), flag(environ.multithread)));
    lines.push(("wsgi.run_once".into(), flag(environ.run_once)));
    lines.push((
        "wsgi.url_scheme".into(),
        format!("'{}'", environ.url_scheme),
    ));
    lines.push((
        "wsgi.version".into(),
        format!("({}, {})", Environ::VERSION.0, Environ::VERSION.1),
    ));
    lines.sort();
    let mut out = String::from("Hello world!\n\n");
    for (k, v) in lines {
        let _ = writeln!(out, "{k} = {v}");
    }
    start_response.start("200 OK", [("Content-Type", "text/plain; charset=utf-8")])?;
    Ok(Body::from(out))
}

/// The echo app: answers with the request body, byte for byte, as
/// `application/octet-stream` with its `Content-Length` (a `GET` gets an
/// empty body). Made for testing a gateway: send a body, compare what
/// comes back.
///
/// # Errors
/// Reading the body failed (for instance it ended before `CONTENT_LENGTH`).
pub fn echo_app(
    environ: &mut Environ,
    start_response: &mut StartResponse<'_>,
) -> Result<Body, BoxError> {
    let len = environ.input.content_length();
    // The input is bounded by CONTENT_LENGTH, which the front-end has
    // checked against its body limit; reserve no more than 1 MiB up front.
    let mut body = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
    environ.input.read_to_end(&mut body)?;
    let length = body.len().to_string();
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", &length),
        ],
    )?;
    Ok(Body::from(body))
}
