//! Accounts with real clients against real servers in the simulator: register,
//! log in (also from "another machine" with only a user id and a password),
//! and every refusal with its exact error code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;

use socp_core::client::{AuthMode, ClientEvent, FetchStep, UserIdentity};
use socp_core::crypto::{KeystoreParams, fixtures, rng_from_seed};
use socp_core::server::{Action, Connection, LoadRequest, Server, ServerConfig, StoredReply};
use socp_core::sim::Sim;
use socp_core::time::{Instant, Now};
use socp_core::wire::messages::{
    AuthChallenge, AuthHello, AuthResponse, UserHello, login_transcript,
};
use socp_core::wire::{Envelope, ErrorCode, Message, MsgType, b64};

const PASSWORD: &[u8] = b"correct horse battery staple";

/// Two linked servers: (sim, introducer, a).
fn pair(seed: u64) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed);
    let intro = sim.add_server(ServerConfig::default(), 1);
    let cfg = sim.config_joining(&[intro]);
    let a = sim.add_server(cfg, 2);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.server(a).linked_servers().len(), 1);
    (sim, intro, a)
}

fn new_identity(key: usize, seed: u8) -> UserIdentity {
    let mut rng = rng_from_seed([seed; 32]);
    UserIdentity::with_random_id(fixtures::rsa_identity(key), &mut rng)
}

/// A client registering `identity` on server `s`; runs 2 s.
fn register(sim: &mut Sim, s: usize, identity: &UserIdentity, username: Option<&str>) -> usize {
    let mut rng = rng_from_seed([0x5a; 32]);
    let auth = AuthMode::register(
        identity,
        PASSWORD,
        username,
        &KeystoreParams::for_tests(),
        &mut rng,
    )
    .unwrap();
    let cfg = sim.client_config(&[s]);
    let idx = sim.add_client_with(cfg, identity.clone(), auth, 7);
    sim.run_for(Duration::from_secs(2));
    idx
}

/// A client logging in to `identity`'s account on server `s`; runs 2 s.
fn login(sim: &mut Sim, s: usize, identity: &UserIdentity) -> usize {
    let cfg = sim.client_config(&[s]);
    let idx = sim.add_client_with(cfg, identity.clone(), AuthMode::Login, 9);
    sim.run_for(Duration::from_secs(2));
    idx
}

fn close(sim: &mut Sim, idx: usize) {
    sim.client_do(idx, |c, now| c.close(now));
    sim.run_for(Duration::from_secs(1));
}

fn login_failures(sim: &Sim, idx: usize) -> Vec<ErrorCode> {
    sim.client_events(idx)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::LoginFailed { code, .. } => Some(code),
            _ => None,
        })
        .collect()
}

fn logged_in(sim: &Sim, idx: usize) -> usize {
    sim.client_events(idx)
        .iter()
        .filter(|e| {
            matches!(
                e,
                ClientEvent::LoggedIn { .. } | ClientEvent::Registered { .. }
            )
        })
        .count()
}

/// The last AUTH_CHALLENGE scripted user `u` received.
fn last_challenge(sim: &Sim, u: usize) -> AuthChallenge {
    let env = sim
        .user(u)
        .received(&MsgType::AuthChallenge)
        .last()
        .expect("no AUTH_CHALLENGE");
    match env.message().unwrap() {
        Message::AuthChallenge(ch) => ch,
        other => panic!("{other:?}"),
    }
}

fn auth_hello(user_id: &str, ts: u64) -> Vec<u8> {
    let hello = AuthHello {
        user_id: Some(user_id.to_owned()),
        username: None,
    };
    Envelope::new(user_id, "server", ts, hello).encode()
}

/// An AUTH_RESPONSE to `ch` signed with fixture key `key`.
fn response(ch: &AuthChallenge, key: usize, ts: u64) -> Vec<u8> {
    let mut rng = rng_from_seed([3; 32]);
    let transcript = login_transcript(&ch.purpose, &ch.server_id, &ch.user_id, &ch.nonce);
    let sig = fixtures::rsa_identity_ref(key)
        .sign_pss(&mut rng, &transcript)
        .unwrap();
    let resp = AuthResponse {
        user_id: ch.user_id.clone(),
        nonce: ch.nonce.clone(),
        sig: b64::encode(&sig),
    };
    Envelope::new(ch.user_id.clone(), "server", ts, resp).encode()
}

