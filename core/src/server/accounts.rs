//! Accounts: register, log in, fetch the keystore (SOCP v1.3 §1.10's "sign a
//! nonce from the directory" login model, with the `users` table's `pubkey`,
//! `privkey_store` and `pake_password` columns).
//!
//! # Protocol (all on a fresh link, before it has a role)
//!
//! ```text
//! login:     AUTH_HELLO {user_id | username}
//!         ←  AUTH_CHALLENGE {user_id, nonce, expires_ms, server_id, purpose:"login", kdf}
//!            AUTH_RESPONSE {user_id, nonce, sig}
//!         ←  AUTH_OK {user_id, username?}, then the roster as after USER_HELLO
//! register:  USER_REGISTER {user_id, pubkey, privkey_store, verifier, kdf, username?}
//!         ←  AUTH_CHALLENGE {..., purpose:"register"}
//!            AUTH_RESPONSE (proves possession of the key) → account stored, AUTH_OK
//! fetch:     AUTH_HELLO ← AUTH_CHALLENGE (login, with kdf)
//!            KEYSTORE_FETCH {user_id, nonce, proof}
//!         ←  KEYSTORE {privkey_store}, then a fresh AUTH_CHALLENGE to log in with
//! ```
//!
//! - `sig` is RSA-PSS over [`login_transcript`]`(purpose, server_id, user_id,
//!   nonce)`: a signature is bound to this server, this purpose and this nonce.
//! - The nonce (32 bytes from the server's CSPRNG) is bound to the link it was
//!   issued on, expires after [`CHALLENGE_TTL`], and is consumed by the first
//!   `AUTH_RESPONSE` or `KEYSTORE_FETCH` that names it, whatever the outcome.
//!   Only the link's own frames can replace it. So a captured response cannot be
//!   replayed (on this link or another), and nobody can overwrite someone else's
//!   challenge (the flaws of seed 000's login, seed-systems.md A.1).
//! - Errors: unknown account `USER_NOT_FOUND`; bad signature `INVALID_SIG`
//!   ("login signature does not verify"); missing, used, mismatched or expired
//!   nonce `FORBIDDEN` ("challenge expired or already used"); id or username
//!   taken `NAME_IN_USE`; bad key or user id `BAD_KEY`; malformed registration
//!   `BAD_FRAME`. Every failure closes the link (1008): one guess per link.
//! - A `USER_REGISTER` for an id already registered with the same key is a
//!   retry (the first `AUTH_OK` was lost): it gets a login challenge instead,
//!   and the stored account is left as it was. Another key → `NAME_IN_USE`.
//! - A `USER_HELLO` for a registered id is refused (`FORBIDDEN`): nobody takes a
//!   registered id over with a bare hello. Unregistered ids keep plain SOCP
//!   `USER_HELLO` (interop).
//! - Accounts are per home server: a user logs in at the server holding its
//!   account (as in SOCP, where a user's home server vouches for it).
//!
//! # The password
//!
//! The password never leaves the client. The client derives
//! `auth_key = HKDF-SHA256(Argon2id(password, kdf.salt, m, t, p), info
//! "socp-auth-v1")` with a per-account salt separate from the keystore's, and
//! registers `verifier = auth_key` (SOCP `pake_password`). To fetch the keystore
//! from another machine it sends `HMAC-SHA256(auth_key, fetch_transcript)`; the
//! server checks it in constant time.
//!
//! What leaks:
//! - A stolen DB gives the sealed keystores (offline guessing, one Argon2id per
//!   guess, as the keystore is designed for) and the verifiers. A verifier lets
//!   its holder fetch the keystore, which the thief already has: it does not let
//!   anyone log in, which needs the RSA key inside the keystore.
//! - An eavesdropper on plain `ws://` sees the nonce, the proof and the sealed
//!   keystore: the same offline Argon2id guessing, nothing more. It cannot replay
//!   a response (single-use, link-bound nonce). Use `wss://` all the same.
//! - An active man in the middle on plain `ws://` (or a hostile server the
//!   client was pointed at) can relay a genuine challenge to the client and its
//!   answer back, and so log in once as the user: the client does not know the
//!   server's id in advance, so it cannot check `server_id`. `wss://` (or a
//!   pinned server id in the client config, future work) closes that.
//! - Online password guessing costs one link per guess (every failure closes
//!   the link), and is throttled per account and per address (the `throttle`
//!   module): `RATE_LIMITED` past 5 outstanding wrong passwords per account and
//!   20 failed logins per address, one forgiven per minute (configurable).
//!
//! # Storage
//!
//! Accounts are written with [`StoreOp::Account`] and read back on demand: an
//! `AUTH_HELLO` emits [`Action::Load`]`(`[`LoadRequest::Account`]`)`,
//! and the challenge goes out when the adapter answers with
//! [`Server::handle_stored`]. The record then travels with the link's challenge
//! (the `AUTH_RESPONSE` and `KEYSTORE_FETCH` checks need no second load) and is
//! dropped with it. In memory the server keeps only an index: the registered
//! ids and the usernames (for `NAME_IN_USE` and the `USER_HELLO` policy, which
//! must answer at once), rebuilt at start from
//! [`StoredState::accounts`](super::StoredState::accounts).

