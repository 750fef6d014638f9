//! Accounts on the client: register, log in, and fetch the keystore from
//! another machine. The protocol and its security argument are in
//! [`crate::server::accounts`].
//!
//! - [`AuthMode::Hello`]: plain SOCP `USER_HELLO` (unregistered ids, interop).
//! - [`AuthMode::register`]: seals the keys under the password, derives the
//!   password verifier, and on the first link sends `USER_REGISTER`, answers the
//!   challenge by signing it, and becomes [`AuthMode::Login`] once
//!   [`ClientEvent::Registered`] is out.
//! - [`AuthMode::Login`]: `AUTH_HELLO` then the signed challenge, on every
//!   (re)connect, each time with the server's fresh nonce.
//! - A refused login emits [`ClientEvent::LoginFailed`]. Transient refusals
//!   (`NAME_IN_USE` on a login, while the server still holds our old link;
//!   `FORBIDDEN` for an expired challenge; `TIMEOUT`; `RATE_LIMITED`) are
//!   retried on the next link, after the reconnect backoff; the others stop
//!   the client.
//! - [`KeystoreFetcher`]: from a user id (or username) and a password only, it
//!   fetches and opens the sealed keystore, giving the [`UserIdentity`] to build
//!   a [`Client`] with [`AuthMode::Login`].
//!
//! The password never leaves the client: only `HMAC(auth_key, transcript)` does,
//! and at registration `auth_key` itself (the verifier).

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{Client, ClientEvent, IdentityError, LinkState, SessionPhase, UserIdentity};
use crate::crypto::keystore::{
    KeystoreError, KeystoreParams, MAX_M_COST_KIB, MAX_P_COST, MAX_T_COST,
};
use crate::crypto::{hkdf_sha256, hmac_sha256};
use crate::time::Now;
use crate::wire::messages::{
    AuthChallenge, AuthHello, AuthResponse, KdfParams, KeystoreFetch, UserRegister,
    fetch_transcript, login_transcript,
};
use crate::wire::{Envelope, ErrorCode, Limits, Message, b64};

/// HKDF info of the password verifier key.
const AUTH_INFO: &[u8] = b"socp-auth-v1";

/// How a client identifies itself on each new link.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum AuthMode {
    /// Plain `USER_HELLO` (the default; SOCP interop).
    #[default]
    Hello,
    /// Create the account on the first link (then log in on later ones).
    Register(Box<UserRegister>),
    /// Log in to an existing account by signing the server's nonce.
    Login,
}

impl AuthMode {
    /// Prepares a registration of `identity`: seals its keys under `password`
    /// (the `privkey_store`) and derives the verifier with a fresh salt, both
    /// with `params`.
    ///
    /// # Errors
    /// As [`UserIdentity::to_keystore`].
    pub fn register<R: CryptoRng + ?Sized>(
        identity: &UserIdentity,
        password: &[u8],
        username: Option<&str>,
        params: &KeystoreParams,
        rng: &mut R,
    ) -> Result<Self, KeystoreError> {
        let privkey_store = identity.to_keystore(password, params, rng)?;
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let kdf = KdfParams {
            salt: b64::encode(&salt),
            m: u64::from(params.m_cost_kib),
            t: u64::from(params.t_cost),
            p: u64::from(params.p_cost),
        };
        let auth_key = derive_auth_key(password, &kdf)?;
        Ok(Self::Register(Box::new(UserRegister {
            user_id: identity.user_id.clone(),
            pubkey: identity.rsa.public().to_wire(),
            privkey_store,
            verifier: b64::encode(auth_key.as_slice()),
            kdf,
            username: username.map(str::to_owned),
        })))
    }
}

