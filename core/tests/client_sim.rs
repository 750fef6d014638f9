//! Real clients against real servers in the simulator: DMs, the public
//! channel, files, key pinning, statuses, errors and reconnects, and
//! socp-1.3.md §4 conformance cases 19 (files) and 20 (public channel).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;
use std::cell::RefCell;
use std::rc::Rc;

use socp_core::client::{
    ClientEvent, FileFailure, FileTarget, KeySource, MessageStatus, SendFailure, fingerprint,
    sha256_hex,
};
use socp_core::crypto::{fixtures, rng_from_seed};
use socp_core::server::ServerConfig;
use socp_core::sim::{Endpoint, InFlight, Sim, Verdict};
use socp_core::wire::messages::{
    MsgDirect, PublicChannelAdd, PublicChannelKeyShare, UserAdvertise,
};
use socp_core::wire::{Envelope, ErrorCode, Limits, Message, MsgType, b64};

/// Three linked servers: (sim, [introducer, a, b]).
fn mesh(seed: u64) -> (Sim, [usize; 3]) {
    mesh_with(seed, true)
}

/// [`mesh`] on plain SOCP links, for tests that play a peer server by
/// injecting signed frames into a server link (a secure link would refuse
/// any frame not sealed in its channel).
fn legacy_mesh(seed: u64) -> (Sim, [usize; 3]) {
    mesh_with(seed, false)
}

fn mesh_with(seed: u64, secure_links: bool) -> (Sim, [usize; 3]) {
    let mut sim = Sim::new(seed);
    let mut intro_cfg = ServerConfig::default();
    intro_cfg.secure_links = secure_links;
    let intro = sim.add_server(intro_cfg, 1);
    let mut cfg = sim.config_joining(&[intro]);
    cfg.secure_links = secure_links;
    let a = sim.add_server(cfg.clone(), 2);
    sim.run_for(Duration::from_secs(2));
    let b = sim.add_server(cfg, 3);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.server(a).linked_servers().len(), 2);
    assert_eq!(sim.server(b).linked_servers().len(), 2);
    (sim, [intro, a, b])
}

/// A client with fixture key `key` on server `s`, connected.
fn client(sim: &mut Sim, s: usize, key: usize) -> usize {
    let mut cfg = sim.client_config(&[s]);
    // These tests play a tampering path or a malicious server between client
    // and server (hooks that read and rewrite frames), so the client's link
    // stays plain SOCP; secure client links are tested in server_secure.rs.
    cfg.secure_link = false;
    sim.add_client(cfg, key, key as u64)
}

/// Alice on server a and Bob on server b, knowing each other.
fn alice_and_bob(seed: u64) -> (Sim, usize, usize, [usize; 3]) {
    alice_and_bob_on(mesh(seed))
}

fn alice_and_bob_on((mut sim, servers): (Sim, [usize; 3])) -> (Sim, usize, usize, [usize; 3]) {
    let alice = client(&mut sim, servers[1], 4);
    let bob = client(&mut sim, servers[2], 5);
    sim.run_for(Duration::from_secs(2));
    let bob_id = sim.user(bob).id.clone();
    assert!(sim.client(alice).online_users().contains(&bob_id));
    (sim, alice, bob, servers)
}

fn messages(sim: &Sim, idx: usize) -> Vec<(String, String, MessageStatus, bool)> {
    sim.client_events(idx)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Message {
                from,
                text,
                status,
                public,
                ..
            } => Some((from, text, status, public)),
            _ => None,
        })
        .collect()
}

fn id(sim: &Sim, idx: usize) -> String {
    sim.user(idx).id.clone()
}

