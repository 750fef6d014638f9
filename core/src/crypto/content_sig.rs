//! `content_sig`: the end-to-end PSS signature inside DM, public-channel and
//! key-share payloads (socp-1.3.md §1.2, §2 rows 1 and 12, §3).
//!
//! The spec says `SHA256(ciphertext || from || to || ts)` and nothing about the bytes,
//! so peers disagree. Three layouts are in use for messages ([`SigLayout`]) and two
//! for key shares ([`KeyShareLayout`]). We **verify any of them** and report which one
//! matched, so that the caller can answer the peer in kind; we **emit layout A** to
//! peers we have not heard from (§3).
//!
//! Why A by default: it is the literal reading (concatenate the values the fields
//! denote: the ciphertext's bytes, not one particular text encoding of them), it is
//! what the reference-compatible impl A sends, and it does not depend on whether an
//! intermediary re-encodes the base64url (padding) on the way. Concatenation without
//! separators is unambiguous in practice because user ids are fixed-length UUIDs, an
//! RSA-4096 ciphertext is always 512 bytes and `ts` is the last field. For the same
//! reasons key shares default to [`KeyShareLayout::A`], which also binds the creator's
//! key itself (DER) rather than one of its several wire encodings.
//!
//! All signatures are RSASSA-PSS-SHA256 made by [`RsaIdentity::sign_pss`] (478-byte
//! salt) and checked by [`RsaPublic::verify_pss`] (any salt length), and travel as
//! unpadded base64url (683 characters).

use rand_core::CryptoRng;

use super::hash::{sha256, sha256_concat};
use super::rsa::{RSA_BYTES, RsaIdentity, RsaPublic, SignError};
use crate::wire::{ErrorCode, b64};

/// The bytes a DM or public-channel `content_sig` covers (socp-1.3.md §2 row 1).
///
/// `ts` is always written in decimal ASCII, with no separators between fields. A
/// public-channel message uses the same layouts without `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigLayout {
    /// PSS-SHA256 over `raw ciphertext bytes ‖ from ‖ to ‖ ts` (impl A). Our default.
    #[default]
    A,
    /// PSS-SHA256 over the UTF-8 of `base64url ciphertext string + from + to + ts`,
    /// the ciphertext exactly as it appears on the wire (impl B, C, G).
    B,
    /// PSS-SHA256 over `SHA256(raw ciphertext bytes ‖ from ‖ to ‖ ts)`: the 32-byte
    /// digest is the signed message, so PSS hashes it a second time (impl E).
    C,
}

impl SigLayout {
    /// Every layout, in the order [`verify_dm`] and [`verify_public`] try them.
    pub const ALL: [Self; 3] = [Self::A, Self::B, Self::C];
}

/// The bytes a `PUBLIC_CHANNEL_KEY_SHARE` `content_sig` covers (socp-1.3.md §2 row 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyShareLayout {
    /// PSS-SHA256 over `SHA256(canonical_json(shares)) ‖ DER(creator_pub)`: the 32-byte
    /// digest followed by the 550-byte DER SubjectPublicKeyInfo (impl A). Our default.
    #[default]
    A,
    /// PSS-SHA256 over the UTF-8 of `canonical_json(shares) + creator_pub`, with
    /// `creator_pub` the wire string exactly as sent (impl B).
    B,
}

impl KeyShareLayout {
    /// Every layout, in the order [`verify_key_share`] tries them.
    pub const ALL: [Self; 2] = [Self::A, Self::B];
}

/// The signed fields of a direct message (`MSG_DIRECT`, `USER_DELIVER`,
/// `SERVER_DELIVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmFields<'a> {
    /// The `ciphertext` field: base64url, exactly as on the wire.
    pub ciphertext: &'a str,
    /// The original sender's user id (`payload.sender` after a hop, §2 row 2).
    pub from: &'a str,
    /// The recipient's user id.
    pub to: &'a str,
    /// The original `MSG_DIRECT` timestamp, in milliseconds.
    pub ts: u64,
}

/// The signed fields of a `MSG_PUBLIC_CHANNEL` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicFields<'a> {
    /// The `ciphertext` field: base64url, exactly as on the wire.
    pub ciphertext: &'a str,
    /// The sender's user id.
    pub from: &'a str,
    /// The message timestamp, in milliseconds.
    pub ts: u64,
}

