//! The fuzz harnesses of `socp_core::fuzzing`, run over seeded pseudo-random
//! inputs and over truncated and mutated frames captured from a simulator run,
//! so that they (and the server under them) are exercised by every `cargo test`.
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
use socp_core::crypto::rng_from_seed;
use socp_core::fuzzing::{ServerScript, envelope_decode, server_frames};
use socp_core::server::ServerConfig;
use socp_core::sim::{Sim, Verdict};
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
    let intro = sim.add_server(ServerConfig::default(), 1);
    let cfg = sim.config_joining(&[intro]);
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
    for list in captured_frames(4).values() {
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