/// A hook that rewrites frames of type `t` going to user `to`.
fn rewrite_to(
    to: usize,
    t: MsgType,
    mut f: impl FnMut(&mut Envelope) -> Verdict + 'static,
) -> Box<dyn FnMut(&mut InFlight) -> Verdict> {
    Box::new(move |flight: &mut InFlight| {
        if flight.to != (Endpoint::User { idx: to }) {
            return Verdict::Deliver;
        }
        let Ok(mut env) = Envelope::decode(&flight.frame, &Limits::default()) else {
            return Verdict::Deliver;
        };
        if env.msg_type != t {
            return Verdict::Deliver;
        }
        let verdict = f(&mut env);
        flight.frame = env.encode();
        verdict
    })
}

#[test]
fn short_and_multi_part_dms_cross_servers_verified() {
    let (mut sim, alice, bob, _) = alice_and_bob(11);
    let bob_id = id(&sim, bob);
    let long = format!("{}😀{}", "a".repeat(444), "héllo wörld 中文 😀 ".repeat(60));
    assert!(long.len() > 446 * 2);
    sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, "hi bob"));
    sim.run_for(Duration::from_secs(1));
    sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, &long));
    sim.run_for(Duration::from_secs(1));
    let got = messages(&sim, bob);
    let alice_id = id(&sim, alice);
    assert_eq!(
        got[0],
        (
            alice_id.clone(),
            "hi bob".into(),
            MessageStatus::Verified,
            false
        )
    );
    // The server relays the reassembly keys (msg_id, part, parts) across both
    // hops, so the pieces come back as one message.
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].1, long);
    assert!(
        got.iter()
            .all(|m| m.0 == alice_id && m.2 == MessageStatus::Verified && !m.3)
    );
}

#[test]
fn a_public_message_reaches_each_other_member_exactly_once() {
    let (mut sim, alice, bob, servers) = alice_and_bob(12);
    let carol = client(&mut sim, servers[0], 6);
    let dave = client(&mut sim, servers[1], 7);
    sim.run_for(Duration::from_secs(2));
    let long = "public ✓ ".repeat(100);
    sim.client_do(alice, |c, now| c.send_public(now, "hello channel"));
    sim.client_do(alice, |c, now| c.send_public(now, &long));
    sim.run_for(Duration::from_secs(2));
    let alice_id = id(&sim, alice);
    for member in [bob, carol, dave] {
        let got = messages(&sim, member);
        assert_eq!(
            got,
            [
                (
                    alice_id.clone(),
                    "hello channel".into(),
                    MessageStatus::Verified,
                    true
                ),
                (
                    alice_id.clone(),
                    long.clone(),
                    MessageStatus::Verified,
                    true
                ),
            ],
            "member {member}"
        );
    }
    assert!(messages(&sim, alice).is_empty());
}

fn file_round_trip(size: usize) {
    let (mut sim, alice, bob, _) = alice_and_bob(13);
    let bob_id = id(&sim, bob);
    let content: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
    let file_id = sim.client_do(alice, |c, now| {
        c.send_file(
            now,
            FileTarget::User(bob_id.clone()),
            "big.bin",
            content.clone(),
        )
    });
    sim.run_for(Duration::from_secs(30));
    let files = sim.client_files(bob);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, file_id);
    assert_eq!(files[0].1, "big.bin");
    assert_eq!(sha256_hex(&files[0].2), sha256_hex(&content));
    let progress = sim
        .client_events(bob)
        .into_iter()
        .filter(|e| matches!(e, ClientEvent::FileProgress { .. }))
        .count();
    assert_eq!(progress, size.div_ceil(446));
    assert!(sim.client_events(bob).iter().any(|e| matches!(
        e,
        ClientEvent::FileReceived {
            status: MessageStatus::Verified,
            ..
        }
    )));
}

#[test]
fn a_256_kib_file_arrives_intact() {
    file_round_trip(256 * 1024);
}

/// Issue 4 asks for a 1 MiB file in the simulator: about 38 s here (one
/// RSA-4096 decryption per chunk at the receiver and a server signature per hop).
#[test]
fn a_1_mib_file_arrives_intact() {
    file_round_trip(1024 * 1024);
}

