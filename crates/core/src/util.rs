//! Helpers over environs: wsgiref's `util` module.

use crate::{Environ, Status};

/// `https` if the `HTTPS` variable is `on`, `yes` or `1`, else `http` (`guess_scheme`).
#[must_use]
pub fn guess_scheme(environ: &Environ) -> &'static str {
    match environ.get_bytes("HTTPS") {
        Some(v)
            if [&b"on"[..], b"yes", b"1"]
                .iter()
                .any(|w| v.eq_ignore_ascii_case(w)) =>
        {
            "https"
        }
        _ => "http",
    }
}

/// Hop-by-hop headers (RFC 2616 §13.5.1) that PEP 3333 forbids applications to send.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// True for a hop-by-hop header name, in any case (`is_hop_by_hop`).
#[must_use]
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Parses a `Content-Length`: ASCII digits only, no sign or spaces, no overflow.
#[must_use]
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Decodes `%XX` escapes (RFC 3986 §2.1) into bytes, as CGI's `PATH_INFO`
/// wants it ("not URL-encoded", RFC 3875 §4.1.5): `%2F` becomes `/` like any
/// other byte. A `%` not followed by two hex digits (`%zz`, a trailing `%`)
/// is kept as it is; `+` is not a space (that belongs to form decoding). The
/// result may be any bytes, not necessarily UTF-8.
#[must_use]
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    percent_decode_each(input, |b| out.push(b));
    out
}

/// [`percent_decode`], handing each byte of the result to `emit` (to decode
/// into a buffer that is not a `Vec`, without an intermediate copy).
pub fn percent_decode_each(input: &[u8], mut emit: impl FnMut(u8)) {
    let hex = |b: Option<&u8>| -> Option<u8> {
        match *b? {
            b @ b'0'..=b'9' => Some(b - b'0'),
            b @ b'a'..=b'f' => Some(b - b'a' + 10),
            b @ b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    };
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let (Some(high), Some(low)) = (hex(input.get(i + 1)), hex(input.get(i + 2))) {
                emit((high << 4) | low);
                i += 3;
                continue;
            }
        }
        emit(b);
        i += 1;
    }
}

/// Writes `n` in decimal into `buf` and returns the digits, with no
/// allocation (for `Content-Length` values and port numbers).
///
/// ```
/// let mut buf = [0u8; 20];
/// assert_eq!(gatekit_core::util::format_u64(1234, &mut buf), "1234");
/// assert_eq!(gatekit_core::util::format_u64(u64::MAX, &mut buf), "18446744073709551615");
/// ```
pub fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    std::str::from_utf8(buf.get(i..).unwrap_or_default()).unwrap_or_default()
}

/// Percent-encodes bytes as `urllib.parse.quote` does: letters, digits,
/// `_.-~` and the bytes in `safe` stay, all else becomes `%XX` (upper case).
fn quote(bytes: &[u8], safe: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The application's base URI, without `PATH_INFO` or `QUERY_STRING` (`application_uri`).
#[must_use]
pub fn application_uri(environ: &Environ) -> String {
    let scheme = environ.url_scheme.as_ref();
    let mut url = format!("{scheme}://");
    match environ.get_bytes("HTTP_HOST").filter(|h| !h.is_empty()) {
        Some(host) => url.push_str(&String::from_utf8_lossy(host)),
        None => {
            url.push_str(&environ.get_lossy("SERVER_NAME").unwrap_or_default());
            let port = environ.get_lossy("SERVER_PORT").unwrap_or_default();
            let default = if scheme == "https" { "443" } else { "80" };
            if port != default {
                url.push(':');
                url.push_str(&port);
            }
        }
    }
    let script = environ
        .get_bytes("SCRIPT_NAME")
        .filter(|s| !s.is_empty())
        .unwrap_or(b"/");
    quote(script, b"/", &mut url);
    url
}

/// The full request URI, optionally with the query string (`request_uri`).
#[must_use]
pub fn request_uri(environ: &Environ, include_query: bool) -> String {
    let mut url = application_uri(environ);
    let mut path = String::new();
    quote(
        environ.get_bytes("PATH_INFO").unwrap_or_default(),
        b"/;=,",
        &mut path,
    );
    if environ
        .get_bytes("SCRIPT_NAME")
        .is_none_or(<[u8]>::is_empty)
    {
        url.push_str(path.get(1..).unwrap_or(""));
    } else {
        url.push_str(&path);
    }
    if include_query {
        if let Some(q) = environ.get_bytes("QUERY_STRING").filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(&String::from_utf8_lossy(q));
        }
    }
    url
}

