//! The password-protected keystore: private keys at rest, as ASCII text that fits the
//! `privkey_store TEXT` column of socp-1.3.md §1.10 or a file.
//!
//! # Format, version 1
//!
//! One line of ASCII, fields separated by `$` (never in base64url):
//!
//! ```text
//! $socp-keystore$v=1$argon2id$m=19456,t=2,p=1$<salt>$<nonce>$<check>$<ciphertext>
//! └──────────────────────── header (AEAD associated data) ───────┘
//! ```
//!
//! - `m`, `t`, `p`: Argon2id memory (KiB), passes and lanes, in canonical decimal;
//! - `salt`: 16 random bytes; `nonce`: 12 random bytes; `check`: 32 bytes;
//!   `ciphertext`: AES-256-GCM output (`ct ‖ tag`); all unpadded base64url.
//!
//! Keys: `master = Argon2id(password, salt, m, t, p)` (version 0x13, 32 bytes), then
//! HKDF-SHA256 (no salt) expands `master` with two distinct labels into the AES-256-GCM
//! key (`"socp-keystore v1 aead key"`) and the key-check value
//! (`"socp-keystore v1 key check"`). The check value tells a wrong password
//! ([`KeystoreError::WrongPassword`]) apart from a modified blob
//! ([`KeystoreError::Tampered`]) and is compared in constant time; it costs a
//! password guesser exactly as much Argon2 work as the AEAD tag does.
//!
//! The header text, byte for byte, is the associated data, so no header field can be
//! changed without detection: changing the KDF parameters or salt changes the derived
//! keys (→ `WrongPassword`), changing the nonce breaks the tag (→ `Tampered`). Every
//! field must be in canonical form, so each keystore has exactly one encoding.
//!
//! The plaintext is a JSON object with sorted keys whose values are unpadded base64url:
//! `rsa_pkcs8` (PKCS#8 DER), `ed25519_seed` (32 bytes), `x25519_secret` (32 bytes),
//! each present only if set. Unknown keys are refused rather than ignored, so that an
//! old reader can never silently drop a key on re-sealing; new kinds of secret come
//! with a new version.
//!
//! # Untrusted blobs
//!
//! A blob may come from a server (login fetches `privkey_store`). [`open`] checks the
//! KDF parameters against [`MAX_M_COST_KIB`], [`MAX_T_COST`] and [`MAX_P_COST`] before
//! running Argon2, so a hostile server cannot make a client burn gigabytes of memory
//! or minutes of CPU; it refuses blobs longer than [`MAX_BLOB_LEN`] before parsing.

use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::aead::{self, NONCE_LEN, TAG_LEN};
use super::ed25519::{Ed25519Identity, SEED_LEN};
use super::mac::{ct_eq, hkdf_sha256};
use super::rsa::{KeyError, RsaIdentity};
use super::x25519::{self, X25519Secret};
use crate::wire::b64;

/// The format name, first field of every keystore.
const FORMAT: &str = "socp-keystore";
/// The version this code writes and reads.
pub const VERSION: u64 = 1;
/// The only KDF of version 1.
const KDF: &str = "argon2id";
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Key-check value length in bytes.
pub const CHECK_LEN: usize = 32;
const AEAD_KEY_INFO: &[u8] = b"socp-keystore v1 aead key";
const CHECK_INFO: &[u8] = b"socp-keystore v1 key check";

