//! Hostile and broken frames: every truncation, bit flips at every position,
//! oversized and over-deep frames, invalid UTF-8, non-objects and wrongly
//! typed fields. Each must give the expected typed error and never panic
//! (socp-1.3.md §4 case 17: invalid JSON is rejected without killing the link).

// Test code may panic (clippy.toml allows it in #[test] fns; this covers the helpers too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use socp_core::wire::{DecodeError, Envelope, JsonErrorKind, Limits, MsgType, json};

const DM: &str = r#"{"from":"3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b","payload":{"ciphertext":"Y3Q","content_sig":"c2ln","sender_pub":"cHVi"},"sig":"c2ln","to":"7c9e6679-7425-40de-944b-e07fc1f90ae7","ts":1700000000123,"type":"MSG_DIRECT"}"#;
const WELCOME: &str = r#"{"from":"s1","payload":{"assigned_id":"s2","clients":[{"pubkey":"k","user_id":"u"}],"servers":[{"host":"h","port":8765,"pubkey":"k","server_id":"s3"}]},"to":"s2","ts":1,"type":"SERVER_WELCOME"}"#;
const RAW_UTF8: &str = "{\"type\":\"USER_ADVERTISE\",\"from\":\"s1\",\"to\":\"*\",\"ts\":\"12\",\"payload\":{\"user_id\":\"u\",\"server_id\":\"s1\",\"meta\":{\"display_name\":\"Zoë 🚀\"}}}\n";

fn decode(frame: &[u8]) -> Result<Envelope, DecodeError> {
    Envelope::decode(frame, &Limits::default())
}

/// Decodes and, if that works, types the payload and re-encodes: the whole
/// receive path must not panic.
fn exercise(frame: &[u8]) -> Result<(), DecodeError> {
    let env = decode(frame)?;
    let _ = env.message();
    let again = decode(&env.encode()).expect("our own encoding decodes");
    assert_eq!(again, env);
    Ok(())
}

fn err(frame: &str) -> DecodeError {
    decode(frame.as_bytes()).unwrap_err()
}

#[test]
fn the_valid_frames_are_valid() {
    for frame in [DM, WELCOME, RAW_UTF8] {
        let env = decode(frame.as_bytes()).unwrap();
        env.message().unwrap();
    }
}

#[test]
fn every_truncation_is_an_error() {
    for frame in [DM, WELCOME, RAW_UTF8.trim_end()] {
        let bytes = frame.as_bytes();
        for len in 0..bytes.len() {
            let e = decode(&bytes[..len]).unwrap_err();
            match e {
                DecodeError::InvalidJson { .. } | DecodeError::NotUtf8 { .. } => {}
                other => panic!("prefix of {len} bytes: unexpected {other:?}"),
            }
        }
        // The empty frame and a frame cut after a complete token are truncations.
        assert!(matches!(
            decode(b""),
            Err(DecodeError::InvalidJson {
                reason: JsonErrorKind::Truncated,
                line: 1,
                ..
            })
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::InvalidJson {
                reason: JsonErrorKind::Truncated,
                ..
            })
        ));
    }
    // Cutting a multi-byte character is a UTF-8 error, reported where it starts.
    let at = RAW_UTF8.find('ë').unwrap();
    assert_eq!(
        decode(&RAW_UTF8.as_bytes()[..at + 1]),
        Err(DecodeError::NotUtf8 { valid_up_to: at })
    );
}

