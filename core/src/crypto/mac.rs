//! HMAC-SHA256, HKDF-SHA256 (RFC 5869) and constant-time comparison.
//!
//! Every comparison of a MAC, tag, key-check value or token in socp goes through
//! [`ct_eq`] or [`verify_hmac_sha256`], never `==`.

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::hash::sha256;

/// Length of an HMAC-SHA256 tag in bytes.
pub const HMAC_SHA256_LEN: usize = 32;

/// The largest HKDF-SHA256 output: 255 blocks of 32 bytes (RFC 5869 §2.3).
pub const HKDF_SHA256_MAX_OUTPUT: usize = 255 * 32;

/// SHA-256's block size, the length HMAC pads its key to.
const BLOCK_LEN: usize = 64;

/// An HMAC tag did not match. Carries no detail on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MacError {
    /// The tag is wrong (or has the wrong length).
    #[error("MAC verification failed")]
    Mismatch,
}

/// HKDF could not produce the requested output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KdfError {
    /// More output was asked for than HKDF-SHA256 can give.
    #[error("HKDF-SHA256 output of {requested} bytes exceeds the maximum of {max}")]
    OutputTooLong {
        /// Bytes requested.
        requested: usize,
        /// [`HKDF_SHA256_MAX_OUTPUT`].
        max: usize,
    },
}

/// An HMAC-SHA256 instance keyed with `key` (any length, as RFC 2104 allows).
///
/// The key is padded (or first hashed, if longer than a block) here, so the
/// infallible block-sized constructor can be used instead of unwrapping the
/// slice constructor's never-failing `Result`.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    let mut block = Zeroizing::new([0u8; BLOCK_LEN]);
    if key.len() > BLOCK_LEN {
        let digest = Zeroizing::new(sha256(key));
        block
            .iter_mut()
            .zip(digest.iter())
            .for_each(|(b, k)| *b = *k);
    } else {
        block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    }
    Hmac::<Sha256>::new(&(*block).into())
}

/// HMAC-SHA256 of `msg` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; HMAC_SHA256_LEN] {
    let mut mac = keyed(key);
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of two messages under one key: `(HMAC(key, a), HMAC(key, b))`.
/// The key is padded once and the keyed state cloned, which makes a ratchet
/// chain step (message key and next chain key) cheaper than two calls.
#[must_use]
pub fn hmac_sha256_pair(
    key: &[u8],
    a: &[u8],
    b: &[u8],
) -> (
    Zeroizing<[u8; HMAC_SHA256_LEN]>,
    Zeroizing<[u8; HMAC_SHA256_LEN]>,
) {
    let base = keyed(key);
    let mut first = base.clone();
    first.update(a);
    let mut second = base;
    second.update(b);
    (
        Zeroizing::new(first.finalize().into_bytes().into()),
        Zeroizing::new(second.finalize().into_bytes().into()),
    )
}

/// Checks a full-length (32-byte) HMAC-SHA256 `tag` in constant time.
///
/// # Errors
/// [`MacError::Mismatch`] if the tag is wrong or not 32 bytes long. Truncated tags are
/// not accepted: nothing in socp uses them.
pub fn verify_hmac_sha256(key: &[u8], msg: &[u8], tag: &[u8]) -> Result<(), MacError> {
    let mut mac = keyed(key);
    mac.update(msg);
    mac.verify_slice(tag).map_err(|_| MacError::Mismatch)
}

/// HKDF-SHA256 (RFC 5869): extract with `salt` (`None` = 32 zero bytes), then expand
/// `ikm` with `info` to fill `out`.
///
/// # Errors
/// [`KdfError::OutputTooLong`] if `out` is longer than [`HKDF_SHA256_MAX_OUTPUT`].
pub fn hkdf_sha256(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), KdfError> {
    hkdf::Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, out)
        .map_err(|_| KdfError::OutputTooLong {
            requested: out.len(),
            max: HKDF_SHA256_MAX_OUTPUT,
        })
}

/// Constant-time equality of two byte strings.
///
/// The running time depends on the lengths only, never on the contents; slices of
/// different lengths are unequal.
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc4231_case_2_and_long_key_case_6() {
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?").to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        let key = [0xaa; 131];
        assert_eq!(
            hmac_sha256(
                &key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .to_vec(),
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    #[test]
    fn verify_rejects_tampered_and_truncated_tags() {
        let tag = hmac_sha256(b"k", b"m");
        assert_eq!(verify_hmac_sha256(b"k", b"m", &tag), Ok(()));
        let mut bad = tag;
        bad[31] ^= 1;
        assert_eq!(
            verify_hmac_sha256(b"k", b"m", &bad),
            Err(MacError::Mismatch)
        );
        assert_eq!(
            verify_hmac_sha256(b"k", b"m", &tag[..16]),
            Err(MacError::Mismatch)
        );
        assert_eq!(verify_hmac_sha256(b"k", b"m", &[]), Err(MacError::Mismatch));
        assert_eq!(
            verify_hmac_sha256(b"K", b"m", &tag),
            Err(MacError::Mismatch)
        );
    }

    #[test]
    fn hkdf_rfc5869_case_1_and_length_limit() {
        let ikm = [0x0b; 22];
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let mut okm = [0u8; 42];
        hkdf_sha256(Some(&salt), &ikm, &info, &mut okm).unwrap();
        assert_eq!(
            okm.to_vec(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
        let mut max = vec![0u8; HKDF_SHA256_MAX_OUTPUT];
        assert!(hkdf_sha256(None, &ikm, b"", &mut max).is_ok());
        let mut too_long = vec![0u8; HKDF_SHA256_MAX_OUTPUT + 1];
        assert_eq!(
            hkdf_sha256(None, &ikm, b"", &mut too_long),
            Err(KdfError::OutputTooLong {
                requested: HKDF_SHA256_MAX_OUTPUT + 1,
                max: HKDF_SHA256_MAX_OUTPUT
            })
        );
    }

    #[test]
    fn ct_eq_semantics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