#[test]
fn tampered_ciphertext_is_reported() {
    let (mut sim, alice, bob, _) = alice_and_bob(14);
    let bob_id = id(&sim, bob);
    sim.set_hook(rewrite_to(bob, MsgType::UserDeliver, |env| {
        let ct = env.payload["ciphertext"].as_str().unwrap().to_owned();
        let mut raw = b64::decode(&ct).unwrap();
        raw[10] ^= 0x40;
        env.payload["ciphertext"] = b64::encode(&raw).into();
        Verdict::Deliver
    }));
    sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, "secret"));
    sim.run_for(Duration::from_secs(1));
    let got = messages(&sim, bob);
    assert_eq!(got.len(), 1);
    assert!(matches!(
        got[0].2,
        MessageStatus::InvalidSignature | MessageStatus::DecryptionFailed
    ));
    assert!(got[0].1.is_empty());
}

#[test]
fn a_swapped_key_raises_key_changed_and_the_old_key_stays() {
    let (mut sim, alice, bob, servers) = alice_and_bob(15);
    let alice_id = id(&sim, alice);
    let bob_id = id(&sim, bob);
    let pinned = sim.client(bob).pinned_fingerprint(&alice_id).unwrap();
    // A hostile server re-advertises Alice with another key.
    let forged = UserAdvertise {
        user_id: alice_id.clone(),
        server_id: sim.server(servers[1]).id().to_owned(),
        meta: None,
        pubkey: Some(fixtures::rsa_identity_ref(9).public().to_wire()),
    };
    let frame = Envelope::new(sim.server(servers[2]).id(), "*", sim.now().unix_ms, forged).encode();
    let injected = Rc::new(RefCell::new(Some(frame)));
    let once = Rc::clone(&injected);
    sim.set_hook(Box::new(move |flight: &mut InFlight| {
        if flight.to == (Endpoint::User { idx: bob })
            && let Some(frame) = once.borrow_mut().take()
        {
            return Verdict::Inject {
                frame,
                after: Duration::from_millis(1),
            };
        }
        Verdict::Deliver
    }));
    sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, "before"));
    sim.run_for(Duration::from_secs(1));
    sim.clear_hook();
    assert!(injected.borrow().is_none());
    let new = fingerprint(fixtures::rsa_identity_ref(9).public());
    assert!(sim.client_events(bob).contains(&ClientEvent::KeyChanged {
        user_id: alice_id.clone(),
        old_fingerprint: pinned.clone(),
        new_fingerprint: new,
    }));
    assert_eq!(sim.client(bob).pinned_fingerprint(&alice_id), Some(pinned));
    sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, "after"));
    sim.run_for(Duration::from_secs(1));
    let statuses: Vec<_> = messages(&sim, bob)
        .into_iter()
        .map(|m| (m.1, m.2))
        .collect();
    assert_eq!(
        statuses,
        [
            ("before".to_owned(), MessageStatus::Verified),
            ("after".to_owned(), MessageStatus::Verified)
        ]
    );
}

#[test]
fn a_traversal_file_name_is_written_sanitized() {
    let (mut sim, alice, bob, _) = alice_and_bob(16);
    let bob_id = id(&sim, bob);
    sim.client_do(alice, |c, now| {
        c.send_file(
            now,
            FileTarget::User(bob_id.clone()),
            "../evil",
            b"owned".to_vec(),
        )
    });
    sim.client_do(alice, |c, now| {
        c.send_file(
            now,
            FileTarget::User(bob_id.clone()),
            "..\\..\\CON",
            b"x".to_vec(),
        )
    });
    sim.run_for(Duration::from_secs(1));
    let names: Vec<&str> = sim.client_files(bob).iter().map(|f| f.1.as_str()).collect();
    assert_eq!(names, ["evil", "_CON"]);
}

