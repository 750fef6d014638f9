//! base64url (RFC 4648 §5), as SOCP v1.3 uses for keys, ciphertexts and signatures.
//!
//! Strict in what we send: URL-safe alphabet, no `=` padding. Liberal in what we
//! accept: padded and unpadded input both decode (socp-1.3.md §2 row 3: impl H
//! keeps its padding).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ENCODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false),
);

const DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false),
);

/// Why a base64url string did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum B64Error {
    /// A character outside the URL-safe alphabet (this includes `+` and `/`).
    #[error("invalid base64url character at offset {offset}")]
    InvalidByte {
        /// Byte offset of the offending character.
        offset: usize,
    },
    /// The length is impossible for base64 (≡ 1 mod 4 without padding).
    #[error("invalid base64url length")]
    InvalidLength,
    /// Padding in the wrong place, or non-zero trailing bits.
    #[error("invalid base64url padding or trailing bits")]
    InvalidPadding,
}

/// Encodes `bytes` as unpadded base64url.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    ENCODER.encode(bytes)
}

/// Appends the unpadded base64url encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    ENCODER.encode_string(bytes, out);
}

/// The length of the unpadded base64url encoding of `n` bytes.
#[must_use]
pub const fn encoded_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// Decodes base64url, padded or not.
pub fn decode(text: &str) -> Result<Vec<u8>, B64Error> {
    DECODER.decode(text.as_bytes()).map_err(|e| match e {
        base64::DecodeError::InvalidByte(offset, _) => B64Error::InvalidByte { offset },
        base64::DecodeError::InvalidLength(_) => B64Error::InvalidLength,
        base64::DecodeError::InvalidLastSymbol(_, _) | base64::DecodeError::InvalidPadding => {
            B64Error::InvalidPadding
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_padding_or_standard_alphabet_on_output() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let text = encode(&bytes);
        assert!(!text.contains(['=', '+', '/']));
        assert_eq!(decode(&text).unwrap(), bytes);
    }

    #[test]
    fn accepts_padded_and_unpadded() {
        assert_eq!(decode("YQ").unwrap(), b"a");
        assert_eq!(decode("YQ==").unwrap(), b"a");
        assert_eq!(decode("YWI").unwrap(), b"ab");
        assert_eq!(decode("YWI=").unwrap(), b"ab");
    }

    #[test]
    fn rejects_standard_alphabet_and_bad_lengths() {
        assert!(matches!(
            decode("a+b/"),
            Err(B64Error::InvalidByte { offset: 1 })
        ));
        assert_eq!(decode("Y"), Err(B64Error::InvalidLength));
        assert_eq!(decode("YR"), Err(B64Error::InvalidPadding));
    }

    #[test]
    fn signature_length_matches_spec() {
        assert_eq!(encode(&[0u8; 512]).len(), 683);
        assert_eq!(encoded_len(512), 683);
        assert_eq!(encoded_len(550), 734);
    }
}
