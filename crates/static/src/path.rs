//! From the request's `PATH_INFO` to the segments of a path under the root.
//!
//! Everything here is checked on bytes, before the file system is touched:
//! a path that could climb out of the root is refused, never "cleaned up".

/// Why a request path was refused before any file was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathRefusal {
    /// Malformed: a NUL byte (decoded or still encoded). `400`.
    Malformed,
    /// A `.` or `..` segment, a backslash, an encoded slash or backslash
    /// in the raw URI, or a path that does not start with `/`. `404`.
    Refused,
}

/// A request path split into its segments, as bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestPath<'a> {
    /// The non-empty segments, none of them `.` or `..`.
    pub(crate) segments: Vec<&'a [u8]>,
    /// The path ended with `/` (a directory was asked for).
    pub(crate) trailing_slash: bool,
}

/// Splits `path_info` into segments, refusing whatever could escape the root.
///
/// `request_uri` is the raw request target (`REQUEST_URI`), when the gateway
/// sent it: `PATH_INFO` is already percent-decoded (RFC 3875 §4.1.5), so an
/// encoded slash (`%2F`) or backslash (`%5C`) can only be seen there.
pub(crate) fn parse<'a>(
    path_info: &'a [u8],
    request_uri: Option<&[u8]>,
) -> Result<RequestPath<'a>, PathRefusal> {
    if path_info.contains(&0) {
        return Err(PathRefusal::Malformed);
    }
    if let Some(uri) = request_uri {
        let raw_path = uri
            .split(|&b| b == b'?' || b == b'#')
            .next()
            .unwrap_or_default();
        for escape in raw_path.windows(3).filter(|w| w.first() == Some(&b'%')) {
            let code = escape.get(1..).unwrap_or_default();
            if code == b"00" {
                return Err(PathRefusal::Malformed);
            }
            if code.eq_ignore_ascii_case(b"2f") || code.eq_ignore_ascii_case(b"5c") {
                return Err(PathRefusal::Refused);
            }
        }
    }
    if path_info.contains(&b'\\') {
        return Err(PathRefusal::Refused);
    }
    if !path_info.is_empty() && !path_info.starts_with(b"/") {
        return Err(PathRefusal::Refused);
    }
    let mut segments = Vec::new();
    for segment in path_info.split(|&b| b == b'/') {
        match segment {
            b"" => {}
            b"." | b".." => return Err(PathRefusal::Refused),
            _ => segments.push(segment),
        }
    }
    Ok(RequestPath {
        segments,
        trailing_slash: path_info.ends_with(b"/"),
    })
}

/// Percent-encodes a path for a `Location` header: unreserved characters,
/// sub-delimiters, `:`, `@` and `/` stay; everything else is `%XX`.
pub(crate) fn encode_path(bytes: &[u8], out: &mut String) {
    encode(bytes, b"/:@!$&'()*+,;=-._~", out);
}

/// Percent-encodes a query string for a `Location` header, keeping its
/// visible ASCII as it is (it was sent that way) except `#`.
pub(crate) fn encode_query(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'#' {
            out.push(char::from(b));
        } else {
            push_escape(b, out);
        }
    }
}

fn encode(bytes: &[u8], safe: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            push_escape(b, out);
        }
    }
}

fn push_escape(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &[u8]) -> Result<(Vec<&[u8]>, bool), PathRefusal> {
        parse(path, None).map(|p| (p.segments, p.trailing_slash))
    }

    #[test]
    fn splits_and_skips_empty_segments() {
        assert_eq!(segments(b"/"), Ok((vec![], true)));
        assert_eq!(segments(b""), Ok((vec![], false)));
        assert_eq!(
            segments(b"/a//b/c.txt"),
            Ok((vec![&b"a"[..], b"b", b"c.txt"], false))
        );
        assert_eq!(segments(b"/dir/"), Ok((vec![&b"dir"[..]], true)));
        assert_eq!(segments(b"/caf\xff"), Ok((vec![&b"caf\xff"[..]], false)));
        // Dots inside a name are just a name.
        assert_eq!(segments(b"/..a/a../.b/...").map(|s| s.0.len()), Ok(4));
    }

    #[test]
    fn refuses_dot_segments() {
        for path in [
            &b"/.."[..],
            b"/../etc/passwd",
            b"/a/../../b",
            b"/a/..",
            b"/a/../",
            b"/./a",
            b"/a/.",
            b"..",
        ] {
            assert_eq!(segments(path), Err(PathRefusal::Refused), "{path:?}");
        }
    }

    #[test]
    fn refuses_backslashes_nul_and_relative_paths() {
        assert_eq!(segments(b"/..\\x"), Err(PathRefusal::Refused));
        assert_eq!(segments(b"/a\\b"), Err(PathRefusal::Refused));
        assert_eq!(segments(b"a/b"), Err(PathRefusal::Refused));
        assert_eq!(segments(b"*"), Err(PathRefusal::Refused));
        assert_eq!(segments(b"/a\0.txt"), Err(PathRefusal::Malformed));
    }

    #[test]
    fn refuses_encoded_separators_in_the_raw_uri() {
        let check = |uri: &[u8]| parse(b"/a/b", Some(uri)).map(|_| ());
        assert_eq!(check(b"/a%2fb"), Err(PathRefusal::Refused));
        assert_eq!(check(b"/a%2Fb"), Err(PathRefusal::Refused));
        assert_eq!(check(b"/a%5cb"), Err(PathRefusal::Refused));
        assert_eq!(check(b"/a%00b"), Err(PathRefusal::Malformed));
        assert_eq!(check(b"/a/b"), Ok(()));
        // Only the path counts; the query may hold anything.
        assert_eq!(check(b"/a/b?next=%2f"), Ok(()));
        assert_eq!(check(b"http://h/a%2Fb?x"), Err(PathRefusal::Refused));
    }

    #[test]
    fn encodes_locations() {
        let mut s = String::new();
        encode_path(b"/a b/caf\xc3\xa9/%?#", &mut s);
        assert_eq!(s, "/a%20b/caf%C3%A9/%25%3F%23");
        let mut q = String::new();
        encode_query(b"x=1&y=a b#c", &mut q);
        assert_eq!(q, "x=1&y=a%20b%23c");
    }
}
