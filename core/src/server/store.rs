//! Durable storage, as an adapter provides it.
//!
//! The server never touches storage itself: it emits [`Action::Store`] writes
//! and [`Action::Load`] reads, and starts from a [`StoredState`]. An adapter
//! binds those to a [`Store`]: it calls [`Store::load_state`] once before
//! building the [`Server`](super::Server), hands every write to
//! [`Store::apply`] (in order, batched as it likes) and answers every read
//! through [`Store::load`] and [`Server::handle_stored`](super::Server::handle_stored).
//! The calls block: adapters run them on a thread of their own, off their
//! async executors.
//!
//! [`MemoryStore`] keeps everything in memory (tests, the simulator, and
//! servers run without a database); the `socp` binary has a SQLite store.

use super::{Action, LoadRequest, StoreOp, StoredReply, StoredState};

/// Durable storage for a server. Writes are idempotent upserts; a read sees
/// every write applied before it.
pub trait Store: Send + 'static {
    /// What can go wrong (I/O, a corrupt database).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Everything an earlier run persisted, to start a server from.
    ///
    /// # Errors
    /// When the storage cannot be read.
    fn load_state(&mut self) -> Result<StoredState, Self::Error>;

    /// Persists `ops`, in order, atomically where the storage allows it.
    ///
    /// # Errors
    /// When the storage cannot be written; nothing of `ops` is then applied.
    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error>;

    /// Answers a read.
    ///
    /// # Errors
    /// When the storage cannot be read.
    fn load(&mut self, request: &LoadRequest) -> Result<StoredReply, Self::Error>;
}

/// A [`Store`] in memory: what a run persisted, lost when it ends (or kept by
/// the caller, who can read it back with [`MemoryStore::state`] and start
/// another server from it).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: StoredState,
}

impl MemoryStore {
    /// A store holding `state`.
    #[must_use]
    pub fn new(state: StoredState) -> Self {
        Self { state }
    }

    /// What is stored.
    #[must_use]
    pub fn state(&self) -> &StoredState {
        &self.state
    }

    /// Applies one write.
    pub fn apply_one(&mut self, op: StoreOp) {
        apply_to_state(&mut self.state, op);
    }

    /// Answers one read.
    #[must_use]
    pub fn answer(&self, request: &LoadRequest) -> StoredReply {
        match request {
            LoadRequest::Account { link, user_id } => StoredReply::Account {
                link: *link,
                record: self
                    .state
                    .accounts
                    .iter()
                    .find(|a| a.user_id == *user_id)
                    .cloned(),
            },
        }
    }

    /// Serves a server's storage action at once: a write is applied and gives
    /// `None`, a read gives its reply; other actions give `None`.
    pub fn serve(&mut self, action: &Action) -> Option<StoredReply> {
        match action {
            Action::Store(op) => {
                self.apply_one(op.clone());
                None
            }
            Action::Load(request) => Some(self.answer(request)),
            _ => None,
        }
    }
}

impl Store for MemoryStore {
    type Error = std::convert::Infallible;

    fn load_state(&mut self) -> Result<StoredState, Self::Error> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error> {
        for op in ops {
            self.apply_one(op.clone());
        }
        Ok(())
    }

    fn load(&mut self, request: &LoadRequest) -> Result<StoredReply, Self::Error> {
        Ok(self.answer(request))
    }
}

/// Applies a write to a [`StoredState`] (what the next start will see).
pub fn apply_to_state(stored: &mut StoredState, op: StoreOp) {
    match op {
        StoreOp::ServerId { server_id } => stored.server_id = Some(server_id),
        StoreOp::User { user_id, pubkey } => {
            stored.users.retain(|(id, _)| *id != user_id);
            stored.users.push((user_id, pubkey));
        }
        StoreOp::PublicVersion { version } => {
            stored.public_version = stored.public_version.max(version);
        }
        StoreOp::PublicMember {
            member_id,
            added_at,
        } => {
            if !stored.public_members.iter().any(|(id, _)| *id == member_id) {
                stored.public_members.push((member_id, added_at));
            }
        }
        StoreOp::PinServer {
            server_id,
            pubkey,
            host,
            port,
        } => {
            stored.servers.retain(|(id, ..)| *id != server_id);
            stored.servers.push((server_id, pubkey, host, port));
        }
        StoreOp::Account(account) => {
            stored.accounts.retain(|a| a.user_id != account.user_id);
            stored.accounts.push(account);
        }
    }
}
