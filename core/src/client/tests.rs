//! Unit tests of the client against hand-made server frames.

use core::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::*;
use crate::crypto::content_sig::{DmFields, SigLayout, sign_dm};
use crate::crypto::fixtures;
use crate::crypto::keystore::KeystoreParams;
use crate::wire::messages::{MsgDirect, PublicChannelUpdated, UserAdvertise, UserDeliver};
use crate::wire::{Limits, MsgType, b64};

const ALICE: &str = "0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a";
const BOB: &str = "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b";
const CAROL: &str = "0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c";
const SERVER: &str = "05050505-0505-4505-8505-050505050505";

fn now() -> Now {
    Now::new(Instant::ZERO, 1_760_000_000_000)
}

fn client(id: &str, key: usize, seed: u8) -> Client {
    let cfg = ClientConfig::new(vec!["ws://server.invalid/".into()]);
    let mut c = Client::new(
        cfg,
        UserIdentity::new(id, fixtures::rsa_identity(key)),
        [seed; 32],
        now(),
    );
    c.handle_connected(now());
    drain(&mut c);
    c
}

fn drain(c: &mut Client) -> (Vec<Envelope>, Vec<ClientAction>, Vec<ClientEvent>) {
    let mut frames = Vec::new();
    while let Some(f) = c.poll_transmit() {
        frames.push(Envelope::decode(&f, &Limits::default()).unwrap());
    }
    let mut actions = Vec::new();
    while let Some(a) = c.poll_action() {
        actions.push(a);
    }
    let mut events = Vec::new();
    while let Some(e) = c.poll_event() {
        events.push(e);
    }
    (frames, actions, events)
}

fn advert(user: &str, key: usize) -> Vec<u8> {
    let ad = UserAdvertise {
        user_id: user.into(),
        server_id: SERVER.into(),
        meta: None,
        pubkey: Some(fixtures::rsa_identity_ref(key).public().to_wire()),
    };
    Envelope::new(SERVER, "*", now().unix_ms, ad).encode()
}

/// What our server makes of a MSG_DIRECT: a USER_DELIVER (extra keys kept,
/// as a server that passes unknown keys through would).
fn deliver(env: &Envelope) -> Envelope {
    let dm: MsgDirect = env.decode_payload().unwrap();
    let d = UserDeliver {
        ciphertext: dm.ciphertext,
        sender: env.from.clone(),
        sender_pub: dm.sender_pub.unwrap_or_default(),
        content_sig: dm.content_sig.unwrap_or_default(),
        orig_ts: Some(env.ts),
    };
    let mut out = Envelope::new(SERVER, env.to.clone(), env.ts, d);
    for k in ["msg_id", "part", "parts"] {
        if let Some(v) = env.payload.get(k) {
            out.payload.insert(k.into(), v.clone());
        }
    }
    out
}

fn messages(events: &[ClientEvent]) -> Vec<(String, String, MessageStatus)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message {
                from, text, status, ..
            } => Some((from.clone(), text.clone(), *status)),
            _ => None,
        })
        .collect()
}

/// Alice and Bob, each knowing the other's key from an advert.
fn pair() -> (Client, Client) {
    let mut alice = client(ALICE, 4, 1);
    let mut bob = client(BOB, 5, 2);
    alice.handle_frame(now(), &advert(BOB, 5));
    bob.handle_frame(now(), &advert(ALICE, 4));
    drain(&mut alice);
    drain(&mut bob);
    (alice, bob)
}

#[test]
fn hello_is_sent_on_connect() {
    let cfg = ClientConfig::new(vec!["ws://a/".into(), "ws://b/".into()]);
    let mut c = Client::new(
        cfg,
        UserIdentity::new(ALICE, fixtures::rsa_identity(4)),
        [1; 32],
        now(),
    );
    let (_, actions, _) = drain(&mut c);
    assert_eq!(
        actions,
        [ClientAction::Connect {
            index: 0,
            url: "ws://a/".into()
        }]
    );
    c.handle_connected(now());
    let (frames, _, _) = drain(&mut c);
    // The hello, then the offer of the secure profile (client::secure).
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].msg_type, MsgType::SecureHandshake);
    assert_eq!(frames[0].msg_type, MsgType::UserHello);
    assert_eq!(frames[0].from, ALICE);
    assert_eq!(frames[0].payload["client"], "socp");
    assert_eq!(frames[0].payload["pubkey"], frames[0].payload["enc_pubkey"]);
}

