//! Secure server links in the simulator (`server::secure`): they come up
//! between socp servers, carry the mesh, stay plain towards servers that do
//! not offer them, and refuse every way of downgrading or injecting into
//! them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::rc::Rc;

use core::time::Duration;
use serde_json::Value;
use socp_core::server::{Event, SECURE_CAP, ServerConfig};
use socp_core::sim::{Endpoint, InFlight, Sim, Verdict};
use socp_core::wire::{Envelope, Limits, MsgType};

/// An introducer and two servers; `secure[i]` says whether server i offers
/// the profile.
fn mesh(seed: u64, secure: [bool; 3]) -> (Sim, [usize; 3]) {
    let mut sim = Sim::new(seed);
    let mut cfg0 = ServerConfig::default();
    cfg0.secure_links = secure[0];
    let intro = sim.add_server(cfg0, 1);
    let mut cfg = sim.config_joining(&[intro]);
    cfg.secure_links = secure[1];
    let a = sim.add_server(cfg.clone(), 2);
    sim.run_for(Duration::from_secs(2));
    cfg.secure_links = secure[2];
    let b = sim.add_server(cfg, 3);
    sim.run_for(Duration::from_secs(3));
    (sim, [intro, a, b])
}

fn secure_links_up(sim: &Sim, server: usize) -> Vec<String> {
    let mut ids: Vec<String> = sim
        .events()
        .iter()
        .filter(|(_, s, _)| *s == server)
        .filter_map(|(_, _, e)| match e {
            Event::SecureLinkUp { server_id } => Some(server_id.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn rejections(sim: &Sim, server: usize) -> Vec<String> {
    sim.events()
        .iter()
        .filter(|(_, s, _)| *s == server)
        .filter_map(|(_, _, e)| match e {
            Event::Rejected { detail, .. } => Some(detail.clone()),
            _ => None,
        })
        .collect()
}

/// Records, from now on, the type of every frame between two servers
/// (`between_servers`) or between a client and a server (otherwise).
fn watch_types(sim: &mut Sim, between_servers: bool) -> Rc<RefCell<Vec<MsgType>>> {
    let seen: Rc<RefCell<Vec<MsgType>>> = Rc::default();
    let sink = Rc::clone(&seen);
    sim.set_hook(Box::new(move |f: &mut InFlight| {
        let server_server = matches!(
            (f.from, f.to),
            (Endpoint::Server { .. }, Endpoint::Server { .. })
        );
        if server_server == between_servers
            && let Ok(env) = Envelope::decode(&f.frame, &Limits::default())
        {
            sink.borrow_mut().push(env.msg_type);
        }
        Verdict::Deliver
    }));
    seen
}

/// Whether user `u` (a scripted user) received a USER_DELIVER.
fn got_dm(sim: &Sim, u: usize) -> bool {
    sim.user(u)
        .inbox
        .iter()
        .any(|env| env.msg_type == MsgType::UserDeliver)
}

#[test]
fn socp_servers_link_securely_and_carry_the_mesh_sealed() {
    let (mut sim, [intro, a, b]) = mesh(1, [true; 3]);
    for s in [intro, a, b] {
        assert_eq!(sim.server(s).linked_servers().len(), 2, "server {s}");
        assert_eq!(secure_links_up(&sim, s).len(), 2, "server {s}");
        assert!(rejections(&sim, s).is_empty(), "{:?}", rejections(&sim, s));
    }
    // From now on every server-to-server frame is sealed.
    let types = watch_types(&mut sim, true);
    let alice = sim.add_user(4);
    let bob = sim.add_user(5);
    sim.connect_user(alice, a);
    sim.connect_user(bob, b);
    sim.run_for(Duration::from_secs(2));
    sim.send_dm(alice, bob);
    sim.send_public(bob);
    sim.run_for(Duration::from_secs(20)); // heartbeats too
    let types = types.borrow();
    assert!(types.len() > 10, "{types:?}");
    assert!(
        types.iter().all(|t| *t == MsgType::Secure),
        "plain frames between secure servers: {types:?}"
    );
    // The DM crossed the secure link and reached bob.
    assert!(got_dm(&sim, bob), "bob got no DM");
}

#[test]
fn a_server_without_the_profile_keeps_plain_links() {
    let (mut sim, [intro, a, b]) = mesh(2, [true, true, false]);
    assert_eq!(secure_links_up(&sim, intro).len(), 1);
    assert_eq!(secure_links_up(&sim, a).len(), 1);
    assert!(secure_links_up(&sim, b).is_empty());
    for s in [intro, a, b] {
        assert_eq!(sim.server(s).linked_servers().len(), 2);
    }
    let alice = sim.add_user(4);
    let bob = sim.add_user(5);
    sim.connect_user(alice, a);
    sim.connect_user(bob, b);
    sim.run_for(Duration::from_secs(2));
    let before = sim.user(bob).inbox.len();
    sim.send_dm(alice, bob);
    sim.run_for(Duration::from_secs(2));
    assert!(
        sim.user(bob).inbox[before..]
            .iter()
            .any(|env| env.msg_type == MsgType::UserDeliver),
        "a DM over a plain link to the legacy server did not arrive"
    );
}

/// Dropping M1 (so that the dialler would carry on in plain SOCP) is seen:
/// the acceptor's signed announce promised the handshake as its next frame.
#[test]
fn removing_the_handshake_is_detected_as_a_downgrade() {
    let mut sim = Sim::new(3);
    let intro = sim.add_server(ServerConfig::default(), 1);
    // A user on the introducer: its advert follows M1 at once.
    let carol = sim.add_user(6);
    sim.connect_user(carol, intro);
    sim.run_for(Duration::from_secs(1));
    sim.set_hook(Box::new(|f: &mut InFlight| {
        let is_m1 = Envelope::decode(&f.frame, &Limits::default()).is_ok_and(|env| {
            env.msg_type == MsgType::SecureHandshake
                && env
                    .payload
                    .get("m")
                    .and_then(Value::as_str)
                    .and_then(|m| socp_core::wire::b64::decode(m).ok())
                    .is_some_and(|m| m.starts_with(&[1, 1])) // version 1, M1
        });
        if is_m1 {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }));
    let cfg = sim.config_joining(&[intro]);
    let a = sim.add_server(cfg, 2);
    sim.run_for(Duration::from_secs(2));
    assert!(
        rejections(&sim, a).iter().any(|d| d.contains("downgrade")),
        "{:?}",
        rejections(&sim, a)
    );
    assert!(secure_links_up(&sim, a).is_empty());
    // Without a frame after the missing M1, the handshake deadline catches it.
    let mut quiet = Sim::new(3);
    let intro = quiet.add_server(ServerConfig::default(), 1);
    quiet.set_hook(Box::new(|f: &mut InFlight| {
        let is_handshake = Envelope::decode(&f.frame, &Limits::default())
            .is_ok_and(|env| env.msg_type == MsgType::SecureHandshake);
        if is_handshake {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }));
    let cfg = quiet.config_joining(&[intro]);
    let a = quiet.add_server(cfg, 2);
    quiet.run_for(Duration::from_secs(12));
    assert!(
        rejections(&quiet, a)
            .iter()
            .chain(rejections(&quiet, intro).iter())
            .any(|d| d.contains("did not complete in time") || d.contains("downgrade")),
        "{:?} {:?}",
        rejections(&quiet, a),
        rejections(&quiet, intro)
    );
}

/// The offer sits inside the RSA-signed hello payload: removing `caps`
/// breaks the signature, so the link is refused rather than downgraded.
#[test]
fn stripping_caps_from_a_hello_breaks_its_signature() {
    let mut sim = Sim::new(4);
    let intro = sim.add_server(ServerConfig::default(), 1);
    sim.set_hook(Box::new(|f: &mut InFlight| {
        if let Ok(mut env) = Envelope::decode(&f.frame, &Limits::default())
            && env.msg_type == MsgType::ServerHelloJoin
        {
            env.payload.remove("caps");
            env.payload.remove("ed25519");
            env.payload.remove("ed25519_binding");
            f.frame = env.encode();
        }
        Verdict::Deliver
    }));
    let cfg = sim.config_joining(&[intro]);
    let a = sim.add_server(cfg, 2);
    sim.run_for(Duration::from_secs(2));
    assert!(secure_links_up(&sim, intro).is_empty());
    assert!(sim.server(intro).linked_servers().is_empty());
    assert!(
        !rejections(&sim, intro).is_empty(),
        "the stripped hello was accepted"
    );
    let _ = a;
}

/// A validly signed plain frame injected into an established secure link
/// is refused, and the link is closed (then re-established).
#[test]
fn a_plain_frame_on_a_secure_link_is_refused() {
    let (mut sim, [_, a, b]) = mesh(5, [true; 3]);
    // Capture one plain, signed frame from b to a (its hello, as a
    // well-signed example) by restarting the mesh view: take b's announce.
    let captured: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let inject: Rc<RefCell<bool>> = Rc::new(RefCell::new(true));
    let (c, i) = (Rc::clone(&captured), Rc::clone(&inject));
    sim.set_hook(Box::new(move |f: &mut InFlight| {
        if matches!(f.from, Endpoint::Server { idx, .. } if idx == b)
            && matches!(f.to, Endpoint::Server { idx, .. } if idx == a)
            && *i.borrow()
            && let Some(frame) = c.borrow_mut().take()
        {
            *i.borrow_mut() = false;
            return Verdict::Inject {
                frame,
                after: Duration::from_millis(1),
            };
        }
        Verdict::Deliver
    }));
    // A signed HEARTBEAT in b's name, as b would send on a plain link.
    let heartbeat = {
        let mut env = Envelope::new(
            sim.server(b).id().to_owned(),
            sim.server(a).id().to_owned(),
            sim.now().unix_ms,
            socp_core::wire::Message::Heartbeat(socp_core::wire::messages::Heartbeat {}),
        );
        let sig = socp_core::crypto::fixtures::rsa_identity_ref(3)
            .sign_pss(
                &mut socp_core::crypto::rng_from_seed([1; 32]),
                &env.signing_bytes(),
            )
            .unwrap();
        env.sig = Some(socp_core::wire::b64::encode(&sig));
        env.encode()
    };
    *captured.borrow_mut() = Some(heartbeat);
    sim.run_for(Duration::from_secs(20));
    assert!(
        rejections(&sim, a)
            .iter()
            .any(|d| d.contains("plain frame on a secure link")),
        "{:?}",
        rejections(&sim, a)
    );
    // Dropped, and nothing else: the secure link stays up, not re-made.
    assert_eq!(sim.server(a).linked_servers().len(), 2);
    assert_eq!(
        sim.events()
            .iter()
            .filter(|(_, s, e)| *s == a && matches!(e, Event::SecureLinkUp { .. }))
            .count(),
        2
    );
    assert!(
        !sim.events()
            .iter()
            .any(|(_, s, e)| *s == a && matches!(e, Event::ServerLost { .. }))
    );
}

/// A forged, altered or replayed record is refused and changes nothing:
/// the link stays up and later records still open.
#[test]
fn altered_and_replayed_records_are_refused_and_the_link_carries_on() {
    let (mut sim, [_, a, b]) = mesh(6, [true; 3]);
    let budget = Rc::new(RefCell::new(6u32));
    let left = Rc::clone(&budget);
    sim.set_hook(Box::new(move |f: &mut InFlight| {
        let between = matches!(
            (f.from, f.to),
            (Endpoint::Server { .. }, Endpoint::Server { .. })
        );
        if !between || *left.borrow() == 0 {
            return Verdict::Deliver;
        }
        *left.borrow_mut() -= 1;
        if (*left.borrow()).is_multiple_of(2) {
            return Verdict::Replay(Duration::from_millis(5));
        }
        let mut altered = f.frame.clone();
        let at = altered.len() / 2;
        altered[at] ^= 0x01;
        Verdict::Inject {
            frame: altered,
            after: Duration::from_millis(1),
        }
    }));
    let alice = sim.add_user(4);
    let bob = sim.add_user(5);
    sim.connect_user(alice, a);
    sim.connect_user(bob, b);
    sim.run_for(Duration::from_secs(2));
    sim.send_dm(alice, bob);
    sim.run_for(Duration::from_secs(20));
    assert_eq!(*budget.borrow(), 0, "the hook never fired");
    let refused: Vec<String> = [a, b]
        .iter()
        .flat_map(|s| rejections(&sim, *s))
        .filter(|d| d.contains("sealed frame refused") || d.contains("undecodable"))
        .collect();
    assert!(refused.len() >= 3, "{refused:?}");
    for s in [a, b] {
        assert_eq!(sim.server(s).linked_servers().len(), 2);
        assert!(
            !sim.events()
                .iter()
                .any(|(_, x, e)| *x == s && matches!(e, Event::ServerLost { .. })),
            "a link was lost"
        );
    }
    assert!(got_dm(&sim, bob), "bob got no DM");
}

#[test]
fn the_offer_is_in_the_caps() {
    assert_eq!(SECURE_CAP, "socp-secure-v1");
}

/// socp clients open the secure profile on their link; every frame between
/// client and server is then sealed, DMs cross two secure server links and
/// two secure client links, and still verify end to end.
#[test]
fn socp_clients_link_securely_and_dms_still_verify() {
    use socp_core::client::{ClientEvent, MessageStatus};
    let (mut sim, [_, a, b]) = mesh(7, [true; 3]);
    let cfg = sim.client_config(&[a]);
    let alice = sim.add_client(cfg, 4, 4);
    let cfg = sim.client_config(&[b]);
    let bob = sim.add_client(cfg, 5, 5);
    sim.run_for(Duration::from_secs(3));
    assert!(sim.client(alice).is_link_secure());
    assert!(sim.client(bob).is_link_secure());
    let types = watch_types(&mut sim, false);
    let bob_id = sim.client(bob).user_id().to_owned();
    sim.client_do(alice, |c, now| {
        c.send_direct(now, &bob_id, "sealed all the way")
    });
    sim.run_for(Duration::from_secs(3));
    let got = sim
        .sim_client(bob)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            ClientEvent::Message { text, status, .. } if text == "sealed all the way" => {
                Some(*status)
            }
            _ => None,
        });
    assert_eq!(got, Some(MessageStatus::Verified));
    let types = types.borrow();
    assert!(!types.is_empty());
    assert!(
        types.iter().all(|t| *t == MsgType::Secure),
        "plain frames between socp clients and servers: {types:?}"
    );
}

/// A client that does not offer the profile keeps a plain link.
#[test]
fn a_client_without_the_profile_keeps_a_plain_link() {
    let (mut sim, [_, a, _]) = mesh(8, [true; 3]);
    let mut cfg = sim.client_config(&[a]);
    cfg.secure_link = false;
    let carol = sim.add_client(cfg, 6, 6);
    sim.run_for(Duration::from_secs(3));
    assert!(!sim.client(carol).is_link_secure());
    assert!(sim.client(carol).is_connected());
}

/// A socp client on a server that does not offer the profile: its M1 is
/// refused with UNKNOWN_TYPE, as any SOCP server would; it stays connected
/// on a plain link and shows no error for it.
#[test]
fn a_server_without_the_profile_refuses_the_offer_and_keeps_the_client() {
    use socp_core::client::ClientEvent;
    let (mut sim, [_, a, _]) = mesh(9, [true, false, true]);
    let cfg = sim.client_config(&[a]);
    let dave = sim.add_client(cfg, 7, 7);
    sim.run_for(Duration::from_secs(3));
    assert!(sim.client(dave).is_connected());
    assert!(!sim.client(dave).is_link_secure());
    assert!(
        !sim.sim_client(dave)
            .events
            .iter()
            .any(|(_, e)| matches!(e, ClientEvent::Error { .. })),
        "{:?}",
        sim.sim_client(dave).events
    );
    assert!(
        rejections(&sim, a)
            .iter()
            .any(|d| d.contains("secure profile is off")),
        "{:?}",
        rejections(&sim, a)
    );
}