/// Largest Argon2 memory cost [`open`] accepts: 1 GiB, in KiB.
pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
/// Largest Argon2 pass count [`open`] accepts.
pub const MAX_T_COST: u32 = 10;
/// Largest Argon2 lane count [`open`] accepts.
pub const MAX_P_COST: u32 = 16;
/// Longest blob [`open`] parses (an RSA-4096 key plus two 32-byte keys take ~3.5 KB).
pub const MAX_BLOB_LEN: usize = 64 * 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeystoreParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl Default for KeystoreParams {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl KeystoreParams {
    /// The cheapest parameters Argon2 allows (8 KiB, 1 pass, 1 lane). For tests only:
    /// they give no protection against password guessing.
    #[must_use]
    pub const fn for_tests() -> Self {
        Self {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Checks the bounds [`open`] enforces (and Argon2's own minimums).
    fn check(self) -> Result<Params, KeystoreError> {
        let out_of_bounds = KeystoreError::ParamsOutOfBounds {
            m_cost_kib: u64::from(self.m_cost_kib),
            t_cost: u64::from(self.t_cost),
            p_cost: u64::from(self.p_cost),
        };
        if !(1..=MAX_P_COST).contains(&self.p_cost)
            || !(1..=MAX_T_COST).contains(&self.t_cost)
            || self.m_cost_kib > MAX_M_COST_KIB
            || u64::from(self.m_cost_kib) < 8 * u64::from(self.p_cost)
        {
            return Err(out_of_bounds);
        }
        Params::new(
            self.m_cost_kib,
            self.t_cost,
            self.p_cost,
            Some(aead::KEY_LEN),
        )
        .map_err(|_| out_of_bounds)
    }
}

/// Why a keystore could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The password is wrong (the key-check value does not match).
    #[error("wrong keystore password")]
    WrongPassword,
    /// The password is right but the ciphertext, tag or nonce was modified.
    #[error("keystore was modified (authentication failed)")]
    Tampered,
    /// A keystore of a version this code does not read.
    #[error("unsupported keystore version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u64,
    },
    /// A key-derivation function other than Argon2id.
    #[error("unsupported keystore KDF")]
    UnsupportedKdf,
    /// Not a keystore, or not in canonical form.
    #[error("malformed keystore")]
    Malformed,
    /// KDF parameters outside the accepted bounds; the KDF was not run.
    #[error("keystore KDF parameters out of bounds (m={m_cost_kib} KiB, t={t_cost}, p={p_cost})")]
    ParamsOutOfBounds {
        /// Memory cost found, in KiB.
        m_cost_kib: u64,
        /// Passes found.
        t_cost: u64,
        /// Lanes found.
        p_cost: u64,
    },
    /// Argon2 or AES-GCM failed on valid input (e.g. memory could not be allocated).
    #[error("keystore key derivation or encryption failed")]
    Internal,
}

/// The secrets a keystore holds. Every field is zeroized on drop; `Debug` shows only
/// which fields are present.
///
/// Marked `#[non_exhaustive]` so that kinds of secret can be added: build it with
/// [`SecretBundle::default`] and the `with_*` methods or field assignment.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretBundle {
    /// An RSA private key, PKCS#8 DER.
    pub rsa_pkcs8: Option<Zeroizing<Vec<u8>>>,
    /// An Ed25519 seed.
    pub ed25519_seed: Option<Zeroizing<[u8; SEED_LEN]>>,
    /// An X25519 secret.
    pub x25519_secret: Option<Zeroizing<[u8; x25519::KEY_LEN]>>,
}

impl SecretBundle {
    /// Adds (or replaces) the RSA key.
    #[must_use]
    pub fn with_rsa(mut self, key: &RsaIdentity) -> Self {
        self.rsa_pkcs8 = Some(key.to_pkcs8_der());
        self
    }

    /// Adds (or replaces) the Ed25519 key.
    #[must_use]
    pub fn with_ed25519(mut self, key: &Ed25519Identity) -> Self {
        self.ed25519_seed = Some(key.seed());
        self
    }

    /// Adds (or replaces) the X25519 key.
    #[must_use]
    pub fn with_x25519(mut self, key: &X25519Secret) -> Self {
        self.x25519_secret = Some(key.to_bytes());
        self
    }

    /// The RSA key, if present.
    ///
    /// # Errors
    /// [`KeyError`] if the stored key does not parse or is not RSA-4096/65537.
    pub fn rsa_identity(&self) -> Option<Result<RsaIdentity, KeyError>> {
        self.rsa_pkcs8
            .as_ref()
            .map(|der| RsaIdentity::from_pkcs8_der(der))
    }

    /// The Ed25519 key, if present.
    #[must_use]
    pub fn ed25519_identity(&self) -> Option<Ed25519Identity> {
        self.ed25519_seed
            .as_ref()
            .map(|seed| Ed25519Identity::from_seed(**seed))
    }

    /// The X25519 key, if present.
    #[must_use]
    pub fn x25519(&self) -> Option<X25519Secret> {
        self.x25519_secret
            .as_ref()
            .map(|secret| X25519Secret::from_bytes(**secret))
    }

    /// The plaintext JSON, built in a buffer sized up front so that no copy of a secret
    /// is left behind by reallocation.
    fn encode(&self) -> Zeroizing<String> {
        let fields: [(&str, Option<&[u8]>); 3] = [
            ("ed25519_seed", self.ed25519_seed.as_deref().map(|s| &s[..])),
            ("rsa_pkcs8", self.rsa_pkcs8.as_deref().map(Vec::as_slice)),
            (
                "x25519_secret",
                self.x25519_secret.as_deref().map(|s| &s[..]),
            ),
        ];
        // `{` `}`, then `"name":"value"` per field and a comma between fields.
        let present = fields.iter().filter(|(_, value)| value.is_some()).count();
        let capacity = 2
            + present.saturating_sub(1)
            + fields
                .iter()
                .filter_map(|(name, value)| {
                    value.map(|v| name.len() + 5 + b64::encoded_len(v.len()))
                })
                .sum::<usize>();
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        out.push('{');
        for (name, value) in fields {
            let Some(value) = value else { continue };
            if out.len() > 1 {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":\"");
            b64::encode_into(value, &mut out);
            out.push('"');
        }
        out.push('}');
        out
    }

    fn decode(plaintext: &[u8]) -> Result<Self, KeystoreError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Plain<'a> {
            #[serde(borrow)]
            rsa_pkcs8: Option<&'a str>,
            #[serde(borrow)]
            ed25519_seed: Option<&'a str>,
            #[serde(borrow)]
            x25519_secret: Option<&'a str>,
        }
        fn bytes(text: &str) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
            b64::decode(text)
                .map(Zeroizing::new)
                .map_err(|_| KeystoreError::Malformed)
        }
        fn array(text: &str) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
            let bytes = bytes(text)?;
            let mut out = Zeroizing::new([0u8; 32]);
            if bytes.len() != out.len() {
                return Err(KeystoreError::Malformed);
            }
            out.copy_from_slice(&bytes);
            Ok(out)
        }
        let plain: Plain<'_> =
            serde_json::from_slice(plaintext).map_err(|_| KeystoreError::Malformed)?;
        Ok(Self {
            rsa_pkcs8: plain.rsa_pkcs8.map(bytes).transpose()?,
            ed25519_seed: plain.ed25519_seed.map(array).transpose()?,
            x25519_secret: plain.x25519_secret.map(array).transpose()?,
        })
    }
}

