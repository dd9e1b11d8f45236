//! Fuzz the incremental PARAMS decoder.
//!
//! The first two bytes choose where to split the rest of the input into two PARAMS records;
//! the rest is the stream. Properties: never panics; feeding in two pieces gives the same result
//! as feeding it whole; a result within the limit agrees with the unbounded pair iterator; a
//! stream over the limit is rejected; and the decoded pairs re-encode to a stream that decodes
//! to the same pairs.

#![no_main]

use gatekit_fastcgi::proto::{encode_pair, pairs, Error, ParamsDecoder};
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
    Ok(params.to_vec())
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
