//! FastCGI, the web server's side: encode a Responder request, decode the records that answer
//! it.
//!
//! A request is `BEGIN_REQUEST`, the `PARAMS` stream (the CGI variables as name-value pairs,
//! then an empty record) and the `STDIN` stream (the body, then an empty record), all built
//! with `gatekit_fastcgi::proto` (FastCGI 1.0 §5.1, §5.2, §6.2). The answer is the `STDOUT`
//! and `STDERR` streams and an `END_REQUEST` (§5.3, §5.5), collected by [`ResponseDecoder`]
//! up to a size cap.

use gatekit_fastcgi::proto::{
    self, BeginRequest, EndRequest, ProtocolStatus, RecordType, Role, decode_record,
    encode_begin_request, encode_pair, encode_stream_data, encode_stream_end,
};

use crate::Error;

/// The request id the client uses: one request per connection at a time, as nginx, Apache and
/// lighttpd do.
pub const REQUEST_ID: u16 = 1;

/// Appends a whole Responder request to `out`: `BEGIN_REQUEST` (with `FCGI_KEEP_CONN` when
/// `keep_conn`), the `PARAMS` stream holding `params`, and the `STDIN` stream holding `body`.
///
/// # Errors
///
/// [`Error::FastCgi`] if a name or value is too long for a name-value pair; `out` may then
/// hold part of the request.
pub fn encode_request<N, V>(
    request_id: u16,
    keep_conn: bool,
    params: &[(N, V)],
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error>
where
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let begin = BeginRequest {
        role: Role::Responder,
        flags: if keep_conn { proto::KEEP_CONN } else { 0 },
    };
    encode_begin_request(request_id, begin, out);
    let mut pairs = Vec::new();
    for (name, value) in params {
        encode_pair(name.as_ref(), value.as_ref(), &mut pairs)?;
    }
    encode_stream_data(RecordType::Params, request_id, &pairs, out);
    encode_stream_end(RecordType::Params, request_id, out);
    encode_stream_data(RecordType::Stdin, request_id, body, out);
    encode_stream_end(RecordType::Stdin, request_id, out);
    Ok(())
}

/// Collects the records answering one request: `STDOUT` and `STDERR` content until
/// `END_REQUEST`. Sans-IO: feed it bytes as they arrive.
#[derive(Debug)]
pub struct ResponseDecoder {
    request_id: u16,
    limit: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    end: Option<EndRequest>,
}

impl ResponseDecoder {
    /// A decoder for request `request_id` that accepts at most `limit` bytes of `STDOUT` and
    /// `STDERR` content together.
    #[must_use]
    pub fn new(request_id: u16, limit: usize) -> Self {
        ResponseDecoder {
            request_id,
            limit,
            stdout: Vec::new(),
            stderr: Vec::new(),
            end: None,
        }
    }