#[test]
fn a_missing_chunk_fails_the_file() {
    let (mut sim, alice, bob, _) = alice_and_bob(17);
    let bob_id = id(&sim, bob);
    sim.set_hook(rewrite_to(bob, MsgType::FileChunk, |env| {
        if env.payload["index"] == 1 {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }));
    let file_id = sim.client_do(alice, |c, now| {
        c.send_file(
            now,
            FileTarget::User(bob_id.clone()),
            "f.bin",
            vec![5u8; 2000],
        )
    });
    sim.run_for(Duration::from_secs(1));
    assert!(sim.client_files(bob).is_empty());
    assert!(sim.client_events(bob).contains(&ClientEvent::FileFailed {
        file_id,
        reason: FileFailure::MissingChunk { index: 1 },
    }));
}

#[test]
fn out_of_order_chunks_are_reassembled() {
    let (mut sim, alice, bob, _) = alice_and_bob(18);
    let bob_id = id(&sim, bob);
    // Hold chunk 0 back and deliver it after the last chunk (before FILE_END).
    let held: Rc<RefCell<Option<Vec<u8>>>> = Rc::new(RefCell::new(None));
    let h = Rc::clone(&held);
    sim.set_hook(rewrite_to(bob, MsgType::FileChunk, move |env| {
        match env.payload["index"].as_u64().unwrap() {
            0 => {
                *h.borrow_mut() = Some(env.encode());
                env.msg_type = MsgType::Heartbeat;
                env.payload.clear();
                Verdict::Deliver
            }
            4 => Verdict::Inject {
                frame: h.borrow_mut().take().unwrap(),
                after: Duration::ZERO,
            },
            _ => Verdict::Deliver,
        }
    }));
    let content: Vec<u8> = (0..2000u32).map(|i| (i % 253) as u8).collect();
    sim.client_do(alice, |c, now| {
        c.send_file(
            now,
            FileTarget::User(bob_id.clone()),
            "f.bin",
            content.clone(),
        )
    });
    sim.run_for(Duration::from_secs(1));
    assert!(held.borrow().is_none());
    assert_eq!(
        sim.client_files(bob).len(),
        1,
        "{:?}",
        sim.client_events(bob)
    );
    assert_eq!(sim.client_files(bob)[0].2.as_ref(), content.as_slice());
}

#[test]
fn an_unsigned_message_claiming_verified_is_unsigned() {
    let (mut sim, _alice, bob, servers) = alice_and_bob(19);
    let mallory = sim.add_user(8);
    sim.connect_user(mallory, servers[1]);
    sim.run_for(Duration::from_secs(1));
    let bob_id = id(&sim, bob);
    let ct = fixtures::rsa_identity_ref(5)
        .public()
        .encrypt_oaep(&mut rng_from_seed([1; 32]), b"trust me")
        .unwrap();
    let dm = MsgDirect {
        ciphertext: b64::encode(&ct),
        sender_pub: Some(sim.user(mallory).pubkey.clone()),
        content_sig: None,
    };
    let mut env = Envelope::new(id(&sim, mallory), bob_id, sim.now().unix_ms, dm);
    env.payload.insert("status".into(), "verified".into());
    env.payload.insert("verified".into(), true.into());
    sim.user_send(mallory, env.encode());
    sim.run_for(Duration::from_secs(1));
    let got = messages(&sim, bob);
    assert_eq!(
        got,
        [(
            id(&sim, mallory),
            "trust me".into(),
            MessageStatus::Unsigned,
            false
        )]
    );
}

#[test]
fn a_dm_to_an_unknown_user_gets_user_not_found() {
    let (mut sim, alice, _, _) = alice_and_bob(20);
    let ghost = "9f1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    let msg_id = sim.client_do(alice, |c, now| c.send_direct(now, ghost, "anyone?"));
    sim.run_for(Duration::from_secs(1));
    let events = sim.client_events(alice);
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Error {
            code: ErrorCode::UserNotFound,
            ..
        }
    )));
    assert!(events.contains(&ClientEvent::SendFailed {
        msg_id,
        to: ghost.into(),
        reason: SendFailure::UserNotFound,
    }));
}

