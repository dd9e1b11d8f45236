//! Fuzzes response status and header validation in `gatekit_core`:
//! `Status::parse`, `Status::from_code`, `Headers` (`append`, `append_bytes`,
//! `set`, `add_header`, `setdefault`), their serializer (`Headers::to_bytes`,
//! `Display`) and `validate::check_headers`.
//!
//! Input: one mode byte, two bytes of a status code, then fields each
//! prefixed by a length byte: the status line, then name/value pairs. The
//! mode's low bit says how field bytes become text: latin-1 (every byte one
//! character, so every control byte is reachable) or UTF-8, lossily (so
//! characters above U+00FF are reachable too).
//!
//! Properties:
//! - nothing panics;
//! - a status line is accepted exactly when it has the RFC 9112 §4 shape
//!   (three digits from 100, a space, a reason of HTAB, SP, VCHAR or
//!   obs-text), and it is written back as given;
//! - a header is accepted exactly when its name is an RFC 9110 token and its
//!   value latin-1 with no control character but HTAB; the serialized block
//!   is, byte for byte, `name: value CRLF` for each accepted header in order
//!   plus a final CRLF, so no CR, LF or NUL of the input ever reaches it;
//! - a refused header leaves the list as it was.

#![no_main]

use gatekit_core::{Headers, Status, validate};
use libfuzzer_sys::fuzz_target;

/// Splits `data` into fields, each prefixed by its length byte.
fn fields(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len).min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

fn text(bytes: &[u8], latin1: bool) -> String {
    if latin1 {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_tchar)
}

/// HTAB, SP, VCHAR or obs-text (RFC 9110 §5.5 field-vchar and RFC 9112 §4
/// reason-phrase): what a field value or a reason phrase may hold.
fn field_text(s: &str) -> bool {
    s.chars().all(|c| {
        c == '\t' || c == ' ' || c.is_ascii_graphic() || ('\u{80}'..='\u{ff}').contains(&c)
    })
}

fn rfc_status(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 4
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[0] != b'0'
        && b[3] == b' '
        && field_text(&s[4..])
}

/// The expected wire form of a header list: latin-1 bytes.
fn expected_block(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in pairs {
        out.extend(n.chars().map(|c| c as u8));
        out.extend_from_slice(b": ");
        out.extend(
            v.chars()
                .map(|c| u8::try_from(u32::from(c)).expect("latin-1 checked")),
        );
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// No CR, LF or NUL anywhere but the line ends the serializer writes.
fn assert_clean_block(block: &[u8], lines: usize) {
    assert!(!block.contains(&0), "NUL in the header block");
    let crlf = block.windows(2).filter(|w| w == b"\r\n").count();
    let cr = block.iter().filter(|&&b| b == b'\r').count();
    let lf = block.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        (cr, lf, crlf),
        (lines + 1, lines + 1, lines + 1),
        "stray CR or LF"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let latin1 = mode & 1 == 0;
    let (code, rest) = match rest {
        [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
        _ => (0, rest),
    };

    // Status from a code: only 100..=999, always in the RFC shape.
    match Status::from_code(code) {
        Ok(s) => {
            assert!((100..=999).contains(&code));
            assert_eq!(s.code(), code);
            assert!(s.as_str().starts_with(&format!("{code} ")));
            assert!(rfc_status(s.as_str()));
        }
        Err(_) => assert!(!(100..=999).contains(&code)),
    }

    let fields = fields(rest);
    let Some((status_field, pairs)) = fields.split_first() else {
        return;
    };

    // A status line: accepted exactly in the RFC shape, written back as given.
    let line = text(status_field, latin1);
    match Status::parse(&line) {
        Ok(s) => {
            assert!(rfc_status(&line), "accepted {line:?}");
            assert_eq!(s.as_str(), line);
            assert_eq!(s.to_string(), line);
            assert_eq!(s.code(), line[..3].parse::<u16>().unwrap());
            assert_eq!(s.reason(), &line[4..]);
            let _ = validate::check_status(&s);
        }
        Err(_) => assert!(!rfc_status(&line), "refused {line:?}"),
    }

    // Headers, through every way of adding one, chosen by the mode bits.
    let mut headers = Headers::new();
    let mut model: Vec<(String, String)> = Vec::new();
    for (i, pair) in pairs.chunks(2).enumerate() {
        let name = text(pair[0], latin1);
        let value = text(pair.get(1).copied().unwrap_or_default(), latin1);
        let before = headers.clone();
        let valid = match (mode >> 1).wrapping_add(i as u8) % 4 {
            0 => {
                let valid = token(&name) && field_text(&value);
                assert_eq!(
                    headers.append(&name, &value).is_ok(),
                    valid,
                    "{name:?}: {value:?}"
                );
                if valid {
                    model.push((name, value));
                }
                valid
            }
            1 => {
                let raw = pair.get(1).copied().unwrap_or_default();
                let value = text(raw, true);
                let valid = token(&name) && field_text(&value);
                assert_eq!(headers.append_bytes(&name, raw).is_ok(), valid);
                if valid {
                    model.push((name, value));
                }
                valid
            }
            2 => {
                let valid = token(&name) && field_text(&value);
                assert_eq!(headers.set(&name, &value).is_ok(), valid);
                if valid {
                    model.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
                    model.push((name, value));
                }
                valid
            }
            _ => {
                // A parameter whose value is the field itself: quoting must
                // not let a CR, LF or NUL through either.
                let valid = token(&name) && field_text(&value);
                let ok = headers
                    .add_header(&name, "v", &[("p", Some(&value))])
                    .is_ok();
                assert_eq!(ok, valid);
                if ok {
                    let quoted: String = value
                        .chars()
                        .flat_map(|c| {
                            (c == '\\' || c == '"')
                                .then_some('\\')
                                .into_iter()
                                .chain(std::iter::once(c))
                        })
                        .collect();
                    model.push((name, format!("v; p=\"{quoted}\"")));
                }
                valid
            }
        };
        if !valid {
            assert_eq!(headers, before, "a refused header changed the list");
        }
        if let Some(first) = model.first() {
            let name = first.0.clone();
            let got = headers.setdefault(&name, "ignored").map(str::to_owned);
            assert_eq!(got.ok().as_deref(), headers.get(&name));
        }
    }

    // The serializer writes exactly what was accepted, and nothing else.
    assert_eq!(headers.len(), model.len());
    let block = headers.to_bytes();
    assert_eq!(block, expected_block(&model));
    assert_clean_block(&block, model.len());
    let shown = headers.to_string();
    assert!(!shown.contains('\0'));
    assert_eq!(shown.matches('\r').count(), model.len() + 1);
    assert_eq!(shown.matches('\n').count(), model.len() + 1);
    // wsgiref's stricter checks never panic; what they accept, Headers did.
    if validate::check_headers(&headers).is_ok() {
        for (n, _) in &headers {
            assert!(n.as_bytes()[0].is_ascii_alphabetic());
        }
    }
});
