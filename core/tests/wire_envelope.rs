//! Envelopes and typed payloads: round trips of every message type, the
//! liberal readings of socp-1.3.md §1.4/§1.5 (trailing newline, `ts` as a
//! string, `sig` absent or empty, unknown types), every §2 variant we accept,
//! and §4 cases 2 and 17 at the decoding level.

// Test code may panic (clippy.toml allows it in #[test] fns; this covers the helpers too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use socp_core::wire::messages::*;
use socp_core::wire::{
    DecodeError, Envelope, ErrorCode, Limits, ListDialect, Message, MsgType, json as wjson,
};

const ALICE: &str = "3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b";
const BOB: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const S1: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const S2: &str = "a1b2c3d4-0000-4000-8000-000000000002";

fn decode(frame: &str) -> Envelope {
    Envelope::decode(frame.as_bytes(), &Limits::default()).unwrap()
}

fn decode_value(frame: &Value) -> Envelope {
    decode(&frame.to_string())
}

fn frame(msg_type: &str, payload: Value) -> Value {
    json!({"type": msg_type, "from": S1, "to": S2, "ts": 1_700_000_000_000u64,
           "payload": payload, "sig": "c2ln"})
}

fn message(msg_type: &str, payload: Value) -> Message {
    decode_value(&frame(msg_type, payload)).message().unwrap()
}

// ---------------------------------------------------------------------------
// Envelope basics

#[test]
fn encode_is_canonical_json_of_the_whole_envelope() {
    let env = Envelope::new(
        ALICE,
        BOB,
        1_700_000_000_123,
        MsgDirect {
            ciphertext: "Y3Q".into(),
            sender_pub: Some("cHVi".into()),
            content_sig: None,
        },
    )
    .with_sig("c2ln");
    let expected = format!(
        r#"{{"from":"{ALICE}","payload":{{"ciphertext":"Y3Q","sender_pub":"cHVi"}},"sig":"c2ln","to":"{BOB}","ts":1700000000123,"type":"MSG_DIRECT"}}"#
    );
    assert_eq!(env.encode_string(), expected);
    assert_eq!(env.encode(), expected.as_bytes());
    // Same bytes as canonicalizing the envelope as a JSON value.
    let value: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(wjson::canonical(&value), env.encode());
    // No sig: the key is omitted.
    let unsigned = Envelope {
        sig: None,
        ..env.clone()
    };
    assert!(!unsigned.encode_string().contains("\"sig\""));
    assert_eq!(decode(&env.encode_string()), env);
}

#[test]
fn spec_case_17_trailing_newline_and_whitespace() {
    let env = Envelope::new(S1, S2, 5, Heartbeat {});
    let text = env.encode_string();
    for framed in [
        format!("{text}\n"),
        format!("{text}\r\n"),
        format!("  \t{text} \n"),
        format!("\n{text}"),
    ] {
        assert_eq!(decode(&framed), env, "{framed:?}");
    }
    assert!(!text.ends_with('\n'), "we send no newline");
}

