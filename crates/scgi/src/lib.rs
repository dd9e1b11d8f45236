//! SCGI front-end for gatekit.
//!
//! For now this crate holds the wire codec, [`proto`]: [`proto::decode_request`] reads an SCGI
//! request head (a netstring of NUL-separated header pairs) from a byte buffer and
//! [`proto::encode_request`] writes one. The server that drives it over a socket comes later.
//!
//! # Example
//!
//! ```
//! use gatekit_scgi::proto::{decode_request, encode_request, Limits};
//!
//! let mut wire = Vec::new();
//! encode_request(&[("CONTENT_LENGTH", "5"), ("SCGI", "1"), ("REQUEST_METHOD", "POST")], &mut wire)?;
//! wire.extend_from_slice(b"hello");
//!
//! let (request, consumed) = decode_request(&wire, &Limits::default())?
//!     .expect("the whole head is in the buffer");
//! assert_eq!(request.get(b"REQUEST_METHOD"), Some(&b"POST"[..]));
//! assert_eq!(&wire[consumed..], b"hello");
//! assert_eq!(request.content_length(), 5);
//! # Ok::<(), gatekit_scgi::proto::Error>(())
//! ```
//!
//! # Design
//!
//! The codec is sans-IO: it sees `&[u8]` and returns borrowed slices, never reading or blocking.
//! "Need more bytes" is `Ok(None)`, not an error, so the same code serves blocking and
//! event-driven servers, and it can be fuzzed and tested byte by byte without a socket. It is
//! strict (SCGI protocol.txt §3) and bounded by [`proto::Limits`] before it waits for input.

pub mod proto;
