//! Message type names (the envelope's `type`).

use core::fmt;

/// Which of the incompatible `/list` requests a peer sent (socp-1.3.md §2
/// row 10). SOCP v1.3 defines no wire message for `/list`; all of these
/// decode to [`Message::ListRequest`](super::Message::ListRequest) and the
/// dialect tells a server how to answer in kind.
///
/// impl B's `COMMAND {"command": "/list"}` is a different message
/// ([`MsgType::Command`]), since it carries other commands too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ListDialect {
    /// `LIST_REQUEST` (impl A), answered with `LIST_RESPONSE
    /// {"online_users": [sorted ids]}`. What we send.
    ListRequest,
    /// `CMD_LIST` (impl D), answered with `CMD_LIST_RESULT`.
    CmdList,
    /// `USER_LIST` (impl F), answered with `USER_LIST_RESPONSE`.
    UserList,
    /// `LIST` (impl F), answered with `USER_LIST_RESPONSE`.
    List,
}

impl ListDialect {
    /// The request's type name on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ListRequest => "LIST_REQUEST",
            Self::CmdList => "CMD_LIST",
            Self::UserList => "USER_LIST",
            Self::List => "LIST",
        }
    }

    /// The type name this dialect's implementations expect in reply. Only
    /// `LIST_RESPONSE` has a typed payload here
    /// ([`ListResponse`](super::messages::ListResponse)); for the others a server sends
    /// an envelope of [`MsgType::Unknown`] with this name.
    #[must_use]
    pub const fn response_type(self) -> &'static str {
        match self {
            Self::ListRequest => "LIST_RESPONSE",
            Self::CmdList => "CMD_LIST_RESULT",
            Self::UserList | Self::List => "USER_LIST_RESPONSE",
        }
    }
}

/// An envelope's `type`: every SOCP v1.3 type, the §2 variants we accept,
/// and any other name kept verbatim.
///
/// Names are case-sensitive (§1.5). An unknown name is not a decoding error:
/// it parses to [`MsgType::Unknown`] so that a server can answer
/// `ERROR UNKNOWN_TYPE` (or stay silent, for an unknown type from a server).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MsgType {
    /// `SERVER_HELLO_JOIN`: a new server asks an introducer to join (§1.6).
    ServerHelloJoin,
    /// `SERVER_WELCOME`: the introducer's answer with the assigned id and roster.
    ServerWelcome,
    /// `SERVER_ANNOUNCE`: a server announces itself to all servers.
    ServerAnnounce,
    /// `SERVER_HELLO_LINK`: a new server opens a link to a listed server.
    ServerHelloLink,
    /// `SERVER_GOODBYE`: a server leaves the mesh.
    ServerGoodbye,
    /// `USER_ADVERTISE`: presence gossip, a user is online at a server.
    UserAdvertise,
    /// `USER_REMOVE`: presence gossip, a user left a server.
    UserRemove,
    /// `SERVER_DELIVER`: a DM forwarded between servers.
    ServerDeliver,
    /// `HEARTBEAT`: link liveness between servers.
    Heartbeat,
    /// `USER_HELLO`: a user's first frame to its server (§1.7).
    UserHello,
    /// `MSG_DIRECT`: a DM from a user to its server.
    MsgDirect,
    /// `USER_DELIVER`: a DM from a server to the recipient user.
    UserDeliver,
    /// `MSG_PUBLIC_CHANNEL`: a public-channel message.
    MsgPublicChannel,
    /// `PUBLIC_CHANNEL_ADD`: members joined the public channel.
    PublicChannelAdd,
    /// `PUBLIC_CHANNEL_UPDATED`: the public channel's version and key wraps.
    PublicChannelUpdated,
    /// `PUBLIC_CHANNEL_KEY_SHARE`: the channel key wrapped for each member.
    PublicChannelKeyShare,
    /// `FILE_START`: a file transfer's manifest.
    FileStart,
    /// `FILE_CHUNK`: one encrypted piece of a file.
    FileChunk,
    /// `FILE_END`: the end of a file transfer.
    FileEnd,
    /// `ACK`: transport-level acknowledgement.
    Ack,
    /// `ERROR`: an error report with one of the SOCP error codes.
    Error,
    /// `CTRL_CLOSE`: sent before closing a connection.
    CtrlClose,
    /// A `/list` request in one of its dialects (§2 row 10).
    ListRequest(ListDialect),
    /// `LIST_RESPONSE`: impl A's answer to `LIST_REQUEST`.
    ListResponse,
    /// `COMMAND`: impl B's client command, e.g. `{"command": "/list"}`.
    Command,
    /// `COMMAND_RESPONSE`: impl B's answer to `COMMAND`.
    CommandResponse,
    /// `PUBKEY_REQUEST`: impl A's key lookup (§2 row 9).
    PubkeyRequest,
    /// `PUBKEY_RESPONSE`: impl A's answer to `PUBKEY_REQUEST`.
    PubkeyResponse,
    /// `AUTH_HELLO`: accounts (register, login, keystore fetch).
    AuthHello,
    /// `AUTH_CHALLENGE`: accounts (register, login, keystore fetch).
    AuthChallenge,
    /// `AUTH_RESPONSE`: accounts (register, login, keystore fetch).
    AuthResponse,
    /// `AUTH_OK`: accounts (register, login, keystore fetch).
    AuthOk,
    /// `USER_REGISTER`: accounts (register, login, keystore fetch).
    UserRegister,
    /// `KEYSTORE_FETCH`: accounts (register, login, keystore fetch).
    KeystoreFetch,
    /// `KEYSTORE`: accounts (register, login, keystore fetch).
    Keystore,
    /// `SECURE_HANDSHAKE`: a secure-profile handshake message on a link
    /// (socp only; `core::session`).
    SecureHandshake,
    /// `SECURE`: a frame sealed in a secure link's channel (socp only).
    Secure,
    /// Any other type name, kept exactly as received.
    ///
    /// [`MsgType::parse`] never puts a known name here.
    Unknown(String),
}

