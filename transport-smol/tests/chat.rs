//! End to end over real sockets: DMs on one server and across two, accounts
//! with a password login, files into the download folder, shutdown and kill.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{
    WAIT, client, connected, message, new_id, run, sees_online, send_dm, server, server_event,
    server_with, stop, temp_dir, timeout, url, wait_for,
};
use socp_core::client::{
    AuthMode, Client, ClientConfig, ClientEvent, FileTarget, MessageStatus, UserIdentity,
};
use socp_core::crypto::{KeystoreParams, fixtures, rng_from_seed};
use socp_core::server::Event;
use socp_core::wire::ErrorCode;
use socp_smol::{
    ClientOptions, ClientUpdate, Clock, LoginError, WsLimits, fetch_identity, login_with_password,
    random_seed, spawn_client,
};

#[test]
fn two_clients_exchange_dms_on_one_server() {
    common::init_logs();
    // futures-lite's block_on is a bare executor that drives no reactor: the
    // adapter must not need the caller to run smol (async-io's own thread and
    // smol's global executor do the work), as when a tokio app awaits it.
    smol::future::block_on(async {
        let s = server(1).await;
        let dir = temp_dir("dm1");
        let mut alice = client(&url(&s), 4, dir.clone());
        let mut bob = client(&url(&s), 5, dir.clone());
        connected(&mut alice).await;
        connected(&mut bob).await;
        let bob_id = bob.user_id().to_owned();
        let alice_id = alice.user_id().to_owned();
        // "Connected" means our hello is out; a peer is reachable once it is advertised.
        sees_online(&mut alice, &bob_id).await;

        send_dm(&alice, &bob_id, "hello bob, from alice").await;
        let (from, status) = message(&mut bob, "hello bob, from alice").await;
        assert_eq!(from, alice_id);
        assert_eq!(status, MessageStatus::Verified);

        send_dm(&bob, &alice_id, "hi alice ✓").await;
        let (from, _) = message(&mut alice, "hi alice ✓").await;
        assert_eq!(from, bob_id);

        // The server answers `with` from inside its driver.
        let id = s.server_id();
        assert_eq!(s.with(|srv| srv.id().to_owned()).await, Some(id));

        // A graceful shutdown: the clients see the link go, and the port is closed.
        let addr = s.local_addr();
        stop(s).await;
        wait_for(&mut alice, "Disconnected", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::Disconnected { .. })).then_some(())
        })
        .await;
        assert!(smol::net::TcpStream::connect(addr).await.is_err());
        timeout(WAIT, alice.close()).await.unwrap();
        timeout(WAIT, bob.close()).await.unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn a_dm_crosses_two_servers() {
    run(async {
        let s1 = server(1).await;
        let first_id = s1.server_id();
        let s2 = server_with(2, &[&s1], WsLimits::default()).await;
        let dir = temp_dir("dm2");
        let mut alice = client(&url(&s1), 4, dir.clone());
        let mut bob = client(&url(&s2), 5, dir.clone());
        let bob_id = bob.user_id().to_owned();
        let alice_id = alice.user_id().to_owned();
        connected(&mut bob).await;
        // Alice sees Bob once the servers are linked and have gossiped.
        sees_online(&mut alice, &bob_id).await;
        assert_eq!(s1.server_id(), first_id);
        assert_ne!(s2.server_id(), first_id);

        send_dm(&alice, &bob_id, "across the mesh").await;
        let (from, status) = message(&mut bob, "across the mesh").await;
        assert_eq!(from, alice_id);
        assert_eq!(status, MessageStatus::Verified);
        send_dm(&bob, &alice_id, "and back").await;
        message(&mut alice, "and back").await;

        // A crash of Bob's server: Alice's server notices and Bob goes offline.
        let mut events = s1.subscribe();
        s2.kill();
        server_event(
            &mut events,
            "Bob offline after the kill",
            |e| matches!(e, Event::UserOffline { user_id } if *user_id == bob_id),
        )
        .await;
        alice.close().await;
        bob.close().await;
        stop(s1).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}

const PASSWORD: &[u8] = b"correct horse battery staple";

#[test]
fn register_then_log_in_with_only_a_password() {
    run(async {
        let s = server(1).await;
        let dir = temp_dir("login");
        let clock = Clock::new();

        // Register "alice" (an account with a password-sealed keystore).
        let identity = UserIdentity::new(new_id(), fixtures::rsa_identity(6));
        let alice_id = identity.user_id.clone();
        let mut rng = rng_from_seed(random_seed());
        let auth = AuthMode::register(
            &identity,
            PASSWORD,
            Some("alice"),
            &KeystoreParams::for_tests(),
            &mut rng,
        )
        .unwrap();
        let cfg = ClientConfig::new(vec![url(&s)]);
        let registering = Client::with_auth(cfg, identity, auth, random_seed(), clock.now());
        let mut first = spawn_client(registering, ClientOptions::new(dir.clone()), clock);
        wait_for(&mut first, "Registered", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::Registered { .. })).then_some(())
        })
        .await;
        first.close().await;

        // Wrong password, unknown account: refused with the server's code.
        match login_with_password(
            &url(&s),
            "alice",
            b"not the password",
            ClientConfig::new(Vec::new()),
            ClientOptions::new(dir.clone()),
            clock,
        )
        .await
        {
            Err(LoginError::Refused { code, .. }) => assert_eq!(code, ErrorCode::InvalidSig),
            other => panic!("{other:?}"),
        }
        match fetch_identity(&url(&s), "nobody", PASSWORD, &WsLimits::default()).await {
            Err(LoginError::Refused { code, .. }) => assert_eq!(code, ErrorCode::UserNotFound),
            other => panic!("{other:?}"),
        }
        match fetch_identity("ws://127.0.0.1:1/", "alice", PASSWORD, &WsLimits::default()).await {
            Err(LoginError::Connect(_)) => {}
            other => panic!("{other:?}"),
        }

        // From the username and the password only.
        let mut alice = login_with_password(
            &url(&s),
            "alice",
            PASSWORD,
            ClientConfig::new(Vec::new()),
            ClientOptions::new(dir.clone()),
            clock,
        )
        .await
        .unwrap();
        assert_eq!(alice.user_id(), alice_id);
        // The updates of the login are still there.
        wait_for(&mut alice, "LoggedIn", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::LoggedIn { .. })).then_some(())
        })
        .await;

        let mut bob = client(&url(&s), 5, dir.clone());
        sees_online(&mut bob, &alice_id).await;
        send_dm(&bob, &alice_id, "welcome back, alice").await;
        let (from, status) = message(&mut alice, "welcome back, alice").await;
        assert_eq!(from, bob.user_id());
        assert_eq!(status, MessageStatus::Verified);

        alice.close().await;
        bob.close().await;
        stop(s).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn files_land_in_the_download_folder_and_never_escape() {
    run(async {
        let s = server(1).await;
        let base = temp_dir("files");
        let alice_dir = base.join("alice");
        let bob_dir = base.join("bob");
        let mut alice = client(&url(&s), 4, alice_dir);
        let mut bob = client(&url(&s), 5, bob_dir.clone());
        let bob_id = bob.user_id().to_owned();
        sees_online(&mut alice, &bob_id).await;

        let content: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
        for _ in 0..2 {
            let (to, bytes) = (bob_id.clone(), content.clone());
            alice
                .with(move |c, now| {
                    c.send_file(now, FileTarget::User(to), "../../escape.txt", bytes)
                })
                .await
                .unwrap();
        }
        let mut saved = Vec::new();
        for _ in 0..2 {
            let path = wait_for(&mut bob, "FileSaved", |u| match u {
                ClientUpdate::FileSaved { path, .. } => Some(path.clone()),
                ClientUpdate::FileSaveFailed { error, .. } => panic!("save failed: {error}"),
                _ => None,
            })
            .await;
            saved.push(path);
        }
        saved.sort();
        assert_eq!(
            saved,
            [bob_dir.join("escape (1).txt"), bob_dir.join("escape.txt")]
        );
        for path in &saved {
            assert_eq!(std::fs::read(path).unwrap(), content);
            assert_eq!(
                path.canonicalize().unwrap().parent().unwrap(),
                bob_dir.canonicalize().unwrap()
            );
        }
        assert!(!base.join("escape.txt").exists());
        assert!(!base.parent().unwrap().join("escape.txt").exists());

        alice.close().await;
        bob.close().await;
        stop(s).await;
        std::fs::remove_dir_all(base).unwrap();
    });
}

