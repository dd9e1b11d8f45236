//! Fuzzes `gatekit_scgi::proto::decode_request`.
//!
//! Properties: decoding arbitrary bytes never panics; a decoded head consumes no more than the
//! input and nothing less than all of it is enough; and the decoded headers re-encode to exactly
//! the bytes consumed, which decode again to the same headers.

#![no_main]

use gatekit_scgi::proto::{Header, Limits, decode_request, encode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit so the fuzzer reaches both sides of it.
    let limits = Limits::default().with_max_head(4096).with_max_headers(64);
    let Ok(Some((request, consumed))) = decode_request(data, &limits) else {
        return;
    };
    assert!(consumed <= data.len());
    // The head is complete only once its last byte is there.
    assert!(matches!(
        decode_request(&data[..consumed - 1], &limits),
        Ok(None)
    ));

    let headers: Vec<Header<'_>> = request.headers().collect();
    assert_eq!(headers.len(), request.headers().len());
    let mut encoded = Vec::new();
    let written = encode_request(&headers, &mut encoded).expect("decoded headers must re-encode");
    assert_eq!(written, consumed);
    // Decoding is strict, so there is exactly one encoding of a head.
    assert_eq!(encoded.as_slice(), &data[..consumed]);

    let (again, again_consumed) = decode_request(&encoded, &limits)
        .expect("re-encoded head must decode")
        .expect("re-encoded head is complete");
    assert_eq!(again_consumed, consumed);
    assert_eq!(again.content_length(), request.content_length());
    assert!(again.headers().eq(headers.iter().copied()));
});