impl MsgType {
    /// Every known type (all dialects of [`MsgType::ListRequest`] included),
    /// in declaration order.
    pub const KNOWN: &'static [MsgType] = &[
        Self::ServerHelloJoin,
        Self::ServerWelcome,
        Self::ServerAnnounce,
        Self::ServerHelloLink,
        Self::ServerGoodbye,
        Self::UserAdvertise,
        Self::UserRemove,
        Self::ServerDeliver,
        Self::Heartbeat,
        Self::UserHello,
        Self::MsgDirect,
        Self::UserDeliver,
        Self::MsgPublicChannel,
        Self::PublicChannelAdd,
        Self::PublicChannelUpdated,
        Self::PublicChannelKeyShare,
        Self::FileStart,
        Self::FileChunk,
        Self::FileEnd,
        Self::Ack,
        Self::Error,
        Self::CtrlClose,
        Self::ListRequest(ListDialect::ListRequest),
        Self::ListRequest(ListDialect::CmdList),
        Self::ListRequest(ListDialect::UserList),
        Self::ListRequest(ListDialect::List),
        Self::ListResponse,
        Self::Command,
        Self::CommandResponse,
        Self::PubkeyRequest,
        Self::PubkeyResponse,
        Self::AuthHello,
        Self::AuthChallenge,
        Self::AuthResponse,
        Self::AuthOk,
        Self::UserRegister,
        Self::KeystoreFetch,
        Self::Keystore,
        Self::SecureHandshake,
        Self::Secure,
    ];

    /// The type name as it appears on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::ServerHelloJoin => "SERVER_HELLO_JOIN",
            Self::ServerWelcome => "SERVER_WELCOME",
            Self::ServerAnnounce => "SERVER_ANNOUNCE",
            Self::ServerHelloLink => "SERVER_HELLO_LINK",
            Self::ServerGoodbye => "SERVER_GOODBYE",
            Self::UserAdvertise => "USER_ADVERTISE",
            Self::UserRemove => "USER_REMOVE",
            Self::ServerDeliver => "SERVER_DELIVER",
            Self::Heartbeat => "HEARTBEAT",
            Self::UserHello => "USER_HELLO",
            Self::MsgDirect => "MSG_DIRECT",
            Self::UserDeliver => "USER_DELIVER",
            Self::MsgPublicChannel => "MSG_PUBLIC_CHANNEL",
            Self::PublicChannelAdd => "PUBLIC_CHANNEL_ADD",
            Self::PublicChannelUpdated => "PUBLIC_CHANNEL_UPDATED",
            Self::PublicChannelKeyShare => "PUBLIC_CHANNEL_KEY_SHARE",
            Self::FileStart => "FILE_START",
            Self::FileChunk => "FILE_CHUNK",
            Self::FileEnd => "FILE_END",
            Self::Ack => "ACK",
            Self::Error => "ERROR",
            Self::CtrlClose => "CTRL_CLOSE",
            Self::ListRequest(dialect) => dialect.as_str(),
            Self::ListResponse => "LIST_RESPONSE",
            Self::Command => "COMMAND",
            Self::CommandResponse => "COMMAND_RESPONSE",
            Self::PubkeyRequest => "PUBKEY_REQUEST",
            Self::PubkeyResponse => "PUBKEY_RESPONSE",
            Self::AuthHello => "AUTH_HELLO",
            Self::AuthChallenge => "AUTH_CHALLENGE",
            Self::AuthResponse => "AUTH_RESPONSE",
            Self::AuthOk => "AUTH_OK",
            Self::UserRegister => "USER_REGISTER",
            Self::KeystoreFetch => "KEYSTORE_FETCH",
            Self::Keystore => "KEYSTORE",
            Self::SecureHandshake => "SECURE_HANDSHAKE",
            Self::Secure => "SECURE",
            Self::Unknown(name) => name,
        }
    }

    /// Parses a wire type name, case-sensitively. Never fails: names it does
    /// not know become [`MsgType::Unknown`].
    #[must_use]
    pub fn parse(name: &str) -> Self {
        match name {
            "SERVER_HELLO_JOIN" => Self::ServerHelloJoin,
            "SERVER_WELCOME" => Self::ServerWelcome,
            "SERVER_ANNOUNCE" => Self::ServerAnnounce,
            "SERVER_HELLO_LINK" => Self::ServerHelloLink,
            "SERVER_GOODBYE" => Self::ServerGoodbye,
            "USER_ADVERTISE" => Self::UserAdvertise,
            "USER_REMOVE" => Self::UserRemove,
            "SERVER_DELIVER" => Self::ServerDeliver,
            "HEARTBEAT" => Self::Heartbeat,
            "USER_HELLO" => Self::UserHello,
            "MSG_DIRECT" => Self::MsgDirect,
            "USER_DELIVER" => Self::UserDeliver,
            "MSG_PUBLIC_CHANNEL" => Self::MsgPublicChannel,
            "PUBLIC_CHANNEL_ADD" => Self::PublicChannelAdd,
            "PUBLIC_CHANNEL_UPDATED" => Self::PublicChannelUpdated,
            "PUBLIC_CHANNEL_KEY_SHARE" => Self::PublicChannelKeyShare,
            "FILE_START" => Self::FileStart,
            "FILE_CHUNK" => Self::FileChunk,
            "FILE_END" => Self::FileEnd,
            "ACK" => Self::Ack,
            "ERROR" => Self::Error,
            "CTRL_CLOSE" => Self::CtrlClose,
            "LIST_REQUEST" => Self::ListRequest(ListDialect::ListRequest),
            "CMD_LIST" => Self::ListRequest(ListDialect::CmdList),
            "USER_LIST" => Self::ListRequest(ListDialect::UserList),
            "LIST" => Self::ListRequest(ListDialect::List),
            "LIST_RESPONSE" => Self::ListResponse,
            "COMMAND" => Self::Command,
            "COMMAND_RESPONSE" => Self::CommandResponse,
            "PUBKEY_REQUEST" => Self::PubkeyRequest,
            "PUBKEY_RESPONSE" => Self::PubkeyResponse,
            "AUTH_HELLO" => Self::AuthHello,
            "AUTH_CHALLENGE" => Self::AuthChallenge,
            "AUTH_RESPONSE" => Self::AuthResponse,
            "AUTH_OK" => Self::AuthOk,
            "USER_REGISTER" => Self::UserRegister,
            "KEYSTORE_FETCH" => Self::KeystoreFetch,
            "KEYSTORE" => Self::Keystore,
            "SECURE_HANDSHAKE" => Self::SecureHandshake,
            "SECURE" => Self::Secure,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// Whether this is a type this crate knows (not [`MsgType::Unknown`]).
    #[must_use]
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for MsgType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MsgType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_round_trips() {
        for t in MsgType::KNOWN {
            assert_eq!(&MsgType::parse(t.as_str()), t);
            assert!(t.is_known());
        }
        assert_eq!(MsgType::KNOWN.len(), 40);
    }

    #[test]
    fn names_are_case_sensitive_and_unknown_kept() {
        assert_eq!(
            MsgType::parse("msg_direct"),
            MsgType::Unknown("msg_direct".into())
        );
        assert_eq!(MsgType::parse("MSG_BROADCAST").as_str(), "MSG_BROADCAST");
        assert!(!MsgType::parse("").is_known());
    }
}
