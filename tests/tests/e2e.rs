//! The end-to-end suite over real sockets: an introducer and three servers
//! on 127.0.0.1 (ports from the OS), four users driven through the real client
//! API, SQLite databases in a temporary directory.
//!
//! Every scenario is one `async fn` taking a [`Mix`]; the `suite!` macro at
//! the end runs each of them three times: all on tokio (`tokio_rt::`), all on
//! smol (`smol_rt::`), and mixed (`mixed::`: introducer on tokio, servers and
//! clients alternating smol and tokio).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use socp_core::client::{ClientEvent, MessageStatus, SendFailure, sha256_hex};
use socp_tests::{DEAD, HEARTBEAT, Mix, Net, Runtime};
use socp_tokio::ClientUpdate;

/// Users on three servers: DMs across servers, /list, public messages,
/// USER_NOT_FOUND and NAME_IN_USE, then a 1 MiB file.
async fn four_users_on_three_servers(mix: Mix) {
    let net = Net::start("four", 3, mix).await;
    let dir = net.dir.path().to_owned();
    let mut alice = net.register(1, "alice", 5).await;
    let mut bob = net.register(2, "bob", 6).await;
    let mut carol = net.register(3, "carol", 7).await;
    let dave = net.register(3, "dave", 8).await;
    let everyone = [&*alice.id, &*bob.id, &*carol.id, &*dave.id];
    for s in 0..4 {
        net.wait_roster(s, &everyone).await;
    }
    // socp servers link with the secure profile (whatever runtime each runs
    // on), and so do socp clients with their servers.
    for s in 0..4 {
        net.wait_secure_links(s, 3).await;
    }
    for user in [&alice, &bob, &carol, &dave] {
        user.wait_secure_link().await;
    }

    // /list: every user, on every server.
    let mut listed = alice.list().await;
    listed.retain(|u| u != &alice.id);
    let mut want = vec![bob.id.clone(), carol.id.clone(), dave.id.clone()];
    want.sort();
    listed.sort();
    assert_eq!(listed, want);

    // DMs across servers, short and multi-part, both ways.
    alice.send_dm(&bob.id, "hello bob, from server 1").await;
    assert_eq!(
        bob.expect_message("hello bob, from server 1", false).await,
        (alice.id.clone(), MessageStatus::Verified)
    );
    let long = "Ünïcödé and a long text, split on character boundaries. ".repeat(30);
    bob.send_dm(&carol.id, &long).await;
    assert_eq!(
        carol.expect_message(&long, false).await,
        (bob.id.clone(), MessageStatus::Verified)
    );
    carol.send_dm(&alice.id, "back to 1").await;
    assert_eq!(
        alice.expect_message("back to 1", false).await.1,
        MessageStatus::Verified
    );

    // Public: each other member sees it exactly once.
    dave.send_public("hello, everyone").await;
    for user in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(
            user.expect_message("hello, everyone", true).await,
            (dave.id.clone(), MessageStatus::Verified)
        );
    }

    // USER_NOT_FOUND: a DM to nobody fails, and says so.
    let ghost = "9f1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    let msg = alice.send_dm(ghost, "anyone?").await;
    let failed = alice
        .wait_for("send failure", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::SendFailed { msg_id, .. }) if *msg_id == msg)
        })
        .await;
    assert!(matches!(
        failed,
        ClientUpdate::Event(ClientEvent::SendFailed {
            reason: SendFailure::UserNotFound,
            ..
        })
    ));

    // NAME_IN_USE: a second account named bob on bob's server is refused
    // (usernames are unique per home server, where accounts live); bob is
    // unaffected.
    let clash = tokio::spawn({
        let (dir, url, runtime) = (dir.clone(), net.url(2), mix.client(9));
        async move { register_expect_failure(runtime, &dir, &url, "bob", 9).await }
    });
    assert_eq!(clash.await.unwrap(), "NAME_IN_USE");
    alice.send_dm(&bob.id, "still there?").await;
    bob.expect_message("still there?", false).await;

    // A 1 MiB file across two servers, checked by SHA-256.
    let mut content = vec![0u8; 1024 * 1024];
    for (i, b) in content.iter_mut().enumerate() {
        *b = u8::try_from((i * 7 + i / 4096) % 251).unwrap();
    }
    let expected = sha256_hex(&content);
    alice.send_file(&bob.id, "big.bin", content).await;
    let saved = bob
        .wait_for("the file", |u| {
            matches!(
                u,
                ClientUpdate::FileSaved { .. }
                    | ClientUpdate::FileSaveFailed { .. }
                    | ClientUpdate::Event(ClientEvent::FileFailed { .. })
            )
        })
        .await;
    let ClientUpdate::FileSaved { path, .. } = saved else {
        panic!("file not saved: {saved:?}");
    };
    assert!(path.starts_with(&bob.downloads));
    assert_eq!(sha256_hex(&std::fs::read(&path).unwrap()), expected);

    for user in [alice, bob, carol, dave] {
        user.close().await;
    }
    net.shutdown().await;
}