#[test]
fn multi_part_dm_is_verified_and_reassembled() {
    let (mut alice, mut bob) = pair();
    let text = format!("{}😀{}", "a".repeat(444), "é中😀".repeat(80));
    assert_eq!(split_utf8(&text, PIECE_BYTES).len(), 3);
    alice.send_direct(now(), BOB, &text);
    let (frames, _, events) = drain(&mut alice);
    assert_eq!(frames.len(), 3);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Sent { parts: 3, .. }))
    );
    // Out of order: the parts still come back in order.
    for env in frames.iter().rev() {
        bob.handle_frame(now(), &deliver(env).encode());
    }
    let (_, _, events) = drain(&mut bob);
    assert_eq!(
        messages(&events),
        [(ALICE.to_owned(), text, MessageStatus::Verified)]
    );
    // A replayed part is dropped.
    bob.handle_frame(now(), &deliver(&frames[0]).encode());
    let (_, _, events) = drain(&mut bob);
    assert!(messages(&events).is_empty());
}

#[test]
fn pieces_without_msg_id_are_shown_one_by_one() {
    let (mut alice, mut bob) = pair();
    alice.send_direct(now(), BOB, &"x".repeat(500));
    let (frames, _, _) = drain(&mut alice);
    for env in &frames {
        let mut d = deliver(env);
        d.payload.remove("msg_id");
        bob.handle_frame(now(), &d.encode());
    }
    let (_, _, events) = drain(&mut bob);
    let got = messages(&events);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| m.2 == MessageStatus::Verified));
    assert_eq!(got[0].1.len() + got[1].1.len(), 500);
}

#[test]
fn statuses_are_computed_locally() {
    let (mut alice, mut bob) = pair();
    alice.send_direct(now(), BOB, "hi");
    let (frames, _, _) = drain(&mut alice);
    let good = deliver(&frames[0]);

    // Tampered ciphertext: the signature no longer verifies.
    let mut tampered = good.clone();
    let ct = tampered.payload["ciphertext"].as_str().unwrap().to_owned();
    let mut raw = b64::decode(&ct).unwrap();
    raw[100] ^= 1;
    tampered.payload["ciphertext"] = Value::String(b64::encode(&raw));
    bob.handle_frame(now(), &tampered.encode());

    // Unsigned, claiming to be verified: Unsigned, and the text is shown.
    let mut unsigned = good.clone();
    unsigned.payload["content_sig"] = Value::String(String::new());
    unsigned
        .payload
        .insert("status".into(), Value::String("verified".into()));
    unsigned
        .payload
        .insert("verified".into(), Value::Bool(true));
    unsigned
        .payload
        .insert("is_forward_message".into(), Value::Bool(true));
    unsigned.payload.remove("msg_id");
    bob.handle_frame(now(), &unsigned.encode());

    // Signed by Carol's key but claiming to be Alice: InvalidSignature.
    let carol_key = fixtures::rsa_identity_ref(6);
    let mut forged = good.clone();
    let sig = sign_dm(
        carol_key,
        &mut rng_from_seed([3; 32]),
        &DmFields {
            ciphertext: &ct,
            from: ALICE,
            to: BOB,
            ts: good.ts,
        },
        SigLayout::B,
    )
    .unwrap();
    forged.payload["content_sig"] = Value::String(sig);
    forged.payload.remove("msg_id");
    bob.handle_frame(now(), &forged.encode());

    // Properly signed, but encrypted to someone else: DecryptionFailed.
    let other = fixtures::rsa_identity_ref(7)
        .public()
        .encrypt_oaep(&mut rng_from_seed([4; 32]), b"x")
        .unwrap();
    let other_ct = b64::encode(&other);
    let sig = sign_dm(
        fixtures::rsa_identity_ref(4),
        &mut rng_from_seed([5; 32]),
        &DmFields {
            ciphertext: &other_ct,
            from: ALICE,
            to: BOB,
            ts: good.ts,
        },
        SigLayout::C,
    )
    .unwrap();
    let mut wrong_key = good.clone();
    wrong_key.payload["ciphertext"] = Value::String(other_ct);
    wrong_key.payload["content_sig"] = Value::String(sig);
    wrong_key.payload.remove("msg_id");
    bob.handle_frame(now(), &wrong_key.encode());

    bob.handle_frame(now(), &good.encode());
    let (_, _, events) = drain(&mut bob);
    let statuses: Vec<(String, MessageStatus)> =
        messages(&events).into_iter().map(|m| (m.1, m.2)).collect();
    assert_eq!(
        statuses,
        [
            (String::new(), MessageStatus::InvalidSignature),
            ("hi".to_owned(), MessageStatus::Unsigned),
            (String::new(), MessageStatus::InvalidSignature),
            (String::new(), MessageStatus::DecryptionFailed),
            ("hi".to_owned(), MessageStatus::Verified),
        ]
    );
}

