//! Fuzzes `gatekit_cgi::host::response::parse_head`, the parser of a CGI
//! script's output (RFC 3875 §6).
//!
//! Properties: parsing arbitrary bytes never panics; a parsed head consumes
//! no more than the input and no more than the header-size limit, holds no
//! more lines than the header-count limit, and is complete only at its last
//! byte; an incomplete block is only reported while under the size limit;
//! and the outcome depends on nothing past the limit.

#![no_main]

use gatekit_cgi::host::response::{Kind, Limits, parse_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits so the fuzzer reaches both sides of them.
    let limits = Limits::default()
        .with_max_header_bytes(1024)
        .with_max_headers(16);
    let result = parse_head(data, &limits);
    // Bytes past the limit are never looked at: the same prefix, with
    // anything after it, parses the same (unless the cut itself made the
    // input too short to know).
    if data.len() > limits.max_header_bytes {
        let mut other = data[..limits.max_header_bytes].to_vec();
        other.push(b'x');
        assert_eq!(parse_head(&other, &limits), result);
    }
    match result {
        Ok(Some((head, consumed))) => {
            assert!(consumed <= data.len());
            assert!(consumed <= limits.max_header_bytes);
            assert!(!head.is_empty());
            assert!(head.len() <= limits.max_headers);
            assert_eq!(data[consumed - 1], b'\n');
            // The head is complete only once its last byte is there.
            assert!(!matches!(
                parse_head(&data[..consumed - 1], &limits),
                Ok(Some(_))
            ));
            // What follows the head does not change it.
            let (again, n) = parse_head(&data[..consumed], &limits)
                .expect("a head parses alone")
                .expect("a head is complete alone");
            assert_eq!((&again, n), (&head, consumed));
            for (name, value) in head.headers() {
                assert!(!name.is_empty());
                assert!(!value.contains(&b'\n') && !value.contains(&b'\r'));
            }
            if let Kind::LocalRedirect(path) = head.kind() {
                assert!(path.starts_with(b"/"));
                assert_eq!(head.len(), 1);
            }
            let status = head.response_status();
            assert!((100..=999).contains(&status.code()));
        }
        Ok(None) => assert!(data.len() < limits.max_header_bytes),
        Err(_) => {}
    }
});
