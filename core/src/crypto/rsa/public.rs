//! [`RsaPublic`]: a peer's RSA-4096 public key.

use core::fmt;
use core::hash::{Hash, Hasher};

use rand_core::CryptoRng;
use rsa::pkcs1::der::Decode as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{Oaep, Pss, RsaPublicKey};
use sha2::{Digest as _, Sha256};

use super::{EncryptError, KeyEncoding, KeyError, OAEP_MAX_PLAINTEXT, RSA_BITS, pem};
use crate::crypto::SignatureError;
use crate::crypto::hash::sha256;
use crate::wire::b64;

/// Longest wire string [`RsaPublic::from_wire`] looks at. A 4096-bit key is at most
/// about 1.1 KB in any accepted encoding; longer input is refused before decoding.
const MAX_WIRE_LEN: usize = 8 * 1024;

/// The big-endian bytes of 65537, as a DER INTEGER stores them.
const E_65537: [u8; 3] = [0x01, 0x00, 0x01];

/// A peer's RSA public key, checked to be 4096 bits with e = 65537.
///
/// Two keys are equal when their modulus and exponent are; how the key was encoded on
/// the wire does not matter. `Debug` shows a short SHA-256 fingerprint of the DER.
#[derive(Clone)]
pub struct RsaPublic {
    key: RsaPublicKey,
    /// Canonical DER SubjectPublicKeyInfo, re-encoded by us.
    der: Box<[u8]>,
    fingerprint: [u8; 32],
}

impl RsaPublic {
    /// Parses a public key as it appears in a SOCP payload (`pubkey`, `sender_pub`,
    /// `creator_pub`), and reports which encoding the peer used.
    ///
    /// Accepted (socp-1.3.md §2 row 3, §3), all tolerant of surrounding whitespace:
    /// - base64url of DER SubjectPublicKeyInfo, padded or not (the spec's meaning);
    /// - base64url of PEM text, padded or not;
    /// - raw PEM text, `BEGIN PUBLIC KEY` (SPKI) or `BEGIN RSA PUBLIC KEY` (PKCS#1).
    ///
    /// base64url of a bare PKCS#1 `RSAPublicKey` DER is accepted as well.
    ///
    /// # Errors
    /// A [`KeyError`] (all map to `BAD_KEY`) if the text is not a key in one of those
    /// forms, not RSA, not 4096 bits, or its exponent is not 65537.
    pub fn from_wire(text: &str) -> Result<(Self, KeyEncoding), KeyError> {
        let text = text.trim();
        if text.len() > MAX_WIRE_LEN {
            return Err(KeyError::Malformed);
        }
        if text.starts_with("-----BEGIN") {
            return Ok((Self::from_pem(text)?, KeyEncoding::PemText));
        }
        let bytes = b64::decode(text).map_err(|_| KeyError::Malformed)?;
        let trimmed = bytes.trim_ascii_start();
        if trimmed.starts_with(b"-----BEGIN") {
            let pem_text = core::str::from_utf8(trimmed).map_err(|_| KeyError::Malformed)?;
            return Ok((Self::from_pem(pem_text)?, KeyEncoding::PemText));
        }
        let key = match Self::from_spki_der(&bytes) {
            // Bare PKCS#1 DER is a SEQUENCE of two INTEGERs; SPKI is a SEQUENCE whose
            // first element is a SEQUENCE. Fall back only when SPKI did not parse.
            Err(KeyError::Malformed) => Self::from_pkcs1_der(&bytes),
            other => other,
        }?;
        Ok((key, KeyEncoding::Der))
    }

