//! FastCGI 1.0 front-end for gatekit.
//!
//! For now this crate holds the wire codec, [`proto`]: record headers and records
//! ([`proto::decode_record`], [`proto::encode_record`], [`proto::encode_stream_data`]), the
//! fixed-size `BEGIN_REQUEST` / `END_REQUEST` / `UNKNOWN_TYPE` bodies, name-value pairs with the
//! size-limited, incremental [`proto::ParamsDecoder`], and the `GET_VALUES` management records.
//! The application server that drives it over a socket comes later.
//!
//! # Example
//!
//! ```
//! use gatekit_fastcgi::proto::{
//!     decode_record, encode_pair, encode_stream_data, encode_stream_end, ParamsDecoder,
//!     RecordType,
//! };
//!
//! // What a web server sends: one PARAMS pair, then the empty record that ends the stream.
//! let mut pairs = Vec::new();
//! encode_pair(b"REQUEST_METHOD", b"GET", &mut pairs)?;
//! let mut wire = Vec::new();
//! encode_stream_data(RecordType::Params, 1, &pairs, &mut wire);
//! encode_stream_end(RecordType::Params, 1, &mut wire);
//!
//! // What the application does with it.
//! let mut params = ParamsDecoder::new(64 * 1024);
//! let mut rest = &wire[..];
//! while let Some((record, used)) = decode_record(rest)? {
//!     assert_eq!(record.record_type, RecordType::Params);
//!     params.feed(record.content)?;
//!     rest = &rest[used..];
//! }
//! let params = params.finish()?;
//! assert_eq!(params.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
//! # Ok::<(), gatekit_fastcgi::proto::Error>(())
//! ```
//!
//! # Design
//!
//! The codec is sans-IO: it sees `&[u8]`, borrows record content from the input, and appends its
//! output to a `Vec<u8>`. "Need more bytes" is `Ok(None)`, not an error, so the same code serves
//! blocking and event-driven servers and can be fuzzed and tested byte by byte without a socket.
//! Every length on the wire is checked before it is trusted: a truncated or hostile record is a
//! typed [`proto::Error`] or a wait for more input, never a panic or an allocation sized by the
//! peer.

// Reason: clippy's doc lint takes the protocol's name, FastCGI, for an identifier that needs
// backticks. (A `doc-valid-idents` entry in clippy.toml would let this go.)
#![allow(clippy::doc_markdown)]

pub mod proto;
