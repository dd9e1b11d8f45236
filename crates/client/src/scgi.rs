//! SCGI, the web server's side: a netstring head of CGI variables, the body, and a response
//! that runs to the end of the stream (SCGI protocol.txt §2, §3).

use std::io::{ErrorKind, Read};

use crate::Error;

/// Appends an SCGI request to `out`: the netstring head holding `params` (which must start
/// with `CONTENT_LENGTH` and include `SCGI=1`, as [`crate::Request::cgi_params`] gives them
/// for SCGI), then `body`.
///
/// # Errors
///
/// [`Error::Scgi`] if the head breaks a rule of the protocol (a NUL byte, a duplicate name,
/// `CONTENT_LENGTH` not first); [`Error::InvalidRequest`] if `CONTENT_LENGTH` is not the
/// body's length. `out` is unchanged on error.
pub fn encode_request<N, V>(params: &[(N, V)], body: &[u8], out: &mut Vec<u8>) -> Result<(), Error>
where
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let declared = params
        .first()
        .map(|(_, v)| v.as_ref() == body.len().to_string().as_bytes());
    if declared == Some(false) {
        return Err(Error::InvalidRequest(
            "the SCGI CONTENT_LENGTH is not the body's length",
        ));
    }
    gatekit_scgi::proto::encode_request(params, out)?;
    out.extend_from_slice(body);
    Ok(())
}

/// Reads `reader` to its end into `out`, refusing more than `limit` bytes in all.
///
/// # Errors
///
/// [`Error::ResponseTooLarge`] past `limit`, [`Error::Io`] if a read fails.
pub fn read_to_end_bounded<R: Read>(
    reader: &mut R,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), Error> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if n > limit.saturating_sub(out.len()) {
            return Err(Error::ResponseTooLarge { limit });
        }
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_request_bytes() {
        let mut out = Vec::new();
        let params = [
            ("CONTENT_LENGTH", "2"),
            ("SCGI", "1"),
            ("REQUEST_METHOD", "POST"),
        ];
        encode_request(&params, b"hi", &mut out).unwrap();
        assert_eq!(
            out,
            b"44:CONTENT_LENGTH\x002\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00,hi"
        );
    }

    #[test]
    fn refuses_bad_heads() {
        let mut out = Vec::new();
        let wrong_length = [("CONTENT_LENGTH", "3"), ("SCGI", "1")];
        assert!(matches!(
            encode_request(&wrong_length, b"hi", &mut out),
            Err(Error::InvalidRequest(_))
        ));
        let no_scgi = [("CONTENT_LENGTH", "0")];
        assert!(matches!(
            encode_request(&no_scgi, b"", &mut out),
            Err(Error::Scgi(_))
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn bounded_read() {
        let mut out = Vec::new();
        read_to_end_bounded(&mut &b"hello"[..], &mut out, 5).unwrap();
        assert_eq!(out, b"hello");
        let mut out = Vec::new();
        assert!(matches!(
            read_to_end_bounded(&mut &b"hello!"[..], &mut out, 5),
            Err(Error::ResponseTooLarge { limit: 5 })
        ));
    }
}