#[test]
fn no_directory_key_is_unverified_until_one_arrives() {
    let mut carol = client(CAROL, 6, 3);
    let mut bob = client(BOB, 5, 2);
    carol.handle_frame(now(), &advert(BOB, 5));
    bob.handle_frame(now(), &advert(ALICE, 4));
    drain(&mut carol);
    drain(&mut bob);
    carol.send_direct(now(), BOB, "first");
    carol.send_direct(now(), BOB, "second");
    let (frames, _, _) = drain(&mut carol);
    bob.handle_frame(now(), &deliver(&frames[0]).encode());
    let (_, _, events) = drain(&mut bob);
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::KeyLearned {
            source: KeySource::SenderPub,
            ..
        }
    )));
    assert_eq!(messages(&events)[0].2, MessageStatus::Unverified);
    // The directory confirms the same key: from now on, Verified.
    bob.handle_frame(now(), &advert(CAROL, 6));
    bob.handle_frame(now(), &deliver(&frames[1]).encode());
    let (_, _, events) = drain(&mut bob);
    assert_eq!(messages(&events)[0].2, MessageStatus::Verified);
}

#[test]
fn a_changed_key_is_refused_until_accepted() {
    let (_, mut bob) = pair();
    let old = bob.pinned_fingerprint(ALICE).unwrap();
    bob.handle_frame(now(), &advert(ALICE, 9));
    let (_, _, events) = drain(&mut bob);
    let new = fingerprint(fixtures::rsa_identity_ref(9).public());
    assert!(events.contains(&ClientEvent::KeyChanged {
        user_id: ALICE.into(),
        old_fingerprint: old.clone(),
        new_fingerprint: new.clone(),
    }));
    assert_eq!(bob.pinned_fingerprint(ALICE), Some(old));
    assert!(bob.accept_key(now(), ALICE));
    assert_eq!(bob.pinned_fingerprint(ALICE), Some(new));
}

#[test]
fn dm_waits_for_a_key_and_fails_after_the_timeout() {
    let mut alice = client(ALICE, 4, 1);
    let id = alice.send_direct(now(), CAROL, "hello?");
    let (frames, _, _) = drain(&mut alice);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].msg_type, MsgType::PubkeyRequest);
    let later = now().advanced(Duration::from_secs(11));
    assert!(alice.poll_timeout().unwrap() <= later.mono);
    alice.handle_timeout(later);
    let (_, _, events) = drain(&mut alice);
    assert!(events.contains(&ClientEvent::SendFailed {
        msg_id: id,
        to: CAROL.into(),
        reason: SendFailure::NoKey
    }));
    // A key that arrives in time releases the message.
    alice.send_direct(later, CAROL, "again");
    alice.handle_frame(later, &advert(CAROL, 6));
    let (frames, _, _) = drain(&mut alice);
    assert!(
        frames
            .iter()
            .any(|f| f.msg_type == MsgType::MsgDirect && f.to == CAROL)
    );
}

#[test]
fn public_channel_version_only_moves_forward() {
    let mut bob = client(BOB, 5, 2);
    for v in [3u64, 2, 3, 5] {
        let up = PublicChannelUpdated {
            version: v,
            wraps: Vec::new(),
        };
        bob.handle_frame(
            now(),
            &Envelope::new(SERVER, BOB, now().unix_ms, up).encode(),
        );
    }
    let (_, _, events) = drain(&mut bob);
    let versions: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::PublicChannel { version } => Some(*version),
            _ => None,
        })
        .collect();
    assert_eq!(versions, [3, 5]);
    assert_eq!(bob.public_version(), 5);
}

#[test]
fn files_reassemble_out_of_order_and_are_checked() {
    let (mut alice, mut bob) = pair();
    let content: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let id = alice.send_file(
        now(),
        FileTarget::User(BOB.into()),
        "../../etc/evil",
        content.clone(),
    );
    let (frames, _, _) = drain(&mut alice);
    assert_eq!(frames.len(), 5); // start, 3 chunks, end
    let order = [0, 3, 1, 2, 4];
    for i in order {
        bob.handle_frame(now(), &frames[i].encode());
    }
    let (_, actions, events) = drain(&mut bob);
    assert_eq!(
        actions,
        [ClientAction::WriteFile {
            file_id: id.clone(),
            name: "evil".into(),
            bytes: Bytes::from(content.clone()),
        }]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::FileReceived {
            status: MessageStatus::Verified,
            ..
        }
    )));

    // The same file with a chunk missing, then with a wrong hash.
    let id = alice.send_file(
        now(),
        FileTarget::User(BOB.into()),
        "a.bin",
        content.clone(),
    );
    let (frames, _, _) = drain(&mut alice);
    for (i, f) in frames.iter().enumerate() {
        if i != 2 {
            bob.handle_frame(now(), &f.encode());
        }
    }
    let (_, actions, events) = drain(&mut bob);
    assert!(actions.is_empty());
    assert!(events.contains(&ClientEvent::FileFailed {
        file_id: id,
        reason: FileFailure::MissingChunk { index: 1 }
    }));

    let id = alice.send_file(now(), FileTarget::User(BOB.into()), "b.bin", content);
    let (mut frames, _, _) = drain(&mut alice);
    frames[0].payload.remove("content_sig");
    frames[0].payload["sha256"] = Value::String("00".repeat(32));
    for f in &frames {
        bob.handle_frame(now(), &f.encode());
    }
    let (_, actions, events) = drain(&mut bob);
    assert!(actions.is_empty());
    assert!(events.contains(&ClientEvent::FileFailed {
        file_id: id,
        reason: FileFailure::HashMismatch
    }));
}

