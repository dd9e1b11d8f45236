//! Fuzz the FastCGI record decoder: decode records back to back from arbitrary bytes.
//!
//! Properties: never panics; every record consumes at least a header and at most the input;
//! re-encoding a record (with its padding normalised to 8-byte alignment) decodes to the same
//! record; the fixed-size bodies and name-value contents decode without panicking, and what they
//! decode to re-encodes to something that decodes the same.

#![no_main]

use gatekit_fastcgi::proto::{
    decode_get_values, decode_record, encode_pair, encode_record, pairs, BeginRequest,
    EndRequest, Header, RecordType, UnknownType, ALIGNMENT, HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        let (record, used) = match decode_record(rest) {
            Ok(Some(found)) => found,
            Ok(None) => {
                // Only a strict prefix of a record can be left over, and a prefix that holds a
                // whole header must name more bytes than are there.
                if let Ok(Some(header)) = Header::decode(rest) {
                    assert!(header.record_len() > rest.len());
                }
                break;
            }
            Err(_) => break,
        };
        assert!(used >= HEADER_LEN + record.content.len());
        assert!(used <= rest.len());
        assert!(used - HEADER_LEN - record.content.len() <= 255);

        let mut out = Vec::new();
        encode_record(record.record_type, record.request_id, record.content, &mut out)
            .expect("decoded content is at most 65535 bytes");
        assert_eq!(out.len() % ALIGNMENT, 0);
        let (again, again_used) = decode_record(&out)
            .expect("encoder output is version 1")
            .expect("encoder output is a whole record");
        assert_eq!(again, record);
        assert_eq!(again_used, out.len());

        check_body(record.record_type, record.content);
        rest = rest.get(used..).expect("consumed at most the input");
    }
});

/// Decodes a record's content as its type says; whatever decodes must re-encode faithfully.
fn check_body(record_type: RecordType, content: &[u8]) {
    match record_type {
        RecordType::BeginRequest => {
            if let Ok(body) = BeginRequest::decode(content) {
                assert_eq!(BeginRequest::decode(&body.to_bytes()), Ok(body));
            }
        }
        RecordType::EndRequest => {
            if let Ok(body) = EndRequest::decode(content) {
                assert_eq!(EndRequest::decode(&body.to_bytes()), Ok(body));
            }
        }
        RecordType::UnknownType => {
            if let Ok(body) = UnknownType::decode(content) {
                assert_eq!(UnknownType::decode(&body.to_bytes()), Ok(body));
            }
        }
        RecordType::GetValues => {
            for name in decode_get_values(content) {
                let _ = name;
            }
        }
        RecordType::Params | RecordType::GetValuesResult => {
            let mut out = Vec::new();
            let mut decoded = Vec::new();
            for pair in pairs(content) {
                let Ok((name, value)) = pair else { break };
                encode_pair(name, value, &mut out).expect("decoded lengths fit 31 bits");
                decoded.push((name, value));
            }
            let again: Vec<_> = pairs(&out).collect::<Result<_, _>>().expect("re-encoded pairs");
            assert_eq!(again, decoded);
        }
        _ => {}
    }
}