/// POSIX `normpath` over bytes, as `posixpath.normpath` (two leading slashes kept, three or more folded).
fn normpath(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let initial = if path.starts_with(b"//") && !path.starts_with(b"///") {
        2
    } else {
        usize::from(path.starts_with(b"/"))
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if comp != b".." || (initial == 0 && parts.is_empty()) || parts.last() == Some(&&b".."[..])
        {
            parts.push(comp);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let mut out = vec![b'/'; initial];
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Moves the first segment of `PATH_INFO` to the end of `SCRIPT_NAME` and
/// returns it (`shift_path_info`): `None` when `PATH_INFO` is empty; empty
/// segments and `.` are skipped, as in wsgiref.
pub fn shift_path_info(environ: &mut Environ) -> Option<Vec<u8>> {
    let path_info = environ.get_bytes("PATH_INFO").unwrap_or_default().to_vec();
    if path_info.is_empty() {
        return None;
    }
    let mut parts: Vec<&[u8]> = path_info.split(|&b| b == b'/').collect();
    if parts.len() > 2 {
        let last = parts.len() - 1;
        let middle: Vec<&[u8]> = parts
            .get(1..last)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|p| !p.is_empty() && *p != b".")
            .collect();
        parts.splice(1..last, middle);
    }
    let name = if parts.len() > 1 {
        parts.remove(1).to_vec()
    } else {
        Vec::new()
    };
    let mut script = environ
        .get_bytes("SCRIPT_NAME")
        .unwrap_or_default()
        .to_vec();
    script.push(b'/');
    script.extend_from_slice(&name);
    let mut script = normpath(&script);
    if script.ends_with(b"/") {
        script.pop();
    }
    if name.is_empty() && !script.ends_with(b"/") {
        script.push(b'/');
    }
    let new_path = parts.join(&b'/');
    environ.set("SCRIPT_NAME", script);
    environ.set("PATH_INFO", new_path);
    // '/.' on PATH_INFO is not stripped above; wsgiref reports it as None.
    if name == b"." { None } else { Some(name) }
}

/// Fills in the variables a test needs (`setup_testing_defaults`).
pub fn setup_testing_defaults(environ: &mut Environ) {
    environ.set_default("SERVER_NAME", "127.0.0.1");
    environ.set_default("SERVER_PROTOCOL", "HTTP/1.0");
    let server_name = environ
        .get_bytes("SERVER_NAME")
        .unwrap_or_default()
        .to_vec();
    environ.set_default("HTTP_HOST", server_name);
    environ.set_default("REQUEST_METHOD", "GET");
    if !environ.contains("SCRIPT_NAME") && !environ.contains("PATH_INFO") {
        environ.set("SCRIPT_NAME", "");
        environ.set("PATH_INFO", "/");
    }
    let scheme = guess_scheme(environ);
    environ.url_scheme = scheme.into();
    environ.set_default("SERVER_PORT", if scheme == "https" { "443" } else { "80" });
}

/// A short plain-text CGI-style response for status `code` (an unknown code
/// becomes 400): `Status:` line, `Content-Type: text/plain`,
/// `Content-Length`, and the reason phrase as the body. For a front-end
/// behind a web server (FastCGI, SCGI) that must answer a request it
/// refused before any app ran.
#[must_use]
pub fn cgi_error_response(code: u16) -> Vec<u8> {
    let status = Status::from_code(code).unwrap_or(Status::BAD_REQUEST);
    let body = format!("{}\n", status.reason());
    format!(
        "Status: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        status.as_str(),
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environ {
        let mut e: Environ = pairs.iter().map(|(k, v)| (*k, *v)).collect();
        setup_testing_defaults(&mut e);
        e
    }

    fn latin1(s: &str) -> Vec<u8> {
        s.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect()
    }

    // test_wsgiref UtilityTests.checkShift
    fn check_shift(sn_in: &str, pi_in: &str, part: Option<&str>, sn_out: &str, pi_out: &str) {
        let mut e = env(&[("SCRIPT_NAME", sn_in), ("PATH_INFO", pi_in)]);
        let got = shift_path_info(&mut e);
        assert_eq!(
            got.as_deref(),
            part.map(str::as_bytes),
            "{sn_in:?} {pi_in:?}"
        );
        assert_eq!(e.get("PATH_INFO"), Some(pi_out), "{sn_in:?} {pi_in:?}");
        assert_eq!(e.get("SCRIPT_NAME"), Some(sn_out), "{sn_in:?} {pi_in:?}");
    }

    #[test]
    fn simple_shifts() {
        check_shift("", "/", Some(""), "/", "");
        check_shift("", "/x", Some("x"), "/x", "");
        check_shift("/", "", None, "/", "");
        check_shift("/a", "/x/y", Some("x"), "/a/x", "/y");
        check_shift("/a", "/x/", Some("x"), "/a/x", "/");
    }

    #[test]
    fn normalized_shifts() {
        check_shift("/a/b", "/../y", Some(".."), "/a", "/y");
        check_shift("", "/../y", Some(".."), "", "/y");
        check_shift("/a/b", "//y", Some("y"), "/a/b/y", "");
        check_shift("/a/b", "//y/", Some("y"), "/a/b/y", "/");
        check_shift("/a/b", "/./y", Some("y"), "/a/b/y", "");
        check_shift("/a/b", "/./y/", Some("y"), "/a/b/y", "/");
        check_shift("/a/b", "///./..//y/.//", Some(".."), "/a", "/y/");
        check_shift("/a/b", "///", Some(""), "/a/b/", "");
        check_shift("/a/b", "/.//", Some(""), "/a/b/", "");
        check_shift("/a/b", "/x//", Some("x"), "/a/b/x", "/");
        check_shift("/a/b", "/.", None, "/a/b", "");
    }

    // test_wsgiref UtilityTests.testDefaults
    #[test]
    fn defaults() {
        let e = env(&[]);
        for (k, v) in [
            ("SERVER_NAME", "127.0.0.1"),
            ("SERVER_PORT", "80"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("HTTP_HOST", "127.0.0.1"),
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/"),
        ] {
            assert_eq!(e.get(k), Some(v), "{k}");
            // An existing value is kept.
            assert_eq!(env(&[(k, "alt")]).get(k), Some("alt"), "{k}");
        }
        assert_eq!(Environ::VERSION, (1, 0));
        assert!(!e.run_once && !e.multithread && !e.multiprocess);
        assert_eq!(e.url_scheme, "http");
    }

    // test_wsgiref UtilityTests.testCrossDefaults
    #[test]
    fn cross_defaults() {
        assert_eq!(
            env(&[("SERVER_NAME", "foo.bar")]).get("HTTP_HOST"),
            Some("foo.bar")
        );
        for (https, scheme, port) in [
            ("on", "https", "443"),
            ("1", "https", "443"),
            ("yes", "https", "443"),
            ("foo", "http", "80"),
        ] {
            let e = env(&[("HTTPS", https)]);
            assert_eq!(e.url_scheme, scheme);
            assert_eq!(e.get("SERVER_PORT"), Some(port));
        }
    }

    // test_wsgiref UtilityTests.testGuessScheme
    #[test]
    fn guess_schemes() {
        assert_eq!(guess_scheme(&Environ::new()), "http");
        for (v, want) in [
            ("foo", "http"),
            ("on", "https"),
            ("yes", "https"),
            ("1", "https"),
        ] {
            assert_eq!(guess_scheme(&[("HTTPS", v)].into_iter().collect()), want);
        }
    }

    // test_wsgiref UtilityTests.testAppURIs
    #[test]
    fn app_uris() {
        let check = |uri: &str, e: Environ| assert_eq!(application_uri(&e), uri);
        check("http://127.0.0.1/", env(&[]));
        check("http://127.0.0.1/spam", env(&[("SCRIPT_NAME", "/spam")]));
        let mut e: Environ = [("SCRIPT_NAME", latin1("/sp\u{e4}m"))]
            .into_iter()
            .collect();
        setup_testing_defaults(&mut e);
        check("http://127.0.0.1/sp%E4m", e);
        check(
            "http://spam.example.com:2071/",
            env(&[
                ("HTTP_HOST", "spam.example.com:2071"),
                ("SERVER_PORT", "2071"),
            ]),
        );
        check(
            "http://spam.example.com/",
            env(&[("SERVER_NAME", "spam.example.com")]),
        );
        check(
            "http://127.0.0.1/",
            env(&[
                ("HTTP_HOST", "127.0.0.1"),
                ("SERVER_NAME", "spam.example.com"),
            ]),
        );
        check("https://127.0.0.1/", env(&[("HTTPS", "on")]));
        let mut e = env(&[("SERVER_PORT", "8000")]);
        e.remove("HTTP_HOST");
        check("http://127.0.0.1:8000/", e);
    }

    // test_wsgiref UtilityTests.testReqURIs
    #[test]
    fn req_uris() {
        let check = |uri: &str, q: bool, pairs: &[(&str, Vec<u8>)]| {
            let mut e: Environ = pairs.iter().map(|(k, v)| (*k, v.clone())).collect();
            setup_testing_defaults(&mut e);
            assert_eq!(request_uri(&e, q), uri);
        };
        let s = |x: &str| latin1(x);
        check("http://127.0.0.1/", true, &[]);
        check(
            "http://127.0.0.1/spam",
            true,
            &[("SCRIPT_NAME", s("/spam"))],
        );
        check(
            "http://127.0.0.1/sp%E4m",
            true,
            &[("SCRIPT_NAME", s("/sp\u{e4}m"))],
        );
        check(
            "http://127.0.0.1/spammity/spam",
            true,
            &[("SCRIPT_NAME", s("/spammity")), ("PATH_INFO", s("/spam"))],
        );
        check(
            "http://127.0.0.1/spammity/sp%E4m",
            true,
            &[
                ("SCRIPT_NAME", s("/spammity")),
                ("PATH_INFO", s("/sp\u{e4}m")),
            ],
        );
        check(
            "http://127.0.0.1/spammity/spam;ham",
            true,
            &[
                ("SCRIPT_NAME", s("/spammity")),
                ("PATH_INFO", s("/spam;ham")),
            ],
        );
        check(
            "http://127.0.0.1/spammity/spam;cookie=1234,5678",
            true,
            &[
                ("SCRIPT_NAME", s("/spammity")),
                ("PATH_INFO", s("/spam;cookie=1234,5678")),
            ],
        );
        let with_query = |q: &str| {
            vec![
                ("SCRIPT_NAME", s("/spammity")),
                ("PATH_INFO", s("/spam")),
                ("QUERY_STRING", s(q)),
            ]
        };
        check(
            "http://127.0.0.1/spammity/spam?say=ni",
            true,
            &with_query("say=ni"),
        );
        check(
            "http://127.0.0.1/spammity/spam?s%E4y=ni",
            true,
            &with_query("s%E4y=ni"),
        );
        check(
            "http://127.0.0.1/spammity/spam",
            false,
            &with_query("say=ni"),
        );
    }

    // test_wsgiref UtilityTests.testHopByHop
    #[test]
    fn hop_by_hop() {
        for hop in [
            "Connection",
            "Keep-Alive",
            "Proxy-Authenticate",
            "Proxy-Authorization",
            "TE",
            "Trailers",
            "Transfer-Encoding",
            "Upgrade",
        ] {
            for alt in [hop.to_owned(), hop.to_uppercase(), hop.to_lowercase()] {
                assert!(is_hop_by_hop(&alt), "{alt}");
            }
        }
        for not in [
            "Accept",
            "Cache-Control",
            "Date",
            "Pragma",
            "Trailer",
            "Via",
            "Warning",
        ] {
            for alt in [not.to_owned(), not.to_uppercase(), not.to_lowercase()] {
                assert!(!is_hop_by_hop(&alt), "{alt}");
            }
        }
    }

    #[test]
    fn content_length_parsing() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"12345"), Some(12345));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn normpath_matches_posixpath() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("//", "//"),
            ("///", "/"),
            ("/a/../..", "/"),
            ("a/../..", ".."),
            ("//a/./b/", "//a/b"),
            ("/a/b/", "/a/b"),
        ] {
            assert_eq!(normpath(i.as_bytes()), o.as_bytes(), "{i:?}");
        }
    }
}
