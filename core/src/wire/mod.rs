//! The SOCP v1.3 wire layer: envelopes, typed payloads, canonical JSON,
//! base64url, error codes and decoding limits.
//!
//! # Strict in what we send, liberal in what we accept
//!
//! SOCP v1.3 (docs/socp-1.3.md) is underspecified and its implementations
//! disagree (its §2). This layer sends exactly one form of everything and
//! reads every form seen in the field:
//!
//! | we send | we also accept |
//! | --- | --- |
//! | canonical JSON, no newline ([`json::canonical`], [`Envelope::encode`]) | any JSON whitespace, a trailing `\n`/`\r\n` |
//! | `ts` as an integer | `ts` as a string of digits; integer fields in payloads likewise |
//! | `sig` omitted when unsigned | `sig` absent, `null` or `""` |
//! | `payload` always | `payload` absent or `null` (read as `{}`); a bare `{"type":"CTRL_CLOSE"}` |
//! | base64url without padding ([`b64`]) | with or without padding |
//! | the six error codes | any code ([`ErrorCode::Other`]) |
//! | known types | any type ([`MsgType::Unknown`], never a decode error) |
//! | SERVER_WELCOME with `servers` and `clients` | `servers` only, `clients` only, impl A's `{server_id, server_pub, snapshot}` |
//! | USER_ADVERTISE with `pubkey` | the key in `meta.pubkey` (impl C) or absent |
//! | HEARTBEAT `{}` | any payload (`{now}`, `{server_type}`) |
//! | PUBLIC_CHANNEL_KEY_SHARE `shares` | impl A's `wrapped` |
//! | FILE_START with `mode` | `mode` absent (`"dm"`), no `sha256` (impl A) |
//! | LIST_REQUEST / LIST_RESPONSE `{online_users}` | `CMD_LIST`, `USER_LIST`, `LIST` ([`ListDialect`]); `users` |
//! | | impl B's `COMMAND {"command":"/list"}` / `COMMAND_RESPONSE`, impl A's `PUBKEY_REQUEST` / `PUBKEY_RESPONSE` |
//!
//! Unknown payload keys are ignored by the typed view and kept in
//! [`Envelope::payload`], which is what signatures are checked over and what
//! a server forwards. Optional fields we add for our secure profile (`caps`)
//! are omitted when empty, and SOCP peers ignore them.
//!
//! # Bounded decoding
//!
//! [`Envelope::decode`] never panics, checks the frame's size before reading
//! it and its nesting depth before building anything ([`Limits`]), and
//! reports every failure as a [`DecodeError`] with a stable
//! [`kind`](DecodeError::kind) to count by.

pub mod b64;
mod envelope;
mod error;
mod error_code;
mod ids;
pub mod json;
mod limits;
pub mod messages;
mod types;

pub use envelope::Envelope;
pub use error::{DecodeError, JsonErrorKind};
pub use error_code::ErrorCode;
pub use ids::is_uuid_v4;
pub use limits::Limits;
pub use messages::{Message, Payload};
pub use types::{ListDialect, MsgType};
