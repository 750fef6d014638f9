//! The fuzz harnesses of `socp_core::fuzzing`, run over seeded pseudo-random
//! inputs and over truncated and mutated frames captured from a simulator run,
//! so that they (and the server, client and sessions under them) are exercised
//! by every `cargo test`.
//!
//! `seed_corpus` writes the seed corpus of the cargo-fuzz targets
//! (`fuzz/corpus/<target>/`) from these transcripts when `SOCP_WRITE_CORPUS=1`
//! is set, and otherwise runs every checked-in seed through its harness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant as WallClock;

use core::time::Duration;
use rand_core::Rng;
use socp_core::client::{AuthMode, FileTarget, UserIdentity};
use socp_core::crypto::{fixtures, rng_from_seed, sha256};
use socp_core::fuzzing::{
    ClientScript, FUZZ_CLIENT_ID, Finding, HandshakeScript, Mutation, ServerScript, SessionScript,
    Side, channel, client_frames, envelope_decode, handshake, ratchet, server_frames, upgrade,
};
use socp_core::server::ServerConfig;
use socp_core::sim::{Endpoint, Sim, Verdict};
use socp_core::wire::{Envelope, Limits, Message};

/// Real frames of every type a small simulated network exchanges, one list per
/// type (at most `per_type` each), in the order they were sent.
fn captured_frames(per_type: usize) -> BTreeMap<String, Vec<Vec<u8>>> {
    let frames: Rc<RefCell<BTreeMap<String, Vec<Vec<u8>>>>> = Rc::default();
    let mut sim = Sim::new(7);
    let sink = Rc::clone(&frames);
    sim.set_hook(Box::new(move |flight| {
        if let Ok(env) = Envelope::decode(&flight.frame, &Limits::default()) {
            let mut frames = sink.borrow_mut();
            let list = frames.entry(env.msg_type.as_str().to_owned()).or_default();
            if list.len() < per_type {
                list.push(flight.frame.clone());
            }
        }
        Verdict::Deliver
    }));
    // Plain SOCP links between the servers: the harness's server cannot open
    // another run's sealed frames, and these are the types a SOCP peer sends.
    let mut intro_cfg = ServerConfig::default();
    intro_cfg.secure_links = false;
    let intro = sim.add_server(intro_cfg, 1);
    let mut cfg = sim.config_joining(&[intro]);
    cfg.secure_links = false;
    let a = sim.add_server(cfg.clone(), 2);
    sim.run_for(Duration::from_secs(1));
    let b = sim.add_server(cfg, 3);
    sim.run_for(Duration::from_secs(1));
    let (alice, bob, carol) = (sim.add_user(4), sim.add_user(5), sim.add_user(6));
    sim.connect_user(alice, a);
    sim.connect_user(bob, b);
    sim.connect_user(carol, a);
    sim.run_for(Duration::from_secs(1));
    sim.send_dm(alice, bob);
    sim.send_dm(alice, carol);
    sim.send_public(bob);
    let nobody = "00000000-0000-4000-8000-000000000000";
    sim.send_dm_to_id(carol, nobody);
    let list = sim.user(alice).list_request(sim.now().unix_ms);
    sim.user_send(alice, list);
    sim.run_for(Duration::from_secs(16));
    sim.disconnect_user(carol);
    sim.run_for(Duration::from_secs(1));
    sim.clear_hook();
    Rc::try_unwrap(frames).unwrap().into_inner()
}