#[test]
fn register_then_log_in_and_chat() {
    let (mut sim, intro, a) = pair(1);
    let alice = new_identity(4, 1);
    let c = register(&mut sim, a, &alice, Some("alice"));
    assert!(sim.client_events(c).contains(&ClientEvent::Registered {
        user_id: alice.user_id.clone(),
        username: Some("alice".into()),
    }));
    assert!(sim.client(c).is_connected());
    let stored = &sim.stored(a).accounts;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].user_id, alice.user_id);
    assert_eq!(stored[0].username.as_deref(), Some("alice"));
    assert!(!stored[0].privkey_store.contains("horse"));
    assert_ne!(stored[0].verifier.as_bytes(), PASSWORD);
    close(&mut sim, c);

    // Log in again (the account lives on its home server, a).
    let c2 = login(&mut sim, a, &alice);
    assert!(sim.client_events(c2).contains(&ClientEvent::LoggedIn {
        user_id: alice.user_id.clone(),
    }));
    // A plain user on the other server sees her and can message her.
    let bob = sim.add_client(sim.client_config(&[intro]), 5, 5);
    sim.run_for(Duration::from_secs(2));
    assert!(sim.client(bob).online_users().contains(&alice.user_id));
    sim.client_do(bob, |cl, now| {
        cl.send_direct(now, &alice.user_id, "hi alice")
    });
    sim.run_for(Duration::from_secs(2));
    assert!(
        sim.client_events(c2)
            .iter()
            .any(|e| matches!(e, ClientEvent::Message { text, .. } if text == "hi alice"))
    );

    // Accounts are per home server: the other server does not know her.
    let c3 = login(&mut sim, intro, &alice);
    assert_eq!(login_failures(&sim, c3), [ErrorCode::UserNotFound]);

    // The account survives a restart of its server.
    sim.client_do(c2, |cl, now| cl.close(now));
    sim.crash_server(a);
    sim.restart_server(a);
    sim.run_for(Duration::from_secs(3));
    let c4 = login(&mut sim, a, &alice);
    assert_eq!(logged_in(&sim, c4), 1);
}

