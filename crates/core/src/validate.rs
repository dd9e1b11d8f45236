//! Conformance checking middleware: wsgiref's `validate` module.
//!
//! Wrap an app in [`Validator`] while developing it, or a server in tests:
//! every check below that fails makes the request a 500 with the reason
//! written to `wsgi.errors`, instead of an assertion killing the process.
//!
//! Checks on the environ (before the app runs):
//! - `REQUEST_METHOD`, `SERVER_NAME` and `SERVER_PORT` are present;
//! - `HTTP_CONTENT_TYPE` and `HTTP_CONTENT_LENGTH` are absent (they belong in
//!   `CONTENT_TYPE` / `CONTENT_LENGTH`);
//! - `REQUEST_METHOD` is a token;
//! - `SCRIPT_NAME` and `PATH_INFO`, when non-empty, start with `/`; at least
//!   one of them is present; `SCRIPT_NAME` is not `/` alone;
//! - `CONTENT_LENGTH`, when present and non-empty, is a decimal integer;
//! - `wsgi.url_scheme` is `http` or `https`.
//!
//! Checks on `start_response`:
//! - the status is `NNN reason` with a code from 100 and a reason phrase;
//! - no header is named `Status`; names are tokens of letters, digits, `-`
//!   and `_` that start with a letter and do not end in `-` or `_`; values
//!   hold no control characters;
//! - a `Content-Type` is present, except for 204 and 304, which must not have one;
//! - it is called once, or again only with an error.
//!
//! Checks on the response:
//! - the app called `start_response` before returning its body;
//! - the app did not both use `write()` and return a non-empty body.
//!
//! wsgiref's checks of Python types (the environ is a dict, values are native
//! strings, blocks are bytes, `wsgi.input.read` is called with one argument,
//! the iterable is closed) are guaranteed by the Rust types here: an
//! [`Environ`] holds bytes, a [`Body`] holds byte blocks, and dropping the
//! body always closes it.

use std::fmt;
use std::io;

use crate::app::{BoxError, ResponseSink, StartError, StartResponse};
use crate::{App, Body, Environ, Headers, Status};

/// A failed conformance check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError(String);

impl ValidationError {
    /// What failed.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "validation failed: {}", self.0)
    }
}

impl std::error::Error for ValidationError {}

fn fail(msg: impl Into<String>) -> ValidationError {
    ValidationError(msg.into())
}

/// Wraps an app with every check of the module doc (`wsgiref.validate.validator`).
#[derive(Debug, Clone)]
pub struct Validator<A>(pub A);

/// Wraps `app` in a [`Validator`] (`validator(app)`).
pub fn validator<A: App>(app: A) -> Validator<A> {
    Validator(app)
}

/// Checks an environ (`check_environ`).
///
/// # Errors
/// The first failed check.
pub fn check_environ(environ: &Environ) -> Result<(), ValidationError> {
    for key in ["REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT"] {
        if !environ.contains(key) {
            return Err(fail(format!(
                "environ is missing the required CGI variable {key}"
            )));
        }
    }
    for key in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"] {
        if environ.contains(key) {
            let real = key.trim_start_matches("HTTP_");
            return Err(fail(format!(
                "environ should not have the key {key} (use {real})"
            )));
        }
    }
    let method = environ.get_bytes("REQUEST_METHOD").unwrap_or_default();
    if method.is_empty() || !method.iter().all(|&b| crate::headers::is_tchar(b)) {
        return Err(fail(format!(
            "REQUEST_METHOD {:?} is not a token",
            String::from_utf8_lossy(method)
        )));
    }
    for key in ["SCRIPT_NAME", "PATH_INFO"] {
        if let Some(v) = environ.get_bytes(key) {
            if !v.is_empty() && !v.starts_with(b"/") {
                return Err(fail(format!(
                    "{key} doesn't start with '/': {:?}",
                    String::from_utf8_lossy(v)
                )));
            }
        }
    }
    if !environ.contains("SCRIPT_NAME") && !environ.contains("PATH_INFO") {
        return Err(fail("one of SCRIPT_NAME or PATH_INFO is required"));
    }
    if environ.get_bytes("SCRIPT_NAME") == Some(b"/") {
        return Err(fail(
            "SCRIPT_NAME cannot be '/'; it should instead be '', and PATH_INFO should be '/'",
        ));
    }
    if let Some(cl) = environ
        .get_bytes("CONTENT_LENGTH")
        .filter(|v| !v.is_empty())
    {
        if crate::util::parse_content_length(cl).is_none() {
            return Err(fail(format!(
                "invalid CONTENT_LENGTH: {:?}",
                String::from_utf8_lossy(cl)
            )));
        }
    }
    if !matches!(environ.url_scheme.as_ref(), "http" | "https") {
        return Err(fail(format!(
            "wsgi.url_scheme unknown: {:?}",
            environ.url_scheme
        )));
    }
    Ok(())
}

