//! Typed payloads, one struct per message type, and the [`Message`] enum.
//!
//! Liberal in what we accept: unknown payload keys are ignored, fields that
//! implementations omit have defaults, integers may arrive as digit strings,
//! and the §2 field-name variants are read through aliases. Strict in what we
//! send: the spec's names, integers as integers, optional fields omitted when
//! empty.

mod accounts;
mod channel;
mod control;
mod directory;
mod files;
mod lenient;
mod server;
mod user;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use accounts::{
    AuthChallenge, AuthHello, AuthOk, AuthResponse, KdfParams, Keystore, KeystoreFetch,
    UserRegister, fetch_transcript, login_transcript,
};
pub use channel::{
    ChannelWrap, KeyShare, MsgPublicChannel, PublicChannelAdd, PublicChannelKeyShare,
    PublicChannelUpdated,
};
pub use control::{Ack, CtrlClose, ErrorMsg};
pub use directory::{
    Command, CommandResponse, ListRequest, ListResponse, PubkeyRequest, PubkeyResponse,
};
pub use files::{FileChunk, FileEnd, FileMode, FileStart};
pub(crate) use lenient::digits_to_u64;
pub use server::{
    ClientInfo, Heartbeat, SecureHandshake, SecureOffer, SecureRecord, ServerAnnounce,
    ServerDeliver, ServerGoodbye, ServerHelloJoin, ServerHelloLink, ServerInfo, ServerWelcome,
    UserAdvertise, UserRemove,
};
pub use user::{MsgDirect, UserDeliver, UserHello};

use super::error::DecodeError;
use super::types::{ListDialect, MsgType};

mod sealed {
    pub trait Sealed {}
}

/// A typed payload: one of this module's structs, tied to its message type.
///
/// Sealed: the set of typed payloads is this crate's. Frames of other types
/// are built as an [`Envelope`](super::Envelope) with [`MsgType::Unknown`]
/// and a raw payload map.
pub trait Payload: Serialize + DeserializeOwned + Into<Message> + sealed::Sealed {
    /// The type this payload is sent as.
    const TYPE: MsgType;

    /// Whether an envelope of type `msg_type` carries this payload (all
    /// `/list` dialects carry [`ListRequest`]).
    fn is_carried_by(msg_type: &MsgType) -> bool;

    /// This payload as a JSON object, as sent on the wire.
    fn to_map(&self) -> Map<String, Value> {
        to_map(self)
    }
}