/// Cut points of a frame: every `stride`-th length, the last 16 and the first 16.
fn cuts(len: usize, stride: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..len).step_by(stride).collect();
    cuts.extend(0..len.min(16));
    cuts.extend(len.saturating_sub(16)..len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The frame with byte `i` changed in a few ways that keep it near-valid JSON.
fn mutations(frame: &[u8], i: usize) -> Vec<Vec<u8>> {
    [0x01u8, 0x20, 0x80]
        .iter()
        .map(|x| {
            let mut m = frame.to_vec();
            m[i] ^= x;
            m
        })
        .chain([b'"', b'}', b'\\', b'0'].iter().map(|c| {
            let mut m = frame.to_vec();
            m[i] = *c;
            m
        }))
        .collect()
}

#[test]
fn seeded_random_inputs_never_panic() {
    let started = WallClock::now();
    let mut rng = rng_from_seed([0x42; 32]);
    let mut data = Vec::new();
    for _ in 0..1500 {
        let len = usize::try_from(rng.next_u32() % 256).unwrap();
        data.resize(len, 0);
        rng.fill_bytes(&mut data);
        envelope_decode(&data).unwrap();
        if let Err(finding) = server_frames(&data) {
            panic!("{finding} for input {data:02x?}");
        }
    }
    println!("1500 random byte strings in {:?}", started.elapsed());
}

/// A random script of `ops` operations whose frames are captured frames, often
/// truncated or with a byte changed: random bytes alone rarely get past the
/// first frame, these reach identified links, routing and the mesh.
fn random_script(rng: &mut impl Rng, frames: &[Vec<u8>], ops: usize) -> Vec<u8> {
    let mut script = ServerScript::with_setup(u8::try_from(rng.next_u32() % 8).unwrap());
    for _ in 0..ops {
        let k = u8::try_from(rng.next_u32() % 4).unwrap();
        let j = u8::try_from(rng.next_u32() % 4).unwrap();
        let mut frame = frames[usize::try_from(rng.next_u32()).unwrap() % frames.len()].clone();
        match rng.next_u32() % 4 {
            0 => frame.truncate(usize::try_from(rng.next_u32()).unwrap() % (frame.len() + 1)),
            1 => {
                let i = usize::try_from(rng.next_u32()).unwrap() % frame.len();
                frame[i] ^= 1 << (rng.next_u32() % 8);
            }
            _ => {}
        }
        script = match rng.next_u32() % 12 {
            0 | 1 => script.connect(),
            2 => script.frame(k, &frame),
            3 => script.signed(k, &frame),
            4 => script.binary(k),
            5 => script.close(k),
            6 => script.advance(u16::try_from(rng.next_u32() % 20_000).unwrap()),
            7 => script.user_hello(k, j),
            8 => script.server_hello(k, j),
            9 => script.dial_up(k),
            10 => script.dial_fail(k),
            _ => script.direct(k, j, &frame[..frame.len().min(32)]),
        };
    }
    script.into_bytes()
}

#[test]
fn seeded_random_scripts_never_panic() {
    let frames: Vec<Vec<u8>> = captured_frames(3).into_values().flatten().collect();
    let started = WallClock::now();
    let mut rng = rng_from_seed([0x43; 32]);
    for _ in 0..300 {
        let data = random_script(&mut rng, &frames, 10);
        if let Err(finding) = server_frames(&data) {
            panic!("{finding} for input {data:02x?}");
        }
    }
    println!("300 random scripts in {:?}", started.elapsed());
}

#[test]
fn scripted_sessions_never_panic() {
    let frames = captured_frames(1);
    let dm = b"opaque";
    let mut scripts = vec![
        // Two users meet, talk, one leaves; a stranger is refused.
        ServerScript::standalone()
            .connect()
            .user_hello(0, 1)
            .connect()
            .user_hello(1, 2)
            .direct(0, 2, dm)
            .direct(1, 1, dm)
            .direct(0, 9, dm)
            .direct(0, 2, dm)
            .binary(1)
            .close(0)
            .direct(1, 1, dm)
            .advance(20_000),
        // The same user twice, and a hello on an identified link.
        ServerScript::standalone()
            .connect()
            .user_hello(0, 1)
            .connect()
            .user_hello(1, 1)
            .user_hello(0, 3)
            .advance(11_000),
        // A server links, then its link goes silent past the dead timeout.
        ServerScript::standalone()
            .connect()
            .user_hello(0, 1)
            .connect()
            .server_hello(1, 1)
            .connect()
            .server_hello(2, 1)
            .advance(30_000)
            .advance(30_000),
        // Joining: the dial fails, then connects, then WELCOME never comes.
        ServerScript::with_setup(1)
            .dial_fail(0)
            .advance(2_000)
            .dial_up(0)
            .advance(11_000)
            .advance(60_000),
        // Quiet errors and small limits.
        ServerScript::with_setup(0b111)
            .connect()
            .frame(0, b"{}")
            .frame(0, &[b'['; 64])
            .binary(0),
    ];
    // Every captured frame, as is and signed, on a server link and a user link.
    for (ty, list) in &frames {
        let frame = &list[0];
        let short = ty.as_str() != "SERVER_WELCOME";
        scripts.push(
            ServerScript::standalone()
                .connect()
                .server_hello(0, 1)
                .signed(0, frame)
                .frame(0, frame)
                .connect()
                .user_hello(1, 1)
                .signed(1, frame)
                .frame(1, frame),
        );
        if short {
            // A joining server hears it on its introducer link.
            scripts.push(
                ServerScript::with_setup(2)
                    .dial_up(0)
                    .signed(0, frame)
                    .frame(0, frame),
            );
        }
    }
    // A WELCOME, signed with the pinned key, on the join link: the server joins.
    if let Some(welcome) = frames.get("SERVER_WELCOME") {
        scripts.push(
            ServerScript::with_setup(2)
                .dial_up(0)
                .signed(0, &welcome[0])
                .dial_up(0)
                .dial_fail(0)
                .advance(5_000),
        );
    }
    let started = WallClock::now();
    for script in scripts {
        let data = script.into_bytes();
        if let Err(finding) = server_frames(&data) {
            panic!("{finding} for script {data:02x?}");
        }
    }
    println!("scripted sessions in {:?}", started.elapsed());
}

#[test]
fn truncated_and_mutated_captured_frames_never_panic() {
    let frames = captured_frames(1);
    let started = WallClock::now();
    let mut runs = 0usize;
    let mut fed = 0usize;
    for list in frames.values() {
        for frame in list {
            let mut bad: Vec<Vec<u8>> = cuts(frame.len(), 41)
                .into_iter()
                .map(|n| frame[..n].to_vec())
                .collect();
            for i in cuts(frame.len(), 97) {
                bad.extend(mutations(frame, i));
            }
            for f in &bad {
                envelope_decode(f).unwrap();
            }
            fed += bad.len();
            // One run per context, every bad frame on the same link: the error
            // rate limit bounds the signatures a run costs.
            let contexts = [
                ServerScript::standalone().connect(),
                ServerScript::standalone().connect().user_hello(0, 1),
                ServerScript::standalone().connect().server_hello(0, 1),
                ServerScript::with_setup(1).dial_up(0),
            ];
            for context in contexts {
                let script = bad.iter().fold(context, |s, f| s.frame(0, f));
                let data = script.into_bytes();
                runs += 1;
                if let Err(finding) = server_frames(&data) {
                    panic!("{finding} for script {data:02x?}");
                }
            }
        }
    }
    println!(
        "{} frame types, {fed} truncated or mutated frames, {runs} server runs in {:?}",
        frames.len(),
        started.elapsed()
    );
    assert!(frames.len() >= 12, "captured types: {:?}", frames.keys());
}

#[test]
fn envelope_round_trips_hold_for_captured_frames() {
    let frames = captured_frames(4);
    println!("captured types: {:?}", frames.keys().collect::<Vec<_>>());
    for list in frames.values() {
        for frame in list {
            envelope_decode(frame).unwrap();
            // Our own frames are canonical already.
            let env = Envelope::decode(frame, &Limits::default()).unwrap();
            assert_eq!(&env.encode(), frame);
            assert!(env.message().is_ok() || matches!(env.message(), Ok(Message::Unknown { .. })));
        }
    }
}

/// Found by `envelope_decode`: a float literal that overflows a double (`1e400`)
/// decodes, but canonical JSON re-prints it as `Infinity`, as Python's
/// `json.dumps` does, which is not JSON: our decoder and strict peers refuse the
/// frame. A server that relays user content re-encodes it, so one user can make
/// its server send frames that no socp peer can read. Signing bytes must stay
/// Python's, but `Envelope::encode` must not write `Infinity`/`NaN`.
/// A float literal that overflows a double is refused at decode (it could only be
/// re-printed as the non-JSON `Infinity`), so nothing undecodable is ever relayed.
#[test]
fn relayed_overflowing_float_stays_decodable() {
    let from = ServerScript::user_id(1);
    let frame = format!(
        r#"{{"type":"MSG_PUBLIC_CHANNEL","from":"{from}","to":"public","ts":1760000000000,"payload":{{"ciphertext":"eA","pad":1e400}}}}"#
    );
    let script = ServerScript::standalone()
        .connect()
        .user_hello(0, 1)
        .connect()
        .user_hello(1, 2)
        .frame(0, frame.as_bytes());
    assert_eq!(server_frames(&script.into_bytes()), Ok(()));
    assert_eq!(envelope_decode(frame.as_bytes()), Ok(()));
}

// ----- the client --------------------------------------------------------------

/// Every frame a real client with the fuzz harness's identity receives in a
/// small simulated network (hello, roster, DMs, the public channel, a file),
/// in order, and the user id of its peer.
fn client_transcript() -> (Vec<Vec<u8>>, String) {
    let frames: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let mut sim = Sim::new(11);
    let s = sim.add_server(ServerConfig::default(), 1);
    let cfg = sim.client_config(&[s]);
    // The harness's client is plain unless its setup says otherwise, and a
    // sealed frame of this run would not open in another.
    let mut plain = cfg.clone();
    plain.secure_link = false;
    let me = sim.add_client_with(
        plain,
        UserIdentity::new(FUZZ_CLIENT_ID, fixtures::rsa_identity(4)),
        AuthMode::Hello,
        1,
    );
    let sink = Rc::clone(&frames);
    sim.set_hook(Box::new(move |flight| {
        if flight.to == (Endpoint::User { idx: me }) {
            sink.borrow_mut().push(flight.frame.clone());
        }
        Verdict::Deliver
    }));
    let peer = sim.add_client(cfg, 5, 2);
    sim.run_for(Duration::from_secs(2));
    let peer_id = sim.client(peer).user_id().to_owned();
    sim.client_do(peer, |c, now| {
        c.send_direct(now, FUZZ_CLIENT_ID, "hello, fuzz")
    });
    sim.run_for(Duration::from_secs(1));
    sim.client_do(peer, |c, now| c.send_public(now, "to everyone"));
    sim.run_for(Duration::from_secs(1));
    let long = "x".repeat(600);
    sim.client_do(peer, |c, now| c.send_direct(now, FUZZ_CLIENT_ID, &long));
    sim.client_do(peer, |c, now| {
        c.send_file(
            now,
            FileTarget::User(FUZZ_CLIENT_ID.to_owned()),
            "notes.txt",
            b"three\nsmall\nlines\n".to_vec(),
        )
    });
    sim.client_do(me, |c, now| c.send_direct(now, &peer_id, "hi back"));
    sim.client_do(me, |c, now| c.request_list(now));
    sim.run_for(Duration::from_secs(3));
    sim.disconnect_user(peer);
    sim.run_for(Duration::from_secs(1));
    sim.clear_hook();
    let frames = Rc::try_unwrap(frames).unwrap().into_inner();
    (frames, peer_id)
}

fn check(name: &str, result: Result<(), Finding>, data: &[u8]) {
    if let Err(finding) = result {
        panic!("{name}: {finding} for input {data:02x?}");
    }
}

/// A random client script: mostly captured frames (often cut or with a bit
/// flipped), link events and time, and now and then an expensive templated
/// delivery or an app command.
fn random_client_script(rng: &mut impl Rng, frames: &[Vec<u8>], ops: usize) -> Vec<u8> {
    let mut script = ClientScript::with_setup(u8::try_from(rng.next_u32() % 8).unwrap());
    for _ in 0..ops {
        let j = u8::try_from(rng.next_u32() % 3).unwrap();
        let mut frame = frames[usize::try_from(rng.next_u32()).unwrap() % frames.len()].clone();
        match rng.next_u32() % 4 {
            0 => frame.truncate(usize::try_from(rng.next_u32()).unwrap() % (frame.len() + 1)),
            1 => {
                let i = usize::try_from(rng.next_u32()).unwrap() % frame.len();
                frame[i] ^= 1 << (rng.next_u32() % 8);
            }
            _ => {}
        }
        script = match rng.next_u32() % 40 {
            0..=19 => script.frame(&frame),
            20 | 21 => script.closed(),
            22 | 23 => script.connected(),
            24..=26 => script.advance(u16::try_from(rng.next_u32() % 40_000).unwrap()),
            27..=29 => script.advertise(j),
            30 => script.deliver(j, b"hi"),
            31 => script.send_direct(j, b"yo"),
            32 => script.send_public(b"all"),
            33 => script.send_file(j, b"file"),
            34 | 35 => script.request(j),
            36 => script.accept_key(j),
            37 => script.close(),
            38 => script.secure_answer(),
            _ => script.sealed(&frame),
        };
    }
    script.into_bytes()
}

#[test]
fn client_frames_random_inputs() {
    let (frames, _) = client_transcript();
    assert!(frames.len() >= 8, "captured {} client frames", frames.len());
    let started = WallClock::now();
    let mut rng = rng_from_seed([0x44; 32]);
    let mut data = Vec::new();
    for _ in 0..500 {
        let len = usize::try_from(rng.next_u32() % 96).unwrap();
        data.resize(len, 0);
        rng.fill_bytes(&mut data);
        check("client_frames", client_frames(&data), &data);
    }
    for _ in 0..150 {
        let data = random_client_script(&mut rng, &frames, 12);
        check("client_frames", client_frames(&data), &data);
    }
    println!(
        "500 random byte strings and 150 client scripts in {:?}",
        started.elapsed()
    );
}

#[test]
fn client_frames_transcript_and_templates() {
    let (frames, _) = client_transcript();
    let whole = frames
        .iter()
        .fold(ClientScript::hello(), |s, f| s.frame(f))
        .advance(2_000);
    check(
        "client_frames",
        client_frames(&whole.clone().into_bytes()),
        &[],
    );
    let templated = ClientScript::hello()
        .advertise(1)
        .deliver(1, b"genuine")
        .deliver(2, b"from a stranger")
        .send_direct(1, b"hello")
        .send_file(2, b"a file")
        .request(1)
        .request(2)
        .accept_key(1)
        .closed()
        .advance(1_000)
        .connected()
        .advance(30_000)
        .close();
    check("client_frames", client_frames(&templated.into_bytes()), &[]);
    // The secure profile: the harness answers the client's M1, then every
    // captured frame arrives sealed, and the client talks back sealed.
    let secure = frames
        .iter()
        .fold(ClientScript::with_setup(0b100).secure_answer(), |s, f| {
            s.sealed(f)
        })
        .advertise(1)
        .send_direct(1, b"sealed hello")
        .request(1)
        .closed()
        .connected()
        .secure_answer()
        .close();
    check("client_frames", client_frames(&secure.into_bytes()), &[]);
    // Logging in: every captured frame arrives before AUTH_OK.
    let login = frames
        .iter()
        .fold(ClientScript::with_setup(0b11), |s, f| s.frame(f));
    check("client_frames", client_frames(&login.into_bytes()), &[]);
    // Each frame cut at a few points, on a connected client.
    for frame in &frames {
        let cut = cuts(frame.len(), 211)
            .into_iter()
            .fold(ClientScript::hello().advertise(1), |s, n| {
                s.frame(&frame[..n])
            });
        check("client_frames", client_frames(&cut.into_bytes()), &[]);
    }
}

// ----- the handshake -------------------------------------------------------------

fn random_mutation(rng: &mut impl Rng) -> Mutation {
    let mut bytes = vec![0u8; usize::try_from(rng.next_u32() % 48).unwrap()];
    rng.fill_bytes(&mut bytes);
    match rng.next_u32() % 8 {
        0..=2 => Mutation::Keep,
        3 | 4 => Mutation::Flip(
            (0..1 + rng.next_u32() % 3)
                .map(|_| {
                    (
                        u16::try_from(rng.next_u32() % 1024).unwrap(),
                        u8::try_from(rng.next_u32() % 256).unwrap(),
                    )
                })
                .collect(),
        ),
        5 => Mutation::Truncate(u16::try_from(rng.next_u32() % 800).unwrap()),
        6 => Mutation::Replace(bytes),
        _ => Mutation::Append(bytes),
    }
}

#[test]
fn handshake_random_inputs() {
    let started = WallClock::now();
    let mut rng = rng_from_seed([0x45; 32]);
    let mut data = Vec::new();
    for _ in 0..1500 {
        let len = usize::try_from(rng.next_u32() % 200).unwrap();
        data.resize(len, 0);
        rng.fill_bytes(&mut data);
        check("handshake", handshake(&data), &data);
    }
    for _ in 0..1500 {
        let setup = u8::try_from(rng.next_u32() % 8).unwrap();
        let data = HandshakeScript::with_setup(setup)
            .then(&random_mutation(&mut rng))
            .then(&random_mutation(&mut rng))
            .then(&random_mutation(&mut rng))
            .into_bytes();
        check("handshake", handshake(&data), &data);
    }
    println!("3000 handshakes in {:?}", started.elapsed());
}

#[test]
fn handshake_refuses_every_altered_byte() {
    // Every setup completes when nothing is touched.
    for setup in 0..8 {
        let genuine = HandshakeScript::with_setup(setup).into_bytes();
        check("handshake", handshake(&genuine), &genuine);
    }
    // One flipped bit anywhere in any message is refused (the harness fails
    // with a finding if an altered message completes).
    for message in 0..3 {
        for pos in (0..700).step_by(7) {
            let flip = Mutation::Flip(vec![(pos, 0x01)]);
            let mut script = HandshakeScript::with_setup(1);
            for m in 0..3 {
                script = script.then(if m == message { &flip } else { &Mutation::Keep });
            }
            let data = script.into_bytes();
            check("handshake", handshake(&data), &data);
        }
    }
}

// ----- channels and the Double Ratchet -------------------------------------------

/// A random session script: sends both ways, deliveries out of order and
/// twice, altered and misdirected messages and made-up bytes.
fn random_session_script(rng: &mut impl Rng, ops: usize) -> Vec<u8> {
    let mut script = SessionScript::new();
    for _ in 0..ops {
        let k = u8::try_from(rng.next_u32() % 256).unwrap();
        let side = if rng.next_u32() & 1 == 0 {
            Side::Alice
        } else {
            Side::Bob
        };
        let ctx = u8::try_from(rng.next_u32() % 3).unwrap();
        script = match rng.next_u32() % 10 {
            0..=3 => script.send(side, ctx, &k.to_le_bytes().repeat(usize::from(k % 5))),
            4..=6 => script.deliver(k),
            7 => script.mutated(k, &random_mutation(rng)),
            8 => script.context(k, ctx),
            _ => match rng.next_u32() % 2 {
                0 => script.redirect(k),
                _ => {
                    let mut bytes = vec![0u8; usize::try_from(rng.next_u32() % 120).unwrap()];
                    rng.fill_bytes(&mut bytes);
                    script.arbitrary(side, ctx, &bytes)
                }
            },
        };
    }
    script.into_bytes()
}

fn session_smoke(name: &str, harness: fn(&[u8]) -> Result<(), Finding>, seed: u8) {
    let started = WallClock::now();
    let mut rng = rng_from_seed([seed; 32]);
    let mut data = Vec::new();
    for _ in 0..800 {
        let len = usize::try_from(rng.next_u32() % 200).unwrap();
        data.resize(len, 0);
        rng.fill_bytes(&mut data);
        check(name, harness(&data), &data);
    }
    for _ in 0..1200 {
        let data = random_session_script(&mut rng, 24);
        check(name, harness(&data), &data);
    }
    println!("{name}: 2000 scripts in {:?}", started.elapsed());
}

#[test]
fn ratchet_random_scripts() {
    session_smoke("ratchet", ratchet, 0x46);
}

#[test]
fn channel_random_scripts() {
    session_smoke("channel", channel, 0x47);
}

/// Ping-pong with every message delivered late, twice, altered and to the
/// wrong side: each genuine message opens exactly once.
fn session_scenario() -> Vec<u8> {
    let mut script = SessionScript::new();
    for round in 0..6u8 {
        let side = if round % 2 == 0 {
            Side::Alice
        } else {
            Side::Bob
        };
        for i in 0..3u8 {
            script = script.send(side, round % 3, &[round, i]);
        }
    }
    for k in (0..18u8).rev() {
        script = script
            .mutated(k, &Mutation::Flip(vec![(u16::from(k) * 5, 0x80)]))
            .context(k, k + 1)
            .redirect(k)
            .deliver(k)
            .deliver(k)
            .mutated(k, &Mutation::Truncate(40));
    }
    script
        .send(Side::Alice, 0, b"after all that")
        .arbitrary(Side::Bob, 0, &[0u8; 64])
        .deliver(18)
        .into_bytes()
}

#[test]
fn session_scenarios_hold() {
    let data = session_scenario();
    check("ratchet", ratchet(&data), &data);
    check("channel", channel(&data), &data);
}

/// Found by the `ratchet` target after 219,269 runs, when the harness seeded
/// every run's handshake with the same fixed bytes: the last operation delivers
/// made-up bytes to bob that are alice's genuine message 22 of that fixed
/// session (empty, context 0), which this run never sent, so the harness saw
/// a forgery open. libFuzzer had learned the ciphertext from the harness's own
/// `wire == bytes` comparisons in earlier runs: with fixed seeds it knew the
/// keys. A harness bug, not a ratchet bug: the harness now seeds each run from
/// a hash of its input, and this input must pass.
#[test]
fn ratchet_replay_learned_from_an_earlier_run() {
    let hex: String = [
        "0000020000000002000100000200020001000000008000000000000000000000000000000000000000000000",
        "00000000000000fafef9fdf9fdd9000205010001040001000100020002280000000e616674657220616c6c20",
        "74686174050140002d0000000000000000000000000000000000000000000000000000000000010014800301",
        "02040101010101020102280002000100000080030001040001000100020002280000000e616674657220616c",
        "6c2074686174050140005bcb634252962269e756280e7d2b4a5591dd6db4478dc7c5306946024e35b03f0000",
        "000000000000000000000000001613b1b57856063221f6ff1a5fbadf2c360000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000020000000f700",
        "0000000000",
    ]
    .concat();
    let data: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(data.len(), 313);
    check("ratchet", ratchet(&data), &data);
    check("channel", channel(&data), &data);
}

// ----- the HTTP upgrade judge -----------------------------------------------------

const WS_HEAD: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn http_heads() -> Vec<Vec<u8>> {
    [
        WS_HEAD,
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /nope HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "POST /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\nbody",
        "GET / HTTP/1.0\n\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 8\r\n\r\n",
        "garbage\r\n\r\n",
    ]
    .iter()
    .map(|h| h.as_bytes().to_vec())
    .collect()
}

#[test]
fn upgrade_random_inputs() {
    let started = WallClock::now();
    let heads = http_heads();
    let pieces: [&[u8]; 10] = [
        b"\r\n",
        b"\n",
        b":",
        b" ",
        b"GET",
        b"HTTP/1.1",
        b"Upgrade",
        b"websocket",
        b"\xff",
        b"/ws",
    ];
    let mut rng = rng_from_seed([0x48; 32]);
    let mut data = Vec::new();
    for _ in 0..2000 {
        let len = usize::try_from(rng.next_u32() % 120).unwrap();
        data.resize(len, 0);
        rng.fill_bytes(&mut data);
        check("upgrade", upgrade(&data), &data);
    }
    for _ in 0..2000 {
        let mut head = heads[usize::try_from(rng.next_u32()).unwrap() % heads.len()].clone();
        for _ in 0..1 + rng.next_u32() % 4 {
            let at = usize::try_from(rng.next_u32()).unwrap() % (head.len() + 1);
            match rng.next_u32() % 3 {
                0 => {
                    let piece = pieces[usize::try_from(rng.next_u32()).unwrap() % pieces.len()];
                    head.splice(at..at, piece.iter().copied());
                }
                1 => head.truncate(at),
                _ => {
                    if at < head.len() {
                        head.remove(at);
                    }
                }
            }
        }
        check("upgrade", upgrade(&head), &head);
    }
    println!("4000 request heads in {:?}", started.elapsed());
}

// ----- the seed corpus of fuzz/ ----------------------------------------------------

/// The seed inputs of every cargo-fuzz target, from the transcripts above.
fn seed_inputs() -> BTreeMap<&'static str, Vec<Vec<u8>>> {
    let mut seeds: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    let frames = captured_frames(1);
    let one_each: Vec<&Vec<u8>> = frames.values().map(|list| &list[0]).collect();

    seeds.insert(
        "envelope_decode",
        one_each.iter().map(|f| (*f).clone()).collect(),
    );

    let mut server = Vec::new();
    for frame in &one_each {
        server.push(
            ServerScript::with_setup(0b100)
                .connect()
                .user_hello(0, 1)
                .frame(0, frame)
                .connect()
                .server_hello(1, 1)
                .signed(1, frame)
                .into_bytes(),
        );
    }
    server.push(
        ServerScript::standalone()
            .connect()
            .user_hello(0, 1)
            .connect()
            .user_hello(1, 2)
            .direct(0, 2, b"opaque")
            .close(0)
            .advance(20_000)
            .into_bytes(),
    );
    if let Some(welcome) = frames.get("SERVER_WELCOME") {
        server.push(
            ServerScript::with_setup(2)
                .dial_up(0)
                .signed(0, &welcome[0])
                .advance(5_000)
                .into_bytes(),
        );
    }
    seeds.insert("server_frames", server);

    let (client, _) = client_transcript();
    let mut clients = vec![
        client
            .iter()
            .fold(ClientScript::hello(), |s, f| s.frame(f))
            .into_bytes(),
        ClientScript::hello()
            .advertise(1)
            .deliver(1, b"genuine")
            .send_direct(1, b"hello")
            .request(1)
            .closed()
            .advance(1_000)
            .connected()
            .into_bytes(),
        ClientScript::with_setup(1)
            .frame(b"{}")
            .advance(5_000)
            .into_bytes(),
        client
            .iter()
            .fold(ClientScript::with_setup(0b100).secure_answer(), |s, f| {
                s.sealed(f)
            })
            .send_direct(1, b"sealed")
            .into_bytes(),
    ];
    clients.extend(
        client
            .iter()
            .map(|f| ClientScript::hello().frame(f).into_bytes()),
    );
    seeds.insert("client_frames", clients);

    let mut handshakes: Vec<Vec<u8>> = (0..8)
        .map(|setup| HandshakeScript::with_setup(setup).into_bytes())
        .collect();
    handshakes.push(
        HandshakeScript::with_setup(1)
            .then(&Mutation::Flip(vec![(40, 1)]))
            .into_bytes(),
    );
    handshakes.push(
        HandshakeScript::with_setup(3)
            .then(&Mutation::Keep)
            .then(&Mutation::Truncate(100))
            .then(&Mutation::Replace(vec![1, 3]))
            .into_bytes(),
    );
    handshakes.push(
        HandshakeScript::with_setup(0)
            .then(&Mutation::Keep)
            .then(&Mutation::Keep)
            .then(&Mutation::Append(vec![0]))
            .into_bytes(),
    );
    seeds.insert("handshake", handshakes);

    let sessions = vec![
        session_scenario(),
        SessionScript::new()
            .send(Side::Alice, 1, b"one")
            .send(Side::Bob, 1, b"two")
            .deliver(1)
            .deliver(0)
            .send(Side::Alice, 1, b"three")
            .deliver(2)
            .into_bytes(),
        SessionScript::new()
            .send(Side::Bob, 0, b"first")
            .send(Side::Bob, 0, b"second")
            .deliver(1)
            .mutated(0, &Mutation::Append(vec![0]))
            .deliver(0)
            .deliver(0)
            .into_bytes(),
    ];
    seeds.insert("ratchet", sessions.clone());
    seeds.insert("channel", sessions);

    seeds.insert("upgrade", http_heads());
    seeds
}