/// Checks a status (`check_status`) beyond what [`Status`] already enforces:
/// a reason phrase must be present.
///
/// # Errors
/// The failed check.
pub fn check_status(status: &Status) -> Result<(), ValidationError> {
    if status.reason().is_empty() {
        return Err(fail(format!(
            "the status {:?} should be a three-digit code, a space and a reason",
            status.as_str()
        )));
    }
    Ok(())
}

/// Checks headers (`check_headers`).
///
/// # Errors
/// The first failed check.
pub fn check_headers(headers: &Headers) -> Result<(), ValidationError> {
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("status") {
            return Err(fail(format!(
                "the Status header cannot be used; it conflicts with CGI script, and HTTP status is not given through headers (value: {value:?})"
            )));
        }
        let bytes = name.as_bytes();
        let first_ok = bytes.first().is_some_and(u8::is_ascii_alphabetic);
        let rest_ok = bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !first_ok || !rest_ok {
            return Err(fail(format!("bad header name: {name:?}")));
        }
        if name.ends_with('-') || name.ends_with('_') {
            return Err(fail(format!("names may not end in '-' or '_': {name:?}")));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(fail(format!(
                "bad header value: {value:?} (bad control character)"
            )));
        }
    }
    Ok(())
}

/// Checks the `Content-Type` rule (`check_content_type`).
///
/// # Errors
/// The failed check.
pub fn check_content_type(status: &Status, headers: &Headers) -> Result<(), ValidationError> {
    let bodiless = matches!(status.code(), 204 | 304);
    match (headers.contains("Content-Type"), bodiless) {
        (true, true) => Err(fail(format!(
            "Content-Type header found in a {} response, which must not return content",
            status.code()
        ))),
        (false, false) => Err(fail("no Content-Type header found in headers")),
        _ => Ok(()),
    }
}

/// The checking `start_response` handed to the wrapped app.
struct CheckingSink<'s, 'a> {
    inner: &'s mut StartResponse<'a>,
    started: bool,
    wrote: bool,
    failure: Option<ValidationError>,
}

impl CheckingSink<'_, '_> {
    fn record(&mut self, e: ValidationError) -> StartError {
        let msg = e.to_string();
        self.failure.get_or_insert(e);
        StartError::Rejected(msg)
    }
}

impl ResponseSink for CheckingSink<'_, '_> {
    fn start_response(
        &mut self,
        status: Status,
        headers: Headers,
        error: Option<BoxError>,
    ) -> Result<(), StartError> {
        if self.started && error.is_none() {
            return Err(self.record(fail("start_response called a second time without an error")));
        }
        let check = check_status(&status)
            .and_then(|()| check_headers(&headers))
            .and_then(|()| check_content_type(&status, &headers));
        if let Err(e) = check {
            return Err(self.record(e));
        }
        self.started = true;
        match error {
            None => self.inner.start(status, headers).map(drop),
            Some(e) => self.inner.start_with_error(status, headers, e).map(drop),
        }
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if !self.started {
            let e = fail("write() called before start_response");
            self.failure.get_or_insert(e.clone());
            return Err(io::Error::other(e));
        }
        self.wrote |= !data.is_empty();
        self.inner.write(data)
    }

    fn headers_sent(&self) -> bool {
        self.inner.headers_sent()
    }
}

impl<A: App> App for Validator<A> {
    fn call(&self, environ: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
        check_environ(environ)?;
        let mut sink = CheckingSink {
            inner: sr,
            started: false,
            wrote: false,
            failure: None,
        };
        let result = self.0.call(environ, &mut StartResponse::new(&mut sink));
        if let Some(e) = sink.failure {
            return Err(e.into());
        }
        let body = result?;
        if !sink.started {
            return Err(fail("the application returned before calling start_response").into());
        }
        let non_empty = match &body {
            Body::Empty => false,
            Body::Bytes(b) => !b.is_empty(),
            _ => true,
        };
        if sink.wrote && non_empty {
            return Err(fail("the application used write() and also returned a body").into());
        }
        Ok(body)
    }
}