/// The signed fields of a `PUBLIC_CHANNEL_KEY_SHARE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyShareFields<'a> {
    /// Canonical JSON of the `shares` array (sorted keys, no whitespace, ASCII
    /// escapes), as the wire module computes it.
    pub shares_canonical: &'a [u8],
    /// The `creator_pub` field: the creator's key as the wire string that was sent.
    pub creator_pub: &'a str,
}

/// A `content_sig` could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentSigError {
    /// The signature verifies under no known layout (or is not base64url). No detail.
    #[error("content signature verification failed")]
    Invalid,
    /// Signing needs the raw ciphertext (layouts A and C) but `ciphertext` is not
    /// base64url. An API misuse, not a peer's fault.
    #[error("ciphertext is not base64url")]
    InvalidCiphertext,
    /// `creator_pub` is not an encoding of the signing key.
    #[error("creator_pub does not match the signing key")]
    KeyMismatch,
    /// The private-key operation failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl ContentSigError {
    /// The SOCP error code to report: [`ErrorCode::InvalidSig`].
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidSig
    }
}

/// The bytes covered by a message `content_sig` in `layout`; `raw` is the decoded
/// ciphertext (needed by A and C) and `to` is `None` for the public channel.
fn message_bytes(
    layout: SigLayout,
    ciphertext: &str,
    raw: &[u8],
    from: &str,
    to: Option<&str>,
    ts: u64,
) -> Vec<u8> {
    let ts = ts.to_string();
    let to = to.unwrap_or_default();
    match layout {
        SigLayout::A => [raw, from.as_bytes(), to.as_bytes(), ts.as_bytes()].concat(),
        SigLayout::B => [ciphertext, from, to, &ts].concat().into_bytes(),
        SigLayout::C => {
            sha256_concat(&[raw, from.as_bytes(), to.as_bytes(), ts.as_bytes()]).to_vec()
        }
    }
}

fn sign_message<R: CryptoRng + ?Sized>(
    key: &RsaIdentity,
    rng: &mut R,
    layout: SigLayout,
    ciphertext: &str,
    from: &str,
    to: Option<&str>,
    ts: u64,
) -> Result<String, ContentSigError> {
    let raw = match layout {
        SigLayout::B => Vec::new(),
        SigLayout::A | SigLayout::C => {
            b64::decode(ciphertext).map_err(|_| ContentSigError::InvalidCiphertext)?
        }
    };
    let msg = message_bytes(layout, ciphertext, &raw, from, to, ts);
    Ok(b64::encode(&key.sign_pss(rng, &msg)?))
}

fn decode_sig(sig_b64: &str) -> Result<Vec<u8>, ContentSigError> {
    match b64::decode(sig_b64.trim()) {
        Ok(sig) if sig.len() == RSA_BYTES => Ok(sig),
        _ => Err(ContentSigError::Invalid),
    }
}

fn verify_message(
    key: &RsaPublic,
    sig_b64: &str,
    ciphertext: &str,
    from: &str,
    to: Option<&str>,
    ts: u64,
) -> Result<SigLayout, ContentSigError> {
    let sig = decode_sig(sig_b64)?;
    // A ciphertext that is not base64url can only have been signed as text (B).
    let raw = b64::decode(ciphertext).ok();
    SigLayout::ALL
        .into_iter()
        .find(|&layout| {
            let raw = match (layout, &raw) {
                (SigLayout::B, _) => &[][..],
                (_, Some(raw)) => raw.as_slice(),
                (_, None) => return false,
            };
            let msg = message_bytes(layout, ciphertext, raw, from, to, ts);
            key.verify_pss(&msg, &sig).is_ok()
        })
        .ok_or(ContentSigError::Invalid)
}

/// Signs a direct message's `content_sig` in `layout`; returns unpadded base64url.
///
/// # Errors
/// [`ContentSigError::InvalidCiphertext`] for layouts A and C if `fields.ciphertext`
/// is not base64url; [`ContentSigError::Sign`] if signing fails.
pub fn sign_dm<R: CryptoRng + ?Sized>(
    key: &RsaIdentity,
    rng: &mut R,
    fields: &DmFields<'_>,
    layout: SigLayout,
) -> Result<String, ContentSigError> {
    sign_message(
        key,
        rng,
        layout,
        fields.ciphertext,
        fields.from,
        Some(fields.to),
        fields.ts,
    )
}

/// Verifies a direct message's `content_sig` (base64url, padded or not) under layouts
/// A, B and C, and returns the one that verified.
///
/// # Errors
/// [`ContentSigError::Invalid`] if none does.
pub fn verify_dm(
    key: &RsaPublic,
    sig_b64: &str,
    fields: &DmFields<'_>,
) -> Result<SigLayout, ContentSigError> {
    verify_message(
        key,
        sig_b64,
        fields.ciphertext,
        fields.from,
        Some(fields.to),
        fields.ts,
    )
}

