//! The password-protected keystore (`crypto::keystore`): round trips, wrong passwords,
//! tampering, header edits and hostile KDF parameters.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions; a panic is a failed test"
)]

use socp_core::crypto::keystore::{
    self, KeystoreError, KeystoreParams, MAX_M_COST_KIB, MAX_T_COST, SecretBundle,
};
use socp_core::crypto::{
    CoreRng, Ed25519Identity, RsaIdentity, X25519Secret, fixtures, rng_from_seed,
};
use socp_core::wire::b64;

const PASSWORD: &[u8] = b"correct horse battery staple";

fn rng() -> CoreRng {
    rng_from_seed([0x31; 32])
}

fn full_bundle() -> SecretBundle {
    let mut rng = rng();
    SecretBundle::default()
        .with_rsa(fixtures::rsa_identity_ref(7))
        .with_ed25519(&Ed25519Identity::generate(&mut rng))
        .with_x25519(&X25519Secret::generate(&mut rng))
}

fn sealed(bundle: &SecretBundle) -> String {
    keystore::seal(PASSWORD, bundle, &KeystoreParams::for_tests(), &mut rng()).unwrap()
}

/// The `$`-separated fields of a keystore (the first is empty).
fn fields(blob: &str) -> Vec<String> {
    blob.split('$').map(str::to_owned).collect()
}

fn join(fields: &[String]) -> String {
    fields.join("$")
}

/// Flips one bit of the base64url field `index` and re-encodes it canonically.
fn flip_field_bit(blob: &str, index: usize, byte: usize) -> String {
    let mut f = fields(blob);
    let mut bytes = b64::decode(&f[index]).unwrap();
    bytes[byte] ^= 0x01;
    f[index] = b64::encode(&bytes);
    join(&f)
}

#[test]
fn round_trip_restores_exact_keys() {
    let mut rng = rng();
    let rsa = fixtures::rsa_identity(7);
    let ed = Ed25519Identity::generate(&mut rng);
    let x = X25519Secret::generate(&mut rng);
    let bundle = SecretBundle::default()
        .with_rsa(&rsa)
        .with_ed25519(&ed)
        .with_x25519(&x);
    let blob = keystore::seal(PASSWORD, &bundle, &KeystoreParams::for_tests(), &mut rng).unwrap();
    assert!(blob.is_ascii() && !blob.contains(['\n', ' ', '+', '/']));
    // No base64 padding: the only '=' are in "v=1" and the cost parameters.
    assert_eq!(blob.matches('=').count(), 4);
    assert!(
        blob.starts_with("$socp-keystore$v=1$argon2id$m=8,t=1,p=1$"),
        "{blob}"
    );

    let opened = keystore::open(PASSWORD, &blob).unwrap();
    assert_eq!(opened, bundle);
    let rsa_back = opened.rsa_identity().unwrap().unwrap();
    assert_eq!(rsa_back.public(), rsa.public());
    assert_eq!(*rsa_back.to_pkcs8_der(), *rsa.to_pkcs8_der());
    assert_eq!(opened.ed25519_identity().unwrap().public(), ed.public());
    assert_eq!(*opened.ed25519_identity().unwrap().seed(), *ed.seed());
    assert_eq!(opened.x25519().unwrap().public(), x.public());
    assert_eq!(*opened.x25519().unwrap().to_bytes(), *x.to_bytes());

    // The restored keys work: RSA decrypts what the original's public key encrypted.
    let ct = rsa.public().encrypt_oaep(&mut rng, b"still mine").unwrap();
    assert_eq!(
        rsa_back.decrypt_oaep(&mut rng, &ct).unwrap().as_slice(),
        b"still mine"
    );

    // Surrounding whitespace (a file's trailing newline) is fine.
    assert_eq!(
        keystore::open(PASSWORD, &format!("\n{blob}\n")).unwrap(),
        bundle
    );
}

#[test]
fn partial_and_empty_bundles_round_trip() {
    let mut rng = rng();
    let only_ed = SecretBundle::default().with_ed25519(&Ed25519Identity::from_seed([5; 32]));
    let empty = SecretBundle::default();
    for bundle in [only_ed, empty] {
        let blob = keystore::seal(b"", &bundle, &KeystoreParams::for_tests(), &mut rng).unwrap();
        let opened = keystore::open(b"", &blob).unwrap();
        assert_eq!(opened, bundle);
        assert!(opened.rsa_identity().is_none());
        assert!(opened.x25519().is_none());
    }
}

