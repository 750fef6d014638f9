//! PEM (RFC 7468) as SOCP peers write it: strict output, lenient input.
//!
//! Output matches Python `cryptography` byte for byte: 64-character lines, LF line
//! endings, a trailing newline. Input accepts any line length, CRLF, blank lines and
//! surrounding whitespace, because keys arrive from many hand-written encoders.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

const PEM_ENCODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(true),
);

const PEM_DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Characters per PEM body line, as OpenSSL and Python write them.
const LINE_LEN: usize = 64;

/// The exact length of [`encode`]'s output for `der_len` bytes under `label`.
fn encoded_len(label: &str, der_len: usize) -> usize {
    let body = der_len.div_ceil(3) * 4;
    let lines = body.div_ceil(LINE_LEN);
    // "-----BEGIN " + label + "-----\n" and "-----END " + label + "-----\n".
    (11 + label.len() + 6) + body + lines + (9 + label.len() + 6)
}

/// PEM-encodes `der` under `label` into a buffer sized up front, so that secret
/// material is never left behind in a reallocated buffer.
pub(crate) fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let body = Zeroizing::new(PEM_ENCODER.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(encoded_len(label, der.len())));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // base64 output is ASCII, so splitting at any byte offset is a char boundary.
    for line in body.as_bytes().chunks(LINE_LEN) {
        for &byte in line {
            out.push(char::from(byte));
        }
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes one PEM block: returns its label and DER body.
///
/// Text before `-----BEGIN` and after the matching `-----END` line is ignored; the
/// labels must match. Returns `None` for anything that is not a single well-formed
/// block with a base64 body.
pub(crate) fn decode(text: &str) -> Option<(&str, Zeroizing<Vec<u8>>)> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let (_, rest) = text.split_once(BEGIN)?;
    let (label, rest) = rest.split_once(DASHES)?;
    if label.is_empty() || label.contains(['\n', '\r', '-']) {
        return None;
    }
    let (body, rest) = rest.split_once("-----END ")?;
    let (end_label, _) = rest.split_once(DASHES)?;
    if end_label != label {
        return None;
    }
    // Encrypted PEM (RFC 1421 headers such as "Proc-Type:") is not supported.
    if body.contains(':') {
        return None;
    }
    let compact: Zeroizing<Vec<u8>> =
        Zeroizing::new(body.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    let der = PEM_DECODER.decode(&compact).ok()?;
    Some((label, Zeroizing::new(der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_length() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 550, 2375] {
            let der: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let pem = encode("PUBLIC KEY", &der);
            assert_eq!(pem.len(), encoded_len("PUBLIC KEY", len), "len {len}");
            assert_eq!(pem.capacity(), pem.len());
            let (label, back) = decode(&pem).unwrap();
            assert_eq!(label, "PUBLIC KEY");
            assert_eq!(*back, der);
        }
        // A 550-byte SPKI gives the 800-byte PEM of socp-1.3.md §1.1.
        assert_eq!(encode("PUBLIC KEY", &[0u8; 550]).len(), 800);
    }

    #[test]
    fn lenient_input() {
        let text = "\r\n  junk\n-----BEGIN X-----\r\nAAEC\r\n\r\nAw==\r\n-----END X-----\r\n tail";
        let (label, der) = decode(text).unwrap();
        assert_eq!((label, der.as_slice()), ("X", &[0u8, 1, 2, 3][..]));
        assert!(decode("-----BEGIN X-----\nAAEC\n-----END Y-----\n").is_none());
        assert!(decode("-----BEGIN X-----\nA!EC\n-----END X-----\n").is_none());
        assert!(decode("no pem here").is_none());
        assert!(
            decode("-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n\nAAEC\n-----END X-----\n")
                .is_none()
        );
    }
}