#[test]
fn log_in_from_another_machine_with_only_id_and_password() {
    let (mut sim, _intro, a) = pair(2);
    let alice = new_identity(4, 2);
    let c = register(&mut sim, a, &alice, Some("alice"));
    close(&mut sim, c);

    for who in [alice.user_id.as_str(), "alice"] {
        let FetchStep::Done(identity) = sim.fetch_keystore(a, who, PASSWORD) else {
            panic!("fetch by {who} failed");
        };
        assert_eq!(identity.user_id, alice.user_id);
        assert_eq!(
            identity.rsa.public().to_wire(),
            alice.rsa.public().to_wire()
        );
        let c2 = login(&mut sim, a, &identity);
        assert_eq!(logged_in(&sim, c2), 1);
        assert!(sim.server(a).local_users().contains(&alice.user_id));
        close(&mut sim, c2);
    }
    // In one step.
    let cfg = sim.client_config(&[a]);
    let c3 = sim
        .add_client_from_password(cfg, a, "alice", PASSWORD, 3)
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(logged_in(&sim, c3), 1);
    assert_eq!(sim.client(c3).user_id(), alice.user_id);
    let cfg = sim.client_config(&[a]);
    match sim.add_client_from_password(cfg, a, "alice", b"nope", 4) {
        Err(FetchStep::Refused { code, .. }) => assert_eq!(code, ErrorCode::InvalidSig),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_password_is_refused_and_changes_nothing() {
    let (mut sim, _intro, a) = pair(3);
    let alice = new_identity(4, 3);
    let c = register(&mut sim, a, &alice, None);
    close(&mut sim, c);
    let before = sim.stored(a).clone();
    match sim.fetch_keystore(a, &alice.user_id, b"wrong password") {
        FetchStep::Refused { code, detail } => {
            assert_eq!(code, ErrorCode::InvalidSig);
            assert!(detail.contains("wrong password"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.stored(a).accounts, before.accounts);
    match sim.fetch_keystore(a, "nobody", PASSWORD) {
        FetchStep::Refused { code, .. } => assert_eq!(code, ErrorCode::UserNotFound),
        other => panic!("{other:?}"),
    }
    // The right password still works.
    assert!(matches!(
        sim.fetch_keystore(a, &alice.user_id, PASSWORD),
        FetchStep::Done(_)
    ));
}

#[test]
fn another_key_claiming_the_id_is_invalid_sig() {
    let (mut sim, _intro, a) = pair(4);
    let alice = new_identity(4, 4);
    let c = register(&mut sim, a, &alice, None);
    close(&mut sim, c);
    let mallory = UserIdentity::new(alice.user_id.clone(), fixtures::rsa_identity(6));
    let m = login(&mut sim, a, &mallory);
    assert_eq!(login_failures(&sim, m), [ErrorCode::InvalidSig]);
    assert!(!sim.server(a).local_users().contains(&alice.user_id));
    assert!(!sim.client(m).is_connected());
    // And no reconnect follows a refused login.
    sim.run_for(Duration::from_secs(10));
    assert_eq!(login_failures(&sim, m), [ErrorCode::InvalidSig]);
}

#[test]
fn a_replayed_auth_response_is_refused() {
    let (mut sim, _intro, a) = pair(5);
    let alice = new_identity(4, 5);
    let c = register(&mut sim, a, &alice, None);
    close(&mut sim, c);

    // A genuine scripted login; its AUTH_RESPONSE is captured.
    let u = sim.add_user(4);
    sim.connect_user_raw(u, a);
    sim.user_send(u, auth_hello(&alice.user_id, sim.now().unix_ms));
    sim.run_for(Duration::from_millis(500));
    let ch = last_challenge(&sim, u);
    assert_eq!(ch.purpose, "login");
    let captured = response(&ch, 4, sim.now().unix_ms);
    sim.user_send(u, captured.clone());
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.user(u).received(&MsgType::AuthOk).count(), 1);
    sim.disconnect_user(u);
    sim.run_for(Duration::from_millis(500));

    // Re-sent on a new link, bare: no challenge there.
    let e1 = sim.add_user(9);
    sim.connect_user_raw(e1, a);
    sim.user_send(e1, captured.clone());
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.user(e1).error_codes(), ["FORBIDDEN"]);
    // Re-sent after asking for a challenge of its own: the nonce differs.
    let e2 = sim.add_user(9);
    sim.connect_user_raw(e2, a);
    sim.user_send(e2, auth_hello(&alice.user_id, sim.now().unix_ms));
    sim.run_for(Duration::from_millis(500));
    assert_ne!(last_challenge(&sim, e2).nonce, ch.nonce);
    sim.user_send(e2, captured);
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.user(e2).error_codes(), ["FORBIDDEN"]);
    assert!(!sim.server(a).local_users().contains(&alice.user_id));
}

#[test]
fn an_expired_challenge_is_refused() {
    let (mut sim, _intro, a) = pair(6);
    let alice = new_identity(4, 6);
    let c = register(&mut sim, a, &alice, None);
    close(&mut sim, c);
    let u = sim.add_user(4);
    sim.connect_user_raw(u, a);
    sim.user_send(u, auth_hello(&alice.user_id, sim.now().unix_ms));
    sim.run_for(Duration::from_millis(500));
    let ch = last_challenge(&sim, u);
    sim.run_for(Duration::from_secs(31));
    sim.user_send(u, response(&ch, 4, sim.now().unix_ms));
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.user(u).error_codes(), ["FORBIDDEN"]);
    assert!(!sim.server(a).local_users().contains(&alice.user_id));
}

#[test]
fn taken_usernames_and_ids_are_name_in_use() {
    let (mut sim, _intro, a) = pair(7);
    let alice = new_identity(4, 7);
    let c = register(&mut sim, a, &alice, Some("alice"));
    assert_eq!(logged_in(&sim, c), 1);
    // Another user, the same name (case-insensitively).
    let bob = new_identity(5, 8);
    let b = register(&mut sim, a, &bob, Some("Alice"));
    assert_eq!(login_failures(&sim, b), [ErrorCode::NameInUse]);
    // The same id again, with another key.
    close(&mut sim, c);
    let thief = UserIdentity::new(alice.user_id.clone(), fixtures::rsa_identity(6));
    let again = register(&mut sim, a, &thief, Some("alice2"));
    assert_eq!(login_failures(&sim, again), [ErrorCode::NameInUse]);
    assert_eq!(sim.stored(a).accounts.len(), 1);
    // With the same key it is a retried registration: logged in, account unchanged.
    let before = sim.stored(a).accounts.clone();
    let retry = register(&mut sim, a, &alice, Some("alice3"));
    assert!(login_failures(&sim, retry).is_empty());
    assert_eq!(logged_in(&sim, retry), 1);
    assert_eq!(sim.stored(a).accounts, before);
}

#[test]
fn user_hello_for_a_registered_id_is_forbidden() {
    let (mut sim, _intro, a) = pair(8);
    let alice = new_identity(4, 9);
    let c = register(&mut sim, a, &alice, None);
    close(&mut sim, c);
    // Even with the right key: a registered id logs in.
    let u = sim.add_user(4);
    sim.connect_user_raw(u, a);
    let hello = UserHello {
        client: None,
        pubkey: alice.rsa.public().to_wire(),
        enc_pubkey: None,
        caps: Vec::new(),
    };
    let frame = Envelope::new(alice.user_id.clone(), "server", sim.now().unix_ms, hello).encode();
    sim.user_send(u, frame);
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.user(u).error_codes(), ["FORBIDDEN"]);
    assert!(!sim.server(a).local_users().contains(&alice.user_id));
    // Unregistered ids keep plain USER_HELLO.
    let plain = sim.add_client(sim.client_config(&[a]), 5, 5);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.client(plain).is_connected());
}