impl fmt::Debug for SecretBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn shown<T>(value: Option<&T>) -> &'static str {
            if value.is_some() {
                "<redacted>"
            } else {
                "None"
            }
        }
        f.debug_struct("SecretBundle")
            .field("rsa_pkcs8", &shown(self.rsa_pkcs8.as_ref()))
            .field("ed25519_seed", &shown(self.ed25519_seed.as_ref()))
            .field("x25519_secret", &shown(self.x25519_secret.as_ref()))
            .finish()
    }
}

/// The AEAD key and key-check value derived from a password.
struct DerivedKeys {
    aead_key: Zeroizing<[u8; aead::KEY_LEN]>,
    check: Zeroizing<[u8; CHECK_LEN]>,
}

fn derive(password: &[u8], salt: &[u8], params: Params) -> Result<DerivedKeys, KeystoreError> {
    let mut master = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, master.as_mut_slice())
        .map_err(|_| KeystoreError::Internal)?;
    let mut keys = DerivedKeys {
        aead_key: Zeroizing::new([0u8; aead::KEY_LEN]),
        check: Zeroizing::new([0u8; CHECK_LEN]),
    };
    hkdf_sha256(
        None,
        master.as_slice(),
        AEAD_KEY_INFO,
        keys.aead_key.as_mut_slice(),
    )
    .map_err(|_| KeystoreError::Internal)?;
    hkdf_sha256(
        None,
        master.as_slice(),
        CHECK_INFO,
        keys.check.as_mut_slice(),
    )
    .map_err(|_| KeystoreError::Internal)?;
    Ok(keys)
}

