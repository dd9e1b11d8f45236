//! FastCGI 1.0 wire format: records, name-value pairs and the fixed-size bodies.
//!
//! This is the raw protocol shared by the application side and any future web-server side. It is
//! sans-IO: decoders take `&[u8]` and return `Ok(None)` when they need more bytes, encoders append
//! to a `Vec<u8>`. Nothing here reads, writes, blocks or looks at a clock, so every function can be
//! tested byte by byte and fuzzed.
//!
//! Section numbers (§) refer to the FastCGI Specification 1.0 (Mark R. Brown, Open Market,
//! 29 April 1996).
//!
//! - Records (§3.3): [`Header`], [`decode_record`], [`encode_record`], [`encode_stream_data`],
//!   [`encode_stream_end`] and, for zero-copy output, [`record_header`].
//! - Fixed-size bodies: [`BeginRequest`] (§5.1), [`EndRequest`] (§5.5), [`UnknownType`] (§4.2),
//!   with [`encode_begin_request`], [`encode_end_request`], [`encode_unknown_type`] and
//!   [`encode_abort_request`] (§5.4).
//! - Name-value pairs (§3.4): [`decode_pair`], [`pairs`], [`encode_pair`] and the incremental,
//!   size-limited [`ParamsDecoder`] for the PARAMS stream.
//! - Management records (§4.1): [`decode_get_values`], [`encode_get_values`] and
//!   [`encode_get_values_result`].
//!
//! The decoders are deliberately permissive about *which* record arrives: a STDOUT record sent to
//! an application decodes like any other. Whether it is acceptable is the connection state
//! machine's decision, not the codec's.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;

/// `FCGI_VERSION_1`, the only protocol version (§3.3, §8). Any other version is an error.
pub const VERSION_1: u8 = 1;

/// `FCGI_HEADER_LEN`: a record header is eight bytes (§3.3, §8).
pub const HEADER_LEN: usize = 8;

/// Largest record content: `contentLength` is a 16-bit field (§3.3).
pub const MAX_CONTENT_LEN: usize = 0xffff;

/// Largest record padding: `paddingLength` is an 8-bit field (§3.3).
///
/// Receivers skip any padding length; the encoders here only ever write 0 to 7 bytes.
pub const MAX_PADDING: usize = 0xff;

/// The encoders pad every record to a multiple of this many bytes (§3.3).
///
/// > We recommend that records be placed on boundaries that are multiples of eight bytes.
pub const ALIGNMENT: usize = 8;

/// `FCGI_NULL_REQUEST_ID`: the request id of management records (§3.3, §8).
pub const NULL_REQUEST_ID: u16 = 0;

/// `FCGI_KEEP_CONN`: the `BEGIN_REQUEST` flag asking the application to keep the connection open
/// after the response (§5.1, §3.5).
pub const KEEP_CONN: u8 = 1;

/// Largest name or value length in a name-value pair: lengths are at most 31 bits (§3.4).
pub const MAX_PAIR_LEN: usize = 0x7fff_ffff;

/// Length of the `BEGIN_REQUEST` (§5.1), `END_REQUEST` (§5.5) and `UNKNOWN_TYPE` (§4.2) bodies.
pub const BODY_LEN: usize = 8;

/// `FCGI_MAX_CONNS`, a `GET_VALUES` variable: the most concurrent connections the application
/// accepts (§4.1).
pub const MAX_CONNS: &[u8] = b"FCGI_MAX_CONNS";

/// `FCGI_MAX_REQS`, a `GET_VALUES` variable: the most concurrent requests the application accepts
/// (§4.1).
pub const MAX_REQS: &[u8] = b"FCGI_MAX_REQS";

/// `FCGI_MPXS_CONNS`, a `GET_VALUES` variable: `"1"` if the application multiplexes requests over
/// one connection, `"0"` if not (§4.1).
pub const MPXS_CONNS: &[u8] = b"FCGI_MPXS_CONNS";

/// Mask of the high bit that marks a four-byte name-value length (§3.4).
const LONG_LEN_FLAG: u32 = 0x8000_0000;

/// Largest length that fits the one-byte name-value length form (§3.4).
const MAX_SHORT_LEN: usize = 0x7f;

/// Zero bytes to copy padding from.
static ZEROS: [u8; MAX_PADDING] = [0; MAX_PADDING];

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What went wrong while decoding or encoding FastCGI data.
///
/// Running out of input is not an error: decoders return `Ok(None)` for that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A record header carries a version other than [`VERSION_1`].
    BadVersion(u8),
    /// An encoder was given more than [`MAX_CONTENT_LEN`] bytes for one record.
    ContentTooLong,
    /// A fixed-size body (`BEGIN_REQUEST`, `END_REQUEST`, `UNKNOWN_TYPE`) is not [`BODY_LEN`]
    /// bytes long.
    BadBodyLength {
        /// The record type whose body was being decoded.
        record_type: RecordType,
        /// The length that was found.
        len: usize,
    },
    /// A name-value stream ended in the middle of a pair.
    TruncatedPair,
    /// A name or value is longer than [`MAX_PAIR_LEN`] bytes (or, on a small target, a pair is
    /// larger than the address space).
    PairTooLong,
    /// The name-value pairs of a stream are larger than the caller's limit.
    ParamsTooLarge {
        /// The limit, in bytes of the encoded stream.
        limit: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadVersion(version) => write!(f, "unsupported FastCGI version {version}"),
            Error::ContentTooLong => {
                write!(f, "record content longer than {MAX_CONTENT_LEN} bytes")
            }
            Error::BadBodyLength { record_type, len } => {
                write!(f, "{record_type} body of {len} bytes, expected {BODY_LEN}")
            }
            Error::TruncatedPair => f.write_str("truncated name-value pair"),
            Error::PairTooLong => write!(f, "name or value longer than {MAX_PAIR_LEN} bytes"),
            Error::ParamsTooLarge { limit } => {
                write!(f, "name-value pairs larger than the {limit}-byte limit")
            }
        }
    }
}

impl std::error::Error for Error {}

// ---------------------------------------------------------------------------------------------
// Type codes
// ---------------------------------------------------------------------------------------------

/// A record type (§3.3, values in §8).
///
/// Types this version does not know are data, [`RecordType::Unknown`], so that the application
/// can answer them with `UNKNOWN_TYPE` (§4.2). [`RecordType::from_u8`] never produces `Unknown`
/// for the values 1 to 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// `FCGI_BEGIN_REQUEST` (1), web server to application (§5.1).
    BeginRequest,
    /// `FCGI_ABORT_REQUEST` (2), web server to application (§5.4).
    AbortRequest,
    /// `FCGI_END_REQUEST` (3), application to web server (§5.5).
    EndRequest,
    /// `FCGI_PARAMS` (4), a name-value stream to the application (§5.2).
    Params,
    /// `FCGI_STDIN` (5), a byte stream to the application (§5.3).
    Stdin,
    /// `FCGI_STDOUT` (6), a byte stream to the web server (§5.3).
    Stdout,
    /// `FCGI_STDERR` (7), a byte stream to the web server (§5.3).
    Stderr,
    /// `FCGI_DATA` (8), the Filter role's second input stream (§5.3, §6.4).
    Data,
    /// `FCGI_GET_VALUES` (9), a management query (§4.1).
    GetValues,
    /// `FCGI_GET_VALUES_RESULT` (10), the answer to a query (§4.1).
    GetValuesResult,
    /// `FCGI_UNKNOWN_TYPE` (11), the answer to a management record of unknown type (§4.2).
    UnknownType,
    /// Any other type code.
    Unknown(u8),
}

impl RecordType {
    /// The type for a wire code.
    #[must_use]
    pub const fn from_u8(code: u8) -> Self {
        match code {
            1 => RecordType::BeginRequest,
            2 => RecordType::AbortRequest,
            3 => RecordType::EndRequest,
            4 => RecordType::Params,
            5 => RecordType::Stdin,
            6 => RecordType::Stdout,
            7 => RecordType::Stderr,
            8 => RecordType::Data,
            9 => RecordType::GetValues,
            10 => RecordType::GetValuesResult,
            11 => RecordType::UnknownType,
            other => RecordType::Unknown(other),
        }
    }

    /// The wire code of this type.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            RecordType::BeginRequest => 1,
            RecordType::AbortRequest => 2,
            RecordType::EndRequest => 3,
            RecordType::Params => 4,
            RecordType::Stdin => 5,
            RecordType::Stdout => 6,
            RecordType::Stderr => 7,
            RecordType::Data => 8,
            RecordType::GetValues => 9,
            RecordType::GetValuesResult => 10,
            RecordType::UnknownType => 11,
            RecordType::Unknown(code) => code,
        }
    }
}

impl From<u8> for RecordType {
    fn from(code: u8) -> Self {
        RecordType::from_u8(code)
    }
}

impl From<RecordType> for u8 {
    fn from(record_type: RecordType) -> Self {
        record_type.as_u8()
    }
}

impl fmt::Display for RecordType {
    /// The specification's name, e.g. `FCGI_BEGIN_REQUEST`, or `record type 42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            RecordType::BeginRequest => "FCGI_BEGIN_REQUEST",
            RecordType::AbortRequest => "FCGI_ABORT_REQUEST",
            RecordType::EndRequest => "FCGI_END_REQUEST",
            RecordType::Params => "FCGI_PARAMS",
            RecordType::Stdin => "FCGI_STDIN",
            RecordType::Stdout => "FCGI_STDOUT",
            RecordType::Stderr => "FCGI_STDERR",
            RecordType::Data => "FCGI_DATA",
            RecordType::GetValues => "FCGI_GET_VALUES",
            RecordType::GetValuesResult => "FCGI_GET_VALUES_RESULT",
            RecordType::UnknownType => "FCGI_UNKNOWN_TYPE",
            RecordType::Unknown(code) => return write!(f, "record type {code}"),
        };
        f.write_str(name)
    }
}

/// The role a `BEGIN_REQUEST` asks the application to play (§5.1, §6).
///
/// An unknown role is data: the application answers it with `END_REQUEST` and
/// [`ProtocolStatus::UnknownRole`] (§5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `FCGI_RESPONDER` (1): the CGI/1.1 role (§6.2).
    Responder,
    /// `FCGI_AUTHORIZER` (2): allow or deny a request (§6.3).
    Authorizer,
    /// `FCGI_FILTER` (3): process a file sent on the DATA stream (§6.4).
    Filter,
    /// Any other role code.
    Unknown(u16),
}

impl Role {
    /// The role for a wire code.
    #[must_use]
    pub const fn from_u16(code: u16) -> Self {
        match code {
            1 => Role::Responder,
            2 => Role::Authorizer,
            3 => Role::Filter,
            other => Role::Unknown(other),
        }
    }

    /// The wire code of this role.
    #[must_use]
    pub const fn as_u16(self) -> u16 {
        match self {
            Role::Responder => 1,
            Role::Authorizer => 2,
            Role::Filter => 3,
            Role::Unknown(code) => code,
        }
    }
}

/// The protocol-level outcome carried by `END_REQUEST` (§5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolStatus {
    /// `FCGI_REQUEST_COMPLETE` (0): normal end of request.
    RequestComplete,
    /// `FCGI_CANT_MPX_CONN` (1): rejected a second concurrent request on a connection.
    CantMpxConn,
    /// `FCGI_OVERLOADED` (2): rejected because the application ran out of a resource.
    Overloaded,
    /// `FCGI_UNKNOWN_ROLE` (3): rejected because the role is not supported.
    UnknownRole,
    /// Any other status code.
    Unknown(u8),
}