/// Serializes one of our payload structs. They all serialize to objects with
/// string keys, without fail (tests round-trip every one); the empty map is a
/// fallback that cannot be reached.
fn to_map<P: Serialize + ?Sized>(payload: &P) -> Map<String, Value> {
    match serde_json::to_value(payload) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Reads payload `P` from an envelope of type `msg_type`.
pub(crate) fn decode_payload<P: Payload>(
    msg_type: &MsgType,
    payload: &Map<String, Value>,
) -> Result<P, DecodeError> {
    P::deserialize(payload).map_err(|err| DecodeError::invalid_payload(msg_type.clone(), &err))
}

macro_rules! messages {
    ($( $(#[$doc:meta])* $variant:ident($payload:ident) => $ty:expr, $pat:pat ),* $(,)?) => {
        /// A decoded payload, typed by the envelope's `type`.
        ///
        /// Get one from [`Envelope::message`](super::Envelope::message);
        /// build an envelope from one with
        /// [`Envelope::new`](super::Envelope::new).
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Message {
            $( $(#[$doc])* $variant($payload), )*
            /// A type this crate does not know; the payload stays in the envelope.
            Unknown {
                /// The type name as received.
                msg_type: String,
            },
        }

        $(
            impl sealed::Sealed for $payload {}

            impl Payload for $payload {
                const TYPE: MsgType = $ty;

                fn is_carried_by(msg_type: &MsgType) -> bool {
                    matches!(msg_type, $pat)
                }
            }

            impl From<$payload> for Message {
                fn from(payload: $payload) -> Self {
                    Self::$variant(payload)
                }
            }
        )*

        impl Message {
            /// The type this message is sent as. `/list` requests are sent as
            /// `LIST_REQUEST`; an [`Message::Unknown`] keeps its name.
            #[must_use]
            pub fn msg_type(&self) -> MsgType {
                match self {
                    $( Self::$variant(_) => $ty, )*
                    Self::Unknown { msg_type } => MsgType::Unknown(msg_type.clone()),
                }
            }

            /// The payload as a JSON object, as sent on the wire (`{}` for
            /// [`Message::Unknown`], which has no typed payload).
            #[must_use]
            pub fn to_map(&self) -> Map<String, Value> {
                match self {
                    $( Self::$variant(payload) => to_map(payload), )*
                    Self::Unknown { .. } => Map::new(),
                }
            }

            /// Reads the payload of an envelope of type `msg_type`.
            pub(crate) fn decode(
                msg_type: &MsgType,
                payload: &Map<String, Value>,
            ) -> Result<Self, DecodeError> {
                match msg_type {
                    $( $pat => decode_payload(msg_type, payload).map(Self::$variant), )*
                    MsgType::Unknown(name) => Ok(Self::Unknown { msg_type: name.clone() }),
                }
            }
        }
    };
}

messages! {
    /// `SERVER_HELLO_JOIN`.
    ServerHelloJoin(ServerHelloJoin) => MsgType::ServerHelloJoin, MsgType::ServerHelloJoin,
    /// `SERVER_WELCOME`.
    ServerWelcome(ServerWelcome) => MsgType::ServerWelcome, MsgType::ServerWelcome,
    /// `SERVER_ANNOUNCE`.
    ServerAnnounce(ServerAnnounce) => MsgType::ServerAnnounce, MsgType::ServerAnnounce,
    /// `SERVER_HELLO_LINK`.
    ServerHelloLink(ServerHelloLink) => MsgType::ServerHelloLink, MsgType::ServerHelloLink,
    /// `SERVER_GOODBYE`.
    ServerGoodbye(ServerGoodbye) => MsgType::ServerGoodbye, MsgType::ServerGoodbye,
    /// `USER_ADVERTISE`.
    UserAdvertise(UserAdvertise) => MsgType::UserAdvertise, MsgType::UserAdvertise,
    /// `USER_REMOVE`.
    UserRemove(UserRemove) => MsgType::UserRemove, MsgType::UserRemove,
    /// `SERVER_DELIVER`.
    ServerDeliver(ServerDeliver) => MsgType::ServerDeliver, MsgType::ServerDeliver,
    /// `HEARTBEAT`.
    Heartbeat(Heartbeat) => MsgType::Heartbeat, MsgType::Heartbeat,
    /// `USER_HELLO`.
    UserHello(UserHello) => MsgType::UserHello, MsgType::UserHello,
    /// `MSG_DIRECT`.
    MsgDirect(MsgDirect) => MsgType::MsgDirect, MsgType::MsgDirect,
    /// `USER_DELIVER`.
    UserDeliver(UserDeliver) => MsgType::UserDeliver, MsgType::UserDeliver,
    /// `MSG_PUBLIC_CHANNEL`.
    MsgPublicChannel(MsgPublicChannel) => MsgType::MsgPublicChannel, MsgType::MsgPublicChannel,
    /// `PUBLIC_CHANNEL_ADD`.
    PublicChannelAdd(PublicChannelAdd) => MsgType::PublicChannelAdd, MsgType::PublicChannelAdd,
    /// `PUBLIC_CHANNEL_UPDATED`.
    PublicChannelUpdated(PublicChannelUpdated) => MsgType::PublicChannelUpdated, MsgType::PublicChannelUpdated,
    /// `PUBLIC_CHANNEL_KEY_SHARE`.
    PublicChannelKeyShare(PublicChannelKeyShare) => MsgType::PublicChannelKeyShare, MsgType::PublicChannelKeyShare,
    /// `FILE_START`.
    FileStart(FileStart) => MsgType::FileStart, MsgType::FileStart,
    /// `FILE_CHUNK`.
    FileChunk(FileChunk) => MsgType::FileChunk, MsgType::FileChunk,
    /// `FILE_END`.
    FileEnd(FileEnd) => MsgType::FileEnd, MsgType::FileEnd,
    /// `ACK`.
    Ack(Ack) => MsgType::Ack, MsgType::Ack,
    /// `ERROR`.
    Error(ErrorMsg) => MsgType::Error, MsgType::Error,
    /// `CTRL_CLOSE`.
    CtrlClose(CtrlClose) => MsgType::CtrlClose, MsgType::CtrlClose,
    /// A `/list` request in any dialect (`LIST_REQUEST`, `CMD_LIST`,
    /// `USER_LIST`, `LIST`); the envelope's type says which.
    ListRequest(ListRequest) => MsgType::ListRequest(ListDialect::ListRequest), MsgType::ListRequest(_),
    /// `LIST_RESPONSE`.
    ListResponse(ListResponse) => MsgType::ListResponse, MsgType::ListResponse,
    /// `COMMAND`.
    Command(Command) => MsgType::Command, MsgType::Command,
    /// `COMMAND_RESPONSE`.
    CommandResponse(CommandResponse) => MsgType::CommandResponse, MsgType::CommandResponse,
    /// `PUBKEY_REQUEST`.
    PubkeyRequest(PubkeyRequest) => MsgType::PubkeyRequest, MsgType::PubkeyRequest,
    /// `PUBKEY_RESPONSE`.
    PubkeyResponse(PubkeyResponse) => MsgType::PubkeyResponse, MsgType::PubkeyResponse,
    /// `AUTH_HELLO` (accounts).
    AuthHello(AuthHello) => MsgType::AuthHello, MsgType::AuthHello,
    /// `AUTH_CHALLENGE` (accounts).
    AuthChallenge(AuthChallenge) => MsgType::AuthChallenge, MsgType::AuthChallenge,
    /// `AUTH_RESPONSE` (accounts).
    AuthResponse(AuthResponse) => MsgType::AuthResponse, MsgType::AuthResponse,
    /// `AUTH_OK` (accounts).
    AuthOk(AuthOk) => MsgType::AuthOk, MsgType::AuthOk,
    /// `USER_REGISTER` (accounts).
    UserRegister(UserRegister) => MsgType::UserRegister, MsgType::UserRegister,
    /// `KEYSTORE_FETCH` (accounts).
    KeystoreFetch(KeystoreFetch) => MsgType::KeystoreFetch, MsgType::KeystoreFetch,
    /// `KEYSTORE` (accounts).
    Keystore(Keystore) => MsgType::Keystore, MsgType::Keystore,
    /// `SECURE_HANDSHAKE` (secure links).
    SecureHandshake(SecureHandshake) => MsgType::SecureHandshake, MsgType::SecureHandshake,
    /// `SECURE` (secure links).
    Secure(SecureRecord) => MsgType::Secure, MsgType::Secure,
}