#[test]
fn spec_case_17_unknown_type_is_kept_not_refused() {
    let text = r#"{"type":"MSG_BROADCAST","from":"u1","to":"*","ts":7,"payload":{"x":[1,2.5,"é"]},"extra":true}"#;
    let env = decode(text);
    assert_eq!(env.msg_type, MsgType::Unknown("MSG_BROADCAST".into()));
    assert!(!env.msg_type.is_known());
    assert_eq!(
        env.message().unwrap(),
        Message::Unknown {
            msg_type: "MSG_BROADCAST".into()
        }
    );
    // The payload is forwarded as received; unknown top-level keys are dropped.
    assert_eq!(
        env.encode_string(),
        r#"{"from":"u1","payload":{"x":[1,2.5,"\u00e9"]},"to":"*","ts":7,"type":"MSG_BROADCAST"}"#
    );
    // Case-sensitive: a lower-case known name is unknown.
    let lower = decode(r#"{"type":"heartbeat","from":"a","to":"b","ts":1,"payload":{}}"#);
    assert_eq!(lower.msg_type, MsgType::Unknown("heartbeat".into()));
}

#[test]
fn ts_as_string_of_digits_is_accepted() {
    let env =
        decode(r#"{"type":"HEARTBEAT","from":"a","to":"b","ts":"1700000000000","payload":{}}"#);
    assert_eq!(env.ts, 1_700_000_000_000);
    // ...and is sent back as an integer.
    assert!(env.encode_string().contains(r#""ts":1700000000000"#));
    let max = decode(r#"{"type":"HEARTBEAT","from":"a","to":"b","ts":18446744073709551615}"#);
    assert_eq!(max.ts, u64::MAX);
}

#[test]
fn sig_absent_null_or_empty_is_none() {
    for sig in [None, Some(Value::Null), Some(json!(""))] {
        let mut value = json!({"type": "USER_HELLO", "from": ALICE, "to": S1, "ts": 1,
                               "payload": {"client": "cli-v1", "pubkey": "k"}});
        if let Some(sig) = sig {
            value["sig"] = sig;
        }
        assert_eq!(decode_value(&value).sig, None);
    }
    assert_eq!(
        decode_value(&frame("HEARTBEAT", json!({}))).sig.as_deref(),
        Some("c2ln")
    );
}

#[test]
fn missing_or_null_payload_is_empty() {
    for text in [
        r#"{"type":"HEARTBEAT","from":"a","to":"b","ts":1}"#,
        r#"{"type":"HEARTBEAT","from":"a","to":"b","ts":1,"payload":null}"#,
    ] {
        let env = decode(text);
        assert!(env.payload.is_empty());
        assert_eq!(env.message().unwrap(), Message::Heartbeat(Heartbeat {}));
        assert_eq!(env.signing_bytes(), b"{}");
    }
}

#[test]
fn bare_ctrl_close_as_the_spec_shows_it() {
    let env = decode(r#"{"type":"CTRL_CLOSE"}"#);
    assert_eq!(env.msg_type, MsgType::CtrlClose);
    assert_eq!((env.from.as_str(), env.to.as_str(), env.ts), ("", "", 0));
    assert_eq!(env.message().unwrap(), Message::CtrlClose(CtrlClose {}));
    // Only CTRL_CLOSE may be bare.
    assert_eq!(
        Envelope::decode(br#"{"type":"HEARTBEAT"}"#, &Limits::default()),
        Err(DecodeError::MissingField { field: "from" })
    );
}

#[test]
fn spec_case_2_sig_covers_the_payload_only() {
    let env = decode_value(&frame(
        "USER_ADVERTISE",
        json!({"user_id": ALICE, "server_id": S1, "meta": {"display_name": "é"}}),
    ));
    let signed = env.signing_bytes();
    assert_eq!(
        signed,
        format!(r#"{{"meta":{{"display_name":"\u00e9"}},"server_id":"{S1}","user_id":"{ALICE}"}}"#)
            .into_bytes()
    );
    // Changing ts, to or type leaves the signed bytes alone...
    for changed in [
        Envelope {
            ts: env.ts + 1,
            ..env.clone()
        },
        Envelope {
            to: "*".into(),
            ..env.clone()
        },
        Envelope {
            from: S2.into(),
            ..env.clone()
        },
        Envelope {
            msg_type: MsgType::UserRemove,
            ..env.clone()
        },
    ] {
        assert_eq!(changed.signing_bytes(), signed);
        assert_eq!(changed.payload_digest(), env.payload_digest());
    }
    // ...while any change of the payload changes them.
    let mut changed = env.clone();
    changed.payload.insert("user_id".into(), json!(BOB));
    assert_ne!(changed.signing_bytes(), signed);
    assert_ne!(changed.payload_digest(), env.payload_digest());
    let mut extra = env.clone();
    extra.payload.insert("z".into(), Value::Null);
    assert_ne!(extra.signing_bytes(), signed);
}

#[test]
fn unknown_payload_keys_are_kept_for_signing_and_ignored_by_the_typed_view() {
    let env = decode_value(&frame(
        "MSG_DIRECT",
        json!({"ciphertext": "Y3Q", "future_field": {"b": 2, "a": 1}, "big": 1180591620717411303424u128}),
    ));
    assert_eq!(
        env.message().unwrap(),
        Message::MsgDirect(MsgDirect {
            ciphertext: "Y3Q".into(),
            sender_pub: None,
            content_sig: None
        })
    );
    assert_eq!(
        env.signing_bytes(),
        br#"{"big":1180591620717411303424,"ciphertext":"Y3Q","future_field":{"a":1,"b":2}}"#
    );
}

#[test]
fn decode_payload_checks_the_type() {
    let env = decode_value(&frame("ACK", json!({"msg_ref": "m1"})));
    assert_eq!(env.decode_payload::<Ack>().unwrap().msg_ref, "m1");
    assert_eq!(
        env.decode_payload::<MsgDirect>(),
        Err(DecodeError::TypeMismatch {
            expected: MsgType::MsgDirect,
            found: MsgType::Ack
        })
    );
}

// ---------------------------------------------------------------------------
// §2 variants

#[test]
fn welcome_with_servers_only_clients_only_both_and_impl_a() {
    let server = json!({"server_id": S2, "host": "10.0.0.2", "port": 8765, "pubkey": "MIIC"});
    let client = json!({"user_id": ALICE, "host": "10.0.0.2", "port": 8765, "pubkey": "MIIC"});
    let client_b = json!({"user_id": BOB, "host": "10.0.0.2", "port": "8765", "pubkey": "LS0t", "server_id": S2});

    let Message::ServerWelcome(w) = message(
        "SERVER_WELCOME",
        json!({"assigned_id": S1, "servers": [server]}),
    ) else {
        panic!("not a welcome")
    };
    assert_eq!(w.assigned_id, S1);
    assert_eq!(w.servers.len(), 1);
    assert_eq!(w.servers[0].port, 8765);
    assert!(w.clients.is_empty());

    let Message::ServerWelcome(w) = message(
        "SERVER_WELCOME",
        json!({"assigned_id": S1, "clients": [client]}),
    ) else {
        panic!("not a welcome")
    };
    assert!(w.servers.is_empty());
    assert_eq!(w.clients[0].user_id, ALICE);
    assert_eq!(w.clients[0].server_id, None);

    let Message::ServerWelcome(w) = message(
        "SERVER_WELCOME",
        json!({"assigned_id": S1, "servers": [server], "clients": [client, client_b]}),
    ) else {
        panic!("not a welcome")
    };
    assert_eq!((w.servers.len(), w.clients.len()), (1, 2));
    assert_eq!(w.clients[1].port, Some(8765));
    assert_eq!(w.clients[1].server_id.as_deref(), Some(S2));

    // impl A: {server_id, server_pub, snapshot:{user_locations}, assigned_id}.
    let Message::ServerWelcome(w) = message(
        "SERVER_WELCOME",
        json!({"assigned_id": S1, "server_id": S2, "server_pub": "MIIC",
               "snapshot": {"user_locations": {ALICE: S2}}}),
    ) else {
        panic!("not a welcome")
    };
    assert_eq!(w.server_id.as_deref(), Some(S2));
    assert_eq!(w.server_pub.as_deref(), Some("MIIC"));
    assert_eq!(w.snapshot.unwrap()["user_locations"][ALICE], json!(S2));
    assert!(w.servers.is_empty() && w.clients.is_empty());

    // We send both lists, so readers of either find theirs.
    let sent = Envelope::new(
        S2,
        S1,
        1,
        ServerWelcome {
            assigned_id: S1.into(),
            servers: vec![],
            clients: vec![],
            server_id: None,
            server_pub: None,
            snapshot: None,
        },
    );
    assert_eq!(
        sent.signing_bytes(),
        format!(r#"{{"assigned_id":"{S1}","clients":[],"servers":[]}}"#).into_bytes()
    );
}

#[test]
fn server_hellos_and_announce() {
    let payload = json!({"host": "10.0.0.1", "port": 8765, "pubkey": "MIIC"});
    // SERVER_HELLO_JOIN goes to "host:port", with sig absent or a placeholder.
    let join = decode_value(
        &json!({"type": "SERVER_HELLO_JOIN", "from": S1, "to": "10.0.0.9:8765",
                                    "ts": 1, "payload": payload}),
    );
    assert_eq!(join.to, "10.0.0.9:8765");
    let Message::ServerHelloJoin(j) = join.message().unwrap() else {
        panic!("not a join")
    };
    assert_eq!(
        (j.host.as_str(), j.port, j.pubkey.as_str()),
        ("10.0.0.1", 8765, "MIIC")
    );
    assert!(j.caps.is_empty());
    assert!(matches!(
        message("SERVER_HELLO_LINK", payload.clone()),
        Message::ServerHelloLink(_)
    ));
    assert!(matches!(
        message("SERVER_ANNOUNCE", payload.clone()),
        Message::ServerAnnounce(_)
    ));
    // caps offered by our secure profile; omitted when empty.
    let Message::UserHello(h) =
        message("USER_HELLO", json!({"pubkey": "k", "caps": ["secure-v1"]}))
    else {
        panic!("not a hello")
    };
    assert_eq!(h.caps, vec!["secure-v1".to_owned()]);
    assert_eq!(h.encryption_key(), "k");
    let plain = Envelope::new(
        S1,
        "10.0.0.9:8765",
        1,
        ServerHelloLink {
            host: "h".into(),
            port: 1,
            pubkey: "k".into(),
            caps: vec![],
        },
    );
    assert_eq!(
        plain.signing_bytes(),
        br#"{"host":"h","port":1,"pubkey":"k"}"#
    );
}

#[test]
fn heartbeat_payload_variants() {
    for payload in [
        json!({}),
        json!({"now": 1_700_000_000}),
        json!({"server_type": "SERVER"}),
        json!({"server_type": "INTRODUCER", "now": "x"}),
    ] {
        assert_eq!(
            message("HEARTBEAT", payload),
            Message::Heartbeat(Heartbeat {})
        );
    }
    assert_eq!(
        Envelope::new(S1, S2, 1, Heartbeat {}).signing_bytes(),
        b"{}"
    );
}

#[test]
fn user_advertise_pubkey_top_level_or_in_meta() {
    let Message::UserAdvertise(b) = message(
        "USER_ADVERTISE",
        json!({"user_id": ALICE, "server_id": S1, "pubkey": "TOP"}),
    ) else {
        panic!()
    };
    assert_eq!(b.pubkey(), Some("TOP"));
    let Message::UserAdvertise(c) = message(
        "USER_ADVERTISE",
        json!({"user_id": ALICE, "server_id": S1, "meta": {"pubkey": "META", "display_name": "Al"}}),
    ) else {
        panic!()
    };
    assert_eq!(c.pubkey(), Some("META"));
    assert_eq!(c.display_name(), Some("Al"));
    let Message::UserAdvertise(both) = message(
        "USER_ADVERTISE",
        json!({"user_id": ALICE, "server_id": S1, "pubkey": "TOP", "meta": {"pubkey": "META"}}),
    ) else {
        panic!()
    };
    assert_eq!(both.pubkey(), Some("TOP"));
    let Message::UserAdvertise(spec) = message(
        "USER_ADVERTISE",
        json!({"user_id": ALICE, "server_id": S1, "meta": {}}),
    ) else {
        panic!()
    };
    assert_eq!(spec.pubkey(), None);
    let Message::UserAdvertise(empty) = message(
        "USER_ADVERTISE",
        json!({"user_id": ALICE, "server_id": S1, "pubkey": "", "meta": {"pubkey": "META"}}),
    ) else {
        panic!()
    };
    assert_eq!(empty.pubkey(), Some("META"));
}

#[test]
fn list_request_dialects() {
    for (name, dialect, response) in [
        ("LIST_REQUEST", ListDialect::ListRequest, "LIST_RESPONSE"),
        ("CMD_LIST", ListDialect::CmdList, "CMD_LIST_RESULT"),
        ("USER_LIST", ListDialect::UserList, "USER_LIST_RESPONSE"),
        ("LIST", ListDialect::List, "USER_LIST_RESPONSE"),
    ] {
        let env = decode_value(&frame(name, json!({})));
        assert_eq!(env.msg_type, MsgType::ListRequest(dialect));
        assert_eq!(env.msg_type.as_str(), name);
        assert_eq!(dialect.response_type(), response);
        assert_eq!(env.message().unwrap(), Message::ListRequest(ListRequest {}));
        assert!(env.decode_payload::<ListRequest>().is_ok());
        // The original name survives a forward.
        assert!(
            env.encode_string()
                .ends_with(&format!(r#""type":"{name}"}}"#))
        );
    }
    // Ours is LIST_REQUEST.
    assert_eq!(
        Envelope::new(ALICE, S1, 1, ListRequest {}).msg_type,
        MsgType::ListRequest(ListDialect::ListRequest)
    );
    let Message::ListResponse(r) = message("LIST_RESPONSE", json!({"online_users": [ALICE, BOB]}))
    else {
        panic!()
    };
    assert_eq!(r.online_users, vec![ALICE.to_owned(), BOB.to_owned()]);
    let Message::ListResponse(r) = message("LIST_RESPONSE", json!({"users": [BOB]})) else {
        panic!()
    };
    assert_eq!(r.online_users, vec![BOB.to_owned()]);
}

#[test]
fn command_list_impl_b() {
    let Message::Command(c) = message("COMMAND", json!({"command": "/list"})) else {
        panic!()
    };
    assert!(c.is_list());
    let Message::CommandResponse(r) = message(
        "COMMAND_RESPONSE",
        json!({"command": "/list", "response": "{\"users\": [\"b\", \"a\"]}"}),
    ) else {
        panic!()
    };
    assert_eq!(r.list_users(), Some(vec!["b".to_owned(), "a".to_owned()]));
    let ours = CommandResponse::list(&[ALICE.to_owned(), BOB.to_owned()]);
    assert_eq!(ours.command, "/list");
    assert_eq!(ours.response, format!(r#"{{"users":["{ALICE}","{BOB}"]}}"#));
    assert_eq!(ours.list_users().unwrap().len(), 2);
    let not_json = CommandResponse {
        command: "/list".into(),
        response: "alice, bob".into(),
    };
    assert_eq!(not_json.list_users(), None);
}

#[test]
fn pubkey_request_and_response_impl_a() {
    assert_eq!(
        message("PUBKEY_REQUEST", json!({"user_id": BOB})),
        Message::PubkeyRequest(PubkeyRequest {
            user_id: BOB.into()
        })
    );
    assert_eq!(
        message("PUBKEY_RESPONSE", json!({"user_id": BOB, "pubkey": "MIIC"})),
        Message::PubkeyResponse(PubkeyResponse {
            user_id: BOB.into(),
            pubkey: "MIIC".into()
        })
    );
}

#[test]
fn key_share_named_shares_or_wrapped() {
    let expected = PublicChannelKeyShare {
        shares: vec![KeyShare {
            member: ALICE.into(),
            wrapped_public_channel_key: "d3JhcA".into(),
        }],
        creator_pub: "MIIC".into(),
        content_sig: "c2ln".into(),
    };
    for payload in [
        json!({"shares": [{"member": ALICE, "wrapped_public_channel_key": "d3JhcA"}],
               "creator_pub": "MIIC", "content_sig": "c2ln"}),
        json!({"wrapped": [{"member": ALICE, "wrapped_public_channel_key": "d3JhcA"}],
               "creator_pub": "MIIC", "content_sig": "c2ln"}),
        json!({"wrapped": [{"member_id": ALICE, "wrapped_key": "d3JhcA"}],
               "creator_pub": "MIIC", "content_sig": "c2ln"}),
    ] {
        assert_eq!(
            message("PUBLIC_CHANNEL_KEY_SHARE", payload),
            Message::PublicChannelKeyShare(expected.clone())
        );
    }
    // We send `shares`.
    let sent = Envelope::new(S1, "*", 1, expected).encode_string();
    assert!(sent.contains(r#""shares":[{"member":"#) && !sent.contains("wrapped\""));
}

#[test]
fn public_channel_messages() {
    assert_eq!(
        message(
            "PUBLIC_CHANNEL_ADD",
            json!({"add": [ALICE], "if_version": 3})
        ),
        Message::PublicChannelAdd(PublicChannelAdd {
            add: vec![ALICE.into()],
            if_version: 3
        })
    );
    let Message::PublicChannelUpdated(u) = message(
        "PUBLIC_CHANNEL_UPDATED",
        json!({"version": "4", "wraps": [{"member_id": ALICE, "wrapped_key": "d3JhcA"}]}),
    ) else {
        panic!()
    };
    assert_eq!(u.version, 4);
    assert_eq!(u.wraps[0].member_id, ALICE);
    let env = decode_value(
        &json!({"type": "MSG_PUBLIC_CHANNEL", "from": ALICE, "to": "public",
                                   "ts": 9, "sig": "", "payload": {"ciphertext": "Y3Q", "sender_pub": "k",
                                   "content_sig": "s"}}),
    );
    assert_eq!(env.to, "public");
    assert!(
        matches!(env.message().unwrap(), Message::MsgPublicChannel(m) if m.content_sig.as_deref() == Some("s"))
    );
}

#[test]
fn deliveries_carry_orig_ts() {
    let Message::ServerDeliver(d) = message(
        "SERVER_DELIVER",
        json!({"user_id": BOB, "ciphertext": "Y3Q", "sender": ALICE, "sender_pub": "k",
               "content_sig": "s", "orig_ts": 1_700_000_000_000u64}),
    ) else {
        panic!()
    };
    assert_eq!(d.orig_ts, Some(1_700_000_000_000));
    let Message::UserDeliver(u) = message(
        "USER_DELIVER",
        json!({"ciphertext": "Y3Q", "sender": ALICE, "sender_pub": "k", "content_sig": "s"}),
    ) else {
        panic!()
    };
    assert_eq!(u.orig_ts, None);
}

#[test]
fn files_spec_shape_and_impl_a_shape() {
    let Message::FileStart(spec) = message(
        "FILE_START",
        json!({"file_id": ALICE, "name": "a.txt", "size": 1000, "sha256": "ab", "mode": "public"}),
    ) else {
        panic!()
    };
    assert_eq!(spec.mode, FileMode::Public);
    assert_eq!(spec.sha256.as_deref(), Some("ab"));
    let Message::FileStart(a) = message(
        "FILE_START",
        json!({"file_id": ALICE, "name": "../x", "size": "5", "sender_pub": "k"}),
    ) else {
        panic!()
    };
    assert_eq!((a.mode, a.size, a.sha256), (FileMode::Dm, 5, None));
    let Message::FileChunk(c) = message(
        "FILE_CHUNK",
        json!({"file_id": ALICE, "index": 2, "ciphertext": "Y3Q", "total": 3, "sender_pub": "k", "content_sig": "s"}),
    ) else {
        panic!()
    };
    assert_eq!((c.index, c.total), (2, Some(3)));
    assert_eq!(
        message("FILE_END", json!({"file_id": ALICE})),
        Message::FileEnd(FileEnd {
            file_id: ALICE.into()
        })
    );
    // We always send the mode.
    let start = Envelope::new(
        ALICE,
        BOB,
        1,
        FileStart {
            file_id: "f".into(),
            name: "n".into(),
            size: 1,
            sha256: None,
            mode: FileMode::Dm,
            sender_pub: None,
        },
    );
    assert_eq!(
        start.signing_bytes(),
        br#"{"file_id":"f","mode":"dm","name":"n","size":1}"#
    );
}

#[test]
fn error_codes_all_six_and_others() {
    for code in [
        "USER_NOT_FOUND",
        "INVALID_SIG",
        "BAD_KEY",
        "TIMEOUT",
        "UNKNOWN_TYPE",
        "NAME_IN_USE",
        "RATE_LIMITED",
    ] {
        let Message::Error(e) = message("ERROR", json!({"code": code, "detail": "d"})) else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::parse(code));
        assert_eq!(e.code.as_str(), code);
    }
    let Message::Error(e) = message("ERROR", json!({"code": "TIMEOUT"})) else {
        panic!()
    };
    assert_eq!(e.detail, None);
}

// ---------------------------------------------------------------------------
// Round trips of every typed message

fn s() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-zA-Z0-9_-]{0,40}"]
}

fn opt_s() -> impl Strategy<Value = Option<String>> {
    prop::option::of(s())
}

fn caps() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(s(), 0..3)
}

fn meta() -> impl Strategy<Value = Option<Map<String, Value>>> {
    prop::option::of(
        prop::collection::btree_map(
            s(),
            prop_oneof![
                s().prop_map(Value::String),
                any::<i64>().prop_map(Value::from)
            ],
            0..4,
        )
        .prop_map(|m| m.into_iter().collect()),
    )
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::UserNotFound),
        Just(ErrorCode::InvalidSig),
        Just(ErrorCode::BadKey),
        Just(ErrorCode::Timeout),
        Just(ErrorCode::UnknownType),
        Just(ErrorCode::NameInUse),
        "X_[A-Z_]{0,12}".prop_map(ErrorCode::Other),
    ]
}

fn any_message() -> impl Strategy<Value = Message> {
    let server = prop_oneof![
        (s(), any::<u16>(), s(), caps()).prop_map(|(host, port, pubkey, caps)| Message::from(
            ServerHelloJoin {
                host,
                port,
                pubkey,
                caps
            }
        )),
        (s(), any::<u16>(), s(), caps()).prop_map(|(host, port, pubkey, caps)| Message::from(
            ServerAnnounce {
                host,
                port,
                pubkey,
                caps
            }
        )),
        (s(), any::<u16>(), s(), caps()).prop_map(|(host, port, pubkey, caps)| Message::from(
            ServerHelloLink {
                host,
                port,
                pubkey,
                caps
            }
        )),
        (
            s(),
            prop::collection::vec((s(), s(), any::<u16>(), s()), 0..3),
            prop::collection::vec(
                (s(), opt_s(), prop::option::of(any::<u16>()), s(), opt_s()),
                0..3
            ),
            opt_s(),
            opt_s(),
            meta(),
        )
            .prop_map(
                |(assigned_id, servers, clients, server_id, server_pub, snapshot)| {
                    Message::from(ServerWelcome {
                        assigned_id,
                        servers: servers
                            .into_iter()
                            .map(|(server_id, host, port, pubkey)| ServerInfo {
                                server_id,
                                host,
                                port,
                                pubkey,
                            })
                            .collect(),
                        clients: clients
                            .into_iter()
                            .map(|(user_id, host, port, pubkey, server_id)| ClientInfo {
                                user_id,
                                host,
                                port,
                                pubkey,
                                server_id,
                            })
                            .collect(),
                        server_id,
                        server_pub,
                        snapshot,
                    })
                }
            ),
        opt_s().prop_map(|reason| Message::from(ServerGoodbye { reason })),
        (s(), s(), meta(), opt_s()).prop_map(|(user_id, server_id, meta, pubkey)| Message::from(
            UserAdvertise {
                user_id,
                server_id,
                meta,
                pubkey
            }
        )),
        (s(), s())
            .prop_map(|(user_id, server_id)| Message::from(UserRemove { user_id, server_id })),
        (s(), s(), s(), s(), s(), prop::option::of(any::<u64>())).prop_map(
            |(user_id, ciphertext, sender, sender_pub, content_sig, orig_ts)| {
                Message::from(ServerDeliver {
                    user_id,
                    ciphertext,
                    sender,
                    sender_pub,
                    content_sig,
                    orig_ts,
                })
            }
        ),
        Just(Message::from(Heartbeat {})),
    ];
    let user = prop_oneof![
        (opt_s(), s(), opt_s(), caps()).prop_map(|(client, pubkey, enc_pubkey, caps)| {
            Message::from(UserHello {
                client,
                pubkey,
                enc_pubkey,
                caps,
            })
        }),
        (s(), opt_s(), opt_s()).prop_map(|(ciphertext, sender_pub, content_sig)| Message::from(
            MsgDirect {
                ciphertext,
                sender_pub,
                content_sig
            }
        )),
        (s(), s(), s(), s(), prop::option::of(any::<u64>())).prop_map(
            |(ciphertext, sender, sender_pub, content_sig, orig_ts)| {
                Message::from(UserDeliver {
                    ciphertext,
                    sender,
                    sender_pub,
                    content_sig,
                    orig_ts,
                })
            }
        ),
        (s(), opt_s(), opt_s()).prop_map(|(ciphertext, sender_pub, content_sig)| Message::from(
            MsgPublicChannel {
                ciphertext,
                sender_pub,
                content_sig
            }
        )),
        (prop::collection::vec(s(), 0..4), any::<u64>())
            .prop_map(|(add, if_version)| Message::from(PublicChannelAdd { add, if_version })),
        (any::<u64>(), prop::collection::vec((s(), s()), 0..3)).prop_map(|(version, wraps)| {
            Message::from(PublicChannelUpdated {
                version,
                wraps: wraps
                    .into_iter()
                    .map(|(member_id, wrapped_key)| ChannelWrap {
                        member_id,
                        wrapped_key,
                    })
                    .collect(),
            })
        }),
        (prop::collection::vec((s(), s()), 0..3), s(), s()).prop_map(
            |(shares, creator_pub, content_sig)| {
                Message::from(PublicChannelKeyShare {
                    shares: shares
                        .into_iter()
                        .map(|(member, wrapped_public_channel_key)| KeyShare {
                            member,
                            wrapped_public_channel_key,
                        })
                        .collect(),
                    creator_pub,
                    content_sig,
                })
            }
        ),
    ];
    let other = prop_oneof![
        (
            s(),
            s(),
            any::<u64>(),
            opt_s(),
            prop_oneof![Just(FileMode::Dm), Just(FileMode::Public)],
            opt_s()
        )
            .prop_map(
                |(file_id, name, size, sha256, mode, sender_pub)| Message::from(FileStart {
                    file_id,
                    name,
                    size,
                    sha256,
                    mode,
                    sender_pub
                })
            ),
        (
            s(),
            any::<u64>(),
            s(),
            prop::option::of(any::<u64>()),
            opt_s(),
            opt_s()
        )
            .prop_map(
                |(file_id, index, ciphertext, total, sender_pub, content_sig)| {
                    Message::from(FileChunk {
                        file_id,
                        index,
                        ciphertext,
                        total,
                        sender_pub,
                        content_sig,
                    })
                }
            ),
        s().prop_map(|file_id| Message::from(FileEnd { file_id })),
        s().prop_map(|msg_ref| Message::from(Ack { msg_ref })),
        (error_code(), opt_s(), opt_s(), opt_s()).prop_map(|(code, detail, user_id, msg_ref)| {
            Message::from(ErrorMsg {
                code,
                detail,
                user_id,
                msg_ref,
            })
        }),
        Just(Message::from(CtrlClose {})),
        Just(Message::from(ListRequest {})),
        prop::collection::vec(s(), 0..4)
            .prop_map(|online_users| Message::from(ListResponse { online_users })),
        s().prop_map(|command| Message::from(Command { command })),
        (s(), s())
            .prop_map(|(command, response)| Message::from(CommandResponse { command, response })),
        s().prop_map(|user_id| Message::from(PubkeyRequest { user_id })),
        (s(), s()).prop_map(|(user_id, pubkey)| Message::from(PubkeyResponse { user_id, pubkey })),
    ];
    prop_oneof![server, user, other]
}

proptest! {
    #[test]
    fn every_message_round_trips(
        message in any_message(),
        from in s(),
        to in s(),
        ts in any::<u64>(),
        sig in prop::option::of("[A-Za-z0-9_-]{1,20}"),
    ) {
        let mut env = Envelope::new(from, to, ts, message.clone());
        env.sig = sig;
        prop_assert!(env.msg_type.is_known());
        let frame = env.encode();
        prop_assert!(frame.is_ascii());
        let decoded = Envelope::decode(&frame, &Limits::default()).unwrap();
        prop_assert_eq!(&decoded, &env);
        prop_assert_eq!(decoded.message().unwrap(), message);
        prop_assert_eq!(decoded.encode(), frame.clone());
        // The envelope encoding agrees with canonicalizing it as a value.
        let value = wjson::parse(&frame, &Limits::default()).unwrap();
        prop_assert_eq!(wjson::canonical(&value), frame);
    }

    #[test]
    fn unknown_types_round_trip(
        name in "[A-Z_]{1,24}".prop_filter("unknown", |n| !MsgType::parse(n).is_known()),
        payload in prop::collection::btree_map(s(), s(), 0..4),
    ) {
        let env = Envelope {
            msg_type: MsgType::parse(&name),
            from: "a".into(),
            to: "b".into(),
            ts: 1,
            payload: payload.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
            sig: None,
        };
        let decoded = Envelope::decode(&env.encode(), &Limits::default()).unwrap();
        prop_assert_eq!(decoded.message().unwrap(), Message::Unknown { msg_type: name });
        prop_assert_eq!(decoded, env);
    }
}

#[test]
fn every_known_type_has_a_typed_payload() {
    // An empty payload decodes or fails as InvalidPayload: never Unknown.
    for t in MsgType::KNOWN {
        let env = Envelope {
            msg_type: t.clone(),
            from: "a".into(),
            to: "b".into(),
            ts: 0,
            payload: Map::new(),
            sig: None,
        };
        match env.message() {
            Ok(Message::Unknown { .. }) => panic!("{t} decoded as unknown"),
            Ok(m) => {
                // A message of this type re-encodes under the same family.
                let back = Envelope::new("a", "b", 0, m);
                assert!(back.msg_type == *t || matches!(t, MsgType::ListRequest(_)));
            }
            Err(DecodeError::InvalidPayload { msg_type, .. }) => assert_eq!(&msg_type, t),
            Err(other) => panic!("{t}: {other}"),
        }
    }
}