#[test]
fn reconnect_resends_what_was_queued() {
    let (mut sim, alice, bob, servers) = alice_and_bob(21);
    let bob_id = id(&sim, bob);
    sim.disconnect_user(alice);
    sim.run_for(Duration::from_millis(50));
    assert!(!sim.client(alice).is_connected());
    sim.client_do(alice, |c, now| {
        c.send_direct(now, &bob_id, "sent while offline")
    });
    assert_eq!(sim.client(alice).pending_outgoing(), 1);
    sim.run_for(Duration::from_secs(3));
    assert!(sim.client(alice).is_connected());
    assert_eq!(sim.user(alice).server(), Some(servers[1]));
    let connects = sim
        .client_events(alice)
        .into_iter()
        .filter(|e| matches!(e, ClientEvent::Connected { .. }))
        .count();
    assert_eq!(connects, 2);
    let got = messages(&sim, bob);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].1.as_str(), got[0].2),
        ("sent while offline", MessageStatus::Verified)
    );
    // A server crash: the client keeps retrying with backoff and comes back.
    sim.crash_server(servers[1]);
    sim.run_for(Duration::from_secs(5));
    sim.client_do(alice, |c, now| {
        c.send_direct(now, &bob_id, "after the crash")
    });
    sim.restart_server(servers[1]);
    sim.run_for(Duration::from_secs(40));
    assert!(sim.client(alice).is_connected());
    let got = messages(&sim, bob);
    assert_eq!(got.last().map(|m| m.1.as_str()), Some("after the crash"));
}

