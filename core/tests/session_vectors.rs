//! Checked-in test vectors of the secure profile (`tests/vectors/session-v1.json`):
//! two handshakes from fixed seeds, then channel records over the first and
//! Double Ratchet messages over the second.
//!
//! The test replays the vectors: each side is rebuilt from its seed, must
//! produce exactly the checked-in handshake messages, must accept the other
//! side's, and must open every record to the listed plaintext. Any change to
//! a label, a layout or the key schedule fails it. After a deliberate
//! protocol change (and a version bump), regenerate with
//! `SOCP_BLESS_VECTORS=1 cargo test -p socp-core --test session_vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};
use socp_core::crypto::ed25519::Ed25519Identity;
use socp_core::crypto::rng_from_seed;
use socp_core::session::handshake::Expect;
use socp_core::session::{self, Established, Initiator, LocalIdentity, Responder};

const ROLES: [&str; 2] = ["initiator", "responder"];
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/session-v1.json");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn identities() -> (LocalIdentity, LocalIdentity) {
    (
        LocalIdentity::new("alice", Ed25519Identity::from_seed([0xa1; 32])).unwrap(),
        LocalIdentity::new("bob", Ed25519Identity::from_seed([0xb0; 32])).unwrap(),
    )
}

/// One handshake with per-side RNG seeds; checks it against `expected` (if
/// any) message by message, and returns both sides and the record.
fn handshake(
    seed_i: u8,
    seed_r: u8,
    expected: Option<&Value>,
) -> (Established, Established, Value) {
    let (alice, bob) = identities();
    let mut rng_i = rng_from_seed([seed_i; 32]);
    let mut rng_r = rng_from_seed([seed_r; 32]);
    let want = |k: &str| expected.map(|v| unhex(v[k].as_str().unwrap()));
    let (init, m1) = Initiator::start(&alice, Expect::key(bob.public()), &mut rng_i);
    let m1_in = want("m1").unwrap_or_else(|| m1.clone());
    assert_eq!(hex(&m1), hex(&m1_in), "M1");
    let (waiting, m2) = Responder::read_hello(&bob, &m1_in)
        .unwrap()
        .accept(&bob, &mut rng_r)
        .unwrap();
    let m2_in = want("m2").unwrap_or_else(|| m2.clone());
    assert_eq!(hex(&m2), hex(&m2_in), "M2");
    let (a, m3) = init.finish(&alice, &m2_in).unwrap();
    let m3_in = want("m3").unwrap_or_else(|| m3.clone());
    assert_eq!(hex(&m3), hex(&m3_in), "M3");
    let b = waiting.finish(&m3_in).unwrap();
    assert_eq!(a.session_id(), b.session_id());
    if let Some(v) = expected {
        assert_eq!(hex(a.session_id()), v["session_id"].as_str().unwrap());
    }
    let record = json!({
        "initiator_rng_seed": hex(&[seed_i; 32]),
        "responder_rng_seed": hex(&[seed_r; 32]),
        "m1": hex(&m1), "m2": hex(&m2), "m3": hex(&m3),
        "session_id": hex(a.session_id()),
    });
    (a, b, record)
}

/// The messages of the vectors: (sender: 0 = initiator, context, plaintext).
const CHANNEL: [(usize, &str, &str); 4] = [
    (0, "from=alice;to=bob;ts=1700000000000", "hello bob"),
    (0, "from=alice;to=bob;ts=1700000000001", "second"),
    (1, "from=bob;to=alice;ts=1700000000002", "hi alice"),
    (0, "from=alice;to=bob;ts=1700000000003", ""),
];
const RATCHET: [(usize, &str, &str); 5] = [
    (1, "from=bob;to=alice;ts=1700000000000", "bob speaks first"),
    (0, "from=alice;to=bob;ts=1700000000001", "hello bob"),
    (
        0,
        "from=alice;to=bob;ts=1700000000002",
        "second on the same chain",
    ),
    (
        1,
        "from=bob;to=alice;ts=1700000000003",
        "reply after a DH step",
    ),
    (
        0,
        "from=alice;to=bob;ts=1700000000004",
        "after a round trip",
    ),
];

