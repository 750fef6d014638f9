//! socp-1.3.md §4 cases 1 and 2, the signature halves: the transport `sig` is
//! RSA-PSS over the canonical JSON of the payload, and only of the payload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use socp_core::crypto::{CoreRng, fixtures, rng_from_seed};
use socp_core::wire::{Envelope, Limits, b64, json};

fn rng() -> CoreRng {
    rng_from_seed([3; 32])
}

#[test]
fn case_1_sig_over_canonical_json_verifies_and_breaks_on_any_byte_change() {
    let key = fixtures::rsa_identity_ref(1);
    let value = json::parse(br#"{"b":1,"a":{"d":2,"c":"\u00e9"}}"#, &Limits::default()).unwrap();
    let canonical = json::canonical(&value);
    assert_eq!(canonical, br#"{"a":{"c":"\u00e9","d":2},"b":1}"#);
    let sig = key.sign_pss(&mut rng(), &canonical).unwrap();
    key.public().verify_pss(&canonical, &sig).unwrap();

    // Whitespace or key order changes in the signed bytes break the signature.
    for altered in [
        &br#"{"a": {"c":"\u00e9","d":2},"b":1}"#[..],
        br#"{"a":{"c":"\u00e9","d":2}, "b":1}"#,
        br#"{"b":1,"a":{"c":"\u00e9","d":2}}"#,
        br#"{"a":{"d":2,"c":"\u00e9"},"b":1}"#,
        "{\"a\":{\"c\":\"\u{e9}\",\"d\":2},\"b\":1}".as_bytes(),
    ] {
        assert!(key.public().verify_pss(altered, &sig).is_err());
    }
    // ...but re-canonicalising any of those layouts gives back the signed bytes.
    let reordered = json::parse(
        br#"{ "b" : 1 , "a" : { "d" : 2, "c" : "\u00e9" } }"#,
        &Limits::default(),
    )
    .unwrap();
    key.public()
        .verify_pss(&json::canonical(&reordered), &sig)
        .unwrap();
}

#[test]
fn case_2_sig_covers_the_payload_only() {
    let key = fixtures::rsa_identity_ref(2);
    let frame = r#"{"type":"USER_ADVERTISE","from":"9b2f1c3e-8a4d-4f6b-9c1d-2e3f4a5b6c7d","to":"*","ts":1700000000000,"payload":{"user_id":"1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f","server_id":"9b2f1c3e-8a4d-4f6b-9c1d-2e3f4a5b6c7d","meta":{"display_name":"Zoë"}}}"#.as_bytes();
    let env = Envelope::decode(frame, &Limits::default()).unwrap();
    let sig = b64::encode(&key.sign_pss(&mut rng(), &env.signing_bytes()).unwrap());
    let signed = env.clone().with_sig(sig.clone());
    let verifies = |e: &Envelope| {
        let raw = b64::decode(e.sig.as_deref().unwrap()).unwrap();
        key.public().verify_pss(&e.signing_bytes(), &raw).is_ok()
    };
    // Round trip through the wire keeps it valid.
    let decoded = Envelope::decode(&signed.encode(), &Limits::default()).unwrap();
    assert!(verifies(&decoded));

    // ts, to and type are not covered: the spec's weakness, which is why servers
    // also check freshness and deduplicate.
    let mut e = decoded.clone();
    e.ts += 60_000;
    e.to = "someone-else".into();
    e.msg_type = socp_core::wire::MsgType::UserRemove;
    assert!(verifies(&e));

    // Any payload change is.
    let mut e = decoded.clone();
    e.payload.insert(
        "server_id".into(),
        "0f0e0d0c-0b0a-4908-8706-050403020100".into(),
    );
    assert!(!verifies(&e));
    let mut e = decoded;
    e.payload
        .insert("extra".into(), serde_json::Value::Bool(true));
    assert!(!verifies(&e));
}
