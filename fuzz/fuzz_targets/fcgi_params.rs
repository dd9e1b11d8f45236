//! Fuzz the incremental PARAMS decoder.
//!
//! The first two bytes choose where to split the rest of the input into two PARAMS records;
//! the rest is the stream. Properties: never panics; feeding in two pieces gives the same result
//! as feeding it whole; a result within the limit agrees with the unbounded pair iterator; a
//! stream over the limit is rejected; the decoded pairs re-encode to a stream that decodes
//! to the same pairs; `Params::content_length` is the last `CONTENT_LENGTH`; `pair_layout`
//! walks the pairs as the iterator does; and an environ given the PARAMS buffer whole
//! (`Environ::set_all_from`) holds what setting each pair in turn gives.

#![no_main]

use gatekit_core::Environ;
use gatekit_fastcgi::proto::{encode_pair, pair_layout, pairs, Error, ParamsDecoder};
use libfuzzer_sys::fuzz_target;

/// Small, so that the limit is hit often.
const LIMIT: usize = 512;

type OwnedPairs = Vec<(Vec<u8>, Vec<u8>)>;

fn decode(chunks: &[&[u8]], limit: usize) -> Result<OwnedPairs, Error> {
    let mut decoder = ParamsDecoder::new(limit);
    for chunk in chunks {
        decoder.feed(chunk)?;
    }
    let params = decoder.finish()?;
    assert_eq!(params.iter().len(), params.len());
    assert_eq!(params.content_length(), params.get(b"CONTENT_LENGTH"));
    let owned = params.to_vec();
    let mut one_by_one = Environ::new();
    for (name, value) in &owned {
        one_by_one.set_bytes(name, value);
    }
    let mut whole = Environ::new();
    whole.set_all_from(params.into_buffer(), pair_layout);
    assert!(whole.iter().eq(one_by_one.iter()));
    Ok(owned)
}

fuzz_target!(|data: &[u8]| {
    let Some((&[hi, lo], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_be_bytes([hi, lo])) % (stream.len() + 1);
    let (first, second) = stream.split_at(split);

    let whole = decode(&[stream], LIMIT);
    let pieces = decode(&[first, second], LIMIT);
    assert_eq!(pieces, whole);

    // pair_layout finds what the iterator finds, and stops where it errs.
    let mut rest = stream;
    for pair in pairs(stream) {
        match (pair, pair_layout(rest)) {
            (Ok((name, value)), Some((n, v, used))) => {
                assert_eq!((&rest[n], &rest[v]), (name, value));
                rest = &rest[used..];
            }
            (Err(_), None) => break,
            (pair, layout) => panic!("iterator {pair:?}, layout {layout:?}"),
        }
    }

    let unbounded: Result<Vec<_>, Error> = pairs(stream)
        .map(|pair| pair.map(|(name, value)| (name.to_vec(), value.to_vec())))
        .collect();
    match &whole {
        Ok(decoded) => {
            assert!(stream.len() <= LIMIT);
            assert_eq!(Ok(decoded), unbounded.as_ref());

            let mut encoded = Vec::new();
            for (name, value) in decoded {
                encode_pair(name, value, &mut encoded).expect("decoded lengths fit 31 bits");
            }
            // Canonical lengths are never longer than the ones received.
            assert!(encoded.len() <= stream.len());
            assert_eq!(decode(&[&encoded], LIMIT).as_ref(), Ok(decoded));
        }
        Err(Error::ParamsTooLarge { limit }) => assert_eq!(*limit, LIMIT),
        Err(Error::TruncatedPair) => {
            assert!(stream.len() <= LIMIT);
            assert!(unbounded.is_err());
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
});