/// Signs a public-channel message's `content_sig` (the DM layouts without `to`).
///
/// # Errors
/// As [`sign_dm`].
pub fn sign_public<R: CryptoRng + ?Sized>(
    key: &RsaIdentity,
    rng: &mut R,
    fields: &PublicFields<'_>,
    layout: SigLayout,
) -> Result<String, ContentSigError> {
    sign_message(
        key,
        rng,
        layout,
        fields.ciphertext,
        fields.from,
        None,
        fields.ts,
    )
}

/// Verifies a public-channel message's `content_sig` under layouts A, B and C.
///
/// # Errors
/// [`ContentSigError::Invalid`] if none verifies.
pub fn verify_public(
    key: &RsaPublic,
    sig_b64: &str,
    fields: &PublicFields<'_>,
) -> Result<SigLayout, ContentSigError> {
    verify_message(
        key,
        sig_b64,
        fields.ciphertext,
        fields.from,
        None,
        fields.ts,
    )
}

/// The bytes covered by a key-share `content_sig` in `layout`.
fn key_share_bytes(
    layout: KeyShareLayout,
    creator: &RsaPublic,
    fields: &KeyShareFields<'_>,
) -> Vec<u8> {
    match layout {
        KeyShareLayout::A => [&sha256(fields.shares_canonical)[..], creator.der()].concat(),
        KeyShareLayout::B => [fields.shares_canonical, fields.creator_pub.as_bytes()].concat(),
    }
}

/// Signs a `PUBLIC_CHANNEL_KEY_SHARE` `content_sig` as its creator.
///
/// `fields.creator_pub` must be the wire string of `key`'s public half that goes into
/// the payload (it is signed verbatim in layout B).
///
/// # Errors
/// [`ContentSigError::KeyMismatch`] if `fields.creator_pub` does not parse to `key`'s
/// public key; [`ContentSigError::Sign`] if signing fails.
pub fn sign_key_share<R: CryptoRng + ?Sized>(
    key: &RsaIdentity,
    rng: &mut R,
    fields: &KeyShareFields<'_>,
    layout: KeyShareLayout,
) -> Result<String, ContentSigError> {
    match RsaPublic::from_wire(fields.creator_pub) {
        Ok((parsed, _)) if parsed == *key.public() => {}
        _ => return Err(ContentSigError::KeyMismatch),
    }
    let msg = key_share_bytes(layout, key.public(), fields);
    Ok(b64::encode(&key.sign_pss(rng, &msg)?))
}

/// Verifies a key share's `content_sig` under layouts A and B with the creator's key,
/// and returns the layout that verified.
///
/// `creator` must be `fields.creator_pub` parsed with [`RsaPublic::from_wire`]; layout
/// A signs its DER, layout B the wire string itself.
///
/// # Errors
/// [`ContentSigError::Invalid`] if neither verifies.
pub fn verify_key_share(
    creator: &RsaPublic,
    sig_b64: &str,
    fields: &KeyShareFields<'_>,
) -> Result<KeyShareLayout, ContentSigError> {
    let sig = decode_sig(sig_b64)?;
    KeyShareLayout::ALL
        .into_iter()
        .find(|&layout| {
            creator
                .verify_pss(&key_share_bytes(layout, creator, fields), &sig)
                .is_ok()
        })
        .ok_or(ContentSigError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_build_the_documented_bytes() {
        let raw = [0xffu8, 0x00, 0x41];
        let ct = b64::encode(&raw);
        assert_eq!(
            message_bytes(SigLayout::A, &ct, &raw, "f", Some("t"), 12),
            b"\xff\x00\x41ft12"
        );
        assert_eq!(
            message_bytes(SigLayout::B, &ct, &raw, "f", Some("t"), 12),
            b"_wBBft12"
        );
        assert_eq!(
            message_bytes(SigLayout::C, &ct, &raw, "f", Some("t"), 12),
            sha256(b"\xff\x00\x41ft12")
        );
        assert_eq!(
            message_bytes(SigLayout::A, &ct, &raw, "f", None, 0),
            b"\xff\x00\x41f0"
        );
    }

    #[test]
    fn defaults_are_layout_a() {
        assert_eq!(SigLayout::default(), SigLayout::A);
        assert_eq!(KeyShareLayout::default(), KeyShareLayout::A);
    }
}