#[test]
fn public_messages_and_a_reconnect_to_the_next_server() {
    run(async {
        let s1 = server(1).await;
        let s2 = server_with(2, &[&s1], WsLimits::default()).await;
        let dir = temp_dir("public");
        // Alice prefers s1 and falls back to s2; Bob is on s2.
        let clock = Clock::new();
        let me = UserIdentity::new(new_id(), fixtures::rsa_identity(4));
        let alice_id = me.user_id.clone();
        let cfg = ClientConfig::new(vec![url(&s1), url(&s2)]);
        let alice = Client::new(cfg, me, random_seed(), clock.now());
        let mut alice = spawn_client(alice, ClientOptions::new(dir.clone()), clock);
        let mut bob = client(&url(&s2), 5, dir.clone());
        let bob_id = bob.user_id().to_owned();
        sees_online(&mut alice, &bob_id).await;
        sees_online(&mut bob, &alice_id).await;

        alice
            .with(|c, now| c.send_public(now, "hello, everyone"))
            .await
            .unwrap();
        let public = wait_for(&mut bob, "a public message", |u| match u {
            ClientUpdate::Event(ClientEvent::Message {
                from, text, public, ..
            }) if text == "hello, everyone" => Some((from.clone(), *public)),
            _ => None,
        })
        .await;
        assert_eq!(public, (alice_id.clone(), true));

        // Alice's server crashes: she reconnects to the next one on her list.
        s1.kill();
        wait_for(&mut alice, "Disconnected", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::Disconnected { .. })).then_some(())
        })
        .await;
        wait_for(&mut alice, "Connected to s2", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::Connected { index: 1 })).then_some(())
        })
        .await;
        wait_for(&mut bob, "Alice offline", |u| match u {
            ClientUpdate::Event(ClientEvent::UserOffline { user_id }) if *user_id == alice_id => {
                Some(())
            }
            _ => None,
        })
        .await;
        sees_online(&mut bob, &alice_id).await;
        send_dm(&bob, &alice_id, "found you on s2").await;
        let (from, status) = message(&mut alice, "found you on s2").await;
        assert_eq!(from, bob_id);
        assert_eq!(status, MessageStatus::Verified);

        alice.close().await;
        bob.close().await;
        stop(s2).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}