#[test]
fn bit_flips_at_every_position() {
    let mut outcomes = std::collections::BTreeMap::<&'static str, usize>::new();
    for frame in [DM, WELCOME, RAW_UTF8] {
        let bytes = frame.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut mutated = bytes.to_vec();
                mutated[i] ^= 1 << bit;
                let kind = match exercise(&mutated) {
                    Ok(()) => "ok",
                    Err(e) => e.kind(),
                };
                *outcomes.entry(kind).or_default() += 1;
            }
        }
    }
    // Flips land in strings (still valid), break the syntax or the encoding,
    // or rename fields.
    for kind in ["ok", "invalid_json", "not_utf8", "missing_field"] {
        assert!(
            outcomes.get(kind).copied().unwrap_or(0) > 0,
            "{kind}: {outcomes:?}"
        );
    }
    let allowed = [
        "ok",
        "invalid_json",
        "not_utf8",
        "missing_field",
        "wrong_type",
        "invalid_timestamp",
        "not_an_object",
        "too_deep",
    ];
    for kind in outcomes.keys() {
        assert!(allowed.contains(kind), "unexpected {kind}: {outcomes:?}");
    }
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let limits = Limits {
        max_frame_bytes: 64,
        ..Limits::default()
    };
    // 65 bytes of garbage: only the length is looked at.
    assert_eq!(
        Envelope::decode(&[0xff; 65], &limits),
        Err(DecodeError::TooLarge { len: 65, max: 64 })
    );
    let fits = br#"{"type":"HEARTBEAT","from":"a","to":"b","ts":1}"#;
    assert!(Envelope::decode(fits, &limits).is_ok());
    // The default limit, 1 MiB, counted in bytes including a trailing newline.
    let max = Limits::default().max_frame_bytes;
    assert_eq!(max, 1024 * 1024);
    let shell = r#"{"type":"ACK","from":"a","to":"b","ts":1,"payload":{"msg_ref":""}}"#;
    let padding = "x".repeat(max - shell.len());
    let mut big = format!(
        r#"{{"type":"ACK","from":"a","to":"b","ts":1,"payload":{{"msg_ref":"{padding}"}}}}"#
    );
    assert_eq!(big.len(), max);
    assert!(decode(big.as_bytes()).is_ok());
    big.push('\n');
    assert_eq!(
        decode(big.as_bytes()),
        Err(DecodeError::TooLarge { len: max + 1, max })
    );
}

fn nested(depth_inside_payload: usize) -> String {
    format!(
        r#"{{"type":"ACK","from":"a","to":"b","ts":1,"payload":{{"msg_ref":"m","x":{}1{}}}}}"#,
        "[".repeat(depth_inside_payload),
        "]".repeat(depth_inside_payload)
    )
}