    /// Parses PEM text: SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`).
    ///
    /// # Errors
    /// As [`RsaPublic::from_wire`].
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let (label, der) = pem::decode(text).ok_or(KeyError::Malformed)?;
        match label {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => Self::from_pkcs1_der(&der),
            _ => Err(KeyError::Malformed),
        }
    }

    /// Parses a DER SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// As [`RsaPublic::from_wire`].
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki =
            rsa::pkcs8::SubjectPublicKeyInfoRef::from_der(der).map_err(|_| KeyError::Malformed)?;
        if spki.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
            return Err(KeyError::NotRsa);
        }
        let inner = spki
            .subject_public_key
            .as_bytes()
            .ok_or(KeyError::Malformed)?;
        Self::from_pkcs1_der(inner)
    }

    /// Parses a DER PKCS#1 `RSAPublicKey` (modulus and exponent).
    ///
    /// # Errors
    /// As [`RsaPublic::from_wire`].
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let parts = rsa::pkcs1::RsaPublicKeyRef::from_der(der).map_err(|_| KeyError::Malformed)?;
        // Check the policy on the raw integers first, so that keys the `rsa` crate
        // itself refuses (e.g. 512-bit) still get a precise error.
        check_policy(parts.modulus.as_bytes(), parts.public_exponent.as_bytes())?;
        let key = RsaPublicKey::try_from(parts).map_err(|_| KeyError::Malformed)?;
        Self::from_rsa(key)
    }

    /// Wraps an `rsa` crate key after checking the SOCP policy.
    pub(crate) fn from_rsa(key: RsaPublicKey) -> Result<Self, KeyError> {
        check_policy(&key.n().to_be_bytes(), &key.e().to_be_bytes())?;
        let der = key
            .to_public_key_der()
            .map_err(|_| KeyError::Malformed)?
            .into_vec()
            .into_boxed_slice();
        let fingerprint = sha256(&der);
        Ok(Self {
            key,
            der,
            fingerprint,
        })
    }

    /// The wire form socp emits: base64url of the DER SPKI, unpadded (734 characters,
    /// starting `MIICIjANBgkq`).
    #[must_use]
    pub fn to_wire(&self) -> String {
        b64::encode(&self.der)
    }

    /// The wire form in a given encoding, to answer a peer in kind.
    /// [`KeyEncoding::PemText`] gives base64url of the PEM text (1067 characters,
    /// starting `LS0tLS1CRUdJ`).
    #[must_use]
    pub fn to_wire_as(&self, encoding: KeyEncoding) -> String {
        match encoding {
            KeyEncoding::Der => self.to_wire(),
            KeyEncoding::PemText => b64::encode(self.to_pem().as_bytes()),
        }
    }

    /// PEM text (`BEGIN PUBLIC KEY`), exactly as Python `cryptography` writes it.
    #[must_use]
    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.der).to_string()
    }

    /// The canonical DER SubjectPublicKeyInfo (550 bytes).
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of [`RsaPublic::der`].
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Verifies an RSASSA-PSS signature: SHA-256, MGF1-SHA256, any salt length
    /// (like Python's `PSS.AUTO`, so salts of 0, 32 and 478 bytes all verify).
    ///
    /// # Errors
    /// [`SignatureError::Invalid`] for any bad signature, including a wrong length.
    pub fn verify_pss(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let scheme = Pss::<Sha256> {
            blinded: false,
            digest: Sha256::new(),
            salt_len: None,
        };
        self.key
            .verify(scheme, &sha256(msg), sig)
            .map_err(|_| SignatureError::Invalid)
    }

    /// RSA-OAEP encryption with SHA-256, MGF1-SHA256 and an empty label: the SOCP
    /// payload encryption (512-byte output).
    ///
    /// # Errors
    /// [`EncryptError::PlaintextTooLong`] above [`OAEP_MAX_PLAINTEXT`] (446) bytes.
    pub fn encrypt_oaep<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptError> {
        check_len(plaintext)?;
        self.key
            .encrypt(rng, Oaep::<Sha256>::new(), plaintext)
            .map_err(|_| EncryptError::Failed)
    }

    /// RSA-OAEP (SHA-256, MGF1-SHA256) with a non-empty `label`: impl A's wraps for the
    /// public channel (`b"public-v{version}"`, socp-1.3.md §2 row 6). Only for peers
    /// known to expect it; the spec's label is empty.
    ///
    /// # Errors
    /// As [`RsaPublic::encrypt_oaep`].
    pub fn encrypt_oaep_labelled<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        label: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptError> {
        check_len(plaintext)?;
        self.key
            .encrypt(rng, Oaep::<Sha256>::new_with_label(label), plaintext)
            .map_err(|_| EncryptError::Failed)
    }
}

fn check_len(plaintext: &[u8]) -> Result<(), EncryptError> {
    if plaintext.len() > OAEP_MAX_PLAINTEXT {
        return Err(EncryptError::PlaintextTooLong {
            len: plaintext.len(),
            max: OAEP_MAX_PLAINTEXT,
        });
    }
    Ok(())
}

/// Checks modulus size and exponent on big-endian integer bytes.
fn check_policy(modulus: &[u8], exponent: &[u8]) -> Result<(), KeyError> {
    let bits = bit_len(modulus);
    if bits != RSA_BITS {
        return Err(KeyError::WrongSize { bits });
    }
    if strip_zeros(exponent) != E_65537 {
        return Err(KeyError::WeakExponent);
    }
    Ok(())
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Bit length of a big-endian unsigned integer.
fn bit_len(bytes: &[u8]) -> usize {
    match strip_zeros(bytes).split_first() {
        None => 0,
        Some((&first, rest)) => rest.len() * 8 + (8 - first.leading_zeros() as usize),
    }
}

impl PartialEq for RsaPublic {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for RsaPublic {}

impl Hash for RsaPublic {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal keys have equal canonical DER, hence equal fingerprints.
        self.fingerprint.hash(state);
    }
}

impl fmt::Debug for RsaPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaPublic(sha256:")?;
        for byte in self.fingerprint.iter().take(8) {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_len_of_big_endian_bytes() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01, 0x00, 0x01]), 17);
        let mut n = vec![0u8; 513];
        n[1] = 0x80;
        assert_eq!(bit_len(&n), 4096);
    }

    #[test]
    fn garbage_is_malformed() {
        for text in [
            "",
            "   ",
            "!!!",
            "AAAA",
            "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K",
        ] {
            assert_eq!(
                RsaPublic::from_wire(text).unwrap_err(),
                KeyError::Malformed,
                "{text}"
            );
        }
        let long = "A".repeat(MAX_WIRE_LEN + 4);
        assert_eq!(
            RsaPublic::from_wire(&long).unwrap_err(),
            KeyError::Malformed
        );
    }
}