/// §4 case 20: auto-join on hello, strictly increasing versions, `if_version`
/// conflicts, key-share signatures and per-member shares.
#[test]
fn conformance_20_public_channel() {
    // Plain links: the test plays server b by injecting a signed frame.
    let (mut sim, alice, bob, servers) = alice_and_bob_on(legacy_mesh(22));
    let [intro, a, b] = servers;
    // Auto-join: every client got the channel's version on hello.
    let v_alice = sim.client(alice).public_version();
    assert!(v_alice > 0);
    assert!(sim.client(bob).public_version() > 0);
    assert!(sim.server(a).public_channel().1 >= 1);
    // A later member of the same server sees a strictly greater version.
    let dave = client(&mut sim, a, 7);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.client(dave).public_version() > v_alice);
    // A PUBLIC_CHANNEL_ADD based on a stale version never moves a server back.
    let (before, members) = sim.server(a).public_channel();
    let add = PublicChannelAdd {
        add: vec!["7e6d5c4b-3a29-4817-8615-0a0b0c0d0e0f".into()],
        if_version: 0,
    };
    let mut env = Envelope::new(sim.server(b).id(), "*", sim.now().unix_ms, add);
    let sig = fixtures::rsa_identity_ref(3)
        .sign_pss(&mut rng_from_seed([2; 32]), &env.signing_bytes())
        .unwrap();
    env.sig = Some(b64::encode(&sig));
    let frame = env.encode();
    let once = Rc::new(RefCell::new(Some(frame)));
    let o = Rc::clone(&once);
    sim.set_hook(Box::new(move |flight: &mut InFlight| {
        if matches!(flight.from, Endpoint::Server { idx, .. } if idx == b)
            && matches!(flight.to, Endpoint::Server { idx, .. } if idx == a)
            && let Some(frame) = o.borrow_mut().take()
        {
            return Verdict::Inject {
                frame,
                after: Duration::from_millis(1),
            };
        }
        Verdict::Deliver
    }));
    let carol = client(&mut sim, b, 6); // its advert travels b → a
    sim.run_for(Duration::from_secs(2));
    sim.clear_hook();
    assert!(once.borrow().is_none());
    let (after, now_members) = sim.server(a).public_channel();
    assert!(after > before, "{before} → {after}");
    assert!(now_members > members);
    let _ = intro;

    // Key share: Alice makes one; Bob, Carol and Dave each decrypt their own.
    let shares = sim
        .client_do(alice, |c, now| c.share_channel_key(now))
        .unwrap();
    assert_eq!(shares, 4);
    sim.run_for(Duration::from_secs(1));
    let alice_fp = sim.client(alice).channel_key_fingerprint().unwrap();
    let alice_id = id(&sim, alice);
    for member in [bob, carol, dave] {
        assert!(
            sim.client_events(member)
                .contains(&ClientEvent::ChannelKey {
                    creator: alice_id.clone(),
                    status: MessageStatus::Verified,
                    fingerprint: alice_fp.clone(),
                }),
            "member {member}: {:?}",
            sim.client_events(member)
        );
    }
    // Bob's copy of the frame: his share opens with his key, Carol's does not.
    let frame = sim
        .user(bob)
        .received(&MsgType::PublicChannelKeyShare)
        .next()
        .unwrap()
        .clone();
    let Ok(Message::PublicChannelKeyShare(ks)) = frame.message() else {
        panic!("not a key share")
    };
    let ks: PublicChannelKeyShare = ks;
    let bob_key = fixtures::rsa_identity_ref(5);
    let mut rng = rng_from_seed([3; 32]);
    let open = |member: &str, rng: &mut _| {
        let share = ks.shares.iter().find(|s| s.member == member).unwrap();
        bob_key.decrypt_oaep(
            rng,
            &b64::decode(&share.wrapped_public_channel_key).unwrap(),
        )
    };
    assert_eq!(open(&id(&sim, bob), &mut rng).unwrap().len(), 32);
    assert!(open(&id(&sim, carol), &mut rng).is_err());
    assert!(open(&alice_id, &mut rng).is_err());
    // The signature covers (shares, creator_pub): any change breaks it.
    let mut shares_value = frame.payload["shares"].clone();
    shares_value[0]["member"] = "x".into();
    let canonical = socp_core::wire::json::canonical(&shares_value);
    let creator = socp_core::crypto::RsaPublic::from_wire(&ks.creator_pub)
        .unwrap()
        .0;
    let fields = socp_core::crypto::KeyShareFields {
        shares_canonical: &canonical,
        creator_pub: &ks.creator_pub,
    };
    assert!(
        socp_core::crypto::content_sig::verify_key_share(&creator, &ks.content_sig, &fields)
            .is_err()
    );
    let _ = KeySource::Directory;
}