/// The canonical header text for these values.
fn header(params: &KeystoreParams, salt: &[u8], nonce: &[u8]) -> String {
    format!(
        "${FORMAT}$v={VERSION}${KDF}$m={},t={},p={}${}${}",
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        b64::encode(salt),
        b64::encode(nonce),
    )
}

/// Encrypts `bundle` under `password`; returns the one-line ASCII keystore.
///
/// # Errors
/// [`KeystoreError::ParamsOutOfBounds`] for parameters [`open`] would refuse;
/// [`KeystoreError::Internal`] if Argon2 fails (e.g. out of memory).
pub fn seal<R: CryptoRng + ?Sized>(
    password: &[u8],
    bundle: &SecretBundle,
    params: &KeystoreParams,
    rng: &mut R,
) -> Result<String, KeystoreError> {
    let argon_params = params.check()?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    let keys = derive(password, &salt, argon_params)?;
    let mut blob = header(params, &salt, &nonce);
    let plaintext = bundle.encode();
    let ciphertext = aead::seal(
        &keys.aead_key,
        &nonce,
        blob.as_bytes(),
        plaintext.as_bytes(),
    )
    .map_err(|_| KeystoreError::Internal)?;
    blob.push('$');
    b64::encode_into(keys.check.as_slice(), &mut blob);
    blob.push('$');
    b64::encode_into(&ciphertext, &mut blob);
    Ok(blob)
}

/// A fully parsed keystore, before any key derivation.
struct Parsed<'a> {
    header: &'a str,
    params: KeystoreParams,
    salt: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    check: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Parses a canonical decimal `u32` (no sign, no leading zeros). Numbers too large
/// for any sane parameter are reported as out of bounds, not malformed.
fn parse_param(text: &str, name: &str) -> Result<u64, KeystoreError> {
    let digits = text.strip_prefix(name).ok_or(KeystoreError::Malformed)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return Err(KeystoreError::Malformed);
    }
    Ok(digits.parse::<u64>().unwrap_or(u64::MAX))
}

fn parse(blob: &str) -> Result<Parsed<'_>, KeystoreError> {
    if blob.len() > MAX_BLOB_LEN {
        return Err(KeystoreError::Malformed);
    }
    let mut fields = blob.split('$');
    // The blob starts with '$', so the first field is empty.
    if fields.next() != Some("") || fields.next() != Some(FORMAT) {
        return Err(KeystoreError::Malformed);
    }
    let version = fields
        .next()
        .and_then(|v| parse_param(v, "v=").ok())
        .ok_or(KeystoreError::Malformed)?;
    if version != VERSION {
        return Err(KeystoreError::UnsupportedVersion { version });
    }
    if fields.next() != Some(KDF) {
        return Err(KeystoreError::UnsupportedKdf);
    }
    let mut costs = fields.next().ok_or(KeystoreError::Malformed)?.split(',');
    let (Some(m), Some(t), Some(p), None) =
        (costs.next(), costs.next(), costs.next(), costs.next())
    else {
        return Err(KeystoreError::Malformed);
    };
    let (m, t, p) = (
        parse_param(m, "m=")?,
        parse_param(t, "t=")?,
        parse_param(p, "p=")?,
    );
    let out_of_bounds = KeystoreError::ParamsOutOfBounds {
        m_cost_kib: m,
        t_cost: t,
        p_cost: p,
    };
    let params = KeystoreParams {
        m_cost_kib: u32::try_from(m).map_err(|_| out_of_bounds.clone())?,
        t_cost: u32::try_from(t).map_err(|_| out_of_bounds.clone())?,
        p_cost: u32::try_from(p).map_err(|_| out_of_bounds)?,
    };
    let mut next_b64 = || -> Result<Vec<u8>, KeystoreError> {
        let text = fields.next().ok_or(KeystoreError::Malformed)?;
        b64::decode(text).map_err(|_| KeystoreError::Malformed)
    };
    let salt = next_b64()?;
    let nonce: [u8; NONCE_LEN] = next_b64()?
        .try_into()
        .map_err(|_| KeystoreError::Malformed)?;
    let check = next_b64()?;
    let ciphertext = next_b64()?;
    if fields.next().is_some()
        || salt.len() != SALT_LEN
        || check.len() != CHECK_LEN
        || ciphertext.len() < TAG_LEN
    {
        return Err(KeystoreError::Malformed);
    }
    let header_text = header(&params, &salt, &nonce);
    let canonical = format!(
        "{header_text}${}${}",
        b64::encode(&check),
        b64::encode(&ciphertext)
    );
    if canonical != blob {
        return Err(KeystoreError::Malformed);
    }
    let header = blob
        .get(..header_text.len())
        .ok_or(KeystoreError::Malformed)?;
    Ok(Parsed {
        header,
        params,
        salt,
        nonce,
        check,
        ciphertext,
    })
}