#[test]
fn nesting_deeper_than_the_limit() {
    let max = Limits::default().max_json_depth;
    assert_eq!(max, 32);
    // Envelope (1) + payload (2) + 30 arrays = 32: accepted.
    assert!(decode(nested(30).as_bytes()).is_ok());
    assert_eq!(err(&nested(31)), DecodeError::TooDeep { max: 32 });
    // Far deeper than any recursion could survive: refused by the pre-scan.
    let deep = "[".repeat(1_000_000);
    assert_eq!(
        decode(deep.as_bytes()),
        Err(DecodeError::TooDeep { max: 32 })
    );
    let deep = "{\"a\":".repeat(100_000);
    assert_eq!(
        decode(deep.as_bytes()),
        Err(DecodeError::TooDeep { max: 32 })
    );
    // Brackets inside strings are not nesting.
    let in_string = format!(
        r#"{{"type":"ACK","from":"a","to":"b","ts":1,"payload":{{"msg_ref":"{}\"{}"}}}}"#,
        "[".repeat(100),
        "{".repeat(100)
    );
    assert!(decode(in_string.as_bytes()).is_ok());
    // A custom limit.
    let shallow = Limits {
        max_json_depth: 2,
        ..Limits::default()
    };
    assert!(
        Envelope::decode(br#"{"type":"ACK","payload":{}}"#, &shallow)
            .is_err_and(|e| e.kind() != "too_deep")
    );
    assert_eq!(
        Envelope::decode(br#"{"payload":{"a":[]}}"#, &shallow),
        Err(DecodeError::TooDeep { max: 2 })
    );
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        decode(b"{\"type\":\"ACK\xff\"}"),
        Err(DecodeError::NotUtf8 { valid_up_to: 12 })
    );
    // An encoded surrogate (CESU-8) and an overlong encoding are not UTF-8.
    assert!(matches!(
        decode(b"{\"a\":\"\xed\xa0\x80\"}"),
        Err(DecodeError::NotUtf8 { .. })
    ));
    assert!(matches!(
        decode(b"{\"a\":\"\xc0\xaf\"}"),
        Err(DecodeError::NotUtf8 { .. })
    ));
    // A lone surrogate escape is well-formed JSON that no string can hold.
    assert!(matches!(
        decode(br#"{"type":"ACK","from":"a","to":"b","ts":1,"payload":{"msg_ref":"\ud800"}}"#),
        Err(DecodeError::InvalidJson { .. })
    ));
}

#[test]
fn not_json_or_not_an_object() {
    for (text, found) in [
        ("[]", "array"),
        ("[{\"type\":\"ACK\"}]", "array"),
        ("\"ACK\"", "string"),
        ("1", "number"),
        ("null", "null"),
        ("true", "boolean"),
    ] {
        assert_eq!(err(text), DecodeError::NotAnObject { found }, "{text}");
    }
    for text in [
        "{",
        "{\"type\":}",
        "{'type':'ACK'}",
        "{\"type\":\"ACK\",}",
        "{} {}",
        "NaN",
        "{\"ts\":NaN}",
        "\u{feff}{}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":01}",
    ] {
        let e = err(text);
        assert_eq!(e.kind(), "invalid_json", "{text}: {e:?}");
    }
    assert_eq!(
        err(r#"{"type":"ACK","x":{"$serde_json::private::Number":"1"}}"#),
        DecodeError::ReservedKey
    );
}

#[test]
fn missing_and_wrongly_typed_envelope_fields() {
    let cases: &[(&str, DecodeError)] = &[
        (r#"{}"#, DecodeError::MissingField { field: "type" }),
        (
            r#"{"from":"a","to":"b","ts":1}"#,
            DecodeError::MissingField { field: "type" },
        ),
        (
            r#"{"type":1,"from":"a","to":"b","ts":1}"#,
            DecodeError::WrongType {
                field: "type",
                expected: "a string",
            },
        ),
        (
            r#"{"type":null,"from":"a","to":"b","ts":1}"#,
            DecodeError::WrongType {
                field: "type",
                expected: "a string",
            },
        ),
        (
            r#"{"type":"ACK","to":"b","ts":1}"#,
            DecodeError::MissingField { field: "from" },
        ),
        (
            r#"{"type":"ACK","from":7,"to":"b","ts":1}"#,
            DecodeError::WrongType {
                field: "from",
                expected: "a string",
            },
        ),
        (
            r#"{"type":"ACK","from":"a","ts":1}"#,
            DecodeError::MissingField { field: "to" },
        ),
        (
            r#"{"type":"ACK","from":"a","to":["b"],"ts":1}"#,
            DecodeError::WrongType {
                field: "to",
                expected: "a string",
            },
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b"}"#,
            DecodeError::MissingField { field: "ts" },
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":-1}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":1.5}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":1.0}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":1e3}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":18446744073709551616}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":"12a"}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":""}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":"-1"}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":" 1"}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":true}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":null}"#,
            DecodeError::InvalidTimestamp,
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":1,"payload":[]}"#,
            DecodeError::WrongType {
                field: "payload",
                expected: "an object",
            },
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":1,"payload":"{}"}"#,
            DecodeError::WrongType {
                field: "payload",
                expected: "an object",
            },
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":1,"sig":5}"#,
            DecodeError::WrongType {
                field: "sig",
                expected: "a string",
            },
        ),
        (
            r#"{"type":"ACK","from":"a","to":"b","ts":1,"sig":{}}"#,
            DecodeError::WrongType {
                field: "sig",
                expected: "a string",
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&err(text), expected, "{text}");
    }
}