/// §4 case 19: chunks of ≤ 446 bytes between FILE_START and FILE_END; the
/// manifest's SHA-256 and size are checked and a failure is reported, never saved.
#[test]
fn conformance_19_files() {
    let (mut sim, alice, bob, _) = alice_and_bob(23);
    let bob_id = id(&sim, bob);
    // Record the frame types and plaintext-sized chunks Bob is sent.
    let seen: Rc<RefCell<Vec<MsgType>>> = Rc::new(RefCell::new(Vec::new()));
    let s = Rc::clone(&seen);
    sim.set_hook(Box::new(move |flight: &mut InFlight| {
        if flight.to == (Endpoint::User { idx: bob })
            && let Ok(env) = Envelope::decode(&flight.frame, &Limits::default())
            && env.msg_type.as_str().starts_with("FILE_")
        {
            s.borrow_mut().push(env.msg_type);
        }
        Verdict::Deliver
    }));
    let content = vec![9u8; 446 * 3 + 1];
    sim.client_do(alice, |c, now| {
        c.send_file(
            now,
            FileTarget::User(bob_id.clone()),
            "ok.bin",
            content.clone(),
        )
    });
    sim.run_for(Duration::from_secs(1));
    let types = seen.borrow().clone();
    assert_eq!(types.first(), Some(&MsgType::FileStart));
    assert_eq!(types.last(), Some(&MsgType::FileEnd));
    assert_eq!(types.len(), 2 + 4);
    assert_eq!(sim.client_files(bob).len(), 1);

    // A manifest whose hash (or size) was changed on the way, by a peer that
    // does not sign manifests: reported, not saved.
    for (field, reason) in [
        ("sha256", FileFailure::HashMismatch),
        (
            "size",
            FileFailure::SizeMismatch {
                expected: content.len() as u64 + 1,
                got: content.len() as u64,
            },
        ),
    ] {
        sim.set_hook(rewrite_to(bob, MsgType::FileStart, move |env| {
            env.payload.remove("content_sig");
            if field == "sha256" {
                env.payload["sha256"] = "ab".repeat(32).into();
            } else {
                let size = env.payload["size"].as_u64().unwrap();
                env.payload["size"] = (size + 1).into();
            }
            Verdict::Deliver
        }));
        let file_id = sim.client_do(alice, |c, now| {
            c.send_file(
                now,
                FileTarget::User(bob_id.clone()),
                "bad.bin",
                content.clone(),
            )
        });
        sim.run_for(Duration::from_secs(1));
        assert!(
            sim.client_events(bob)
                .contains(&ClientEvent::FileFailed { file_id, reason }),
            "{field}: {:?}",
            sim.client_events(bob)
        );
    }
    assert_eq!(sim.client_files(bob).len(), 1);
}

fn acked(sim: &Sim, idx: usize) -> Vec<socp_core::client::MessageId> {
    sim.client_events(idx)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Acked { msg_id, .. } => Some(msg_id),
            _ => None,
        })
        .collect()
}

/// Sends a first DM, so the server has acknowledged something and resending is on.
fn warm_up(sim: &mut Sim, from: usize, to: &str) {
    sim.client_do(from, |c, now| c.send_direct(now, to, "warm-up"));
    sim.run_for(Duration::from_secs(1));
}

/// Drops frames of type `t` between user `u` and its server (towards the
/// user if `to_user`, else from it) until the returned switch is turned off.
fn drop_frames(sim: &mut Sim, u: usize, t: MsgType, to_user: bool) -> Rc<std::cell::Cell<bool>> {
    let armed = Rc::new(std::cell::Cell::new(true));
    let on = Rc::clone(&armed);
    sim.set_hook(Box::new(move |flight: &mut InFlight| {
        let user = Endpoint::User { idx: u };
        let ours = if to_user {
            flight.to == user
        } else {
            flight.from == user
        };
        let is_t =
            Envelope::decode(&flight.frame, &Limits::default()).is_ok_and(|env| env.msg_type == t);
        if on.get() && ours && is_t {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }));
    armed
}

/// Stops dropping, cuts user `u`'s link and lets its client log in again.
fn reconnect(sim: &mut Sim, u: usize, armed: &std::cell::Cell<bool>) {
    armed.set(false);
    sim.disconnect_user(u);
    sim.run_for(Duration::from_secs(5));
    assert!(sim.client(u).is_connected());
}

#[test]
fn every_piece_is_acknowledged_by_the_server() {
    let (mut sim, alice, bob, _) = alice_and_bob(30);
    let bob_id = id(&sim, bob);
    let long = "ack me ".repeat(200); // several pieces
    let short = sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, "hi"));
    let multi = sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, &long));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(acked(&sim, alice), vec![short, multi]);
    assert_eq!(sim.client(alice).unacknowledged(), 0);
}