impl ProtocolStatus {
    /// The status for a wire code.
    #[must_use]
    pub const fn from_u8(code: u8) -> Self {
        match code {
            0 => ProtocolStatus::RequestComplete,
            1 => ProtocolStatus::CantMpxConn,
            2 => ProtocolStatus::Overloaded,
            3 => ProtocolStatus::UnknownRole,
            other => ProtocolStatus::Unknown(other),
        }
    }

    /// The wire code of this status.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            ProtocolStatus::RequestComplete => 0,
            ProtocolStatus::CantMpxConn => 1,
            ProtocolStatus::Overloaded => 2,
            ProtocolStatus::UnknownRole => 3,
            ProtocolStatus::Unknown(code) => code,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// A record header (§3.3): `{version, type, requestIdB1, requestIdB0, contentLengthB1,
/// contentLengthB0, paddingLength, reserved}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Protocol version; [`Header::decode`] only returns [`VERSION_1`].
    pub version: u8,
    /// What the record carries.
    pub record_type: RecordType,
    /// The request the record belongs to; [`NULL_REQUEST_ID`] for management records.
    pub request_id: u16,
    /// Bytes of content that follow the header.
    pub content_length: u16,
    /// Bytes of padding that follow the content; receivers skip them.
    pub padding_length: u8,
}

impl Header {
    /// A version-1 header for `content_length` bytes of content, padded to [`ALIGNMENT`].
    #[must_use]
    pub const fn new(record_type: RecordType, request_id: u16, content_length: u16) -> Self {
        Header {
            version: VERSION_1,
            record_type,
            request_id,
            content_length,
            padding_length: padding_for(content_length as usize),
        }
    }

    /// Like [`Header::new`], for a content length given as `usize`.
    ///
    /// # Errors
    ///
    /// [`Error::ContentTooLong`] if `content_len` is over [`MAX_CONTENT_LEN`].
    pub fn for_content(
        record_type: RecordType,
        request_id: u16,
        content_len: usize,
    ) -> Result<Self, Error> {
        let content_length = u16::try_from(content_len).map_err(|_| Error::ContentTooLong)?;
        Ok(Header::new(record_type, request_id, content_length))
    }

    /// Decodes the header at the start of `buf`; bytes after the first eight are not looked at.
    ///
    /// Returns `Ok(None)` if `buf` is shorter than [`HEADER_LEN`]. The reserved byte is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::BadVersion`] if the version byte is not [`VERSION_1`].
    pub fn decode(buf: &[u8]) -> Result<Option<Self>, Error> {
        let Some(
            &[
                version,
                record_type,
                id1,
                id0,
                len1,
                len0,
                padding_length,
                _reserved,
            ],
        ) = buf.first_chunk::<HEADER_LEN>()
        else {
            return Ok(None);
        };
        if version != VERSION_1 {
            return Err(Error::BadVersion(version));
        }
        Ok(Some(Header {
            version,
            record_type: RecordType::from_u8(record_type),
            request_id: u16::from_be_bytes([id1, id0]),
            content_length: u16::from_be_bytes([len1, len0]),
            padding_length,
        }))
    }

    /// The eight header bytes; the reserved byte is zero.
    #[must_use]
    pub const fn encode(&self) -> [u8; HEADER_LEN] {
        let [id1, id0] = self.request_id.to_be_bytes();
        let [len1, len0] = self.content_length.to_be_bytes();
        [
            self.version,
            self.record_type.as_u8(),
            id1,
            id0,
            len1,
            len0,
            self.padding_length,
            0,
        ]
    }

    /// Length of the whole record: header, content and padding.
    #[must_use]
    pub const fn record_len(&self) -> usize {
        HEADER_LEN + self.content_length as usize + self.padding_length as usize
    }

    /// The `padding_length` zero bytes to send after the content.
    #[must_use]
    pub fn padding(&self) -> &'static [u8] {
        ZEROS
            .get(..usize::from(self.padding_length))
            .unwrap_or(&ZEROS)
    }
}

/// Padding that brings `content_len` up to a multiple of [`ALIGNMENT`].
const fn padding_for(content_len: usize) -> u8 {
    // The result is below ALIGNMENT, so it fits in a u8.
    ((ALIGNMENT - content_len % ALIGNMENT) % ALIGNMENT) as u8
}

/// One record, with its content borrowed from the input buffer and its padding dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record<'a> {
    /// What the record carries.
    pub record_type: RecordType,
    /// The request the record belongs to; [`NULL_REQUEST_ID`] for management records.
    pub request_id: u16,
    /// The content, at most [`MAX_CONTENT_LEN`] bytes.
    pub content: &'a [u8],
}

/// Decodes the record at the start of `buf`.
///
/// Returns the record and the number of bytes it occupies, padding included, or `Ok(None)` if
/// `buf` does not yet hold the whole record (padding included). Padding of any length
/// (0 to [`MAX_PADDING`]) is skipped unread, as §3.3 requires. Any record type decodes, including
/// types an application never receives; the caller decides what to accept. Never allocates.
///
/// # Errors
///
/// [`Error::BadVersion`] if the header's version is not [`VERSION_1`].
pub fn decode_record(buf: &[u8]) -> Result<Option<(Record<'_>, usize)>, Error> {
    let Some(header) = Header::decode(buf)? else {
        return Ok(None);
    };
    let content_end = HEADER_LEN + usize::from(header.content_length);
    let record_end = content_end + usize::from(header.padding_length);
    if buf.len() < record_end {
        return Ok(None);
    }
    let Some(content) = buf.get(HEADER_LEN..content_end) else {
        return Ok(None);
    };
    let record = Record {
        record_type: header.record_type,
        request_id: header.request_id,
        content,
    };
    Ok(Some((record, record_end)))
}

/// Appends one record holding `content`, padded to [`ALIGNMENT`].
///
/// An empty `content` gives the empty record that ends a stream (§3.3); [`encode_stream_data`]
/// is the right call for stream data of any length.
///
/// # Errors
///
/// [`Error::ContentTooLong`] if `content` is over [`MAX_CONTENT_LEN`] bytes; `out` is unchanged.
pub fn encode_record(
    record_type: RecordType,
    request_id: u16,
    content: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let header = Header::for_content(record_type, request_id, content.len())?;
    push_record(header, content, out);
    Ok(())
}