/// `auth_key = HKDF-SHA256(Argon2id(password, salt, m, t, p), "socp-auth-v1")`.
///
/// # Errors
/// [`KeystoreError::ParamsOutOfBounds`] for parameters beyond the keystore's
/// bounds (a hostile server cannot make us burn memory), and
/// [`KeystoreError::Malformed`] for a salt that is not base64url.
pub fn derive_auth_key(
    password: &[u8],
    kdf: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let out_of_bounds = KeystoreError::ParamsOutOfBounds {
        m_cost_kib: kdf.m,
        t_cost: kdf.t,
        p_cost: kdf.p,
    };
    if kdf.m > u64::from(MAX_M_COST_KIB)
        || !(1..=u64::from(MAX_T_COST)).contains(&kdf.t)
        || !(1..=u64::from(MAX_P_COST)).contains(&kdf.p)
    {
        return Err(out_of_bounds);
    }
    let salt = b64::decode(&kdf.salt).map_err(|_| KeystoreError::Malformed)?;
    let narrow = |v: u64| u32::try_from(v).map_err(|_| out_of_bounds.clone());
    let params = Params::new(narrow(kdf.m)?, narrow(kdf.t)?, narrow(kdf.p)?, Some(32))
        .map_err(|_| out_of_bounds.clone())?;
    let mut master = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, &salt, master.as_mut_slice())
        .map_err(|_| KeystoreError::Internal)?;
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(None, master.as_slice(), AUTH_INFO, key.as_mut_slice())
        .map_err(|_| KeystoreError::Internal)?;
    Ok(key)
}

impl Client {
    /// Whether this link is still logging in.
    pub(super) fn logging_in(&self) -> bool {
        matches!(
            self.link,
            LinkState::Up {
                phase: SessionPhase::LoggingIn,
                ..
            }
        )
    }

    /// Sends the first auth frame of a new link: `USER_REGISTER` or `AUTH_HELLO`.
    pub(super) fn start_login(&mut self, now: Now) {
        let msg: Message = match &self.auth {
            AuthMode::Register(reg) => reg.as_ref().clone().into(),
            AuthMode::Login | AuthMode::Hello => AuthHello {
                user_id: Some(self.identity.user_id.clone()),
                username: None,
            }
            .into(),
        };
        let env = Envelope::new(self.user_id(), "server", now.unix_ms, msg);
        self.send_env(&env);
    }

    /// A frame while logging in. Returns whether it was an auth frame.
    pub(super) fn on_login_frame(&mut self, now: Now, msg: &Message) -> bool {
        match msg {
            Message::AuthChallenge(ch) => {
                self.answer_challenge(now, ch);
                true
            }
            Message::AuthOk(ok) => {
                if let LinkState::Up { phase, .. } = &mut self.link {
                    *phase = SessionPhase::Ready;
                }
                let event = match core::mem::replace(&mut self.auth, AuthMode::Login) {
                    AuthMode::Register(_) => ClientEvent::Registered {
                        user_id: ok.user_id.clone(),
                        username: ok.username.clone(),
                    },
                    AuthMode::Login | AuthMode::Hello => ClientEvent::LoggedIn {
                        user_id: ok.user_id.clone(),
                    },
                };
                self.events.push_back(event);
                self.session_ready(now);
                true
            }
            Message::Error(err) => {
                self.events.push_back(ClientEvent::LoginFailed {
                    code: err.code.clone(),
                    detail: err.detail.clone().unwrap_or_default(),
                });
                // Transient: our old link is not gone yet (NAME_IN_USE on a
                // login), a challenge that expired, a rate limit: the server
                // closes the link and we redial after the backoff. Anything else
                // (wrong key, unknown account, taken id or name) cannot get
                // better by retrying: stop.
                let transient = match err.code {
                    ErrorCode::NameInUse => matches!(self.auth, AuthMode::Login),
                    ErrorCode::Forbidden | ErrorCode::Timeout | ErrorCode::RateLimited => true,
                    _ => false,
                };
                if !transient {
                    self.close(now);
                }
                true
            }
            _ => false,
        }
    }

    fn answer_challenge(&mut self, now: Now, ch: &AuthChallenge) {
        // A registration retried after a lost AUTH_OK is answered as a login.
        let expected_ok = match &self.auth {
            AuthMode::Register(_) => ch.purpose == "register" || ch.purpose == "login",
            AuthMode::Login | AuthMode::Hello => ch.purpose == "login",
        };
        if ch.user_id != self.identity.user_id || !expected_ok {
            self.dropped(format!(
                "AUTH_CHALLENGE for {} ({}) is not ours",
                ch.user_id, ch.purpose
            ));
            return;
        }
        let transcript = login_transcript(&ch.purpose, &ch.server_id, &ch.user_id, &ch.nonce);
        let sig = match self.identity.rsa.sign_pss(&mut self.rng, &transcript) {
            Ok(sig) => b64::encode(&sig),
            Err(e) => return self.dropped(format!("cannot sign the login challenge: {e}")),
        };
        let resp = AuthResponse {
            user_id: ch.user_id.clone(),
            nonce: ch.nonce.clone(),
            sig,
        };
        let env = Envelope::new(self.user_id(), "server", now.unix_ms, resp);
        self.send_env(&env);
    }
}