#[test]
fn default_params_round_trip() {
    let params = KeystoreParams::default();
    assert_eq!(
        (params.m_cost_kib, params.t_cost, params.p_cost),
        (19_456, 2, 1)
    );
    let bundle = SecretBundle::default().with_x25519(&X25519Secret::from_bytes([9; 32]));
    let blob = keystore::seal(PASSWORD, &bundle, &params, &mut rng()).unwrap();
    assert!(blob.contains("$m=19456,t=2,p=1$"));
    assert_eq!(keystore::open(PASSWORD, &blob).unwrap(), bundle);
}

#[test]
fn sealing_is_randomised_and_deterministic_per_seed() {
    let bundle = full_bundle();
    let a = sealed(&bundle);
    let b = sealed(&bundle);
    assert_eq!(a, b, "same rng seed, same blob");
    let c = keystore::seal(
        PASSWORD,
        &bundle,
        &KeystoreParams::for_tests(),
        &mut rng_from_seed([0x32; 32]),
    )
    .unwrap();
    assert_ne!(a, c);
    assert_ne!(fields(&a)[5], fields(&c)[5], "fresh salt");
    assert_ne!(fields(&a)[6], fields(&c)[6], "fresh nonce");
}

#[test]
fn wrong_password_is_wrong_password() {
    let blob = sealed(&full_bundle());
    for password in [
        &b"correct horse battery stapl"[..],
        b"",
        b"Correct horse battery staple",
    ] {
        assert_eq!(
            keystore::open(password, &blob),
            Err(KeystoreError::WrongPassword)
        );
    }
}

#[test]
fn modified_ciphertext_or_nonce_is_tampered() {
    let blob = sealed(&full_bundle());
    let ct_len = b64::decode(&fields(&blob)[8]).unwrap().len();
    for byte in [0, ct_len / 2, ct_len - 17, ct_len - 16, ct_len - 1] {
        assert_eq!(
            keystore::open(PASSWORD, &flip_field_bit(&blob, 8, byte)),
            Err(KeystoreError::Tampered),
            "ciphertext byte {byte}"
        );
    }
    // The nonce is not an input of the KDF, so the check value still matches.
    assert_eq!(
        keystore::open(PASSWORD, &flip_field_bit(&blob, 6, 0)),
        Err(KeystoreError::Tampered)
    );
    // Truncating the ciphertext (a whole number of bytes) is tampering too.
    let mut f = fields(&blob);
    let ct = b64::decode(&f[8]).unwrap();
    f[8] = b64::encode(&ct[..ct.len() - 3]);
    assert_eq!(
        keystore::open(PASSWORD, &join(&f)),
        Err(KeystoreError::Tampered)
    );
}

#[test]
fn header_edits_never_open() {
    let blob = sealed(&full_bundle());
    let f = fields(&blob);
    let mut edited: Vec<(String, String)> = Vec::new();
    for costs in ["m=9,t=1,p=1", "m=8,t=2,p=1", "m=16,t=1,p=2"] {
        let mut g = f.clone();
        g[4] = costs.into();
        edited.push((format!("params {costs}"), join(&g)));
    }
    edited.push(("salt".into(), flip_field_bit(&blob, 5, 3)));
    edited.push(("check value".into(), flip_field_bit(&blob, 7, 0)));
    for (name, text) in [
        ("version", blob.replacen("$v=1$", "$v=2$", 1)),
        ("format", blob.replacen("socp-keystore", "socp-keystorf", 1)),
        ("kdf", blob.replacen("argon2id", "argon2i", 1)),
        ("padding", format!("{}=", blob)),
        ("non-canonical number", blob.replacen("m=8,", "m=08,", 1)),
        ("extra field", format!("{blob}$AAAA")),
        ("missing field", f[..8].join("$")),
        (
            "reordered params",
            blob.replacen("m=8,t=1,p=1", "t=1,m=8,p=1", 1),
        ),
        ("short salt", {
            let mut g = f.clone();
            g[5] = b64::encode(&[0; 15]);
            join(&g)
        }),
    ] {
        edited.push((name.into(), text));
    }
    let mut errors = Vec::new();
    for (name, text) in &edited {
        let result = keystore::open(PASSWORD, text);
        assert!(result.is_err(), "{name} opened: {text}");
        errors.push((name.clone(), result.unwrap_err()));
    }
    let error_of = |name: &str| errors.iter().find(|(n, _)| n == name).unwrap().1.clone();
    // Changing the KDF inputs changes the derived keys.
    assert_eq!(error_of("params m=9,t=1,p=1"), KeystoreError::WrongPassword);
    assert_eq!(error_of("salt"), KeystoreError::WrongPassword);
    assert_eq!(error_of("check value"), KeystoreError::WrongPassword);
    assert_eq!(
        error_of("version"),
        KeystoreError::UnsupportedVersion { version: 2 }
    );
    assert_eq!(error_of("kdf"), KeystoreError::UnsupportedKdf);
    for name in [
        "format",
        "padding",
        "non-canonical number",
        "extra field",
        "missing field",
        "reordered params",
        "short salt",
    ] {
        assert_eq!(error_of(name), KeystoreError::Malformed, "{name}");
    }
}