#[test]
fn oversized_files_are_refused_up_front() {
    let (_, mut bob) = pair();
    let start = crate::wire::messages::FileStart {
        file_id: "f1".into(),
        name: "big".into(),
        size: DEFAULT_MAX_FILE_SIZE + 1,
        sha256: None,
        mode: crate::wire::messages::FileMode::Dm,
        sender_pub: None,
    };
    bob.handle_frame(
        now(),
        &Envelope::new(ALICE, BOB, now().unix_ms, start).encode(),
    );
    let (_, _, events) = drain(&mut bob);
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::FileFailed {
            reason: FileFailure::TooLarge { .. },
            ..
        }
    )));
}

#[test]
fn reconnects_with_backoff_and_resends_the_queue() {
    let (mut alice, _) = pair();
    alice.handle_closed(now());
    let (_, _, events) = drain(&mut alice);
    let retry = match events.as_slice() {
        [ClientEvent::Disconnected { retry_in }] => *retry_in,
        other => panic!("{other:?}"),
    };
    assert!(retry >= RECONNECT_INITIAL / 2 && retry <= RECONNECT_INITIAL);
    assert!(alice.online_users().is_empty());
    alice.send_direct(now(), BOB, "while offline");
    assert_eq!(drain(&mut alice).0.len(), 0);
    assert_eq!(alice.pending_outgoing(), 1);
    let t = now().advanced(retry);
    assert_eq!(alice.poll_timeout(), Some(t.mono));
    alice.handle_timeout(t);
    let (_, actions, _) = drain(&mut alice);
    assert!(matches!(
        actions.as_slice(),
        [ClientAction::Connect { index: 0, .. }]
    ));
    alice.handle_connected(t);
    let (frames, _, _) = drain(&mut alice);
    let types: Vec<MsgType> = frames.iter().map(|f| f.msg_type.clone()).collect();
    // Hello again (and the secure profile's offer); the key is still pinned,
    // so the DM goes at once.
    assert_eq!(
        types,
        [
            MsgType::UserHello,
            MsgType::SecureHandshake,
            MsgType::MsgDirect
        ]
    );
    // A dial that keeps failing backs off further, up to the cap.
    let mut t = t;
    let mut last = Duration::ZERO;
    for _ in 0..12 {
        alice.handle_closed(t);
        let (_, _, events) = drain(&mut alice);
        if let Some(ClientEvent::Disconnected { retry_in }) = events.last() {
            last = *retry_in;
            t = t.advanced(*retry_in);
        }
        alice.handle_timeout(t);
        drain(&mut alice);
    }
    assert!(last <= RECONNECT_MAX && last >= RECONNECT_MAX / 2);
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let (mut alice, _) = pair();
        alice.send_direct(now(), BOB, "determinism");
        alice.send_file(now(), FileTarget::User(BOB.into()), "f", vec![1u8; 600]);
        let mut out = Vec::new();
        while let Some(f) = alice.poll_transmit() {
            out.push(f);
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn identity_round_trips_through_the_keystore() {
    let me = UserIdentity::new(ALICE, fixtures::rsa_identity(4));
    let params = KeystoreParams::for_tests();
    let blob = me
        .to_keystore(b"pw", &params, &mut rng_from_seed([1; 32]))
        .unwrap();
    assert!(blob.starts_with("socp-user-v1 "));
    let back = UserIdentity::from_keystore(b"pw", &blob).unwrap();
    assert_eq!(back.user_id, ALICE);
    assert_eq!(back.rsa.public(), me.rsa.public());
    assert!(matches!(
        UserIdentity::from_keystore(b"wrong", &blob),
        Err(IdentityError::Keystore(_))
    ));
    assert!(matches!(
        UserIdentity::from_keystore(b"pw", "garbage"),
        Err(IdentityError::Malformed)
    ));
}