fn harness(target: &str) -> fn(&[u8]) -> Result<(), Finding> {
    match target {
        "envelope_decode" => envelope_decode,
        "server_frames" => server_frames,
        "client_frames" => client_frames,
        "handshake" => handshake,
        "ratchet" => ratchet,
        "channel" => channel,
        "upgrade" => upgrade,
        other => panic!("no harness for fuzz target {other}"),
    }
}

/// `SOCP_WRITE_CORPUS=1`: writes `fuzz/corpus/<target>/<sha256 prefix>` for
/// every seed (replacing the directory's files). Otherwise: every checked-in
/// seed of every target runs through its harness without a finding.
#[test]
fn seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let targets = [
        "envelope_decode",
        "server_frames",
        "client_frames",
        "handshake",
        "ratchet",
        "channel",
        "upgrade",
    ];
    if std::env::var_os("SOCP_WRITE_CORPUS").is_some_and(|v| v == "1") {
        let seeds = seed_inputs();
        for target in targets {
            let dir = root.join(target);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap();
            }
            std::fs::create_dir_all(&dir).unwrap();
            for seed in &seeds[target] {
                check(target, harness(target)(seed), seed);
                let name: String = sha256(seed)[..20]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                std::fs::write(dir.join(name), seed).unwrap();
            }
            println!("{target}: {} seeds written", seeds[target].len());
        }
        return;
    }
    let started = WallClock::now();
    for target in targets {
        let dir = root.join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("{}: {e} (write it with SOCP_WRITE_CORPUS=1)", dir.display())
        }) {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            check(target, harness(target)(&data), &data);
            count += 1;
        }
        assert!(count > 0, "no seeds in {}", dir.display());
    }
    println!("checked-in seeds run in {:?}", started.elapsed());
}