/// What a [`KeystoreFetcher`] wants next.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchStep {
    /// Send this frame to the server.
    Send(Vec<u8>),
    /// Nothing to do; wait for the next frame.
    Wait,
    /// The keystore is fetched and opened. Close the link; build a
    /// [`Client`] with this identity and [`AuthMode::Login`].
    Done(Box<UserIdentity>),
    /// The server refused (`INVALID_SIG` for a wrong password, `USER_NOT_FOUND`, ...).
    Refused {
        /// The server's error code.
        code: ErrorCode,
        /// Its explanation.
        detail: String,
    },
    /// The keystore arrived but did not open.
    Failed(IdentityError),
}

/// Fetches an account's sealed keystore with only its user id (or username)
/// and password, on a link of its own (sans-IO, like [`Client`]).
pub struct KeystoreFetcher {
    hello: AuthHello,
    password: Zeroizing<Vec<u8>>,
    user_id: Option<String>,
}

impl core::fmt::Debug for KeystoreFetcher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeystoreFetcher")
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

impl KeystoreFetcher {
    /// A fetch for the account named `who`: a UUIDv4 is taken as a user id,
    /// anything else as a username.
    #[must_use]
    pub fn new(who: &str, password: &[u8]) -> Self {
        let is_id = crate::wire::is_uuid_v4(who);
        Self {
            hello: AuthHello {
                user_id: is_id.then(|| who.to_owned()),
                username: (!is_id).then(|| who.to_owned()),
            },
            password: Zeroizing::new(password.to_vec()),
            user_id: None,
        }
    }

    /// The first frame to send once the link is up (`AUTH_HELLO`).
    #[must_use]
    pub fn hello_frame(&self, now: Now) -> Vec<u8> {
        let from = self.hello.user_id.clone().unwrap_or_default();
        Envelope::new(from, "server", now.unix_ms, self.hello.clone()).encode()
    }

    /// A frame from the server.
    pub fn handle_frame(&mut self, now: Now, frame: &[u8]) -> FetchStep {
        let Ok(env) = Envelope::decode(frame, &Limits::default()) else {
            return FetchStep::Wait;
        };
        match env.message() {
            Ok(Message::AuthChallenge(ch)) if self.user_id.is_none() => {
                let Some(kdf) = &ch.kdf else {
                    return FetchStep::Wait;
                };
                let key = match derive_auth_key(&self.password, kdf) {
                    Ok(key) => key,
                    Err(e) => return FetchStep::Failed(IdentityError::Keystore(e)),
                };
                let transcript = fetch_transcript(&ch.server_id, &ch.user_id, &ch.nonce);
                let proof = hmac_sha256(key.as_slice(), &transcript);
                self.user_id = Some(ch.user_id.clone());
                let fetch = KeystoreFetch {
                    user_id: ch.user_id.clone(),
                    nonce: ch.nonce.clone(),
                    proof: b64::encode(&proof),
                };
                FetchStep::Send(Envelope::new(ch.user_id, "server", now.unix_ms, fetch).encode())
            }
            Ok(Message::Keystore(ks)) => {
                match UserIdentity::from_keystore(&self.password, &ks.privkey_store) {
                    Ok(id) if Some(&id.user_id) == self.user_id.as_ref() => {
                        FetchStep::Done(Box::new(id))
                    }
                    Ok(_) => FetchStep::Failed(IdentityError::Malformed),
                    Err(e) => FetchStep::Failed(e),
                }
            }
            Ok(Message::Error(err)) => FetchStep::Refused {
                code: err.code,
                detail: err.detail.unwrap_or_default(),
            },
            _ => FetchStep::Wait,
        }
    }
}