#[test]
fn hostile_params_are_refused_before_the_kdf_runs() {
    let blob = sealed(&full_bundle());
    let f = fields(&blob);
    let hostile = [
        format!("m={},t=1,p=1", MAX_M_COST_KIB + 1),
        "m=4294967295,t=1,p=1".into(),
        "m=99999999999999999999999999,t=1,p=1".into(),
        format!("m=8,t={},p=1", MAX_T_COST + 1),
        "m=8,t=4294967295,p=1".into(),
        "m=1048576,t=1,p=4294967295".into(),
        "m=8,t=0,p=1".into(),
        "m=8,t=1,p=0".into(),
        "m=7,t=1,p=1".into(),
    ];
    for costs in hostile {
        let mut g = f.clone();
        g[4] = costs.clone();
        let started = std::time::Instant::now();
        let result = keystore::open(PASSWORD, &join(&g));
        assert!(
            matches!(result, Err(KeystoreError::ParamsOutOfBounds { .. })),
            "{costs}: {result:?}"
        );
        // Argon2 with 1 GiB or 2^32 passes would take seconds at least; refusing is instant.
        assert!(started.elapsed().as_millis() < 500, "{costs} ran the KDF?");
    }
    // Sealing refuses parameters that opening would refuse.
    let params = KeystoreParams {
        m_cost_kib: MAX_M_COST_KIB + 1,
        t_cost: 1,
        p_cost: 1,
    };
    assert!(matches!(
        keystore::seal(PASSWORD, &full_bundle(), &params, &mut rng()),
        Err(KeystoreError::ParamsOutOfBounds { .. })
    ));
    // Over-long blobs are refused before parsing.
    let huge = format!("{blob}{}", "A".repeat(keystore::MAX_BLOB_LEN));
    assert_eq!(
        keystore::open(PASSWORD, &huge),
        Err(KeystoreError::Malformed)
    );
}

#[test]
fn garbage_is_malformed() {
    for text in [
        "",
        "$",
        "hello",
        "$socp-keystore$",
        "$socp-keystore$v=1$argon2id$m=8,t=1,p=1",
    ] {
        assert_eq!(
            keystore::open(PASSWORD, text),
            Err(KeystoreError::Malformed),
            "{text:?}"
        );
    }
}

#[test]
fn debug_never_shows_secret_bytes() {
    let ed = Ed25519Identity::from_seed([0x5a; 32]);
    let x = X25519Secret::from_bytes([0xa7; 32]);
    let rsa: RsaIdentity = fixtures::rsa_identity(7);
    let bundle = SecretBundle::default()
        .with_rsa(&rsa)
        .with_ed25519(&ed)
        .with_x25519(&x);
    let pkcs8_hex: String = rsa.to_pkcs8_der()[40..56]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let pkcs8_b64 = b64::encode(&rsa.to_pkcs8_der()[40..64]);
    for text in [
        format!("{bundle:?}"),
        format!("{bundle:#?}"),
        format!("{ed:?}"),
        format!("{x:?}"),
        format!("{rsa:?}"),
    ] {
        let lower = text.to_lowercase();
        assert!(!lower.contains("5a5a5a"), "{text}");
        assert!(!lower.contains("a7a7a7"), "{text}");
        assert!(!lower.contains("90, 90, 90"), "{text}");
        assert!(!lower.contains("167, 167, 167"), "{text}");
        assert!(!lower.contains(&pkcs8_hex), "{text}");
        assert!(!text.contains(&pkcs8_b64), "{text}");
    }
    assert!(format!("{bundle:?}").contains("<redacted>"));
    assert!(format!("{:?}", SecretBundle::default()).contains("None"));
}