fn payload_err(msg_type: &str, payload: &str) -> DecodeError {
    let text = format!(r#"{{"type":"{msg_type}","from":"a","to":"b","ts":1,"payload":{payload}}}"#);
    decode(text.as_bytes()).unwrap().message().unwrap_err()
}

#[test]
fn payloads_that_do_not_fit_their_type() {
    let cases = [
        ("MSG_DIRECT", r#"{}"#, MsgType::MsgDirect, "ciphertext"),
        (
            "MSG_DIRECT",
            r#"{"ciphertext":5}"#,
            MsgType::MsgDirect,
            "string",
        ),
        (
            "SERVER_HELLO_JOIN",
            r#"{"host":"h","port":70000,"pubkey":"k"}"#,
            MsgType::ServerHelloJoin,
            "port",
        ),
        (
            "SERVER_HELLO_JOIN",
            r#"{"host":"h","port":-1,"pubkey":"k"}"#,
            MsgType::ServerHelloJoin,
            "port",
        ),
        (
            "SERVER_WELCOME",
            r#"{"servers":[]}"#,
            MsgType::ServerWelcome,
            "assigned_id",
        ),
        (
            "SERVER_WELCOME",
            r#"{"assigned_id":"x","servers":{}}"#,
            MsgType::ServerWelcome,
            "sequence",
        ),
        (
            "FILE_START",
            r#"{"file_id":"f","name":"n","size":1,"mode":"group"}"#,
            MsgType::FileStart,
            "group",
        ),
        (
            "FILE_CHUNK",
            r#"{"file_id":"f","index":1.5,"ciphertext":"c"}"#,
            MsgType::FileChunk,
            "integer",
        ),
        (
            "PUBLIC_CHANNEL_ADD",
            r#"{"add":["u"]}"#,
            MsgType::PublicChannelAdd,
            "if_version",
        ),
        ("ERROR", r#"{"detail":"d"}"#, MsgType::Error, "code"),
        ("CMD_LIST", r#"[]"#, MsgType::Unknown(String::new()), ""),
    ];
    for (name, payload, msg_type, needle) in cases {
        if payload == "[]" {
            // Not an object at all: refused at decode time, before typing.
            let text =
                format!(r#"{{"type":"{name}","from":"a","to":"b","ts":1,"payload":{payload}}}"#);
            assert_eq!(err(&text).kind(), "wrong_type");
            continue;
        }
        match payload_err(name, payload) {
            DecodeError::InvalidPayload {
                msg_type: got,
                reason,
            } => {
                assert_eq!(got, msg_type, "{name} {payload}");
                assert!(reason.contains(needle), "{name} {payload}: {reason}");
            }
            other => panic!("{name} {payload}: {other:?}"),
        }
    }
    // A hostile value quoted by serde is cut short, so it cannot flood an ERROR detail.
    let long = "z".repeat(100_000);
    let e = payload_err(
        "FILE_START",
        &format!(r#"{{"file_id":"f","name":"n","size":1,"mode":"{long}"}}"#),
    );
    let DecodeError::InvalidPayload { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.len() <= DecodeError::MAX_REASON_BYTES + '…'.len_utf8());
    assert!(e.to_string().len() < 250);
}

#[test]
fn errors_have_stable_kinds_and_readable_messages() {
    let e = DecodeError::TooLarge { len: 2, max: 1 };
    assert_eq!(e.kind(), "too_large");
    assert_eq!(e.to_string(), "frame of 2 bytes exceeds the limit of 1");
    assert_eq!(
        err(r#"{"type":"ACK","from":"a","to":"b"}"#).to_string(),
        "missing field `ts`"
    );
    assert_eq!(
        err("{\"type\":").to_string(),
        "invalid JSON at line 1 column 8: unexpected end of input"
    );
    assert_eq!(
        payload_err("ACK", "{}").to_string(),
        "invalid ACK payload: missing field `msg_ref`"
    );
}

/// A valid frame and an edit: replace, insert or delete one byte.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![DM, WELCOME, RAW_UTF8]),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    )
        .prop_map(|(frame, edits)| {
            let mut bytes = frame.as_bytes().to_vec();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len().max(1)).min(bytes.len());
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ => {}
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = exercise(&bytes);
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[{}\[\]":,0-9a-zA-Z_\\ .eE+-]{0,200}"#) {
        let _ = exercise(text.as_bytes());
        let _ = json::parse(text.as_bytes(), &Limits::default()).map(|v| json::canonical(&v));
    }

    #[test]
    fn edited_frames_never_panic(bytes in mutated_frame()) {
        let _ = exercise(&bytes);
    }
}
