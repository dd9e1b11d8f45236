//! `ChunkedDecoder` over arbitrary bytes: it never panics, the body it yields
//! is never longer than its input, and feeding the input in two pieces (split
//! at a point the fuzzer picks) gives the same body and the same outcome as
//! feeding it whole.

#![no_main]

use gatekit_http::proto::{ChunkedDecoder, Decoded, Error, Limits};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_head: 512,
    max_headers: 8,
    max_target: 128,
    max_chunk_ext: 64,
    max_trailers: 128,
};

/// How the body ended: done at an offset of the whole input, still waiting
/// for bytes, or refused.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Done(usize),
    NeedMore,
    Failed(Error),
}

fn run(pieces: &[&[u8]]) -> (Vec<u8>, End) {
    let mut decoder = ChunkedDecoder::new(&LIMITS);
    let mut body = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let mut rest = *piece;
        loop {
            match decoder.decode(rest) {
                Ok(Decoded::Data { consumed, data }) => {
                    assert!(!data.is_empty() && data.len() <= consumed && consumed <= rest.len());
                    body.extend_from_slice(data);
                    rest = rest.get(consumed..).unwrap_or_default();
                    offset += consumed;
                }
                Ok(Decoded::NeedMore { consumed }) => {
                    assert_eq!(consumed, rest.len());
                    offset += consumed;
                    break;
                }
                Ok(Decoded::Done { consumed }) => {
                    assert!(consumed <= rest.len());
                    return (body, End::Done(offset + consumed));
                }
                Err(e) => return (body, End::Failed(e)),
            }
        }
    }
    (body, End::NeedMore)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the split point; the rest is the body.
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let at = usize::from(pick) * input.len() / 255;
    let (head, tail) = input.split_at(at.min(input.len()));

    let whole = run(&[input]);
    let split = run(&[head, tail]);
    assert!(whole.0.len() <= input.len());
    // The decoder works byte by byte, so even the data yielded before an
    // error does not depend on the split.
    assert_eq!(whole, split);
});
