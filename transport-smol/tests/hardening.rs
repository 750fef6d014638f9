//! What hostile or broken peers get: plain HTTP, wrong paths, oversized
//! messages, slow readers, silent connections, too many connections.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::Duration;

use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use socp_core::client::ClientEvent;
use socp_core::crypto::fixtures;
use socp_core::server::Event;
use socp_core::wire::Envelope;
use socp_core::wire::messages::{PubkeyRequest, UserHello};
use socp_smol::{ClientUpdate, WsLimits};

use common::{
    WAIT, client, message, new_id, run, sees_online, send_dm, server_event, server_with, stop,
    temp_dir, timeout, url, wait_for, ws_connect,
};

/// Sends `request` on a raw TCP connection and returns everything the server
/// answers until it closes.
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed")
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// A USER_HELLO frame for a fresh user id with fixture key `key`.
fn hello(user_id: &str, key: usize) -> String {
    let hello = UserHello {
        client: Some("raw-test".into()),
        pubkey: fixtures::rsa_identity_ref(key).public().to_wire(),
        enc_pubkey: None,
        caps: Vec::new(),
    };
    String::from_utf8(Envelope::new(user_id, "server", now_ms(), hello).encode()).unwrap()
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[test]
fn plain_http_gets_a_4xx_and_paths_are_checked() {
    run(async {
        let s = server_with(1, &[], WsLimits::default()).await;
        let addr = s.local_addr();

        let answer = raw_http(addr, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
        assert!(
            answer.contains("connect with a WebSocket client"),
            "{answer}"
        );
        let answer = raw_http(addr, "POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
        let answer = raw_http(addr, &"x".repeat(20_000)).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

        // A WebSocket to another path: 404.
        match ws_connect(&format!("ws://{addr}/nope"), None).await {
            Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 404),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("/nope was upgraded"),
        }
        // `/ws`, with a query string, is the endpoint too, and the server still serves.
        let mut ws = ws_connect(&format!("ws://{addr}/ws?client=test"), None)
            .await
            .unwrap();
        let user = new_id();
        ws.send(Message::text(hello(&user, 4))).await.unwrap();
        let mut online = s.subscribe();
        let dir = temp_dir("http");
        let mut other = client(&format!("ws://{addr}/ws"), 5, dir.clone());
        sees_online(&mut other, &user).await;
        drop(ws);
        server_event(
            &mut online,
            "the raw user offline",
            |e| matches!(e, Event::UserOffline { user_id } if *user_id == user),
        )
        .await;
        other.close().await;
        stop(s).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn an_oversized_message_closes_only_its_connection() {
    run(async {
        let mut limits = WsLimits::default();
        limits.max_message = 64 * 1024;
        limits.max_frame = 64 * 1024;
        let s = server_with(1, &[], limits).await;
        let dir = temp_dir("big");
        let mut alice = client(&url(&s), 4, dir.clone());
        let mut bob = client(&url(&s), 5, dir.clone());
        let bob_id = bob.user_id().to_owned();
        sees_online(&mut alice, &bob_id).await;

        let mut ws = ws_connect(&url(&s), None).await.unwrap();
        ws.send(Message::text(hello(&new_id(), 6))).await.unwrap();
        // 100 KiB in one message: over the 64 KiB limit.
        let _ = ws.send(Message::text("x".repeat(100 * 1024))).await;
        let closed = timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break None,
                }
            }
        })
        .await
        .expect("the oversized sender was not disconnected");
        if let Some(code) = closed {
            assert_eq!(code, 1009);
        }

        // The others keep chatting.
        send_dm(&alice, &bob_id, "still here").await;
        message(&mut bob, "still here").await;
        alice.close().await;
        bob.close().await;
        stop(s).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn a_slow_reader_is_disconnected() {
    run(async {
        let mut limits = WsLimits::default();
        limits.outgoing_queue = 8;
        limits.outgoing_bytes = 64 * 1024;
        let s = server_with(1, &[], limits).await;
        let mut events = s.subscribe();
        let dir = temp_dir("slow");
        let mut alice = client(&url(&s), 4, dir.clone());
        let mut bob = client(&url(&s), 5, dir.clone());
        let alice_id = alice.user_id().to_owned();
        sees_online(&mut bob, &alice_id).await;

        // A raw client with a tiny receive buffer that asks for keys and never
        // reads the answers (each PUBKEY_RESPONSE is about 1.5 KB).
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&s.local_addr().into()).unwrap();
        let tcp = TcpStream::try_from(std::net::TcpStream::from(socket)).unwrap();
        let ws = ws_connect(&url(&s), Some(tcp)).await.unwrap();
        let (mut sink, _never_read) = ws.split();
        let slow = new_id();
        sink.send(Message::text(hello(&slow, 6))).await.unwrap();
        let request = |n: u64| {
            let req = PubkeyRequest {
                user_id: alice_id.clone(),
            };
            String::from_utf8(Envelope::new(slow.clone(), "server", now_ms() + n % 2, req).encode())
                .unwrap()
        };
        // Flood until the socket fails or the flood is spent; the server must
        // drop the slow reader meanwhile (or soon after). With one executor
        // thread (smol's default) the driver fills the 8-frame queue in one
        // burst; with more, the writer drains it in parallel into the kernel's
        // send buffer (megabytes on loopback), and the disconnect comes once
        // that is full: about 14 s here with SMOL_THREADS=2.
        let flood = async {
            for n in 0..5000u64 {
                if sink.send(Message::text(request(n))).await.is_err() {
                    break;
                }
                if n % 16 == 15 {
                    smol::Timer::after(Duration::from_millis(5)).await;
                }
            }
            std::future::pending::<()>().await;
        };
        let disconnected = server_event(
            &mut events,
            "the slow reader offline",
            |e| matches!(e, Event::UserOffline { user_id } if *user_id == slow),
        );
        smol::future::or(disconnected, flood).await;

        // The server still serves the others.
        send_dm(&bob, &alice_id, "after the slow reader").await;
        message(&mut alice, "after the slow reader").await;
        alice.close().await;
        bob.close().await;
        stop(s).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn silent_and_trickling_connections_time_out() {
    run(async {
        let mut limits = WsLimits::default();
        limits.handshake_timeout = Duration::from_millis(300);
        let s = server_with(1, &[], limits).await;
        let addr = s.local_addr();

        // Sends nothing at all.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // Sends half a request head, then nothing.
        let mut trickle = TcpStream::connect(addr).await.unwrap();
        trickle
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        for tcp in [&mut silent, &mut trickle] {
            let mut buf = Vec::new();
            let read = timeout(WAIT, tcp.read_to_end(&mut buf))
                .await
                .expect("the server kept a silent connection open");
            // Closed by the server (EOF, or a reset): nothing was answered.
            assert!(read.map_or(true, |n| n == 0), "{buf:?}");
        }

        // A WebSocket that completes its upgrade in time is not affected.
        let mut ws = ws_connect(&url(&s), None).await.unwrap();
        let user = new_id();
        ws.send(Message::text(hello(&user, 4))).await.unwrap();
        let dir = temp_dir("silent");
        let mut other = client(&url(&s), 5, dir.clone());
        sees_online(&mut other, &user).await;
        drop(ws);
        other.close().await;
        stop(s).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn an_idle_peer_is_closed_and_a_live_one_is_not() {
    run(async {
        let mut limits = WsLimits::default();
        limits.idle_timeout = Duration::from_millis(600);
        let s = server_with(1, &[], limits.clone()).await;
        let mut events = s.subscribe();
        let dir = temp_dir("idle");
        // A raw WebSocket that identifies, then never reads (so never answers
        // the server's pings) and never writes: it goes silent.
        let mut ws = ws_connect(&url(&s), None).await.unwrap();
        let mute = new_id();
        ws.send(Message::text(hello(&mute, 6))).await.unwrap();
        // A real client with the same short idle timeout answers pings and stays.
        let mut opts = socp_smol::ClientOptions::new(dir.clone());
        opts.limits = limits;
        let clock = socp_smol::Clock::new();
        let live = socp_core::client::Client::new(
            socp_core::client::ClientConfig::new(vec![url(&s)]),
            socp_core::client::UserIdentity::new(new_id(), fixtures::rsa_identity(5)),
            socp_smol::random_seed(),
            clock.now(),
        );
        let mut live = socp_smol::spawn_client(live, opts, clock);
        let live_id = live.user_id().to_owned();
        server_event(
            &mut events,
            "the mute peer closed",
            |e| matches!(e, Event::UserOffline { user_id } if *user_id == mute),
        )
        .await;
        // Several idle periods later the live client is still online and never dropped.
        smol::Timer::after(Duration::from_millis(2000)).await;
        live.with(|c, now| c.request_list(now)).await.unwrap();
        let list = wait_for(&mut live, "List", |u| match u {
            ClientUpdate::Event(ClientEvent::List(users)) => Some(users.clone()),
            ClientUpdate::Event(ClientEvent::Disconnected { .. }) => {
                panic!("the live client was disconnected")
            }
            _ => None,
        })
        .await;
        assert!(list.contains(&live_id), "{list:?}");
        drop(ws);
        live.close().await;
        stop(s).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn connections_over_the_limit_are_refused() {
    run(async {
        let mut limits = WsLimits::default();
        limits.max_connections = 2;
        let s = server_with(1, &[], limits).await;
        let dir = temp_dir("max");
        let mut alice = client(&url(&s), 4, dir.clone());
        let mut bob = client(&url(&s), 5, dir.clone());
        let bob_id = bob.user_id().to_owned();
        sees_online(&mut alice, &bob_id).await;

        // A third connection is closed at once, before any answer.
        let mut third = TcpStream::connect(s.local_addr()).await.unwrap();
        let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = Vec::new();
        let read = timeout(WAIT, third.read_to_end(&mut buf))
            .await
            .expect("the third connection was kept open");
        assert!(read.map_or(true, |n| n == 0), "{buf:?}");

        // The two in the limit are served; once one leaves, a new one gets in.
        send_dm(&alice, &bob_id, "two is company").await;
        message(&mut bob, "two is company").await;
        bob.close().await;
        let mut carol = client(&url(&s), 6, dir.clone());
        let carol_id = carol.user_id().to_owned();
        sees_online(&mut alice, &carol_id).await;
        send_dm(&alice, &carol_id, "three is a crowd, one at a time").await;
        message(&mut carol, "three is a crowd, one at a time").await;
        alice.close().await;
        carol.close().await;
        stop(s).await;
        std::fs::remove_dir_all(dir).unwrap();
    });
}
