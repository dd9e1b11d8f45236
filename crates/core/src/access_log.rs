//! The access log: one line per request in Common Log Format, written when
//! the response ends (wsgiref's `simple_server` logs in `ServerHandler.close`).

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Environ, Outcome};

/// Where access log lines go. Off unless a front-end's
/// [`Config::access_log`](crate::Config::access_log) holds one.
pub struct AccessLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

impl AccessLog {
    /// Lines go to `out`, one `write_all` each.
    pub fn new(out: impl Write + Send + 'static) -> AccessLog {
        AccessLog {
            out: Mutex::new(Box::new(out)),
        }
    }

    /// Lines go to this process's standard error.
    #[must_use]
    pub fn stderr() -> AccessLog {
        AccessLog::new(io::stderr())
    }

    /// Lines are appended to the file at `path` (created if missing).
    ///
    /// # Errors
    /// The file cannot be opened for appending.
    pub fn append_to(path: &Path) -> io::Result<AccessLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AccessLog::new(file))
    }

    /// Writes the line for one request; a failing log never fails the request.
    pub fn record(&self, environ: &Environ, outcome: &Outcome, at: SystemTime) {
        let line = format_line(environ, outcome, at);
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(&line);
    }
}

/// One Common Log Format line, newline included:
/// `host ident user [time] "request" status bytes`, e.g.
/// `127.0.0.1 - - [25/Nov/2026:22:20:36 +0000] "GET /a?b HTTP/1.1" 200 14`.
/// The request line is rebuilt from `REQUEST_METHOD`, `REQUEST_URI` (or
/// `SCRIPT_NAME` + `PATH_INFO` + `?QUERY_STRING`) and `SERVER_PROTOCOL`;
/// quotes, backslashes and bytes outside printable ASCII are written as
/// `\xNN`, so a hostile request cannot forge log lines.
#[must_use]
pub fn format_line(environ: &Environ, outcome: &Outcome, at: SystemTime) -> Vec<u8> {
    let mut line = Vec::with_capacity(128);
    let field = |line: &mut Vec<u8>, name: &str| match environ.get_bytes(name) {
        Some(v) if !v.is_empty() => escape_into(line, v),
        _ => line.push(b'-'),
    };
    field(&mut line, "REMOTE_ADDR");
    line.extend_from_slice(b" - ");
    field(&mut line, "REMOTE_USER");
    line.extend_from_slice(b" [");
    line.extend_from_slice(clf_time(at).as_bytes());
    line.extend_from_slice(b"] \"");
    escape_into(
        &mut line,
        environ.get_bytes("REQUEST_METHOD").unwrap_or(b"-"),
    );
    line.push(b' ');
    match environ.get_bytes("REQUEST_URI") {
        Some(uri) if !uri.is_empty() => escape_into(&mut line, uri),
        _ => {
            escape_into(
                &mut line,
                environ.get_bytes("SCRIPT_NAME").unwrap_or_default(),
            );
            escape_into(
                &mut line,
                environ.get_bytes("PATH_INFO").unwrap_or_default(),
            );
            if let Some(q) = environ.get_bytes("QUERY_STRING").filter(|q| !q.is_empty()) {
                line.push(b'?');
                escape_into(&mut line, q);
            }
        }
    }
    line.push(b' ');
    escape_into(
        &mut line,
        environ.get_bytes("SERVER_PROTOCOL").unwrap_or(b"-"),
    );
    line.extend_from_slice(b"\" ");
    match outcome.status {
        Some(code) => line.extend_from_slice(code.to_string().as_bytes()),
        None => line.push(b'-'),
    }
    line.push(b' ');
    if outcome.body_bytes == 0 {
        line.push(b'-');
    } else {
        line.extend_from_slice(outcome.body_bytes.to_string().as_bytes());
    }
    line.push(b'\n');
    line
}

fn escape_into(line: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            line.push(b);
        } else {
            line.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
}

/// `25/Nov/2026:22:20:36 +0000` (always UTC).
fn clf_time(at: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = crate::date::civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let month = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{day:02}/{month}/{year:04}:{:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(status: Option<u16>, bytes: u64) -> Outcome {
        Outcome {
            status,
            body_bytes: bytes,
            ..Outcome::default()
        }
    }

    #[test]
    fn common_log_format_lines() {
        let at = UNIX_EPOCH + Duration::from_secs(1_149_533_394);
        let mut env = Environ::new();
        env.set("REMOTE_ADDR", "127.0.0.1");
        env.set("REQUEST_METHOD", "GET");
        env.set("REQUEST_URI", "/a?b=1");
        env.set("SERVER_PROTOCOL", "HTTP/1.1");
        assert_eq!(
            format_line(&env, &outcome(Some(200), 14), at),
            b"127.0.0.1 - - [05/Jun/2006:18:49:54 +0000] \"GET /a?b=1 HTTP/1.1\" 200 14\n"
        );
        // No REQUEST_URI: rebuilt; a user; nothing sent.
        let mut env = Environ::new();
        env.set("REQUEST_METHOD", "POST");
        env.set("SCRIPT_NAME", "/app");
        env.set("PATH_INFO", "/x");
        env.set("QUERY_STRING", "q");
        env.set("REMOTE_USER", "alice");
        env.set("SERVER_PROTOCOL", "HTTP/1.0");
        assert_eq!(
            format_line(&env, &outcome(None, 0), at),
            b"- - alice [05/Jun/2006:18:49:54 +0000] \"POST /app/x?q HTTP/1.0\" - -\n"
        );
    }

    #[test]
    fn hostile_bytes_are_escaped() {
        let mut env = Environ::new();
        env.set("REQUEST_METHOD", "GET");
        env.set("REQUEST_URI", b"/\"\n\xff\\".to_vec());
        let line = format_line(&env, &outcome(Some(404), 3), UNIX_EPOCH);
        assert_eq!(
            line,
            b"- - - [01/Jan/1970:00:00:00 +0000] \"GET /\\x22\\x0a\\xff\\x5c -\" 404 3\n"
        );
    }
}
