//! The HTTP rules a static file server applies (RFC 9110): validators and
//! conditional requests (§8.8, §13), single byte ranges (§14), HTTP-dates
//! (§5.6.7), and content types by extension.
//!
//! Pure functions over header bytes: nothing here allocates in proportion
//! to its input.

/// The answer a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// Send the whole file (no usable range, an invalid one, or several).
    Whole,
    /// Send bytes `start..=end` (`206`).
    Part {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// No byte of the file is in the range (`416`).
    Unsatisfiable,
}

/// Evaluates a `Range` value against a file of `len` bytes.
///
/// > A server MAY ignore the Range header field. (RFC 9110 §14.2)
///
/// A single `bytes=` range is honoured; a syntactically invalid value, an
/// other unit and a list of several ranges are answered with the whole
/// file (so there is never a `multipart/byteranges` body to build).
pub(crate) fn evaluate_range(value: &[u8], len: u64) -> RangeAnswer {
    let value = value.trim_ascii();
    let Some(unit) = value.get(..5) else {
        return RangeAnswer::Whole;
    };
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return RangeAnswer::Whole;
    }
    let Some(rest) = value
        .get(5..)
        .unwrap_or_default()
        .trim_ascii_start()
        .strip_prefix(b"=")
    else {
        return RangeAnswer::Whole;
    };
    let mut only = None;
    for spec in rest.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if spec.is_empty() {
            continue;
        }
        if only.is_some() {
            return RangeAnswer::Whole;
        }
        only = Some(spec);
    }
    let Some(spec) = only else {
        return RangeAnswer::Whole;
    };
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeAnswer::Whole;
    };
    let first = spec.get(..dash).unwrap_or_default();
    let last = spec.get(dash + 1..).unwrap_or_default();
    if first.is_empty() {
        // A suffix range: the last `n` bytes.
        let Some(n) = parse_digits(last) else {
            return RangeAnswer::Whole;
        };
        if n == 0 || len == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Part {
            start: len.saturating_sub(n),
            end: len - 1,
        };
    }
    let Some(start) = parse_digits(first) else {
        return RangeAnswer::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match parse_digits(last) {
            Some(end) if end >= start => end,
            _ => return RangeAnswer::Whole,
        }
    };
    if start >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part {
        start,
        end: end.min(len - 1),
    }
}

/// ASCII digits as a number, saturating at `u64::MAX`; `None` when empty or
/// not all digits.
fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// True when an `If-None-Match` value matches `etag` by the weak comparison
/// (RFC 9110 §13.1.2: `W/` prefixes are ignored), or is `*`. A malformed
/// list matches nothing from the point where it stops making sense.
pub(crate) fn if_none_match(value: &[u8], etag: &str) -> bool {
    let value = value.trim_ascii();
    if value == b"*" {
        return true;
    }
    let etag = etag.as_bytes();
    let mut rest = value;
    // Each turn consumes at least one byte, so the loop ends.
    loop {
        rest = trim_list_separators(rest);
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix(b"W/").unwrap_or(rest);
        let Some((opaque, after)) = split_opaque_tag(tag) else {
            return false;
        };
        if opaque == strip_weak(etag) {
            return true;
        }
        rest = after;
    }
}

/// True when an `If-Match` value matches `etag` by the strong comparison
/// (RFC 9110 §13.1.1: a weak tag on either side never matches), or is `*`.
pub(crate) fn if_match(value: &[u8], etag: &str) -> bool {
    let value = value.trim_ascii();
    if value == b"*" {
        return true;
    }
    if etag.starts_with("W/") {
        return false;
    }
    let mut rest = value;
    // Each turn consumes at least one byte, so the loop ends.
    loop {
        rest = trim_list_separators(rest);
        if rest.is_empty() {
            return false;
        }
        let weak = rest.starts_with(b"W/");
        let tag = rest.strip_prefix(b"W/").unwrap_or(rest);
        let Some((opaque, after)) = split_opaque_tag(tag) else {
            return false;
        };
        if !weak && opaque == etag.as_bytes() {
            return true;
        }
        rest = after;
    }
}

/// True when an `If-Range` value still describes the file (RFC 9110
/// §13.1.5): an entity-tag equal to `etag` by the strong comparison (a weak
/// tag never matches), or an HTTP-date exactly equal to its modification
/// time in whole seconds.
pub(crate) fn if_range(value: &[u8], etag: &str, mtime_secs: u64) -> bool {
    let value = value.trim_ascii();
    if value.starts_with(b"\"") {
        return !etag.starts_with("W/") && value == etag.as_bytes();
    }
    if value.starts_with(b"W/") {
        return false;
    }
    parse_http_date(value) == Some(mtime_secs)
}