/// Appends `header`, `content` and the header's padding. `content` must match the header.
fn push_record(header: Header, content: &[u8], out: &mut Vec<u8>) {
    out.reserve(header.record_len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(content);
    out.extend_from_slice(header.padding());
}

/// The header bytes and padding for a record of `content_len` bytes, for writing the content
/// separately (with `sendfile(2)`, say): send the header, then the content, then the padding.
///
/// # Errors
///
/// [`Error::ContentTooLong`] if `content_len` is over [`MAX_CONTENT_LEN`].
pub fn record_header(
    record_type: RecordType,
    request_id: u16,
    content_len: usize,
) -> Result<([u8; HEADER_LEN], &'static [u8]), Error> {
    let header = Header::for_content(record_type, request_id, content_len)?;
    Ok((header.encode(), header.padding()))
}

/// Appends `data` to a stream as records of at most [`MAX_CONTENT_LEN`] bytes each.
///
/// Appends nothing for empty `data`: an empty record would end the stream (§3.3). End the
/// stream with [`encode_stream_end`].
pub fn encode_stream_data(
    record_type: RecordType,
    request_id: u16,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let mut rest = data;
    while !rest.is_empty() {
        let take = rest.len().min(MAX_CONTENT_LEN);
        let Some((chunk, tail)) = rest.split_at_checked(take) else {
            break;
        };
        // `take` is at most MAX_CONTENT_LEN, so it fits in a u16.
        push_record(
            Header::new(record_type, request_id, take as u16),
            chunk,
            out,
        );
        rest = tail;
    }
}

/// Appends the empty record that ends a stream (§3.3): "a stream is zero or more non-empty
/// records followed by an empty record".
pub fn encode_stream_end(record_type: RecordType, request_id: u16, out: &mut Vec<u8>) {
    push_record(Header::new(record_type, request_id, 0), &[], out);
}

/// Appends one record whose content `body` writes, patching in the header afterwards.
///
/// On error, `out` is restored to its length on entry.
fn encode_built_record(
    record_type: RecordType,
    request_id: u16,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let result = body(out).and_then(|()| {
        let content_len = out.len().saturating_sub(start + HEADER_LEN);
        let header = Header::for_content(record_type, request_id, content_len)?;
        if let Some(slot) = out.get_mut(start..start + HEADER_LEN) {
            slot.copy_from_slice(&header.encode());
        }
        out.extend_from_slice(header.padding());
        Ok(())
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Fixed-size bodies
// ---------------------------------------------------------------------------------------------

/// Views `content` as a fixed-size body of a `record_type` record.
fn fixed_body(record_type: RecordType, content: &[u8]) -> Result<&[u8; BODY_LEN], Error> {
    content.try_into().map_err(|_| Error::BadBodyLength {
        record_type,
        len: content.len(),
    })
}

/// The body of `BEGIN_REQUEST` (§5.1): `{roleB1, roleB0, flags, reserved[5]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BeginRequest {
    /// The role the application is asked to play.
    pub role: Role,
    /// Flag bits; only [`KEEP_CONN`] is defined.
    pub flags: u8,
}

impl BeginRequest {
    /// Decodes a `BEGIN_REQUEST` record's content. The reserved bytes are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::BadBodyLength`] unless `content` is exactly [`BODY_LEN`] bytes.
    pub fn decode(content: &[u8]) -> Result<Self, Error> {
        let &[role1, role0, flags, ..] = fixed_body(RecordType::BeginRequest, content)?;
        Ok(BeginRequest {
            role: Role::from_u16(u16::from_be_bytes([role1, role0])),
            flags,
        })
    }

    /// Whether the web server asked to keep the connection open after this request (§3.5):
    /// if not, the application closes it after the response.
    #[must_use]
    pub const fn keep_conn(&self) -> bool {
        self.flags & KEEP_CONN != 0
    }

    /// The eight body bytes, reserved bytes zero.
    #[must_use]
    pub const fn to_bytes(&self) -> [u8; BODY_LEN] {
        let [role1, role0] = self.role.as_u16().to_be_bytes();
        [role1, role0, self.flags, 0, 0, 0, 0, 0]
    }
}

/// Appends a `BEGIN_REQUEST` record (§5.1).
pub fn encode_begin_request(request_id: u16, body: BeginRequest, out: &mut Vec<u8>) {
    let content = body.to_bytes();
    push_record(
        Header::new(RecordType::BeginRequest, request_id, BODY_LEN as u16),
        &content,
        out,
    );
}

/// Appends an `ABORT_REQUEST` record, which has no content (§5.4).
pub fn encode_abort_request(request_id: u16, out: &mut Vec<u8>) {
    push_record(
        Header::new(RecordType::AbortRequest, request_id, 0),
        &[],
        out,
    );
}

/// The body of `END_REQUEST` (§5.5): `{appStatusB3..B0, protocolStatus, reserved[3]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndRequest {
    /// The application's status, as a CGI exit status would be (§6.2).
    pub app_status: u32,
    /// The protocol-level outcome.
    pub protocol_status: ProtocolStatus,
}

impl EndRequest {
    /// A normal completion, [`ProtocolStatus::RequestComplete`], with `app_status`.
    #[must_use]
    pub const fn complete(app_status: u32) -> Self {
        EndRequest {
            app_status,
            protocol_status: ProtocolStatus::RequestComplete,
        }
    }

    /// Decodes an `END_REQUEST` record's content. The reserved bytes are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::BadBodyLength`] unless `content` is exactly [`BODY_LEN`] bytes.
    pub fn decode(content: &[u8]) -> Result<Self, Error> {
        let &[s3, s2, s1, s0, protocol_status, ..] = fixed_body(RecordType::EndRequest, content)?;
        Ok(EndRequest {
            app_status: u32::from_be_bytes([s3, s2, s1, s0]),
            protocol_status: ProtocolStatus::from_u8(protocol_status),
        })
    }

    /// The eight body bytes, reserved bytes zero.
    #[must_use]
    pub const fn to_bytes(&self) -> [u8; BODY_LEN] {
        let [s3, s2, s1, s0] = self.app_status.to_be_bytes();
        [s3, s2, s1, s0, self.protocol_status.as_u8(), 0, 0, 0]
    }
}

/// Appends an `END_REQUEST` record (§5.5).
pub fn encode_end_request(request_id: u16, body: EndRequest, out: &mut Vec<u8>) {
    let content = body.to_bytes();
    push_record(
        Header::new(RecordType::EndRequest, request_id, BODY_LEN as u16),
        &content,
        out,
    );
}

/// The body of `UNKNOWN_TYPE` (§4.2): `{type, reserved[7]}`, naming the management record type the
/// application did not understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownType {
    /// The type that was not understood.
    pub record_type: RecordType,
}

impl UnknownType {
    /// Decodes an `UNKNOWN_TYPE` record's content. The reserved bytes are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::BadBodyLength`] unless `content` is exactly [`BODY_LEN`] bytes.
    pub fn decode(content: &[u8]) -> Result<Self, Error> {
        let &[record_type, ..] = fixed_body(RecordType::UnknownType, content)?;
        Ok(UnknownType {
            record_type: RecordType::from_u8(record_type),
        })
    }

    /// The eight body bytes, reserved bytes zero.
    #[must_use]
    pub const fn to_bytes(&self) -> [u8; BODY_LEN] {
        [self.record_type.as_u8(), 0, 0, 0, 0, 0, 0, 0]
    }
}

/// Appends an `UNKNOWN_TYPE` management record (request id 0) naming `body.record_type` (§4.2).
pub fn encode_unknown_type(body: UnknownType, out: &mut Vec<u8>) {
    let content = body.to_bytes();
    push_record(
        Header::new(RecordType::UnknownType, NULL_REQUEST_ID, BODY_LEN as u16),
        &content,
        out,
    );
}

// ---------------------------------------------------------------------------------------------
// Name-value pairs
// ---------------------------------------------------------------------------------------------

/// The parameter that declares the length of a request's body.
const CONTENT_LENGTH: &[u8] = b"CONTENT_LENGTH";

/// A name-value pair borrowed from a buffer: `(name, value)`, both arbitrary bytes.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// The declared lengths at the start of an encoded pair.
#[derive(Debug, Clone, Copy)]
struct PairLengths {
    /// Bytes taken by the two length fields: 2, 5 or 8.
    prefix: usize,
    /// Declared name length.
    name: usize,
    /// Declared value length.
    value: usize,
}

impl PairLengths {
    /// Reads both length fields, or `None` if `buf` ends inside them.
    #[inline]
    fn decode(buf: &[u8]) -> Option<Self> {
        let (name, name_width) = read_len(buf)?;
        let (value, value_width) = read_len(buf.get(name_width..)?)?;
        Some(PairLengths {
            prefix: name_width + value_width,
            name,
            value,
        })
    }

    /// Length of the whole encoded pair; `None` only where it overflows
    /// `usize` (each length is under 2^31).
    #[inline]
    fn total(self) -> Option<usize> {
        self.prefix
            .checked_add(self.name)
            .and_then(|n| n.checked_add(self.value))
    }
}

/// Reads one length field (§3.4): one byte with the high bit clear, or four bytes (big-endian)
/// with the high bit set and masked off. Returns the length and the field's width, or `None` if
/// `buf` ends inside the field.
#[inline]
fn read_len(buf: &[u8]) -> Option<(usize, usize)> {
    let &first = buf.first()?;
    if first & 0x80 == 0 {
        return Some((usize::from(first), 1));
    }
    let &bytes = buf.first_chunk::<4>()?;
    // 31 bits, which fit a usize (see the assertion below).
    Some(((u32::from_be_bytes(bytes) & !LONG_LEN_FLAG) as usize, 4))
}

// `read_len` widens a 31-bit length to usize without a check.
const _: () = assert!(usize::BITS >= 32);

/// Checks that `len` fits a length field.
fn check_len(len: usize) -> Result<(), Error> {
    if len > MAX_PAIR_LEN {
        return Err(Error::PairTooLong);
    }
    Ok(())
}

/// Appends a length field in its shortest form (§3.4). `len` must have passed [`check_len`].
fn push_len(len: usize, out: &mut Vec<u8>) {
    if len <= MAX_SHORT_LEN {
        // At most 0x7f, so it fits in a u8.
        out.push(len as u8);
    } else {
        // At most MAX_PAIR_LEN (31 bits), so it fits in a u32.
        out.extend_from_slice(&(len as u32 | LONG_LEN_FLAG).to_be_bytes());
    }
}

/// Decodes the name-value pair at the start of `buf` (§3.4).
///
/// Returns `(name, value)` borrowed from `buf` and the number of bytes the pair occupies, or
/// `Ok(None)` if `buf` ends inside the pair. Both length forms are accepted for any length, names
/// and values are arbitrary bytes, and nothing is allocated.
///
/// # Errors
///
/// [`Error::PairTooLong`] only on targets where the declared lengths overflow `usize`.
pub fn decode_pair(buf: &[u8]) -> Result<Option<(Pair<'_>, usize)>, Error> {
    let Some(lengths) = PairLengths::decode(buf) else {
        return Ok(None);
    };
    let end = lengths.total().ok_or(Error::PairTooLong)?;
    let Some(body) = buf.get(lengths.prefix..end) else {
        return Ok(None);
    };
    let Some(pair) = body.split_at_checked(lengths.name) else {
        return Ok(None);
    };
    Ok(Some((pair, end)))
}

/// Where the name-value pair at the start of `buf` lies (§3.4): the ranges of its name and its
/// value within `buf`, and the number of bytes the pair takes; `None` if `buf` does not start
/// with a whole pair. [`decode_pair`] for a caller that keeps the buffer and indexes into it
/// (the App server hands a request's [`Params`] buffer to its environ this way, uncopied).
#[must_use]
pub fn pair_layout(buf: &[u8]) -> Option<(Range<usize>, Range<usize>, usize)> {
    let lengths = PairLengths::decode(buf)?;
    let end = lengths.total().filter(|&end| end <= buf.len())?;
    // Below `end`, so no overflow.
    let mid = lengths.prefix + lengths.name;
    Some((lengths.prefix..mid, mid..end, end))
}

/// Appends one name-value pair (§3.4), each length in its shortest form: one byte up to 127,
/// otherwise four bytes with the high bit set.
///
/// # Errors
///
/// [`Error::PairTooLong`] if `name` or `value` is over [`MAX_PAIR_LEN`] bytes; `out` is
/// unchanged.
pub fn encode_pair(name: &[u8], value: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    check_len(name.len())?;
    check_len(value.len())?;
    out.reserve(8 + name.len() + value.len());
    push_len(name.len(), out);
    push_len(value.len(), out);
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    Ok(())
}

/// Iterates over the name-value pairs in a complete buffer, such as the content of a
/// `GET_VALUES_RESULT` record.
#[must_use]
pub fn pairs(buf: &[u8]) -> Pairs<'_> {
    Pairs { rest: buf }
}

/// Iterator over the name-value pairs of a complete buffer; see [`pairs`].
///
/// Yields `Err(`[`Error::TruncatedPair`]`)` if the buffer ends inside a pair, and then stops.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<Pair<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match decode_pair(self.rest) {
            Ok(Some((pair, used))) => {
                self.rest = self.rest.get(used..).unwrap_or_default();
                Some(Ok(pair))
            }
            Ok(None) => {
                self.rest = &[];
                Some(Err(Error::TruncatedPair))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for Pairs<'_> {}

/// Incremental decoder for a PARAMS stream (§5.2), bounded by a byte limit.
///
/// Feed it the content of each PARAMS record as it arrives; pairs may straddle records (§3.3).
/// When the empty record that ends the stream arrives, call [`ParamsDecoder::finish`].
///
/// The limit counts encoded bytes, length fields included, and bounds the memory the decoder
/// holds. A feed fails with [`Error::ParamsTooLarge`] as soon as the bytes received, or the
/// declared length of a pair, would go past the limit: the decoder never buffers or reserves more
/// than `limit` bytes, whatever the lengths on the wire claim.
///
/// Decoding is a loop, not recursion, so the number of pairs is bounded only by the limit.
#[derive(Debug, Clone)]
pub struct ParamsDecoder {
    limit: usize,
    /// Every byte fed so far, validated up to `parsed`.
    buf: Vec<u8>,
    /// Length of the prefix of `buf` that holds complete pairs.
    parsed: usize,
    /// Number of complete pairs in `buf[..parsed]`.
    count: usize,
    /// Where in `buf` the value of the last `CONTENT_LENGTH` pair lies.
    content_length: Option<(usize, usize)>,
    /// The first error, returned again by every later call.
    error: Option<Error>,
}

impl ParamsDecoder {
    /// A decoder that accepts at most `limit` bytes of encoded pairs.
    #[must_use]
    pub const fn new(limit: usize) -> Self {
        ParamsDecoder {
            limit,
            buf: Vec::new(),
            parsed: 0,
            count: 0,
            content_length: None,
            error: None,
        }
    }

    /// A decoder like [`ParamsDecoder::new`] that stores the pairs in `buffer` (emptied first),
    /// so that the allocation of an earlier [`Params::into_buffer`] serves again.
    #[must_use]
    pub fn with_buffer(limit: usize, mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        ParamsDecoder {
            limit,
            buf: buffer,
            parsed: 0,
            count: 0,
            content_length: None,
            error: None,
        }
    }

    /// Adds the content of one PARAMS record.
    ///
    /// # Errors
    ///
    /// [`Error::ParamsTooLarge`] as soon as the stream would go past the limit. After an error
    /// the decoder is spent: every later call returns the same error.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let result = self.feed_inner(chunk);
        if let Err(error) = result {
            self.error = Some(error);
            // Give the memory back at once; the caller may keep the decoder around.
            self.buf = Vec::new();
        }
        result
    }

    fn feed_inner(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let too_large = Error::ParamsTooLarge { limit: self.limit };
        let total = self
            .buf
            .len()
            .checked_add(chunk.len())
            .filter(|&total| total <= self.limit)
            .ok_or(too_large)?;
        if total > self.buf.capacity() {
            // Grow geometrically, but never past the limit.
            let target = total
                .max(self.buf.capacity().saturating_mul(2))
                .min(self.limit);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(chunk);
        let (mut parsed, mut count) = (self.parsed, self.count);
        let result = loop {
            let rest = self.buf.get(parsed..).unwrap_or_default();
            let Some(lengths) = PairLengths::decode(rest) else {
                break Ok(());
            };
            let Some(end) = lengths
                .total()
                .and_then(|n| n.checked_add(parsed))
                .filter(|&end| end <= self.limit)
            else {
                break Err(too_large);
            };
            if end > self.buf.len() {
                break Ok(());
            }
            if lengths.name == CONTENT_LENGTH.len() {
                let name_start = parsed + lengths.prefix;
                let value_start = name_start + lengths.name;
                if self.buf.get(name_start..value_start) == Some(CONTENT_LENGTH) {
                    self.content_length = Some((value_start, end));
                }
            }
            parsed = end;
            count += 1;
        };
        self.parsed = parsed;
        self.count = count;
        result
    }

    /// Number of complete pairs received so far.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether no complete pair has been received yet.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Ends the stream and returns the pairs.
    ///
    /// # Errors
    ///
    /// [`Error::TruncatedPair`] if the stream ended inside a pair, or the error an earlier
    /// [`ParamsDecoder::feed`] returned.
    pub fn finish(self) -> Result<Params, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.parsed != self.buf.len() {
            return Err(Error::TruncatedPair);
        }
        Ok(Params {
            buf: self.buf,
            count: self.count,
            content_length: self.content_length,
        })
    }
}