use core::time::Duration;

use rand_core::Rng;

use super::links::Role;
use super::{Action, CLOSE_POLICY, LinkId, LoadRequest, Server, StoreOp, StoredReply};
use crate::crypto::mac::verify_hmac_sha256;
use crate::crypto::rsa::RsaPublic;
use crate::time::{Instant, Now};
use crate::wire::messages::{
    AuthChallenge, AuthHello, AuthOk, AuthResponse, KdfParams, Keystore, KeystoreFetch,
    UserRegister, fetch_transcript, login_transcript,
};
use crate::wire::{ErrorCode, b64, is_uuid_v4};

/// How long a challenge nonce stays valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(30);
/// Most challenges issued on one link.
const MAX_CHALLENGES_PER_LINK: u8 = 4;
/// Largest `privkey_store` accepted.
const MAX_STORE_LEN: usize = 64 * 1024;
/// Longest username, in bytes.
pub const MAX_USERNAME_LEN: usize = 32;

/// One account (a row of SOCP's `users` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The user id (UUIDv4).
    pub user_id: String,
    /// The RSA-4096 key, wire encoding.
    pub pubkey: String,
    /// The password-sealed keystore.
    pub privkey_store: String,
    /// The password verifier (`auth_key`, base64url).
    pub verifier: String,
    /// How the verifier was derived.
    pub kdf: KdfParams,
    /// The unique username, if any.
    pub username: Option<String>,
    /// Bumped on every change.
    pub version: u64,
}

/// Why a challenge was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The account, as loaded.
    Login(Box<AccountRecord>),
    /// The account to create once the key is proved.
    Register(Box<AccountRecord>),
}

impl Purpose {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Login(_) => "login",
            Self::Register(_) => "register",
        }
    }
}

/// An outstanding challenge on a link.
#[derive(Debug, Clone)]
pub(super) struct Challenge {
    user_id: String,
    nonce: String,
    expires: Instant,
    purpose: Purpose,
}

/// The account index and outstanding challenges.
#[derive(Debug, Default)]
pub(super) struct Accounts {
    /// Registered user ids.
    ids: std::collections::BTreeSet<String>,
    /// Lower-cased username → user id.
    by_name: std::collections::BTreeMap<String, String>,
    /// Links waiting for their account to load.
    loading: std::collections::BTreeSet<LinkId>,
    challenges: std::collections::BTreeMap<LinkId, Challenge>,
    /// Challenges issued per link.
    issued: std::collections::BTreeMap<LinkId, u8>,
}

impl Accounts {
    /// Adds an account to the index.
    pub(super) fn index(&mut self, user_id: &str, username: Option<&str>) {
        if let Some(name) = username {
            self.by_name.insert(name.to_lowercase(), user_id.to_owned());
        }
        self.ids.insert(user_id.to_owned());
    }

    pub(super) fn is_registered(&self, user_id: &str) -> bool {
        self.ids.contains(user_id)
    }

    fn name_taken(&self, name: &str) -> bool {
        self.by_name.contains_key(&name.to_lowercase())
    }

    /// Forgets a closed link's challenge.
    pub(super) fn link_closed(&mut self, link: LinkId) {
        self.challenges.remove(&link);
        self.issued.remove(&link);
        self.loading.remove(&link);
    }
}

