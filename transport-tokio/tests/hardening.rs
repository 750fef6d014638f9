//! What hostile or broken peers get: plain HTTP, wrong paths, oversized
//! messages, slow readers, silent connections.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{
    WAIT, client, message, new_id, sees_online, send_dm, server_with, stop, temp_dir, url, wait_for,
};
use futures_util::{SinkExt, StreamExt};
use socp_core::client::ClientEvent;
use socp_core::crypto::fixtures;
use socp_core::server::Event;
use socp_core::wire::Envelope;
use socp_core::wire::messages::{PubkeyRequest, UserHello};
use socp_tokio::{ClientUpdate, WsLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Sends `request` on a raw TCP connection and returns everything the server
/// answers until it closes.
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_gets_a_4xx_and_paths_are_checked() {
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
    match tokio_tungstenite::connect_async(format!("ws://{addr}/nope")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 404),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("/nope was upgraded"),
    }
    // `/ws`, with a query string, is the endpoint too, and the server still serves.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?client=test"))
        .await
        .unwrap();
    let user = new_id();
    ws.send(Message::text(hello(&user, 4))).await.unwrap();
    let mut online = s.subscribe();
    let dir = temp_dir("http");
    let mut other = client(&format!("ws://{addr}/ws"), 5, dir.clone());
    sees_online(&mut other, &user).await;
    drop(ws);
    let _ = tokio::time::timeout(WAIT, async {
        while let Ok(event) = online.recv().await {
            if matches!(event, Event::UserOffline { ref user_id } if *user_id == user) {
                break;
            }
        }
    })
    .await;
    other.close().await;
    stop(s).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_closes_only_its_connection() {
    let mut limits = WsLimits::default();
    limits.max_message = 64 * 1024;
    limits.max_frame = 64 * 1024;
    let s = server_with(1, &[], limits).await;
    let dir = temp_dir("big");
    let mut alice = client(&url(&s), 4, dir.clone());
    let mut bob = client(&url(&s), 5, dir.clone());
    let bob_id = bob.user_id().to_owned();
    sees_online(&mut alice, &bob_id).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(url(&s)).await.unwrap();
    ws.send(Message::text(hello(&new_id(), 6))).await.unwrap();
    // 100 KiB in one message: over the 64 KiB limit.
    let _ = ws.send(Message::text("x".repeat(100 * 1024))).await;
    let closed = tokio::time::timeout(WAIT, async {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_disconnected() {
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

    // A raw client with a tiny receive buffer that asks for keys and never reads
    // the answers (each PUBKEY_RESPONSE is about 1.5 KB).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(s.local_addr()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url(&s), tcp).await.unwrap();
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
    let flood = async {
        for n in 0..5000u64 {
            if sink.send(Message::text(request(n))).await.is_err() {
                return;
            }
            if n % 16 == 15 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let disconnected = async {
        loop {
            match events.recv().await {
                Ok(Event::UserOffline { user_id }) if user_id == slow => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    let outcome = tokio::time::timeout(WAIT, async {
        tokio::select! {
            () = disconnected => true,
            () = flood => false,
        }
    })
    .await;
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            // The flood ended first (the socket failed): the disconnect is near.
            tokio::time::timeout(WAIT, async {
                loop {
                    if let Ok(Event::UserOffline { user_id }) = events.recv().await
                        && user_id == slow
                    {
                        break;
                    }
                }
            })
            .await
            .expect("the slow reader was never disconnected");
        }
        Err(_) => panic!("the slow reader was never disconnected"),
    }

    // The server still serves the others.
    send_dm(&bob, &alice_id, "after the slow reader").await;
    message(&mut alice, "after the slow reader").await;
    alice.close().await;
    bob.close().await;
    stop(s).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_connections_time_out() {
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
        let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf))
            .await
            .expect("the server kept a silent connection open");
        // Closed by the server (EOF, or a reset): nothing was answered.
        assert!(read.map_or(true, |n| n == 0), "{buf:?}");
    }

    // A WebSocket that completes its upgrade in time is not affected.
    let (mut ws, _) = tokio_tungstenite::connect_async(url(&s)).await.unwrap();
    let user = new_id();
    ws.send(Message::text(hello(&user, 4))).await.unwrap();
    let dir = temp_dir("silent");
    let mut other = client(&url(&s), 5, dir.clone());
    sees_online(&mut other, &user).await;
    drop(ws);
    other.close().await;
    stop(s).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_peer_is_closed_and_a_live_one_is_not() {
    let mut limits = WsLimits::default();
    limits.idle_timeout = Duration::from_millis(600);
    let s = server_with(1, &[], limits.clone()).await;
    let mut events = s.subscribe();
    let dir = temp_dir("idle");
    // A raw WebSocket that identifies, then never reads (so never answers the
    // server's pings) and never writes: it goes silent.
    let (mut ws, _) = tokio_tungstenite::connect_async(url(&s)).await.unwrap();
    let mute = new_id();
    ws.send(Message::text(hello(&mute, 6))).await.unwrap();
    // A real client with the same short idle timeout answers pings and stays.
    let mut opts = socp_tokio::ClientOptions::new(dir.clone());
    opts.limits = limits;
    let clock = socp_tokio::Clock::new();
    let live = socp_core::client::Client::new(
        socp_core::client::ClientConfig::new(vec![url(&s)]),
        socp_core::client::UserIdentity::new(new_id(), fixtures::rsa_identity(5)),
        socp_tokio::random_seed(),
        clock.now(),
    );
    let mut live = socp_tokio::spawn_client(live, opts, clock);
    let live_id = live.user_id().to_owned();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::UserOffline { user_id }) = events.recv().await
                && user_id == mute
            {
                break;
            }
        }
    })
    .await
    .expect("the mute peer was never closed");
    // Several idle periods later the live client is still online and never dropped.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let list = {
        live.with(|c, now| c.request_list(now)).await.unwrap();
        wait_for(&mut live, "List", |u| match u {
            ClientUpdate::Event(ClientEvent::List(users)) => Some(users.clone()),
            ClientUpdate::Event(ClientEvent::Disconnected { .. }) => {
                panic!("the live client was disconnected")
            }
            _ => None,
        })
        .await
    };
    assert!(list.contains(&live_id), "{list:?}");
    drop(ws);
    live.close().await;
    stop(s).await;
    std::fs::remove_dir_all(dir).unwrap();
}