#[test]
fn a_dm_lost_with_its_link_is_resent_once_after_reconnect() {
    let (mut sim, alice, bob, _) = alice_and_bob(31);
    let bob_id = id(&sim, bob);
    warm_up(&mut sim, alice, &bob_id);
    // The next DM's frames die with the link.
    let armed = drop_frames(&mut sim, alice, MsgType::MsgDirect, false);
    let lost = sim.client_do(alice, |c, now| {
        c.send_direct(now, &bob_id, "lost in transit")
    });
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.client(alice).unacknowledged(), 1);
    reconnect(&mut sim, alice, &armed);
    let got: Vec<String> = messages(&sim, bob).into_iter().map(|m| m.1).collect();
    assert_eq!(
        got,
        vec!["warm-up".to_owned(), "lost in transit".to_owned()]
    );
    assert!(acked(&sim, alice).contains(&lost));
    assert_eq!(sim.client(alice).unacknowledged(), 0);
}

#[test]
fn a_resend_of_a_delivered_message_is_shown_once() {
    let (mut sim, alice, bob, _) = alice_and_bob(32);
    let bob_id = id(&sim, bob);
    warm_up(&mut sim, alice, &bob_id);
    // The DM arrives, but its ACKs are lost: Alice cannot know, and resends.
    let armed = drop_frames(&mut sim, alice, MsgType::Ack, true);
    let long = "twice? ".repeat(150);
    sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, &long));
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.client(alice).unacknowledged(), 1);
    reconnect(&mut sim, alice, &armed);
    assert_eq!(sim.client(alice).unacknowledged(), 0);
    let got: Vec<String> = messages(&sim, bob).into_iter().map(|m| m.1).collect();
    assert_eq!(got, vec!["warm-up".to_owned(), long]);
}

#[test]
fn a_sent_dm_to_a_user_who_left_fails_with_user_not_found() {
    let (mut sim, alice, bob, _) = alice_and_bob(33);
    let bob_id = id(&sim, bob);
    // Alice knows Bob's key; Bob leaves; the server has not told Alice yet.
    sim.disconnect_user(bob);
    let msg = sim.client_do(alice, |c, now| c.send_direct(now, &bob_id, "still there?"));
    sim.run_for(Duration::from_secs(1));
    let events = sim.client_events(alice);
    assert!(
        events.contains(&ClientEvent::SendFailed {
            msg_id: msg,
            to: bob_id,
            reason: SendFailure::UserNotFound,
        }),
        "{events:#?}"
    );
    assert_eq!(sim.client(alice).unacknowledged(), 0);
}

/// A linked server announcing the largest possible channel version (hostile or
/// broken) must not crash anyone when the next user joins.
#[test]
fn a_channel_version_at_u64_max_does_not_overflow() {
    let (mut sim, [_, a, b]) = legacy_mesh(35);
    let add = PublicChannelAdd {
        add: vec!["7e6d5c4b-3a29-4817-8615-0a0b0c0d0e0f".into()],
        if_version: u64::MAX,
    };
    let mut env = Envelope::new(sim.server(b).id(), "*", sim.now().unix_ms, add);
    let sig = fixtures::rsa_identity_ref(3)
        .sign_pss(&mut rng_from_seed([2; 32]), &env.signing_bytes())
        .unwrap();
    env.sig = Some(b64::encode(&sig));
    let once = Rc::new(RefCell::new(Some(env.encode())));
    sim.set_hook(Box::new(move |flight: &mut InFlight| {
        if matches!(flight.from, Endpoint::Server { idx, .. } if idx == b)
            && matches!(flight.to, Endpoint::Server { idx, .. } if idx == a)
            && let Some(frame) = once.borrow_mut().take()
        {
            return Verdict::Inject {
                frame,
                after: Duration::from_millis(1),
            };
        }
        Verdict::Deliver
    }));
    let carol = client(&mut sim, b, 6);
    sim.run_for(Duration::from_secs(2));
    sim.clear_hook();
    let dave = client(&mut sim, a, 7); // a joins a member at the top version
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.server(a).public_channel().0, u64::MAX);
    assert!(sim.client(dave).is_connected());
    assert!(sim.client(carol).is_connected());
}