/// Decrypts a keystore made by [`seal`]. Surrounding whitespace is ignored.
///
/// # Errors
/// - [`KeystoreError::Malformed`], [`KeystoreError::UnsupportedVersion`],
///   [`KeystoreError::UnsupportedKdf`] for blobs this code cannot read;
/// - [`KeystoreError::ParamsOutOfBounds`] for hostile KDF parameters (Argon2 is not run);
/// - [`KeystoreError::WrongPassword`] if the key-check value does not match;
/// - [`KeystoreError::Tampered`] if it matches but the AEAD tag does not.
pub fn open(password: &[u8], blob: &str) -> Result<SecretBundle, KeystoreError> {
    let parsed = parse(blob.trim())?;
    let argon_params = parsed.params.check()?;
    let keys = derive(password, &parsed.salt, argon_params)?;
    if !ct_eq(keys.check.as_slice(), &parsed.check) {
        return Err(KeystoreError::WrongPassword);
    }
    let plaintext = aead::open(
        &keys.aead_key,
        &parsed.nonce,
        parsed.header.as_bytes(),
        &parsed.ciphertext,
    )
    .map_err(|_| KeystoreError::Tampered)?;
    SecretBundle::decode(&plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_encoding_round_trips_and_is_sized_exactly() {
        let bundle = SecretBundle {
            rsa_pkcs8: Some(Zeroizing::new(vec![1, 2, 3, 4, 5])),
            ed25519_seed: Some(Zeroizing::new([7; 32])),
            x25519_secret: None,
        };
        let text = bundle.encode();
        assert_eq!(text.len(), text.capacity());
        assert!(text.starts_with("{\"ed25519_seed\":\"BwcH"));
        assert!(text.ends_with(",\"rsa_pkcs8\":\"AQIDBAU\"}"));
        assert_eq!(SecretBundle::decode(text.as_bytes()).unwrap(), bundle);
        assert_eq!(SecretBundle::default().encode().as_str(), "{}");
        assert_eq!(
            SecretBundle::decode(b"{\"other\":\"AA\"}"),
            Err(KeystoreError::Malformed)
        );
        assert_eq!(
            SecretBundle::decode(b"{\"ed25519_seed\":\"AA\"}"),
            Err(KeystoreError::Malformed)
        );
    }

    #[test]
    fn param_parsing_is_canonical() {
        assert_eq!(parse_param("m=19456", "m="), Ok(19456));
        assert_eq!(parse_param("m=0", "m="), Ok(0));
        assert_eq!(parse_param("m=99999999999999999999999", "m="), Ok(u64::MAX));
        for bad in ["m=", "m=019456", "m=+1", "m=-1", "m= 1", "t=1", "m=1e3"] {
            assert_eq!(
                parse_param(bad, "m="),
                Err(KeystoreError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn bounds() {
        assert!(KeystoreParams::default().check().is_ok());
        assert!(KeystoreParams::for_tests().check().is_ok());
        for (m, t, p) in [
            (7, 1, 1),
            (8, 0, 1),
            (8, 1, 0),
            (16, 1, 4),
            (MAX_M_COST_KIB + 1, 1, 1),
            (8, 11, 1),
            (1024, 1, 17),
        ] {
            let params = KeystoreParams {
                m_cost_kib: m,
                t_cost: t,
                p_cost: p,
            };
            assert!(
                matches!(params.check(), Err(KeystoreError::ParamsOutOfBounds { .. })),
                "{params:?}"
            );
        }
    }
}