fn trim_list_separators(s: &[u8]) -> &[u8] {
    let skip = s
        .iter()
        .take_while(|&&b| b == b',' || b == b' ' || b == b'\t')
        .count();
    s.get(skip..).unwrap_or_default()
}

/// `"opaque"` at the start of `s`: the tag with its quotes, and what follows.
fn split_opaque_tag(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if !s.starts_with(b"\"") {
        return None;
    }
    let close = s.iter().skip(1).position(|&b| b == b'"')? + 1;
    Some((s.get(..=close)?, s.get(close + 1..).unwrap_or_default()))
}

fn strip_weak(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// Parses an HTTP-date in any of the three forms RFC 9110 §5.6.7 asks a
/// recipient to accept, to seconds since the Unix epoch:
///
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// - RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year below 70
///   is 20xx)
/// - asctime: `Sun Nov  6 08:49:37 1994`
///
/// `None` for anything else, or a date before 1970.
pub(crate) fn parse_http_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let mut words = text.split_ascii_whitespace();
    let weekday = words.next()?;
    let (day, month, year, time) = if weekday.ends_with(',') {
        let first = words.next()?;
        if first.contains('-') {
            // RFC 850
            let mut parts = first.split('-');
            let day = parts.next()?;
            let month = parts.next()?;
            let year = parts.next()?;
            if parts.next().is_some() || year.len() != 2 {
                return None;
            }
            let yy: u64 = number(year)?;
            let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
            (number(day)?, month, year, words.next()?)
        } else {
            // IMF-fixdate
            let month = words.next()?;
            let year = words.next()?;
            if year.len() != 4 {
                return None;
            }
            (number(first)?, month, number(year)?, words.next()?)
        }
    } else {
        // asctime
        let month = words.next()?;
        let day = words.next()?;
        let time = words.next()?;
        let year = words.next()?;
        if year.len() != 4 {
            return None;
        }
        (number(day)?, month, number(year)?, time)
    };
    let asctime = !weekday.ends_with(',');
    if asctime {
        if words.next().is_some() {
            return None;
        }
    } else if words.next() != Some("GMT") || words.next().is_some() {
        return None;
    }
    let month = month_number(month)?;
    let mut hms = time.split(':');
    let (h, m, s) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || m.len() != 2 || s.len() != 2 {
        return None;
    }
    let (h, m, s) = (number(h)?, number(m)?, number(s)?);
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

fn number(s: &str) -> Option<u64> {
    if s.len() > 4 {
        return None;
    }
    parse_digits(s.as_bytes())
}

fn month_number(name: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|m| *m == name).map(|i| i as u64 + 1)
}

/// Days from 1970-01-01 to a date (proleptic Gregorian, year ≥ 1970): the
/// inverse of the era-based conversion in gatekit-core's date formatter.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// The `Content-Type` for a file name, from its extension (ASCII case
/// ignored); `application/octet-stream` when unknown. Text types carry
/// `; charset=utf-8`.
#[must_use]
pub fn content_type(name: &[u8]) -> &'static str {
    let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
        return DEFAULT_TYPE;
    };
    let ext = name.get(dot + 1..).unwrap_or_default();
    if ext.is_empty() || ext.len() > 16 {
        return DEFAULT_TYPE;
    }
    let mut lower = [0u8; 16];
    for (l, b) in lower.iter_mut().zip(ext) {
        *l = b.to_ascii_lowercase();
    }
    let ext = lower.get(..ext.len()).unwrap_or_default();
    TYPES
        .iter()
        .find(|(e, _)| e.as_bytes() == ext)
        .map_or(DEFAULT_TYPE, |(_, t)| t)
}

const DEFAULT_TYPE: &str = "application/octet-stream";

const TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "text/xml; charset=utf-8"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("svg", "image/svg+xml"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("bmp", "image/bmp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAnswer::{Part, Unsatisfiable, Whole};
        let r = |v: &str| evaluate_range(v.as_bytes(), 100);
        assert_eq!(r("bytes=0-9"), Part { start: 0, end: 9 });
        assert_eq!(r("bytes=10-"), Part { start: 10, end: 99 });
        assert_eq!(r("bytes=-10"), Part { start: 90, end: 99 });
        assert_eq!(r("bytes=-1000"), Part { start: 0, end: 99 });
        assert_eq!(r("bytes=50-1000"), Part { start: 50, end: 99 });
        assert_eq!(r("Bytes = 5-5"), Part { start: 5, end: 5 });
        assert_eq!(
            r("bytes=99-99999999999999999999999"),
            Part { start: 99, end: 99 }
        );
        assert_eq!(r("bytes=0-0,"), Part { start: 0, end: 0 });
        assert_eq!(r("bytes=100-"), Unsatisfiable);
        assert_eq!(r("bytes=100-200"), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Whole);
        assert_eq!(r("bytes=0-1, 200-300"), Whole);
        assert_eq!(r("bytes=5-1"), Whole);
        assert_eq!(r("bytes=a-b"), Whole);
        assert_eq!(r("bytes=1 - 2"), Whole);
        assert_eq!(r("bytes=-"), Whole);
        assert_eq!(r("bytes="), Whole);
        assert_eq!(r("items=0-1"), Whole);
        assert_eq!(r("bytes"), Whole);
        assert_eq!(r(""), Whole);
        assert_eq!(evaluate_range(b"bytes=0-", 0), Unsatisfiable);
        assert_eq!(evaluate_range(b"bytes=-5", 0), Unsatisfiable);
    }

    #[test]
    fn entity_tags() {
        let tag = "\"1-2-3\"";
        assert!(if_none_match(b"\"1-2-3\"", tag));
        assert!(if_none_match(b"W/\"1-2-3\"", tag));
        assert!(if_none_match(b"\"x\", \"1-2-3\"", tag));
        assert!(if_none_match(b"\"a,b\",W/\"1-2-3\"", tag));
        assert!(if_none_match(b" * ", tag));
        assert!(!if_none_match(b"\"1-2-4\"", tag));
        assert!(!if_none_match(b"1-2-3", tag));
        assert!(!if_none_match(b"\"1-2-3", tag));
        assert!(!if_none_match(b"", tag));
        assert!(!if_none_match(b",,,", tag));

        assert!(if_match(b"\"1-2-3\"", tag));
        assert!(if_match(b"\"x\", \"1-2-3\"", tag));
        assert!(if_match(b"*", tag));
        assert!(!if_match(b"W/\"1-2-3\"", tag));
        assert!(!if_match(b"\"x\"", tag));
        assert!(!if_match(b"", tag));

        assert!(if_range(b"\"1-2-3\"", tag, 0));
        assert!(!if_range(b"W/\"1-2-3\"", tag, 0));
        assert!(!if_range(b"\"other\"", tag, 0));
        assert!(if_range(b"Sun, 06 Nov 1994 08:49:37 GMT", tag, 784_111_777));
        assert!(!if_range(
            b"Sun, 06 Nov 1994 08:49:38 GMT",
            tag,
            784_111_777
        ));
        assert!(!if_range(b"garbage", tag, 784_111_777));
    }

    #[test]
    fn http_dates() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(
            parse_http_date(b"Thu, 31 Dec 2099 23:59:59 GMT"),
            Some(4_102_444_799)
        );
        for bad in [
            &b""[..],
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 32 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1969 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT extra",
            b"Sun, 99999999999999999999 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT\xff",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Round trip through the core's formatter.
        for secs in [0, 951_782_400, 1_149_533_394, 4_102_444_799] {
            let text = gatekit_core::format_date_time(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            );
            assert_eq!(parse_http_date(text.as_bytes()), Some(secs), "{text}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"INDEX.HTM"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type(b"a.b.css"), "text/css; charset=utf-8");
        assert_eq!(content_type(b"data.json"), "application/json");
        assert_eq!(content_type(b"x.png"), "image/png");
        assert_eq!(content_type(b"x.JPG"), "image/jpeg");
        assert_eq!(content_type(b"x.svg"), "image/svg+xml");
        assert_eq!(content_type(b"x.wasm"), "application/wasm");
        assert_eq!(content_type(b"x.woff2"), "font/woff2");
        assert_eq!(content_type(b"x.mp4"), "video/mp4");
        assert_eq!(content_type(b"README"), DEFAULT_TYPE);
        assert_eq!(content_type(b"x."), DEFAULT_TYPE);
        assert_eq!(content_type(b"x.unknownext"), DEFAULT_TYPE);
        assert_eq!(content_type(b"x.\xff"), DEFAULT_TYPE);
    }
}
