//! `http::Response<B>` → `start_response` + a gatekit [`Body`].

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::pin::Pin;

use bytes::{Buf, Bytes};
use gatekit_core::{Body, BoxError, Environ, Headers, StartResponse, latin1_to_string, util};
use http::{Response, StatusCode};
use http_body::Body as HttpBody;
use tokio::runtime::Handle;

use crate::runtime::block_on;

/// `NNN Reason` for a status code (the reason empty when unknown).
pub(crate) fn status_line(code: StatusCode) -> String {
    format!(
        "{} {}",
        code.as_str(),
        code.canonical_reason().unwrap_or_default()
    )
}

/// The next non-empty data block of `body`, skipping trailers (`None` at the end).
fn next_data<B>(handle: &Handle, body: &mut Pin<Box<B>>) -> Result<Option<Bytes>, BoxError>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    loop {
        let frame = block_on(
            handle,
            std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)),
            None,
        )
        .flatten();
        match frame {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(frame)) => {
                if let Ok(mut data) = frame.into_data() {
                    if data.has_remaining() {
                        return Ok(Some(data.copy_to_bytes(data.remaining())));
                    }
                }
                // An empty block, or trailers (ignored): go on.
            }
        }
    }
}

/// The blocks of a streamed response: each pulled from the service's body
/// when the gateway asks for it, so nothing is buffered and every block is
/// flushed as soon as the service produces it.
struct Frames<B> {
    first: Option<Bytes>,
    body: Option<Pin<Box<B>>>,
    handle: Handle,
}

impl<B> Iterator for Frames<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Item = Result<Vec<u8>, BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first.take() {
            return Some(Ok(Vec::from(first)));
        }
        let body = self.body.as_mut()?;
        match next_data(&self.handle, body) {
            Ok(Some(block)) => Some(Ok(Vec::from(block))),
            Ok(None) => {
                self.body = None;
                None
            }
            Err(e) => {
                self.body = None;
                Some(Err(e))
            }
        }
    }
}

/// Logs a header that could not be sent to `wsgi.errors`.
fn log_skipped(environ: &mut Environ, name: &str, why: &str) {
    // The error log is best effort.
    let _ = writeln!(
        environ.errors,
        "gatekit-tower: response header {name:?} not sent: {why}"
    );
}

/// Sends the status and headers through `start_response` and returns the
/// body: empty, one block (so the gateway can set `Content-Length`), or a
/// stream pulled frame by frame.
///
/// The first block is pulled before `start_response`, so an error producing
/// it is still a clean 500. Hop-by-hop headers (which PEP 3333 forbids an
/// app to send) and headers gatekit refuses are left out, with a line in
/// `wsgi.errors`. Values are sent as their exact bytes (latin-1).
pub(crate) fn send<B>(
    response: Response<B>,
    environ: &mut Environ,
    sr: &mut StartResponse<'_>,
    handle: &Handle,
) -> Result<Body, BoxError>
where
    B: HttpBody + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let exact = body.size_hint().exact();
    let mut body = Box::pin(body);
    let first = if body.is_end_stream() {
        None
    } else {
        next_data(handle, &mut body)?
    };
    let ended = body.is_end_stream();

    let mut headers = Headers::new();
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if util::is_hop_by_hop(name) {
            log_skipped(environ, name, "hop-by-hop");
            continue;
        }
        if let Err(e) = headers.append(name, &latin1_to_string(value.as_bytes())) {
            log_skipped(environ, name, &e.to_string());
        }
    }

    let body = match first {
        None => Body::Empty,
        Some(block) if ended => Body::Bytes(Cow::Owned(Vec::from(block))),
        Some(block) => {
            // A stream of known length: say so, rather than chunking it.
            let code = parts.status.as_u16();
            let may_have_body = code >= 200 && code != 204 && code != 304;
            if let (Some(len), true, false) =
                (exact, may_have_body, headers.contains("Content-Length"))
            {
                let mut v = String::new();
                let _ = write!(v, "{len}");
                headers.append("Content-Length", &v)?;
            }
            Body::stream(Frames {
                first: Some(block),
                body: Some(body),
                handle: handle.clone(),
            })
        }
    };
    sr.start(status_line(parts.status), headers)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_line(StatusCode::OK), "200 OK");
        assert_eq!(status_line(StatusCode::IM_A_TEAPOT), "418 I'm a teapot");
        assert_eq!(status_line(StatusCode::from_u16(599).unwrap()), "599 ");
        gatekit_core::Status::parse(&status_line(StatusCode::from_u16(599).unwrap())).unwrap();
    }
}