#[test]
fn reconnect_logs_in_again_with_a_fresh_nonce() {
    let (mut sim, _intro, a) = pair(9);
    let alice = new_identity(4, 10);
    let c = register(&mut sim, a, &alice, None);
    assert_eq!(logged_in(&sim, c), 1);
    sim.disconnect_user(c);
    sim.run_for(Duration::from_secs(5));
    assert!(sim.client(c).is_connected());
    let events = sim.client_events(c);
    assert!(events.contains(&ClientEvent::LoggedIn {
        user_id: alice.user_id.clone(),
    }));
    let nonces: Vec<String> = sim
        .user(c)
        .received(&MsgType::AuthChallenge)
        .map(|e| e.payload["nonce"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(nonces.len(), 2);
    assert_ne!(nonces[0], nonces[1]);
    assert!(sim.server(a).local_users().contains(&alice.user_id));
}

#[test]
fn accounts_are_loaded_through_the_store() {
    let (mut sim, _intro, a) = pair(10);
    let alice = new_identity(4, 11);
    let c = register(&mut sim, a, &alice, Some("alice"));
    close(&mut sim, c);
    let stored = sim.stored(a).clone();
    let record = stored.accounts[0].clone();

    // A standalone server restarted from that state keeps only the index.
    let now = Now::new(Instant::ZERO, 1_700_000_000_000);
    let mut server = Server::new(
        ServerConfig::default(),
        fixtures::rsa_identity(2),
        [1; 32],
        stored,
        now,
    );
    while server.poll_action().is_some() {}
    let link = server.handle_connected(now, Connection::Inbound { remote: "x".into() });
    let hello = AuthHello {
        user_id: None,
        username: Some("ALICE".into()),
    };
    server.handle_frame(
        now,
        link,
        &Envelope::new("", "server", now.unix_ms, hello).encode(),
    );
    let load = std::iter::from_fn(|| server.poll_action())
        .find(|a| matches!(a, Action::Load(_)))
        .expect("no load");
    assert_eq!(
        load,
        Action::Load(LoadRequest::Account {
            link,
            user_id: alice.user_id.clone(),
        })
    );
    assert!(
        server.poll_transmit().is_none(),
        "no challenge before the load"
    );
    server.handle_stored(
        now,
        StoredReply::Account {
            link,
            record: Some(record),
        },
    );
    let tx = server.poll_transmit().expect("challenge");
    let env = Envelope::decode(&tx.frame, &socp_core::wire::Limits::default()).unwrap();
    assert_eq!(env.msg_type, MsgType::AuthChallenge);

    // A record that vanished meanwhile: USER_NOT_FOUND.
    let link2 = server.handle_connected(now, Connection::Inbound { remote: "y".into() });
    server.handle_frame(now, link2, &auth_hello(&alice.user_id, now.unix_ms));
    server.handle_stored(
        now,
        StoredReply::Account {
            link: link2,
            record: None,
        },
    );
    let tx = server.poll_transmit().expect("error");
    let env = Envelope::decode(&tx.frame, &socp_core::wire::Limits::default()).unwrap();
    assert_eq!(env.payload["code"], "USER_NOT_FOUND");
}

#[test]
fn a_login_while_still_connected_retries_until_the_old_link_is_gone() {
    let (mut sim, _intro, a) = pair(11);
    let alice = new_identity(4, 12);
    let first = register(&mut sim, a, &alice, None);
    assert_eq!(logged_in(&sim, first), 1);
    // The same account from a second client while the first is connected.
    let second = login(&mut sim, a, &alice);
    let failures = login_failures(&sim, second);
    assert!(!failures.is_empty() && failures.len() <= 3, "{failures:?}");
    assert!(failures.iter().all(|c| *c == ErrorCode::NameInUse));
    assert_eq!(logged_in(&sim, second), 0);
    close(&mut sim, first);
    sim.run_for(Duration::from_secs(40));
    assert_eq!(logged_in(&sim, second), 1);
    assert!(sim.client(second).is_connected());
}

#[test]
fn password_guessing_is_throttled_per_account_but_key_logins_are_not() {
    let (mut sim, _intro, a) = pair(12);
    let alice = new_identity(4, 12);
    let c = register(&mut sim, a, &alice, Some("alice"));
    close(&mut sim, c);
    // Five wrong passwords (each from a fresh link and address, as a botnet would).
    for i in 0..5 {
        let guess = format!("guess {i}");
        match sim.fetch_keystore(a, "alice", guess.as_bytes()) {
            FetchStep::Refused { code, .. } => assert_eq!(code, ErrorCode::InvalidSig),
            other => panic!("{other:?}"),
        }
    }
    // The sixth fetch is refused before its proof is even checked, right
    // password or not.
    match sim.fetch_keystore(a, "alice", PASSWORD) {
        FetchStep::Refused { code, detail } => {
            assert_eq!(code, ErrorCode::RateLimited);
            assert!(detail.contains("retry in"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Alice's own machine, holding the keystore, still logs in with the key.
    let c = login(&mut sim, a, &alice);
    assert_eq!(logged_in(&sim, c), 1);
    close(&mut sim, c);
    // One failure is forgiven per minute: the right password works again.
    sim.run_for(Duration::from_secs(61));
    assert!(matches!(
        sim.fetch_keystore(a, "alice", PASSWORD),
        FetchStep::Done(_)
    ));
}

#[test]
fn failed_logins_are_throttled_per_address() {
    let now = Now::new(Instant::ZERO, 1_700_000_000_000);
    let mut server = Server::new(
        ServerConfig::default(),
        fixtures::rsa_identity(2),
        [1; 32],
        socp_core::server::StoredState::default(),
        now,
    );
    while server.poll_action().is_some() {}
    let ghost = "9f1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    let last_code = |server: &mut Server, remote: &str| {
        let link = server.handle_connected(
            now,
            Connection::Inbound {
                remote: remote.into(),
            },
        );
        server.handle_frame(now, link, &auth_hello(ghost, now.unix_ms));
        let mut code = None;
        while let Some(tx) = server.poll_transmit() {
            let env = Envelope::decode(&tx.frame, &socp_core::wire::Limits::default()).unwrap();
            code = env.payload["code"].as_str().map(str::to_owned);
        }
        code
    };
    // Unknown accounts from one address, each on a new port: 20 are answered.
    for port in 0..20 {
        assert_eq!(
            last_code(&mut server, &format!("203.0.113.7:{}", 40_000 + port)).as_deref(),
            Some("USER_NOT_FOUND")
        );
    }
    assert_eq!(
        last_code(&mut server, "203.0.113.7:41000").as_deref(),
        Some("RATE_LIMITED")
    );
    // Another address is unaffected.
    assert_eq!(
        last_code(&mut server, "198.51.100.2:41000").as_deref(),
        Some("USER_NOT_FOUND")
    );
}