async fn register_expect_failure(
    runtime: Runtime,
    dir: &std::path::Path,
    url: &str,
    name: &str,
    key: usize,
) -> String {
    use socp_core::client::UserIdentity;
    use socp_core::crypto::{KeystoreParams, fixtures, rng_from_seed};
    let mut rng = rng_from_seed([0x77; 32]);
    let identity = UserIdentity::with_random_id(fixtures::rsa_identity(key), &mut rng);
    let mut handle = socp_apps::runtime::spawn_registration(
        url,
        identity,
        b"another password",
        Some(name),
        &KeystoreParams::for_tests(),
        socp_tokio::ClientOptions::new(dir.join("clash")),
        runtime.clock(),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + socp_tests::WAIT;
    loop {
        match tokio::time::timeout_at(deadline, handle.next()).await {
            Ok(Some(ClientUpdate::Event(ClientEvent::LoginFailed { code, .. }))) => {
                return code.as_str().to_owned();
            }
            Ok(Some(ClientUpdate::Event(ClientEvent::Registered { .. }))) => {
                panic!("a second {name} was registered")
            }
            Ok(Some(_)) => {}
            other => panic!("no answer to the clashing registration: {other:?}"),
        }
    }
}

/// A server that dies takes its users off every other server's roster within
/// the dead timeout (plus a heartbeat and scheduling slack); the others keep
/// chatting.
async fn a_killed_server_loses_its_users_everywhere(mix: Mix) {
    let mut net = Net::start("kill", 3, mix).await;
    let mut alice = net.register(1, "alice", 5).await;
    let mut bob = net.register(2, "bob", 6).await;
    let carol = net.register(3, "carol", 7).await;
    let all = [&*alice.id, &*bob.id, &*carol.id];
    for s in 0..4 {
        net.wait_roster(s, &all).await;
    }
    let killed_at = tokio::time::Instant::now();
    net.kill(3);
    for s in 0..3 {
        net.wait_roster(s, &[&alice.id, &bob.id]).await;
    }
    let took = killed_at.elapsed();
    // Not a timing assertion on the machine, a bound on the protocol: far
    // beyond it something is wrong (wait_roster itself allows a minute).
    assert!(
        took < DEAD * 5 + HEARTBEAT * 4,
        "carol stayed listed for {took:?}"
    );
    alice
        .wait_for("carol offline", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::UserOffline { user_id }) if *user_id == carol.id)
        })
        .await;
    alice.send_dm(&bob.id, "after the crash").await;
    bob.expect_message("after the crash", false).await;
    drop(carol);
    alice.close().await;
    bob.close().await;
    net.shutdown().await;
}

/// A restarted server keeps its registered users (they log in again with
/// their password) and the public channel's version.
async fn a_restarted_server_keeps_accounts_and_the_channel_version(mix: Mix) {
    let mut net = Net::start("restart", 2, mix).await;
    let alice = net.register(1, "alice", 5).await;
    let bob = net.register(2, "bob", 6).await;
    net.wait_roster(1, &[&alice.id, &bob.id]).await;
    let alice_id = alice.id.clone();
    // Two joins bump the version (the second arrives batched from server 2).
    let deadline = tokio::time::Instant::now() + socp_tests::WAIT;
    let version = loop {
        let (version, members) = net.inspect(1, |s| s.public_channel()).await;
        if version >= 2 && members >= 2 {
            break version;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "version stuck at {version}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let server_id = net.server_id(1);
    alice.close().await;
    net.slots[1].node.take().unwrap().handle.shutdown().await;
    net.boot(1).await;
    net.wait_mesh().await;
    assert_eq!(net.server_id(1), server_id, "same id after a restart");
    let (after, _) = net.inspect(1, |s| s.public_channel()).await;
    assert!(after >= version, "version went back: {version} -> {after}");
    // Alice logs in from her password alone: the account came back from SQLite.
    let mut alice = net.login(1, "alice", mix.client(5)).await;
    assert_eq!(alice.id, alice_id);
    bob.send_dm(&alice.id, "welcome back").await;
    alice.expect_message("welcome back", false).await;
    alice.settle(Duration::from_millis(200)).await;
    assert_eq!(alice.count_messages("welcome back"), 1);
    alice.close().await;
    bob.close().await;
    net.shutdown().await;
}

/// Runs each scenario under each [`Mix`], as its own test.
macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod tokio_rt {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(Mix::All(Runtime::Tokio)).await;
                }
            )*
        }
        mod smol_rt {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(Mix::All(Runtime::Smol)).await;
                }
            )*
        }
        mod mixed {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(Mix::Mixed).await;
                }
            )*
        }
    };
}

suite!(
    four_users_on_three_servers,
    a_killed_server_loses_its_users_everywhere,
    a_restarted_server_keeps_accounts_and_the_channel_version,
);