    /// Decodes the whole records at the start of `buf` and returns how many bytes they took.
    /// Stops after `END_REQUEST`; an incomplete record at the end is left for the next call.
    /// Management records (`UNKNOWN_TYPE`, `GET_VALUES_RESULT`) are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::FastCgi`] for a malformed record, [`Error::ResponseTooLarge`] past the limit,
    /// [`Error::BadResponse`] for a record of another request or of a type a web server never
    /// receives, [`Error::FastCgiRejected`] for an `END_REQUEST` whose protocol status is not
    /// `FCGI_REQUEST_COMPLETE`.
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        while self.end.is_none() {
            let Some((record, len)) = decode_record(buf.get(used..).unwrap_or_default())? else {
                break;
            };
            used += len;
            if record.request_id == proto::NULL_REQUEST_ID {
                continue;
            }
            if record.request_id != self.request_id {
                return Err(Error::BadResponse(
                    "a FastCGI record for another request id",
                ));
            }
            let total = self.stdout.len() + self.stderr.len();
            let sink = match record.record_type {
                RecordType::Stdout => &mut self.stdout,
                RecordType::Stderr => &mut self.stderr,
                RecordType::EndRequest => {
                    let end = EndRequest::decode(record.content)?;
                    if end.protocol_status != ProtocolStatus::RequestComplete {
                        return Err(Error::FastCgiRejected(end.protocol_status));
                    }
                    self.end = Some(end);
                    continue;
                }
                _ => return Err(Error::BadResponse("an unexpected FastCGI record type")),
            };
            if record.content.len() > self.limit.saturating_sub(total) {
                return Err(Error::ResponseTooLarge { limit: self.limit });
            }
            sink.extend_from_slice(record.content);
        }
        Ok(used)
    }

    /// Whether `END_REQUEST` has arrived.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.end.is_some()
    }

    /// The `STDERR` output so far.
    #[must_use]
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }

    /// The `STDOUT` and `STDERR` output and the application's status, once done.
    #[must_use]
    pub fn finish(self) -> Option<(Vec<u8>, Vec<u8>, u32)> {
        let end = self.end?;
        Some((self.stdout, self.stderr, end.app_status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekit_fastcgi::proto::encode_end_request;

    #[test]
    fn golden_request_bytes() {
        let mut out = Vec::new();
        encode_request(1, false, &[("A", "b")], b"hi", &mut out).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // BEGIN_REQUEST, id 1, 8 bytes: role 1 (Responder), flags 0.
            1, 1, 0, 1, 0, 8, 0, 0,   0, 1, 0, 0, 0, 0, 0, 0,
            // PARAMS, id 1, 4 bytes + 4 padding: name length 1, value length 1, "A", "b".
            1, 4, 0, 1, 0, 4, 4, 0,   1, 1, b'A', b'b', 0, 0, 0, 0,
            // The empty PARAMS record that ends the stream.
            1, 4, 0, 1, 0, 0, 0, 0,
            // STDIN, id 1, 2 bytes + 6 padding.
            1, 5, 0, 1, 0, 2, 6, 0,   b'h', b'i', 0, 0, 0, 0, 0, 0,
            // The empty STDIN record.
            1, 5, 0, 1, 0, 0, 0, 0,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn keep_conn_flag_and_empty_body() {
        let mut out = Vec::new();
        let none: [(&str, &str); 0] = [];
        encode_request(7, true, &none, b"", &mut out).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            1, 1, 0, 7, 0, 8, 0, 0,   0, 1, 1, 0, 0, 0, 0, 0,
            1, 4, 0, 7, 0, 0, 0, 0,
            1, 5, 0, 7, 0, 0, 0, 0,
        ];
        assert_eq!(out, expected);
    }

    fn response_bytes() -> Vec<u8> {
        let mut wire = Vec::new();
        encode_stream_data(
            RecordType::Stdout,
            1,
            b"Status: 200 OK\r\n\r\nhel",
            &mut wire,
        );
        encode_stream_data(RecordType::Stderr, 1, b"warn", &mut wire);
        encode_stream_data(RecordType::Stdout, 1, b"lo", &mut wire);
        encode_stream_end(RecordType::Stdout, 1, &mut wire);
        encode_end_request(1, EndRequest::complete(3), &mut wire);
        wire
    }

    #[test]
    fn decodes_split_at_every_offset() {
        let wire = response_bytes();
        for split in 0..=wire.len() {
            let mut d = ResponseDecoder::new(1, 1024);
            let mut buf = wire[..split].to_vec();
            let used = d.feed(&buf).unwrap();
            buf.drain(..used);
            buf.extend_from_slice(&wire[split..]);
            let used = d.feed(&buf).unwrap();
            assert_eq!(used, buf.len());
            let (out, err, status) = d.finish().unwrap();
            assert_eq!(out, b"Status: 200 OK\r\n\r\nhello");
            assert_eq!(err, b"warn");
            assert_eq!(status, 3);
        }
    }

    #[test]
    fn decoder_errors() {
        let wire = response_bytes();
        let mut d = ResponseDecoder::new(1, 10);
        assert!(matches!(
            d.feed(&wire),
            Err(Error::ResponseTooLarge { limit: 10 })
        ));
        let mut d = ResponseDecoder::new(2, 1024);
        assert!(matches!(d.feed(&wire), Err(Error::BadResponse(_))));
        let mut bad = wire.clone();
        bad[0] = 2;
        let mut d = ResponseDecoder::new(1, 1024);
        assert!(matches!(d.feed(&bad), Err(Error::FastCgi(_))));
        let mut rejected = Vec::new();
        encode_end_request(
            1,
            EndRequest {
                app_status: 0,
                protocol_status: ProtocolStatus::Overloaded,
            },
            &mut rejected,
        );
        let mut d = ResponseDecoder::new(1, 1024);
        assert!(matches!(
            d.feed(&rejected),
            Err(Error::FastCgiRejected(ProtocolStatus::Overloaded))
        ));
        let mut d = ResponseDecoder::new(1, 1024);
        assert!(d.feed(&wire[..wire.len() - 1]).unwrap() < wire.len());
        assert!(!d.is_done());
    }
}