/// Whether `name` is an acceptable username: 1 to 32 ASCII letters, digits, `_`, `-`, `.`.
#[must_use]
pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USERNAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Server {
    /// Refuses a pending link's auth frame and closes the link.
    fn auth_fail(&mut self, link: LinkId, code: ErrorCode, detail: String) {
        self.reject(link, code, detail);
        self.accounts.link_closed(link);
        self.close(link, CLOSE_POLICY, "authentication failed");
    }

    /// The link's remote address (for the guessing throttle).
    fn remote_of(&self, link: LinkId) -> String {
        self.links
            .get(&link)
            .map(|l| l.remote.clone())
            .unwrap_or_default()
    }

    /// Counts a failed authentication from `link`'s address, then refuses it.
    fn auth_fail_counted(&mut self, link: LinkId, code: ErrorCode, detail: String) {
        let remote = self.remote_of(link);
        let now = self.now.mono;
        self.guesses_by_address.fail(&remote, now);
        self.auth_fail(link, code, detail);
    }

    pub(super) fn on_auth_hello(&mut self, link: LinkId, hello: &AuthHello) {
        let remote = self.remote_of(link);
        if let Some(wait) = self.guesses_by_address.blocked(&remote, self.now.mono) {
            return self.auth_fail(
                link,
                ErrorCode::RateLimited,
                format!(
                    "too many failed logins from this address; retry in {} s",
                    wait.as_secs().max(1)
                ),
            );
        }
        let user = match (&hello.user_id, &hello.username) {
            (Some(id), _) if self.accounts.is_registered(id) => id.clone(),
            (None, Some(name)) => match self.accounts.by_name.get(&name.to_lowercase()) {
                Some(id) => id.clone(),
                None => {
                    return self.auth_fail_counted(
                        link,
                        ErrorCode::UserNotFound,
                        format!("no account named {name}"),
                    );
                }
            },
            (Some(id), _) => {
                return self.auth_fail_counted(
                    link,
                    ErrorCode::UserNotFound,
                    format!("no account {id} on this server"),
                );
            }
            (None, None) => {
                return self.auth_fail(
                    link,
                    ErrorCode::BadFrame,
                    "AUTH_HELLO needs user_id or username".into(),
                );
            }
        };
        if !self.accounts.loading.insert(link) {
            return; // One load at a time per link.
        }
        self.actions.push_back(Action::Load(LoadRequest::Account {
            link,
            user_id: user,
        }));
    }

    /// The adapter's answer to an [`Action::Load`].
    pub fn handle_stored(&mut self, now: Now, reply: StoredReply) {
        self.now = now;
        match reply {
            StoredReply::Account { link, record } => {
                let pending = self.accounts.loading.remove(&link)
                    && self
                        .links
                        .get(&link)
                        .is_some_and(|l| l.role == Role::Pending);
                if !pending {
                    return;
                }
                match record {
                    Some(record) => {
                        let user = record.user_id.clone();
                        self.issue_challenge(now, link, user, Purpose::Login(Box::new(record)));
                    }
                    None => self.auth_fail(
                        link,
                        ErrorCode::UserNotFound,
                        "no such account on this server".into(),
                    ),
                }
            }
        }
    }

    pub(super) fn on_user_register(&mut self, now: Now, link: LinkId, reg: UserRegister) {
        if !is_uuid_v4(&reg.user_id) {
            return self.auth_fail(link, ErrorCode::BadKey, "user id must be a UUIDv4".into());
        }
        let key = match RsaPublic::from_wire(&reg.pubkey) {
            Ok((key, _)) => key.to_wire(),
            Err(e) => return self.auth_fail(link, e.code(), format!("user key refused: {e}")),
        };
        let verifier_ok = b64::decode(&reg.verifier).is_ok_and(|v| v.len() == 32);
        let salt_ok = b64::decode(&reg.kdf.salt).is_ok_and(|s| (16..=64).contains(&s.len()));
        if !verifier_ok
            || !salt_ok
            || reg.privkey_store.is_empty()
            || reg.privkey_store.len() > MAX_STORE_LEN
        {
            return self.auth_fail(
                link,
                ErrorCode::BadFrame,
                "registration needs a 32-byte verifier, a 16..64-byte salt and a keystore of at most 64 KiB".into(),
            );
        }
        if let Some(name) = &reg.username
            && !valid_username(name)
        {
            return self.auth_fail(
                link,
                ErrorCode::BadFrame,
                "a username is 1 to 32 of A-Z a-z 0-9 _ - .".into(),
            );
        }
        // A retried registration (its AUTH_OK was lost with the link): the id is
        // registered with this very key, so it becomes a login; the account is
        // not changed. The key must still be proved.
        if self.accounts.is_registered(&reg.user_id)
            && self.user_keys.get(&reg.user_id) == Some(&key)
        {
            let hello = AuthHello {
                user_id: Some(reg.user_id),
                username: None,
            };
            return self.on_auth_hello(link, &hello);
        }
        if let Err((code, detail)) = self.account_free(&reg.user_id, reg.username.as_deref(), &key)
        {
            return self.auth_fail(link, code, detail);
        }
        let record = AccountRecord {
            user_id: reg.user_id.clone(),
            pubkey: key,
            privkey_store: reg.privkey_store,
            verifier: reg.verifier,
            kdf: reg.kdf,
            username: reg.username,
            version: 1,
        };
        self.issue_challenge(now, link, reg.user_id, Purpose::Register(Box::new(record)));
    }

    /// Whether an account with this id, username and key may be created.
    fn account_free(
        &self,
        user_id: &str,
        username: Option<&str>,
        key: &str,
    ) -> Result<(), (ErrorCode, String)> {
        if self.accounts.is_registered(user_id) {
            return Err((
                ErrorCode::NameInUse,
                format!("user id {user_id} is already registered"),
            ));
        }
        if let Some(name) = username
            && self.accounts.name_taken(name)
        {
            return Err((ErrorCode::NameInUse, format!("username {name} is taken")));
        }
        if self.user_keys.get(user_id).is_some_and(|k| k != key) {
            return Err((
                ErrorCode::BadKey,
                format!("user {user_id} is bound to a different key"),
            ));
        }
        Ok(())
    }

    fn issue_challenge(&mut self, now: Now, link: LinkId, user_id: String, purpose: Purpose) {
        let issued = self.accounts.issued.entry(link).or_insert(0);
        *issued += 1;
        if *issued > MAX_CHALLENGES_PER_LINK {
            return self.auth_fail(
                link,
                ErrorCode::RateLimited,
                "too many challenges on one link".into(),
            );
        }
        let mut nonce = [0u8; 32];
        self.rng.fill_bytes(&mut nonce);
        let nonce = b64::encode(&nonce);
        let expires = now.mono + CHALLENGE_TTL;
        let ttl_ms = u64::try_from(CHALLENGE_TTL.as_millis()).unwrap_or(u64::MAX);
        let kdf = match &purpose {
            Purpose::Login(record) => Some(record.kdf.clone()),
            Purpose::Register(_) => None,
        };
        let msg = AuthChallenge {
            user_id: user_id.clone(),
            nonce: nonce.clone(),
            expires_ms: now.unix_ms.saturating_add(ttl_ms),
            server_id: self.id.clone(),
            purpose: purpose.as_str().to_owned(),
            kdf,
        };
        self.accounts.challenges.insert(
            link,
            Challenge {
                user_id: user_id.clone(),
                nonce,
                expires,
                purpose,
            },
        );
        // The exchange may take as long as the challenge lives.
        let deadline = expires + self.cfg.hello_timeout;
        self.hello_deadlines.retain(|(_, id)| *id != link);
        self.hello_deadlines.insert((deadline, link));
        let frame = self.signed_frame(&user_id, now.unix_ms, msg.into());
        self.send(link, frame);
    }

    /// Takes (consumes) the link's challenge if it matches `user_id` and
    /// `nonce` and has not expired.
    fn take_challenge(
        &mut self,
        now: Now,
        link: LinkId,
        user_id: &str,
        nonce: &str,
    ) -> Option<Challenge> {
        let ch = self.accounts.challenges.remove(&link)?;
        let nonce_ok = crate::crypto::ct_eq(ch.nonce.as_bytes(), nonce.as_bytes());
        (nonce_ok && ch.user_id == user_id && now.mono <= ch.expires).then_some(ch)
    }

    pub(super) fn on_auth_response(&mut self, now: Now, link: LinkId, resp: &AuthResponse) {
        let Some(ch) = self.take_challenge(now, link, &resp.user_id, &resp.nonce) else {
            return self.auth_fail(
                link,
                ErrorCode::Forbidden,
                "challenge expired or already used".into(),
            );
        };
        let user = ch.user_id.clone();
        let (key_wire, username) = match &ch.purpose {
            Purpose::Login(record) | Purpose::Register(record) => {
                (record.pubkey.clone(), record.username.clone())
            }
        };
        let signed = login_transcript(ch.purpose.as_str(), &self.id, &user, &ch.nonce);
        let verified = match (RsaPublic::from_wire(&key_wire), b64::decode(&resp.sig)) {
            (Ok((key, _)), Ok(sig)) => key.verify_pss(&signed, &sig).is_ok(),
            _ => false,
        };
        if !verified {
            return self.auth_fail_counted(
                link,
                ErrorCode::InvalidSig,
                "login signature does not verify".into(),
            );
        }
        if let Purpose::Register(record) = ch.purpose {
            // Re-checked: another link may have registered the id or name meanwhile.
            if let Err((code, detail)) =
                self.account_free(&record.user_id, record.username.as_deref(), &record.pubkey)
            {
                return self.auth_fail(link, code, detail);
            }
            self.accounts
                .index(&record.user_id, record.username.as_deref());
            self.store(StoreOp::Account(*record));
        }
        if !self.user_admissible(link, &user, &key_wire) {
            self.accounts.link_closed(link);
            return;
        }
        self.accounts.link_closed(link);
        let ok = AuthOk {
            user_id: user.clone(),
            username,
        };
        let frame = self.signed_frame(&user, now.unix_ms, ok.into());
        self.send(link, frame);
        self.admit_user(now, link, user, key_wire);
    }

    pub(super) fn on_keystore_fetch(&mut self, now: Now, link: LinkId, fetch: &KeystoreFetch) {
        let ch = self.take_challenge(now, link, &fetch.user_id, &fetch.nonce);
        let Some(Challenge {
            nonce,
            purpose: Purpose::Login(account),
            ..
        }) = ch
        else {
            return self.auth_fail(
                link,
                ErrorCode::Forbidden,
                "challenge expired or already used".into(),
            );
        };
        if let Some(wait) = self.guesses_by_account.blocked(&account.user_id, now.mono) {
            return self.auth_fail(
                link,
                ErrorCode::RateLimited,
                format!(
                    "too many wrong passwords for this account; retry in {} s",
                    wait.as_secs().max(1)
                ),
            );
        }
        let transcript = fetch_transcript(&self.id, &account.user_id, &nonce);
        let ok = match (b64::decode(&account.verifier), b64::decode(&fetch.proof)) {
            (Ok(key), Ok(proof)) => verify_hmac_sha256(&key, &transcript, &proof).is_ok(),
            _ => false,
        };
        if !ok {
            self.guesses_by_account.fail(&account.user_id, now.mono);
            return self.auth_fail_counted(
                link,
                ErrorCode::InvalidSig,
                "keystore proof does not verify (wrong password?)".into(),
            );
        }
        let reply = Keystore {
            user_id: account.user_id.clone(),
            privkey_store: account.privkey_store.clone(),
        };
        let frame = self.signed_frame(&account.user_id, now.unix_ms, reply.into());
        self.send(link, frame);
        let user = account.user_id.clone();
        self.issue_challenge(now, link, user, Purpose::Login(account));
    }

    /// Whether `user` (with `key`, wire encoding) may become this link's user;
    /// refuses (and closes) the link if not.
    pub(super) fn user_admissible(&mut self, link: LinkId, user: &str, key: &str) -> bool {
        if self.local_users.contains_key(user) {
            self.reject(
                link,
                ErrorCode::NameInUse,
                format!("user {user} is already connected here"),
            );
            self.close(link, CLOSE_POLICY, "name in use");
            return false;
        }
        if self.user_keys.get(user).is_some_and(|pinned| pinned != key) {
            self.reject(
                link,
                ErrorCode::BadKey,
                format!("user {user} is bound to a different key"),
            );
            self.close(link, CLOSE_POLICY, "key mismatch");
            return false;
        }
        if !self.links.contains_key(&link) {
            return false;
        }
        matches!(self.links.get(&link).map(|l| &l.role), Some(Role::Pending))
    }
}