fn generate_or_check(expected: Option<&Value>) -> Value {
    let (a, b, hs1) = handshake(0x11, 0x22, expected.map(|v| &v["channel"]["handshake"]));
    let mut sides = [a.into_channel(), b.into_channel()];
    let mut records = Vec::new();
    for (i, (from, ctx, text)) in CHANNEL.iter().enumerate() {
        let bytes = sides[*from].seal(ctx.as_bytes(), text.as_bytes()).unwrap();
        let got = expected.map(|v| unhex(v["channel"]["records"][i]["record"].as_str().unwrap()));
        let bytes_in = got.unwrap_or_else(|| bytes.clone());
        assert_eq!(hex(&bytes), hex(&bytes_in), "channel record {i}");
        let opened = sides[1 - from].open(ctx.as_bytes(), &bytes_in).unwrap();
        assert_eq!(&**opened, text.as_bytes());
        records.push(
            json!({"from": ROLES[*from], "context": ctx, "plaintext": text, "record": hex(&bytes)}),
        );
    }

    let (a, b, hs2) = handshake(0x33, 0x44, expected.map(|v| &v["ratchet"]["handshake"]));
    let mut sides = [a.into_double_ratchet(), b.into_double_ratchet()];
    let mut rngs = [rng_from_seed([0x55; 32]), rng_from_seed([0x66; 32])];
    let mut messages = Vec::new();
    for (i, (from, ctx, text)) in RATCHET.iter().enumerate() {
        let bytes = sides[*from]
            .encrypt(&mut rngs[*from], ctx.as_bytes(), text.as_bytes())
            .unwrap();
        let got = expected.map(|v| unhex(v["ratchet"]["messages"][i]["message"].as_str().unwrap()));
        let bytes_in = got.unwrap_or_else(|| bytes.clone());
        assert_eq!(hex(&bytes), hex(&bytes_in), "ratchet message {i}");
        let opened = sides[1 - from].decrypt(ctx.as_bytes(), &bytes_in).unwrap();
        assert_eq!(&**opened, text.as_bytes());
        messages.push(json!({"from": ROLES[*from], "context": ctx, "plaintext": text, "message": hex(&bytes)}));
    }
    let (alice, bob) = identities();
    json!({
        "description": "socp secure profile v1 test vectors: handshake (SIGMA-style, X25519 + Ed25519), channel records and Double Ratchet messages. Layouts: core/src/session/*.rs module docs.",
        "protocol": session::PROTOCOL,
        "labels": {
            "transcript": String::from_utf8_lossy(session::LABEL_TRANSCRIPT),
            "sig_responder": String::from_utf8_lossy(session::LABEL_SIG_RESPONDER),
            "sig_initiator": String::from_utf8_lossy(session::LABEL_SIG_INITIATOR),
            "confirm_responder": String::from_utf8_lossy(session::LABEL_CONFIRM_RESPONDER),
            "confirm_initiator": String::from_utf8_lossy(session::LABEL_CONFIRM_INITIATOR),
            "keys": String::from_utf8_lossy(session::LABEL_KEYS),
            "binding": String::from_utf8_lossy(session::LABEL_BINDING),
            "channel": String::from_utf8_lossy(session::LABEL_CHANNEL),
            "root": String::from_utf8_lossy(session::LABEL_ROOT),
            "ratchet": String::from_utf8_lossy(session::LABEL_RATCHET),
        },
        "rng": "ChaCha20Rng::from_seed(seed), one stream per side",
        "initiator": {"id": alice.id(), "ed25519_seed": hex(&[0xa1; 32]), "ed25519_public": hex(alice.public().as_bytes())},
        "responder": {"id": bob.id(), "ed25519_seed": hex(&[0xb0; 32]), "ed25519_public": hex(bob.public().as_bytes())},
        "channel": {"handshake": hs1, "records": records},
        "ratchet": {"handshake": hs2, "encrypt_rng_seeds": [hex(&[0x55; 32]), hex(&[0x66; 32])], "messages": messages},
    })
}

#[test]
fn checked_in_vectors_verify() {
    if std::env::var_os("SOCP_BLESS_VECTORS").is_some() {
        let fresh = generate_or_check(None);
        std::fs::create_dir_all(std::path::Path::new(PATH).parent().unwrap()).unwrap();
        std::fs::write(PATH, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let text =
        std::fs::read_to_string(PATH).expect("vectors missing: run with SOCP_BLESS_VECTORS=1");
    let expected: Value = serde_json::from_str(&text).unwrap();
    let regenerated = generate_or_check(Some(&expected));
    assert_eq!(
        regenerated, expected,
        "the vector file differs from what the code produces"
    );
}