/// The name-value pairs of a complete PARAMS stream, as returned by [`ParamsDecoder::finish`].
///
/// Names and values are bytes, never checked for UTF-8. The pairs keep their wire order, and
/// duplicates are kept. They are held in one buffer of at most the decoder's limit.
#[derive(Clone, Default)]
pub struct Params {
    /// Complete, validated pairs in wire encoding.
    buf: Vec<u8>,
    count: usize,
    /// Where the value of the last `CONTENT_LENGTH` pair lies in `buf`.
    content_length: Option<(usize, usize)>,
}

impl Params {
    /// Number of pairs.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no pairs.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The pairs in wire order.
    #[must_use]
    pub fn iter(&self) -> ParamsIter<'_> {
        ParamsIter {
            pairs: pairs(&self.buf),
            remaining: self.count,
        }
    }

    /// The value of the last pair named `name`, if any (a later definition overrides an earlier
    /// one, as in an environment).
    #[must_use]
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter()
            .filter(|&(n, _)| n == name)
            .last()
            .map(|(_, value)| value)
    }

    /// The value of the last `CONTENT_LENGTH` pair, if any: the same as
    /// `get(b"CONTENT_LENGTH")`, noted while decoding, for the length of the
    /// `FCGI_STDIN` stream a Responder or Filter is to receive (§6.2, §6.4)
    /// without searching the pairs again.
    #[must_use]
    pub fn content_length(&self) -> Option<&[u8]> {
        let (start, end) = self.content_length?;
        self.buf.get(start..end)
    }

    /// Gives back the buffer that held the pairs, for [`ParamsDecoder::with_buffer`].
    #[must_use]
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The pairs as owned byte vectors, in wire order.
    #[must_use]
    pub fn to_vec(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.iter()
            .map(|(name, value)| (name.to_vec(), value.to_vec()))
            .collect()
    }
}

impl PartialEq for Params {
    /// Equal if the pairs are, in order; how their lengths were encoded does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    /// Shows the pairs as a map of escaped byte strings, duplicates included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(name, value)| (EscapedBytes(name), EscapedBytes(value))),
            )
            .finish()
    }
}

/// Debug-formats bytes as a quoted string with non-printable bytes escaped.
struct EscapedBytes<'a>(&'a [u8]);

impl fmt::Debug for EscapedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = Pair<'a>;
    type IntoIter = ParamsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the pairs of [`Params`].
#[derive(Debug, Clone)]
pub struct ParamsIter<'a> {
    pairs: Pairs<'a>,
    remaining: usize,
}

impl<'a> Iterator for ParamsIter<'a> {
    type Item = Pair<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // The buffer was validated by the decoder, so an error cannot occur here.
        let pair = self.pairs.next()?.ok()?;
        self.remaining = self.remaining.saturating_sub(1);
        Some(pair)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ParamsIter<'_> {}

impl FusedIterator for ParamsIter<'_> {}

// ---------------------------------------------------------------------------------------------
// Management records
// ---------------------------------------------------------------------------------------------

/// Iterates over the variable names asked for by a `GET_VALUES` record's content (§4.1).
///
/// The query is a list of name-value pairs with empty values; a value, if any, is ignored.
/// Names are yielded as sent, including names the application does not know: §4.1 has the
/// application leave those out of its answer.
#[must_use]
pub fn decode_get_values(content: &[u8]) -> GetValues<'_> {
    GetValues {
        pairs: pairs(content),
    }
}

/// Iterator over the names of a `GET_VALUES` query; see [`decode_get_values`].
///
/// Yields `Err(`[`Error::TruncatedPair`]`)` if the content ends inside a pair, and then stops.
#[derive(Debug, Clone)]
pub struct GetValues<'a> {
    pairs: Pairs<'a>,
}

impl<'a> Iterator for GetValues<'a> {
    type Item = Result<&'a [u8], Error>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.pairs.next()?.map(|(name, _)| name))
    }
}

impl FusedIterator for GetValues<'_> {}

/// Appends a `GET_VALUES` management record (request id 0) asking for `names` (§4.1).
///
/// # Errors
///
/// [`Error::ContentTooLong`] if the query does not fit one record, or [`Error::PairTooLong`];
/// `out` is unchanged.
pub fn encode_get_values(names: &[&[u8]], out: &mut Vec<u8>) -> Result<(), Error> {
    encode_built_record(RecordType::GetValues, NULL_REQUEST_ID, out, |out| {
        names
            .iter()
            .try_for_each(|name| encode_pair(name, &[], out))
    })
}

