//! The response status line: `NNN reason`, as PEP 3333's `start_response` takes it.

use std::borrow::Cow;
use std::fmt;

/// Why a status string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusError {
    /// Shorter than `NNN` plus a space.
    TooShort,
    /// The first three characters are not digits, or the code is below 100.
    BadCode,
    /// No space after the code.
    NoSpace,
    /// The reason phrase holds a control character or a character above U+00FF.
    BadReason,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusError::TooShort => "status must be at least 4 characters",
            StatusError::BadCode => "status must begin with a 3-digit code from 100",
            StatusError::NoSpace => "status must have a space after the code",
            StatusError::BadReason => "status reason holds a control or non-latin-1 character",
        })
    }
}

impl std::error::Error for StatusError {}

/// A checked status line such as `200 OK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    line: Cow<'static, str>,
    code: u16,
}

/// Canonical reason phrases (RFC 9110 §15), used by [`Status::from_code`].
fn canonical_reason(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

impl Status {
    /// `200 OK`.
    pub const OK: Status = Status {
        line: Cow::Borrowed("200 OK"),
        code: 200,
    };
    /// `400 Bad Request`.
    pub const BAD_REQUEST: Status = Status {
        line: Cow::Borrowed("400 Bad Request"),
        code: 400,
    };
    /// `404 Not Found`.
    pub const NOT_FOUND: Status = Status {
        line: Cow::Borrowed("404 Not Found"),
        code: 404,
    };
    /// `500 Internal Server Error`, wsgiref's `error_status`.
    pub const INTERNAL_SERVER_ERROR: Status = Status {
        line: Cow::Borrowed("500 Internal Server Error"),
        code: 500,
    };

    /// Parses and checks a status line (`NNN reason`; the reason may be empty).
    ///
    /// # Errors
    /// A [`StatusError`] saying what is wrong.
    pub fn parse(line: &str) -> Result<Status, StatusError> {
        let code = Self::check(line)?;
        Ok(Status {
            line: Cow::Owned(line.to_owned()),
            code,
        })
    }

    /// Like [`Status::parse`], borrowing a static string.
    ///
    /// # Errors
    /// A [`StatusError`] saying what is wrong.
    pub fn from_static(line: &'static str) -> Result<Status, StatusError> {
        let code = Self::check(line)?;
        Ok(Status {
            line: Cow::Borrowed(line),
            code,
        })
    }

    /// The status for a code with its RFC 9110 reason phrase (or no phrase for
    /// codes without one).
    ///
    /// # Errors
    /// [`StatusError::BadCode`] for codes outside 100..=999.
    pub fn from_code(code: u16) -> Result<Status, StatusError> {
        if !(100..=999).contains(&code) {
            return Err(StatusError::BadCode);
        }
        Ok(match canonical_reason(code) {
            Some(reason) => Status {
                line: Cow::Owned(format!("{code} {reason}")),
                code,
            },
            None => Status {
                line: Cow::Owned(format!("{code} ")),
                code,
            },
        })
    }

    fn check(line: &str) -> Result<u16, StatusError> {
        let bytes = line.as_bytes();
        if bytes.len() < 4 {
            return Err(StatusError::TooShort);
        }
        let (digits, rest) = bytes.split_at(3);
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(StatusError::BadCode);
        }
        let code = digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if code < 100 {
            return Err(StatusError::BadCode);
        }
        if rest.first() != Some(&b' ') {
            return Err(StatusError::NoSpace);
        }
        if crate::headers::check_value(line.get(4..).unwrap_or("")).is_err() {
            return Err(StatusError::BadReason);
        }
        Ok(code)
    }

    /// The numeric code.
    #[must_use]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The whole line, e.g. `200 OK`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.line
    }

    /// The reason phrase, e.g. `OK`.
    #[must_use]
    pub fn reason(&self) -> &str {
        self.line.get(4..).unwrap_or("")
    }

    /// True for statuses that never carry a body: 1xx, 204 and 304 (RFC 9110 §6.4.1).
    #[must_use]
    pub fn forbids_body(&self) -> bool {
        self.code < 200 || self.code == 204 || self.code == 304
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// Anything [`StartResponse::start`](crate::StartResponse::start) accepts as a status:
/// a [`Status`], a `&str`/`String` line such as `"404 Not Found"`, or a `u16` code.
pub trait IntoStatus {
    /// Converts, checking the line.
    ///
    /// # Errors
    /// A [`StatusError`].
    fn into_status(self) -> Result<Status, StatusError>;
}

impl IntoStatus for Status {
    fn into_status(self) -> Result<Status, StatusError> {
        Ok(self)
    }
}

impl IntoStatus for &str {
    fn into_status(self) -> Result<Status, StatusError> {
        // The common lines need no allocation.
        match self {
            "200 OK" => Ok(Status::OK),
            "404 Not Found" => Ok(Status::NOT_FOUND),
            _ => Status::parse(self),
        }
    }
}

impl IntoStatus for String {
    fn into_status(self) -> Result<Status, StatusError> {
        let code = Status::check(&self)?;
        Ok(Status {
            line: Cow::Owned(self),
            code,
        })
    }
}

impl IntoStatus for u16 {
    fn into_status(self) -> Result<Status, StatusError> {
        Status::from_code(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // test_wsgiref IntegrationTests.test_status_validation_errors
    #[test]
    fn status_validation_errors() {
        assert_eq!(Status::parse("200"), Err(StatusError::TooShort));
        assert_eq!(Status::parse("20X OK"), Err(StatusError::BadCode));
        assert_eq!(Status::parse("200OK"), Err(StatusError::NoSpace));
        assert_eq!(Status::parse("099 Low"), Err(StatusError::BadCode));
        assert_eq!(Status::parse("200 OK\r\nX: y"), Err(StatusError::BadReason));
        assert_eq!(Status::parse("200 ").unwrap().reason(), "");
        let s = Status::parse("418 I'm a teapot").unwrap();
        assert_eq!((s.code(), s.reason()), (418, "I'm a teapot"));
    }

    #[test]
    fn from_code() {
        assert_eq!(Status::from_code(404).unwrap().as_str(), "404 Not Found");
        assert_eq!(Status::from_code(599).unwrap().as_str(), "599 ");
        assert!(Status::from_code(99).is_err());
        assert!(Status::from_code(204).unwrap().forbids_body());
    }
}
