//! `parse_head` on arbitrary bytes, with small limits so that every limit is
//! reached often: it never panics, never claims more bytes than it was given,
//! and a head it accepts parses the same from exactly its own bytes.

#![no_main]

use gatekit_http::proto::{Limits, cgi_vars, parse_head};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_head: 512,
    max_headers: 8,
    max_target: 128,
    max_chunk_ext: 64,
    max_trailers: 128,
};

fuzz_target!(|data: &[u8]| {
    match parse_head(data, &LIMITS) {
        Ok(Some((head, consumed))) => {
            assert!(consumed <= data.len());
            assert!(consumed <= LIMITS.max_head);
            assert!(head.target().len() <= LIMITS.max_target);
            assert!(head.headers().len() <= LIMITS.max_headers);
            // The head ends where it says: its bytes alone parse the same.
            let again = parse_head(data.get(..consumed).unwrap_or_default(), &LIMITS);
            assert_eq!(again, Ok(Some((head.clone(), consumed))));
            // Anything before the end is incomplete.
            let short = parse_head(data.get(..consumed - 1).unwrap_or_default(), &LIMITS);
            assert_eq!(short, Ok(None));
            // The CGI view is total too.
            let vars = cgi_vars(&head);
            assert!(vars.iter().any(|(k, _)| k == b"REQUEST_METHOD"));
        }
        Ok(None) => assert!(data.len() <= LIMITS.max_head),
        Err(e) => assert!([400, 413, 414, 417, 431, 501, 505].contains(&e.status())),
    }
});