/// Appends a `GET_VALUES_RESULT` management record (request id 0) with `(name, value)` answers
/// (§4.1).
///
/// # Errors
///
/// [`Error::ContentTooLong`] if the answer does not fit one record, or [`Error::PairTooLong`];
/// `out` is unchanged.
pub fn encode_get_values_result(values: &[Pair<'_>], out: &mut Vec<u8>) -> Result<(), Error> {
    encode_built_record(RecordType::GetValuesResult, NULL_REQUEST_ID, out, |out| {
        values
            .iter()
            .try_for_each(|&(name, value)| encode_pair(name, value, out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // -----------------------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------------------

    /// An owned view of a decoded record, so that helpers can compare results across buffers.
    type OwnedRecord = (RecordType, u16, Vec<u8>);

    /// An owned view of a decoded pair.
    type OwnedPair = (Vec<u8>, Vec<u8>);

    fn owned_record(buf: &[u8]) -> Result<Option<(OwnedRecord, usize)>, Error> {
        decode_record(buf).map(|found| {
            found.map(|(r, used)| ((r.record_type, r.request_id, r.content.to_vec()), used))
        })
    }

    fn owned_pair(buf: &[u8]) -> Result<Option<(OwnedPair, usize)>, Error> {
        decode_pair(buf)
            .map(|found| found.map(|((name, value), used)| ((name.to_vec(), value.to_vec()), used)))
    }

    /// Runs `decode` on every strict prefix of `bytes` and on `bytes` followed by junk.
    ///
    /// Every prefix must give `Ok(None)` (or, if the whole input is an error, that same error),
    /// and extra bytes after the input must not change the result. Returns the whole-input result.
    fn assert_split<T>(
        bytes: &[u8],
        decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, Error>,
    ) -> Result<Option<(T, usize)>, Error>
    where
        T: PartialEq + fmt::Debug,
    {
        let whole = decode(bytes);
        for cut in 0..bytes.len() {
            let got = decode(&bytes[..cut]);
            let ok = match (&got, &whole) {
                (Ok(None), _) => true,
                (Err(got), Err(want)) => got == want,
                _ => false,
            };
            assert!(
                ok,
                "prefix of {cut} of {} bytes gave {got:?}, the whole input {whole:?}",
                bytes.len()
            );
        }
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(b"\x01\x06junk after the input");
        assert_eq!(decode(&longer), whole, "trailing bytes changed the result");
        whole
    }

    /// Feeds `chunks` to a fresh decoder and finishes it.
    fn feed_all(chunks: &[&[u8]], limit: usize) -> Result<Vec<OwnedPair>, Error> {
        let mut decoder = ParamsDecoder::new(limit);
        for chunk in chunks {
            decoder.feed(chunk)?;
        }
        decoder.finish().map(|params| {
            // Noted while decoding, whatever the split: the same as a search.
            assert_eq!(params.content_length(), params.get(b"CONTENT_LENGTH"));
            let mut rest = params.buf.as_slice();
            for (name, value) in &params {
                let (n, v, used) = pair_layout(rest).expect("a whole pair");
                assert_eq!((&rest[n], &rest[v]), (name, value));
                rest = &rest[used..];
            }
            assert!(rest.is_empty() && pair_layout(rest).is_none());
            params.to_vec()
        })
    }

    /// Feeds `bytes` to a `ParamsDecoder` whole, in two pieces at every split, and one byte at a
    /// time; all must agree. Returns the result.
    fn assert_params_split(bytes: &[u8], limit: usize) -> Result<Vec<OwnedPair>, Error> {
        let whole = feed_all(&[bytes], limit);
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(feed_all(&[a, b], limit), whole, "split at {cut}");
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(feed_all(&bytewise, limit), whole, "one byte at a time");
        whole
    }

    /// Decodes every record of a buffer; the buffer must hold whole records only.
    fn decode_all(mut buf: &[u8]) -> Vec<Record<'_>> {
        let mut records = Vec::new();
        while !buf.is_empty() {
            let (record, used) = decode_record(buf).unwrap().expect("a whole record");
            records.push(record);
            buf = &buf[used..];
        }
        records
    }

    fn pair_bytes(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in pairs {
            encode_pair(name, value, &mut out).unwrap();
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // Golden records: one or more per record type, decoded and re-encoded
    // -----------------------------------------------------------------------------------------

    struct RecordCase {
        desc: &'static str,
        bytes: &'static [u8],
        want: Record<'static>,
        /// Produces `bytes` with the encoder a peer would use for this record.
        encode: fn(&mut Vec<u8>),
    }

    const RECORD_CASES: &[RecordCase] = &[
        RecordCase {
            desc: "begin request, responder, keep-conn",
            bytes: b"\x01\x01\x00\x01\x00\x08\x00\x00\
                     \x00\x01\x01\x00\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::BeginRequest,
                request_id: 1,
                content: b"\x00\x01\x01\x00\x00\x00\x00\x00",
            },
            encode: |out| {
                let body = BeginRequest {
                    role: Role::Responder,
                    flags: KEEP_CONN,
                };
                encode_begin_request(1, body, out);
            },
        },
        RecordCase {
            desc: "begin request, filter, id 0x1234, no flags",
            bytes: b"\x01\x01\x12\x34\x00\x08\x00\x00\
                     \x00\x03\x00\x00\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::BeginRequest,
                request_id: 0x1234,
                content: b"\x00\x03\x00\x00\x00\x00\x00\x00",
            },
            encode: |out| {
                let body = BeginRequest {
                    role: Role::Filter,
                    flags: 0,
                };
                encode_begin_request(0x1234, body, out);
            },
        },
        RecordCase {
            desc: "abort request",
            bytes: b"\x01\x02\x00\x01\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::AbortRequest,
                request_id: 1,
                content: b"",
            },
            encode: |out| encode_abort_request(1, out),
        },
        RecordCase {
            desc: "end request, app status 0x01020304, overloaded",
            bytes: b"\x01\x03\x00\x01\x00\x08\x00\x00\
                     \x01\x02\x03\x04\x02\x00\x00\x00",
            want: Record {
                record_type: RecordType::EndRequest,
                request_id: 1,
                content: b"\x01\x02\x03\x04\x02\x00\x00\x00",
            },
            encode: |out| {
                let body = EndRequest {
                    app_status: 0x0102_0304,
                    protocol_status: ProtocolStatus::Overloaded,
                };
                encode_end_request(1, body, out);
            },
        },
        RecordCase {
            desc: "end request, complete, id 0xffff",
            bytes: b"\x01\x03\xff\xff\x00\x08\x00\x00\
                     \x00\x00\x00\x00\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::EndRequest,
                request_id: 0xffff,
                content: b"\x00\x00\x00\x00\x00\x00\x00\x00",
            },
            encode: |out| encode_end_request(0xffff, EndRequest::complete(0), out),
        },
        RecordCase {
            desc: "params, one pair, one byte of padding",
            bytes: b"\x01\x04\x00\x01\x00\x0f\x01\x00\
                     \x0b\x02SERVER_PORT80\
                     \x00",
            want: Record {
                record_type: RecordType::Params,
                request_id: 1,
                content: b"\x0b\x02SERVER_PORT80",
            },
            encode: |out| {
                let content = pair_bytes(&[(b"SERVER_PORT", b"80")]);
                encode_stream_data(RecordType::Params, 1, &content, out);
            },
        },
        RecordCase {
            desc: "params, end of stream",
            bytes: b"\x01\x04\x00\x01\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::Params,
                request_id: 1,
                content: b"",
            },
            encode: |out| encode_stream_end(RecordType::Params, 1, out),
        },
        RecordCase {
            desc: "stdin, three bytes of padding",
            bytes: b"\x01\x05\x00\x01\x00\x05\x03\x00hello\x00\x00\x00",
            want: Record {
                record_type: RecordType::Stdin,
                request_id: 1,
                content: b"hello",
            },
            encode: |out| encode_stream_data(RecordType::Stdin, 1, b"hello", out),
        },
        RecordCase {
            desc: "stdout, aligned, no padding",
            bytes: b"\x01\x06\x00\x02\x00\x10\x00\x00Status: 200 OK\r\n",
            want: Record {
                record_type: RecordType::Stdout,
                request_id: 2,
                content: b"Status: 200 OK\r\n",
            },
            encode: |out| encode_stream_data(RecordType::Stdout, 2, b"Status: 200 OK\r\n", out),
        },
        RecordCase {
            desc: "stdout, end of stream",
            bytes: b"\x01\x06\x00\x02\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::Stdout,
                request_id: 2,
                content: b"",
            },
            encode: |out| encode_stream_end(RecordType::Stdout, 2, out),
        },
        RecordCase {
            desc: "stderr",
            bytes: b"\x01\x07\x00\x01\x00\x05\x03\x00oops\n\x00\x00\x00",
            want: Record {
                record_type: RecordType::Stderr,
                request_id: 1,
                content: b"oops\n",
            },
            encode: |out| encode_stream_data(RecordType::Stderr, 1, b"oops\n", out),
        },
        RecordCase {
            desc: "data",
            bytes: b"\x01\x08\x00\x01\x00\x08\x00\x00filedata",
            want: Record {
                record_type: RecordType::Data,
                request_id: 1,
                content: b"filedata",
            },
            encode: |out| encode_stream_data(RecordType::Data, 1, b"filedata", out),
        },
        RecordCase {
            desc: "get values, the three spec variables",
            bytes: b"\x01\x09\x00\x00\x00\x30\x00\x00\
                     \x0e\x00FCGI_MAX_CONNS\
                     \x0d\x00FCGI_MAX_REQS\
                     \x0f\x00FCGI_MPXS_CONNS",
            want: Record {
                record_type: RecordType::GetValues,
                request_id: 0,
                content: b"\x0e\x00FCGI_MAX_CONNS\
                           \x0d\x00FCGI_MAX_REQS\
                           \x0f\x00FCGI_MPXS_CONNS",
            },
            encode: |out| encode_get_values(&[MAX_CONNS, MAX_REQS, MPXS_CONNS], out).unwrap(),
        },
        RecordCase {
            desc: "get values result",
            bytes: b"\x01\x0a\x00\x00\x00\x23\x05\x00\
                     \x0e\x01FCGI_MAX_CONNS1\
                     \x0f\x01FCGI_MPXS_CONNS0\
                     \x00\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::GetValuesResult,
                request_id: 0,
                content: b"\x0e\x01FCGI_MAX_CONNS1\
                           \x0f\x01FCGI_MPXS_CONNS0",
            },
            encode: |out| {
                let values: &[Pair<'_>] = &[(MAX_CONNS, b"1"), (MPXS_CONNS, b"0")];
                encode_get_values_result(values, out).unwrap();
            },
        },
        RecordCase {
            desc: "unknown type reply naming type 42",
            bytes: b"\x01\x0b\x00\x00\x00\x08\x00\x00\
                     \x2a\x00\x00\x00\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::UnknownType,
                request_id: 0,
                content: b"\x2a\x00\x00\x00\x00\x00\x00\x00",
            },
            encode: |out| {
                let body = UnknownType {
                    record_type: RecordType::Unknown(42),
                };
                encode_unknown_type(body, out);
            },
        },
        RecordCase {
            desc: "record of unknown type 42 is data",
            bytes: b"\x01\x2a\x00\x00\x00\x03\x05\x00abc\x00\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::Unknown(42),
                request_id: 0,
                content: b"abc",
            },
            encode: |out| encode_record(RecordType::Unknown(42), 0, b"abc", out).unwrap(),
        },
        RecordCase {
            desc: "record of type 0 is data",
            bytes: b"\x01\x00\x00\x07\x00\x00\x00\x00",
            want: Record {
                record_type: RecordType::Unknown(0),
                request_id: 7,
                content: b"",
            },
            encode: |out| encode_record(RecordType::Unknown(0), 7, b"", out).unwrap(),
        },
    ];

    #[test]
    fn golden_records_decode() {
        for case in RECORD_CASES {
            let got = decode_record(case.bytes);
            assert_eq!(
                got,
                Ok(Some((case.want, case.bytes.len()))),
                "{}",
                case.desc
            );
        }
    }

    #[test]
    fn golden_records_encode() {
        for case in RECORD_CASES {
            let mut out = b"prefix".to_vec();
            (case.encode)(&mut out);
            assert_eq!(
                out[6..].escape_ascii().to_string(),
                case.bytes.escape_ascii().to_string(),
                "{}",
                case.desc
            );
            // The generic encoder gives the same bytes.
            let mut generic = Vec::new();
            encode_record(
                case.want.record_type,
                case.want.request_id,
                case.want.content,
                &mut generic,
            )
            .unwrap();
            assert_eq!(generic, case.bytes, "{} (encode_record)", case.desc);
        }
    }

    #[test]
    fn golden_records_split_at_every_byte() {
        for case in RECORD_CASES {
            let whole = assert_split(case.bytes, owned_record);
            assert_eq!(whole.unwrap().unwrap().1, case.bytes.len(), "{}", case.desc);
        }
    }

    #[test]
    fn golden_records_back_to_back() {
        let all: Vec<u8> = RECORD_CASES.iter().flat_map(|c| c.bytes.to_vec()).collect();
        let got = decode_all(&all);
        let want: Vec<Record<'_>> = RECORD_CASES.iter().map(|c| c.want).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn golden_header_decode_and_encode() {
        let bytes = *b"\x01\x06\x12\x34\xff\xfe\x02\x00";
        let header = Header::decode(&bytes).unwrap().unwrap();
        assert_eq!(
            header,
            Header {
                version: VERSION_1,
                record_type: RecordType::Stdout,
                request_id: 0x1234,
                content_length: 0xfffe,
                padding_length: 2,
            }
        );
        assert_eq!(header.encode(), bytes);
        assert_eq!(header.record_len(), 8 + 0xfffe + 2);
        assert_eq!(header.padding(), b"\x00\x00");
        assert_eq!(Header::new(RecordType::Stdout, 0x1234, 0xfffe), header);
    }

    #[test]
    fn header_reserved_byte_is_ignored() {
        let header = Header::decode(b"\x01\x05\x00\x01\x00\x00\x00\xee")
            .unwrap()
            .unwrap();
        assert_eq!(header.encode(), *b"\x01\x05\x00\x01\x00\x00\x00\x00");
    }

    // -----------------------------------------------------------------------------------------
    // Typed bodies
    // -----------------------------------------------------------------------------------------

    #[test]
    fn golden_begin_request_bodies() {
        let cases: &[(&str, &[u8], BeginRequest, bool)] = &[
            (
                "responder, keep-conn",
                b"\x00\x01\x01\x00\x00\x00\x00\x00",
                BeginRequest {
                    role: Role::Responder,
                    flags: KEEP_CONN,
                },
                true,
            ),
            (
                "authorizer, close",
                b"\x00\x02\x00\x00\x00\x00\x00\x00",
                BeginRequest {
                    role: Role::Authorizer,
                    flags: 0,
                },
                false,
            ),
            (
                "filter, unknown flags kept",
                b"\x00\x03\xfe\x00\x00\x00\x00\x00",
                BeginRequest {
                    role: Role::Filter,
                    flags: 0xfe,
                },
                false,
            ),
            (
                "unknown role is data",
                b"\x01\x00\x01\x00\x00\x00\x00\x00",
                BeginRequest {
                    role: Role::Unknown(0x100),
                    flags: KEEP_CONN,
                },
                true,
            ),
        ];
        for &(desc, bytes, want, keep_conn) in cases {
            let got = BeginRequest::decode(bytes).unwrap();
            assert_eq!(got, want, "{desc}");
            assert_eq!(got.keep_conn(), keep_conn, "{desc}");
            assert_eq!(got.to_bytes(), bytes, "{desc}");
        }
    }

    #[test]
    fn begin_request_reserved_bytes_are_ignored() {
        let got = BeginRequest::decode(b"\x00\x01\x00\xff\xff\xff\xff\xff").unwrap();
        assert_eq!(got.role, Role::Responder);
        assert_eq!(got.to_bytes(), *b"\x00\x01\x00\x00\x00\x00\x00\x00");
    }

    /// fastcgi 1.0.0 indexes a BEGIN_REQUEST body under 3 bytes out of bounds; tokio-fastcgi
    /// unwraps a short read on an empty one.
    #[test]
    fn begin_request_body_of_0_to_3_bytes_is_error() {
        for len in 0..=3 {
            let body = &[0, 1, 1][..len];
            assert_eq!(
                BeginRequest::decode(body),
                Err(Error::BadBodyLength {
                    record_type: RecordType::BeginRequest,
                    len
                }),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn begin_request_body_of_7_or_9_bytes_is_error() {
        for len in [7, 9] {
            assert_eq!(
                BeginRequest::decode(&vec![0; len]),
                Err(Error::BadBodyLength {
                    record_type: RecordType::BeginRequest,
                    len
                })
            );
        }
    }

    /// An empty BEGIN_REQUEST record (tokio-fastcgi's crash input) decodes as a record; its body
    /// is then a typed error.
    #[test]
    fn empty_begin_request_record_is_typed_error() {
        let (record, used) = decode_record(b"\x01\x01\x00\x01\x00\x00\x00\x00")
            .unwrap()
            .unwrap();
        assert_eq!(used, 8);
        assert_eq!(
            BeginRequest::decode(record.content),
            Err(Error::BadBodyLength {
                record_type: RecordType::BeginRequest,
                len: 0
            })
        );
    }

    #[test]
    fn golden_end_request_bodies() {
        let cases: &[(&[u8], EndRequest)] = &[
            (b"\x00\x00\x00\x00\x00\x00\x00\x00", EndRequest::complete(0)),
            (
                b"\xff\xff\xff\xff\x01\x00\x00\x00",
                EndRequest {
                    app_status: u32::MAX,
                    protocol_status: ProtocolStatus::CantMpxConn,
                },
            ),
            (
                b"\x00\x00\x00\x7f\x03\x00\x00\x00",
                EndRequest {
                    app_status: 127,
                    protocol_status: ProtocolStatus::UnknownRole,
                },
            ),
            (
                b"\x00\x00\x00\x01\x09\x00\x00\x00",
                EndRequest {
                    app_status: 1,
                    protocol_status: ProtocolStatus::Unknown(9),
                },
            ),
        ];
        for &(bytes, want) in cases {
            assert_eq!(EndRequest::decode(bytes), Ok(want));
            assert_eq!(want.to_bytes(), bytes);
        }
        assert_eq!(
            EndRequest::decode(b"\x00\x00\x00"),
            Err(Error::BadBodyLength {
                record_type: RecordType::EndRequest,
                len: 3
            })
        );
    }

    #[test]
    fn golden_unknown_type_bodies() {
        for code in 0..=u8::MAX {
            let body = [code, 0, 0, 0, 0, 0, 0, 0];
            let got = UnknownType::decode(&body).unwrap();
            assert_eq!(got.record_type.as_u8(), code);
            assert_eq!(got.to_bytes(), body);
        }
        assert_eq!(
            UnknownType::decode(b"\x2a"),
            Err(Error::BadBodyLength {
                record_type: RecordType::UnknownType,
                len: 1
            })
        );
    }

    #[test]
    fn record_type_codes_round_trip() {
        for code in 0..=u8::MAX {
            let record_type = RecordType::from(code);
            assert_eq!(u8::from(record_type), code);
            assert_eq!(
                matches!(record_type, RecordType::Unknown(_)),
                !(1..=11).contains(&code),
                "{code}"
            );
        }
    }

    #[test]
    fn role_and_status_codes_round_trip() {
        for code in [0, 1, 2, 3, 4, 0x100, u16::MAX] {
            assert_eq!(Role::from_u16(code).as_u16(), code);
        }
        assert_eq!(Role::from_u16(0), Role::Unknown(0));
        assert_eq!(Role::from_u16(4), Role::Unknown(4));
        for code in 0..=u8::MAX {
            assert_eq!(ProtocolStatus::from_u8(code).as_u8(), code);
        }
    }

    #[test]
    fn record_type_display_uses_spec_names() {
        assert_eq!(RecordType::BeginRequest.to_string(), "FCGI_BEGIN_REQUEST");
        assert_eq!(
            RecordType::GetValuesResult.to_string(),
            "FCGI_GET_VALUES_RESULT"
        );
        assert_eq!(RecordType::Unknown(42).to_string(), "record type 42");
    }

    // -----------------------------------------------------------------------------------------
    // Record crash inputs and boundaries
    // -----------------------------------------------------------------------------------------

    /// fastcgi 1.0.0 asserts on a version other than 1.
    #[test]
    fn version_other_than_1_is_error() {
        for version in [0, 2, 0xff] {
            let bytes = [version, 6, 0, 1, 0, 0, 0, 0];
            assert_eq!(Header::decode(&bytes), Err(Error::BadVersion(version)));
            assert_eq!(decode_record(&bytes), Err(Error::BadVersion(version)));
            assert_eq!(
                assert_split(&bytes, owned_record),
                Err(Error::BadVersion(version))
            );
        }
        assert_eq!(
            Error::BadVersion(2).to_string(),
            "unsupported FastCGI version 2"
        );
    }

    /// fastcgi 1.0.0 asserts on a short header, content or padding; gfcgi panics on a short read.
    #[test]
    fn short_header_needs_more() {
        let bytes = b"\x01\x06\x00\x01\x00\x00\x00\x00";
        for cut in 0..HEADER_LEN {
            assert_eq!(Header::decode(&bytes[..cut]), Ok(None));
            assert_eq!(decode_record(&bytes[..cut]), Ok(None));
        }
    }

    #[test]
    fn short_content_needs_more() {
        let bytes = b"\x01\x06\x00\x01\x00\x05\x00\x00hel";
        assert_eq!(decode_record(bytes), Ok(None));
    }

    #[test]
    fn short_padding_needs_more() {
        let bytes = b"\x01\x06\x00\x01\x00\x05\x03\x00hello\x00\x00";
        assert_eq!(decode_record(bytes), Ok(None));
        let mut whole = bytes.to_vec();
        whole.push(0);
        assert_eq!(decode_record(&whole).unwrap().unwrap().1, 16);
    }

    #[test]
    fn padding_of_255_bytes_is_skipped() {
        let mut bytes = b"\x01\x05\x00\x03\x00\x01\xff\x00x".to_vec();
        bytes.extend_from_slice(&[0xaa; MAX_PADDING]);
        let whole = assert_split(&bytes, owned_record).unwrap().unwrap();
        assert_eq!(whole, ((RecordType::Stdin, 3, b"x".to_vec()), 9 + 255));
    }

    #[test]
    fn unaligned_padding_is_accepted() {
        // Two bytes of content with no padding at all, then the next record right after.
        let bytes = b"\x01\x05\x00\x01\x00\x02\x00\x00ab\x01\x05\x00\x01\x00\x00\x00\x00";
        let records = decode_all(bytes);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].content, b"ab");
        assert_eq!(records[1].content, b"");
    }

    /// fastcgi 1.0.0 panics with "Record not receivable" on these; the codec hands them to the
    /// server, which decides.
    #[test]
    fn records_an_application_never_receives_decode_as_data() {
        let cases: &[(&[u8], RecordType)] = &[
            (
                b"\x01\x06\x00\x01\x00\x02\x06\x00hi\x00\x00\x00\x00\x00\x00",
                RecordType::Stdout,
            ),
            (b"\x01\x07\x00\x01\x00\x00\x00\x00", RecordType::Stderr),
            (
                b"\x01\x03\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                RecordType::EndRequest,
            ),
            (
                b"\x01\x0a\x00\x00\x00\x00\x00\x00",
                RecordType::GetValuesResult,
            ),
            (b"\x01\x0b\x00\x00\x00\x00\x00\x00", RecordType::UnknownType),
        ];
        for &(bytes, want) in cases {
            let (record, used) = decode_record(bytes).unwrap().unwrap();
            assert_eq!(record.record_type, want);
            assert_eq!(used, bytes.len());
        }
    }

    #[test]
    fn content_length_boundaries() {
        for len in [
            0,
            1,
            7,
            8,
            9,
            127,
            128,
            255,
            256,
            65_528,
            65_529,
            MAX_CONTENT_LEN,
        ] {
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = Vec::new();
            encode_record(RecordType::Stdout, 9, &content, &mut out).unwrap();
            let padding = (8 - len % 8) % 8;
            assert_eq!(out.len(), HEADER_LEN + len + padding, "{len}");
            assert_eq!(out.len() % ALIGNMENT, 0, "{len}");
            assert_eq!(&out[4..6], &(len as u16).to_be_bytes(), "{len}");
            assert_eq!(usize::from(out[6]), padding, "{len}");
            let (record, used) = decode_record(&out).unwrap().unwrap();
            assert_eq!(
                (record.record_type, record.request_id, record.content),
                (RecordType::Stdout, 9, &content[..])
            );
            assert_eq!(used, out.len());
        }
    }

    #[test]
    fn max_content_length_header_bytes() {
        let (header, padding) = record_header(RecordType::Stdout, 1, MAX_CONTENT_LEN).unwrap();
        assert_eq!(header, *b"\x01\x06\x00\x01\xff\xff\x01\x00");
        assert_eq!(padding, b"\x00");
    }

    #[test]
    fn content_over_65535_is_error() {
        let mut out = b"kept".to_vec();
        let content = vec![0; MAX_CONTENT_LEN + 1];
        assert_eq!(
            encode_record(RecordType::Stdout, 1, &content, &mut out),
            Err(Error::ContentTooLong)
        );
        assert_eq!(out, b"kept");
        assert_eq!(
            record_header(RecordType::Stdout, 1, MAX_CONTENT_LEN + 1),
            Err(Error::ContentTooLong)
        );
        assert_eq!(
            Header::for_content(RecordType::Stdout, 1, usize::MAX),
            Err(Error::ContentTooLong)
        );
    }

    /// The sendfile path: header bytes, then the content from elsewhere, then the padding, must
    /// equal what `encode_record` writes.
    #[test]
    fn record_header_plus_content_plus_padding_is_a_record() {
        for len in [0, 1, 8, 13, 4096, MAX_CONTENT_LEN] {
            let content = vec![b'f'; len];
            let (header, padding) = record_header(RecordType::Stdout, 5, len).unwrap();
            let mut pieced = header.to_vec();
            pieced.extend_from_slice(&content);
            pieced.extend_from_slice(padding);
            let mut whole = Vec::new();
            encode_record(RecordType::Stdout, 5, &content, &mut whole).unwrap();
            assert_eq!(pieced, whole, "{len}");
        }
    }

    #[test]
    fn stream_data_is_split_at_max_content_length() {
        let data: Vec<u8> = (0..=2 * MAX_CONTENT_LEN).map(|i| (i % 253) as u8).collect();
        let mut out = Vec::new();
        encode_stream_data(RecordType::Stdout, 3, &data, &mut out);
        encode_stream_end(RecordType::Stdout, 3, &mut out);
        let records = decode_all(&out);
        let lens: Vec<usize> = records.iter().map(|r| r.content.len()).collect();
        assert_eq!(lens, [MAX_CONTENT_LEN, MAX_CONTENT_LEN, 1, 0]);
        let joined: Vec<u8> = records.iter().flat_map(|r| r.content.to_vec()).collect();
        assert_eq!(joined, data);
        assert!(records.iter().all(|r| r.request_id == 3));
    }

    #[test]
    fn stream_data_of_exactly_max_content_length_is_one_record() {
        let mut out = Vec::new();
        encode_stream_data(RecordType::Stdin, 1, &vec![7; MAX_CONTENT_LEN], &mut out);
        assert_eq!(decode_all(&out).len(), 1);
    }

    /// An empty record would end the stream, so empty data must write nothing.
    #[test]
    fn empty_stream_data_writes_nothing() {
        let mut out = Vec::new();
        encode_stream_data(RecordType::Stdout, 1, b"", &mut out);
        assert!(out.is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // Name-value pairs
    // -----------------------------------------------------------------------------------------

    struct PairCase {
        desc: &'static str,
        /// The two length fields.
        lengths: &'static [u8],
        name: Vec<u8>,
        value: Vec<u8>,
    }

    impl PairCase {
        fn bytes(&self) -> Vec<u8> {
            [self.lengths, &self.name, &self.value].concat()
        }
    }

    fn pair_cases() -> Vec<PairCase> {
        vec![
            PairCase {
                desc: "1+1, empty name and value",
                lengths: b"\x00\x00",
                name: b"".to_vec(),
                value: b"".to_vec(),
            },
            PairCase {
                desc: "1+1",
                lengths: b"\x04\x03",
                name: b"PATH".to_vec(),
                value: b"/ab".to_vec(),
            },
            PairCase {
                desc: "1+1 at 127 and 127",
                lengths: b"\x7f\x7f",
                name: vec![b'n'; 127],
                value: vec![b'v'; 127],
            },
            PairCase {
                desc: "1+4, value of 128",
                lengths: b"\x01\x80\x00\x00\x80",
                name: b"N".to_vec(),
                value: vec![b'v'; 128],
            },
            PairCase {
                desc: "4+1, name of 128",
                lengths: b"\x80\x00\x00\x80\x01",
                name: vec![b'n'; 128],
                value: b"v".to_vec(),
            },
            PairCase {
                desc: "4+4, name of 300, value of 256",
                lengths: b"\x80\x00\x01\x2c\x80\x00\x01\x00",
                name: vec![b'n'; 300],
                value: vec![b'v'; 256],
            },
            PairCase {
                desc: "binary value, PATH_INFO=/\\xff",
                lengths: b"\x09\x02",
                name: b"PATH_INFO".to_vec(),
                value: b"/\xff".to_vec(),
            },
            PairCase {
                desc: "binary name and value with NUL",
                lengths: b"\x02\x03",
                name: b"\xff\xfe".to_vec(),
                value: b"\x00\x80\xc0".to_vec(),
            },
        ]
    }

    #[test]
    fn golden_pairs_decode() {
        for case in pair_cases() {
            let bytes = case.bytes();
            assert_eq!(
                decode_pair(&bytes),
                Ok(Some(((&case.name[..], &case.value[..]), bytes.len()))),
                "{}",
                case.desc
            );
        }
    }

    #[test]
    fn golden_pairs_encode() {
        for case in pair_cases() {
            let mut out = Vec::new();
            encode_pair(&case.name, &case.value, &mut out).unwrap();
            assert_eq!(out, case.bytes(), "{}", case.desc);
        }
    }

    #[test]
    fn golden_pairs_split_at_every_byte() {
        for case in pair_cases() {
            let bytes = case.bytes();
            let whole = assert_split(&bytes, owned_pair);
            assert_eq!(
                whole,
                Ok(Some(((case.name.clone(), case.value.clone()), bytes.len()))),
                "{}",
                case.desc
            );
        }
    }

    #[test]
    fn golden_pairs_through_params_decoder_at_every_split() {
        for case in pair_cases() {
            let got = assert_params_split(&case.bytes(), 4096);
            assert_eq!(
                got,
                Ok(vec![(case.name.clone(), case.value.clone())]),
                "{}",
                case.desc
            );
        }
        // All of them in one stream.
        let stream: Vec<u8> = pair_cases().iter().flat_map(PairCase::bytes).collect();
        let want: Vec<OwnedPair> = pair_cases()
            .into_iter()
            .map(|c| (c.name, c.value))
            .collect();
        assert_eq!(assert_params_split(&stream, stream.len()), Ok(want));
    }

    #[test]
    fn pair_length_boundaries() {
        let cases: &[(usize, &[u8])] = &[
            (0, b"\x00"),
            (1, b"\x01"),
            (127, b"\x7f"),
            (128, b"\x80\x00\x00\x80"),
            (255, b"\x80\x00\x00\xff"),
            (65_535, b"\x80\x00\xff\xff"),
            (65_536, b"\x80\x01\x00\x00"),
            (MAX_PAIR_LEN, b"\xff\xff\xff\xff"),
        ];
        for &(len, want) in cases {
            check_len(len).unwrap();
            let mut out = Vec::new();
            push_len(len, &mut out);
            assert_eq!(out, want, "{len}");
            assert_eq!(read_len(&out), Some((len, out.len())), "{len}");
        }
        assert_eq!(check_len(MAX_PAIR_LEN + 1), Err(Error::PairTooLong));
    }

    /// A four-byte length is accepted for any value, even one that fits in one byte.
    #[test]
    fn non_canonical_four_byte_length_is_accepted() {
        let bytes = b"\x80\x00\x00\x01\x80\x00\x00\x02Axy";
        assert_eq!(
            decode_pair(bytes),
            Ok(Some(((&b"A"[..], &b"xy"[..]), bytes.len())))
        );
        assert_eq!(pair_bytes(&[(b"A", b"xy")]), b"\x01\x02Axy");
    }

    /// fastcgi 1.0.0 asserts on a truncated four-byte length.
    #[test]
    fn truncated_four_byte_length() {
        for bytes in [
            &b"\x80"[..],
            b"\x80\x00\x00",
            b"\x01\x80\x00",
            b"\x80\x00\x00\x01\x80",
        ] {
            assert_eq!(decode_pair(bytes), Ok(None), "{bytes:?}");
            assert_eq!(
                pairs(bytes).collect::<Vec<_>>(),
                [Err(Error::TruncatedPair)],
                "{bytes:?}"
            );
            assert_eq!(feed_all(&[bytes], 1024), Err(Error::TruncatedPair));
        }
    }

    /// fastcgi 1.0.0 asserts on a short key or value.
    #[test]
    fn short_name_or_value_needs_more() {
        assert_eq!(decode_pair(b"\x04\x03PAT"), Ok(None));
        assert_eq!(decode_pair(b"\x04\x03PATH/a"), Ok(None));
        assert_eq!(
            feed_all(&[b"\x04\x03PATH/a"], 1024),
            Err(Error::TruncatedPair)
        );
    }

    /// Slices over 31 bits are too big to build in a test, so this checks the guard that
    /// `encode_pair` runs on both lengths before it writes anything.
    #[test]
    fn pair_longer_than_31_bits_is_rejected() {
        assert_eq!(check_len(MAX_PAIR_LEN + 1), Err(Error::PairTooLong));
        assert_eq!(check_len(usize::MAX), Err(Error::PairTooLong));
        let mut out = b"kept".to_vec();
        encode_pair(b"a", b"b", &mut out).unwrap();
        assert_eq!(out, b"kept\x01\x01ab");
    }

    /// fastcgi 1.0.0 silently drops every pair from the first non-UTF-8 one on.
    #[test]
    fn non_utf8_pairs_are_kept_losslessly() {
        let stream = pair_bytes(&[(b"ABC", b"xyz"), (b"PATH", b"/\xff"), (b"LAST", b"z")]);
        let params = {
            let mut decoder = ParamsDecoder::new(1024);
            decoder.feed(&stream).unwrap();
            decoder.finish().unwrap()
        };
        assert_eq!(params.len(), 3);
        assert_eq!(
            params.iter().collect::<Vec<_>>(),
            [
                (&b"ABC"[..], &b"xyz"[..]),
                (b"PATH", b"/\xff"),
                (b"LAST", b"z")
            ]
        );
        assert_eq!(params.get(b"PATH"), Some(&b"/\xff"[..]));
        assert_eq!(assert_params_split(&stream, 1024).unwrap().len(), 3);
    }

    #[test]
    fn pairs_iterator_over_a_complete_buffer() {
        let buf = pair_bytes(&[(b"A", b"1"), (b"", b""), (b"B", b"")]);
        let got: Vec<_> = pairs(&buf).collect();
        assert_eq!(
            got,
            [Ok((&b"A"[..], &b"1"[..])), Ok((b"", b"")), Ok((b"B", b""))]
        );
        let mut truncated = pairs(&buf[..buf.len() - 1]);
        assert_eq!(truncated.next(), Some(Ok((&b"A"[..], &b"1"[..]))));
        assert_eq!(truncated.next(), Some(Ok((&b""[..], &b""[..]))));
        assert_eq!(truncated.next(), Some(Err(Error::TruncatedPair)));
        assert_eq!(truncated.next(), None);
        assert_eq!(truncated.next(), None);
    }

    // -----------------------------------------------------------------------------------------
    // ParamsDecoder
    // -----------------------------------------------------------------------------------------

    /// §3.3: a stream's value does not depend on record boundaries, so a pair may straddle
    /// PARAMS records.
    #[test]
    fn pair_straddles_two_records() {
        let long_value = vec![b'q'; 200];
        let stream = pair_bytes(&[
            (b"SCRIPT_NAME", b"/index.php"),
            (b"QUERY_STRING", &long_value),
        ]);
        // Cut inside the second pair's four-byte value length.
        let cut = 2 + 11 + 10 + 1 + 2;
        let mut wire = Vec::new();
        encode_record(RecordType::Params, 1, &stream[..cut], &mut wire).unwrap();
        encode_record(RecordType::Params, 1, &stream[cut..], &mut wire).unwrap();
        encode_stream_end(RecordType::Params, 1, &mut wire);

        let mut decoder = ParamsDecoder::new(1024);
        let mut ended = false;
        for record in decode_all(&wire) {
            assert_eq!(record.record_type, RecordType::Params);
            if record.content.is_empty() {
                ended = true;
                break;
            }
            decoder.feed(record.content).unwrap();
        }
        assert!(ended);
        assert_eq!(decoder.len(), 2);
        let params = decoder.finish().unwrap();
        assert_eq!(params.get(b"SCRIPT_NAME"), Some(&b"/index.php"[..]));
        assert_eq!(params.get(b"QUERY_STRING"), Some(&long_value[..]));
    }

    #[test]
    fn the_last_content_length_is_noted_across_records() {
        let stream = pair_bytes(&[
            (b"CONTENT_LENGTH", b"5"),
            (b"CONTENT_LENGTHS", b"x"),
            (b"CONTENT_LENGTH", b"12345"),
            (b"content_length", b"9"),
        ]);
        assert_eq!(assert_params_split(&stream, 1024).unwrap().len(), 4);
        let mut decoder = ParamsDecoder::new(1024);
        let (a, b) = stream.split_at(20);
        decoder.feed(a).unwrap();
        decoder.feed(b).unwrap();
        assert_eq!(
            decoder.finish().unwrap().content_length(),
            Some(&b"12345"[..])
        );
        let mut none = ParamsDecoder::new(1024);
        none.feed(&pair_bytes(&[(b"CONTENT_TYPE", b"")])).unwrap();
        assert_eq!(none.finish().unwrap().content_length(), None);
    }

    #[test]
    fn pair_layout_of_short_long_and_truncated_pairs() {
        let long = vec![b'v'; 300];
        let mut buf = pair_bytes(&[(b"AB", b"c"), (b"L", &long)]);
        assert_eq!(pair_layout(&buf), Some((2..4, 4..5, 5)));
        assert_eq!(pair_layout(&buf[5..]), Some((5..6, 6..306, 306)));
        buf.pop();
        assert_eq!(pair_layout(&buf[5..]), None);
        assert_eq!(pair_layout(b""), None);
        assert_eq!(pair_layout(b"\x80\x00"), None);
    }

    #[test]
    fn params_progress_is_reported_per_complete_pair() {
        let mut decoder = ParamsDecoder::new(1024);
        assert!(decoder.is_empty());
        decoder.feed(b"\x01\x01a").unwrap();
        assert_eq!(decoder.len(), 0);
        decoder.feed(b"b\x01").unwrap();
        assert_eq!(decoder.len(), 1);
        assert_eq!(decoder.clone().finish(), Err(Error::TruncatedPair));
        decoder.feed(b"\x00c").unwrap();
        assert_eq!(decoder.len(), 2);
        assert_eq!(
            decoder.finish().unwrap().to_vec(),
            [(b"a".to_vec(), b"b".to_vec()), (b"c".to_vec(), Vec::new())]
        );
    }

    #[test]
    fn params_empty_stream_has_no_pairs() {
        let params = ParamsDecoder::new(0).finish().unwrap();
        assert!(params.is_empty());
        assert_eq!(params.iter().next(), None);
        let mut decoder = ParamsDecoder::new(0);
        decoder.feed(b"").unwrap();
        assert_eq!(decoder.finish(), Ok(Params::default()));
    }

    /// fastcgi 1.0.0 allocates 2^31-1 bytes for this 24-byte record and aborts; tokio-fastcgi
    /// and outer_cgi do the same with `vec![0; len]`.
    #[test]
    fn params_record_claiming_2_gib_name_is_too_large() {
        let record = b"\x01\x04\x00\x01\x00\x10\x00\x00\
                       \xff\xff\xff\xff\x00AAAAAAAAAAA";
        assert_eq!(record.len(), 24);
        let (params, used) = decode_record(record).unwrap().unwrap();
        assert_eq!(used, 24);
        let limit = 64 * 1024;
        let mut decoder = ParamsDecoder::new(limit);
        assert_eq!(
            decoder.feed(params.content),
            Err(Error::ParamsTooLarge { limit })
        );
        // Nothing near the declared size was reserved, and the buffer is already released.
        assert_eq!(decoder.buf.capacity(), 0);
        // The error sticks.
        assert_eq!(decoder.feed(b""), Err(Error::ParamsTooLarge { limit }));
        assert_eq!(decoder.finish(), Err(Error::ParamsTooLarge { limit }));
        // The allocation-free decoders just wait for the rest.
        assert_eq!(decode_pair(params.content), Ok(None));
    }

    /// The declared lengths alone are enough to reject a pair, before any of it arrives.
    #[test]
    fn params_declared_value_too_large_is_rejected_on_the_lengths_alone() {
        let limit = 1000;
        let mut decoder = ParamsDecoder::new(limit);
        // Only the two length fields have arrived: a 1-byte name and a 1001-byte value.
        assert_eq!(
            decoder.feed(b"\x01\x80\x00\x03\xe9"),
            Err(Error::ParamsTooLarge { limit })
        );
    }

    /// tokio-fastcgi allocates both declared lengths of this 16-byte record before checking
    /// them, and aborts.
    #[test]
    fn params_16_byte_record_claiming_two_huge_lengths_is_too_large() {
        let record = b"\x01\x04\x00\x01\x00\x08\x00\x00\
                       \xff\xff\xff\xf0\xff\xff\xff\xf0";
        let (params, _) = decode_record(record).unwrap().unwrap();
        let limit = 64 * 1024;
        let mut decoder = ParamsDecoder::new(limit);
        assert_eq!(
            decoder.feed(params.content),
            Err(Error::ParamsTooLarge { limit })
        );
    }

    #[test]
    fn params_declared_length_counts_bytes_already_received() {
        // 10 bytes of pairs, then a pair whose declared size (5 + 86 = 91) would end at 101.
        let mut stream = pair_bytes(&[(b"ABCD", b"efgh")]);
        stream.extend_from_slice(b"\x01\x80\x00\x00\x55");
        let mut decoder = ParamsDecoder::new(100);
        assert_eq!(
            decoder.feed(&stream),
            Err(Error::ParamsTooLarge { limit: 100 })
        );
        let mut decoder = ParamsDecoder::new(101);
        decoder.feed(&stream).unwrap();
        assert_eq!(decoder.len(), 1);
    }

    #[test]
    fn params_limit_is_inclusive() {
        let stream = pair_bytes(&[(b"NAME", b"value"), (b"X", b"")]);
        assert_eq!(stream.len(), 14);
        assert_eq!(assert_params_split(&stream, 14).unwrap().len(), 2);
        assert_eq!(
            assert_params_split(&stream, 13),
            Err(Error::ParamsTooLarge { limit: 13 })
        );
    }

    #[test]
    fn params_received_bytes_over_limit_rejected_before_buffering() {
        let limit = 16;
        let mut decoder = ParamsDecoder::new(limit);
        decoder.feed(b"\x00\x00\x00\x00").unwrap();
        assert_eq!(decoder.feed(&[0; 13]), Err(Error::ParamsTooLarge { limit }));
        assert_eq!(decoder.buf.capacity(), 0);
    }

    #[test]
    fn params_buffer_never_grows_past_the_limit() {
        let limit = 1000;
        let mut decoder = ParamsDecoder::new(limit);
        for _ in 0..500 {
            decoder.feed(b"\x00\x00").unwrap();
            assert!(decoder.buf.capacity() <= limit);
        }
        assert_eq!(decoder.buf.capacity(), limit);
        assert_eq!(decoder.finish().unwrap().len(), 500);
    }

    /// fastcgi 1.0.0 recurses once per pair and overflows its stack on this input.
    #[test]
    fn ten_thousand_empty_pairs_decode_iteratively() {
        let stream = vec![0; 20_000];
        let mut wire = Vec::new();
        encode_record(RecordType::Params, 1, &stream, &mut wire).unwrap();
        // A small stack proves there is no recursion per pair.
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let (record, _) = decode_record(&wire).unwrap().unwrap();
                let mut decoder = ParamsDecoder::new(20_000);
                decoder.feed(record.content).unwrap();
                let params = decoder.finish().unwrap();
                let all_empty = params.iter().all(|(n, v)| n.is_empty() && v.is_empty());
                let via_pairs = pairs(record.content).map_while(Result::ok).count();
                (params.len(), params.iter().len(), all_empty, via_pairs)
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), (10_000, 10_000, true, 10_000));
    }

    #[test]
    fn params_get_returns_the_last_duplicate() {
        let stream = pair_bytes(&[(b"A", b"1"), (b"B", b"2"), (b"A", b"3")]);
        let mut decoder = ParamsDecoder::new(100);
        decoder.feed(&stream).unwrap();
        let params = decoder.finish().unwrap();
        assert_eq!(params.len(), 3);
        assert_eq!(params.get(b"A"), Some(&b"3"[..]));
        assert_eq!(params.get(b"B"), Some(&b"2"[..]));
        assert_eq!(params.get(b"C"), None);
        assert_eq!((&params).into_iter().count(), 3);
        assert_eq!(format!("{params:?}"), r#"{"A": "1", "B": "2", "A": "3"}"#);
        // Equality looks at the pairs, not at how their lengths were encoded.
        let mut long_form = ParamsDecoder::new(100);
        long_form
            .feed(b"\x80\x00\x00\x01\x01A1\x01\x80\x00\x00\x01B2\x01\x01A3")
            .unwrap();
        assert_eq!(long_form.finish().unwrap(), params);
        let binary = {
            let mut decoder = ParamsDecoder::new(100);
            decoder.feed(b"\x01\x02\"/\xff").unwrap();
            decoder.finish().unwrap()
        };
        assert_eq!(format!("{binary:?}"), r#"{"\"": "/\xff"}"#);
    }

    // -----------------------------------------------------------------------------------------
    // GET_VALUES
    // -----------------------------------------------------------------------------------------

    #[test]
    fn get_values_names_are_yielded_as_sent() {
        let content = pair_bytes(&[(MAX_CONNS, b""), (b"X_UNKNOWN", b""), (MPXS_CONNS, b"")]);
        let names: Vec<_> = decode_get_values(&content).collect();
        assert_eq!(
            names,
            [Ok(MAX_CONNS), Ok(&b"X_UNKNOWN"[..]), Ok(MPXS_CONNS)]
        );
    }

    #[test]
    fn get_values_value_is_ignored() {
        let content = pair_bytes(&[(MAX_REQS, b"junk")]);
        let names: Vec<_> = decode_get_values(&content).collect();
        assert_eq!(names, [Ok(MAX_REQS)]);
    }

    #[test]
    fn get_values_truncated_query_is_error() {
        let content = b"\x0e\x00FCGI_MAX_CONNS\x0d\x00FCGI";
        let names: Vec<_> = decode_get_values(content).collect();
        assert_eq!(names, [Ok(MAX_CONNS), Err(Error::TruncatedPair)]);
    }

    /// fastcgi 1.0.0 writes `0x80000000 & n` (four zero bytes) as the length of any value of
    /// 128 bytes or more.
    #[test]
    fn get_values_result_long_value_has_four_byte_length() {
        let value = vec![b'9'; 200];
        let mut out = Vec::new();
        encode_get_values_result(&[(MAX_CONNS, &value)], &mut out).unwrap();
        // Content: 1 + 4 + 14 + 200 = 219 bytes, padded by 5.
        assert_eq!(&out[..8], b"\x01\x0a\x00\x00\x00\xdb\x05\x00");
        assert_eq!(&out[8..13], b"\x0e\x80\x00\x00\xc8");
        let (record, used) = decode_record(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(
            pairs(record.content).collect::<Vec<_>>(),
            [Ok((MAX_CONNS, &value[..]))]
        );
    }

    #[test]
    fn get_values_result_too_long_for_one_record_is_error() {
        let value = vec![b'x'; MAX_CONTENT_LEN];
        let mut out = b"kept".to_vec();
        assert_eq!(
            encode_get_values_result(&[(MAX_CONNS, &value)], &mut out),
            Err(Error::ContentTooLong)
        );
        assert_eq!(out, b"kept");
        let name = vec![b'n'; MAX_CONTENT_LEN];
        assert_eq!(
            encode_get_values(&[&name], &mut out),
            Err(Error::ContentTooLong)
        );
        assert_eq!(out, b"kept");
    }

    #[test]
    fn get_values_result_largest_content_fits() {
        // 1 + 4 + 14 + value = 65535.
        let value = vec![b'x'; MAX_CONTENT_LEN - 19];
        let mut out = Vec::new();
        encode_get_values_result(&[(MAX_CONNS, &value)], &mut out).unwrap();
        assert_eq!(&out[..8], b"\x01\x0a\x00\x00\xff\xff\x01\x00");
        assert_eq!(out.len(), HEADER_LEN + MAX_CONTENT_LEN + 1);
    }

    #[test]
    fn empty_get_values_result() {
        let mut out = Vec::new();
        encode_get_values_result(&[], &mut out).unwrap();
        assert_eq!(out, b"\x01\x0a\x00\x00\x00\x00\x00\x00");
    }

    // -----------------------------------------------------------------------------------------
    // Errors
    // -----------------------------------------------------------------------------------------

    #[test]
    fn error_messages() {
        let cases = [
            (Error::BadVersion(0), "unsupported FastCGI version 0"),
            (
                Error::ContentTooLong,
                "record content longer than 65535 bytes",
            ),
            (
                Error::BadBodyLength {
                    record_type: RecordType::BeginRequest,
                    len: 3,
                },
                "FCGI_BEGIN_REQUEST body of 3 bytes, expected 8",
            ),
            (Error::TruncatedPair, "truncated name-value pair"),
            (
                Error::PairTooLong,
                "name or value longer than 2147483647 bytes",
            ),
            (
                Error::ParamsTooLarge { limit: 4096 },
                "name-value pairs larger than the 4096-byte limit",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }

    #[test]
    fn error_is_small_copy_send_sync() {
        fn assert_traits<T: Copy + Send + Sync + std::error::Error + 'static>() {}
        assert_traits::<Error>();
        assert!(std::mem::size_of::<Error>() <= 24);
    }
}
