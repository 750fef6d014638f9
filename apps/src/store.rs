//! A SQLite [`Store`]: what a `socp` server persists between runs (SOCP v1.3
//! §15's `users`, `groups` and `group_members` tables, plus the server's own id
//! and its pinned peers).
//!
//! # Semantics
//!
//! [`SqliteStore`] keeps exactly what
//! [`apply_to_state`](socp_core::server::store::apply_to_state) keeps:
//! [`Store::load_state`] after a sequence of [`StoreOp`]s equals the
//! [`StoredState`] that `apply_to_state` builds from the same sequence, with
//! every list sorted by its id (the tests check this against
//! [`MemoryStore`](socp_core::server::MemoryStore) on random sequences). Two writes the server never emits are handled so:
//!
//! - **One key per user id.** `users` has one `pubkey` column, shared by the
//!   user (`StoreOp::User`) and the account (`StoreOp::Account`) of an id: the
//!   last write of either sets it. The server pins a key to an id and never
//!   writes another (a registration with another key is refused), so the
//!   two agree; `MemoryStore` would keep both if they differed.
//! - **Usernames are unique**, compared ASCII-case-insensitively (as the
//!   server's index compares them). The server refuses a registration under a
//!   taken name before it writes anything, so a clash here is a broken
//!   invariant: the whole batch is refused with [`StoreError::UsernameTaken`]
//!   and nothing of it is applied (`MemoryStore` would keep both accounts).
//!
//! [`Store::apply`] runs a batch in one transaction: all of it or none.
//!
//! # Schema
//!
//! Versioned with `PRAGMA user_version`: [`SCHEMA_VERSION`] is the latest this
//! binary knows, and every migration from the database's version up to it runs
//! in order at [`SqliteStore::open`], each in its own transaction together
//! with the version bump. A database of a newer version is refused
//! ([`StoreError::NewerSchema`]): an older binary must not write into a schema
//! it does not know. Version 1:
//!
//! ```sql
//! users(user_id TEXT PRIMARY KEY, pubkey TEXT NOT NULL,
//!       privkey_store TEXT, pake_password TEXT, kdf_json TEXT,   -- NULL for a plain user
//!       username TEXT UNIQUE COLLATE NOCASE, meta TEXT,
//!       version INTEGER NOT NULL DEFAULT 1,
//!       connected INTEGER NOT NULL DEFAULT 0)  -- 1: StoredState::users has it
//! groups(group_id TEXT PRIMARY KEY, creator_id TEXT NOT NULL, created_at INTEGER,
//!        meta TEXT, version INTEGER NOT NULL)                    -- row 'public'
//! group_members(group_id, member_id, role, wrapped_key, added_at,
//!               PRIMARY KEY (group_id, member_id))
//! server_state(key TEXT PRIMARY KEY, value TEXT NOT NULL)         -- 'server_id'
//! pinned_servers(server_id TEXT PRIMARY KEY, pubkey TEXT NOT NULL,
//!                host TEXT NOT NULL, port INTEGER NOT NULL)
//! ```
//!
//! `connected` is socp's addition to §15's `users`: the table holds plain users
//! and accounts alike, and [`StoredState`] lists the users that connected here
//! ([`StoreOp::User`]) apart from the accounts registered here, which need not
//! have connected. §15 makes `wrapped_key` `NOT NULL`; here it may be `NULL`,
//! since the legacy public channel stores no wraps (see `socp_core::server`'s
//! channel module).
//!
//! Integers: SQLite's are signed 64-bit. A `u64` (versions, `added_at`) is
//! stored as the `i64` with the same bits, so every value reads back exactly;
//! values above `i64::MAX`, which no honest peer sends, look negative to other
//! SQLite readers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use socp_core::server::{AccountRecord, LoadRequest, Store, StoreOp, StoredReply, StoredState};
use socp_core::wire::messages::KdfParams;

/// The latest schema version this binary knows (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a write waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The public channel's row in `groups`.
const PUBLIC_GROUP: &str = "public";

/// The migrations, in order: `MIGRATIONS[i]` takes a database from version `i`
/// to version `i + 1`. Never edit a released one: append a new one.
const MIGRATIONS: &[&str] = &[
    // v1: SOCP §15's tables, socp's server state and pins.
    "
    CREATE TABLE users (
        user_id       TEXT PRIMARY KEY NOT NULL,
        pubkey        TEXT NOT NULL,
        privkey_store TEXT,
        pake_password TEXT,
        kdf_json      TEXT,
        username      TEXT UNIQUE COLLATE NOCASE,
        meta          TEXT,
        version       INTEGER NOT NULL DEFAULT 1,
        connected     INTEGER NOT NULL DEFAULT 0 CHECK (connected IN (0, 1)),
        -- An account has all three account columns; a plain user none.
        CHECK ((privkey_store IS NULL) = (pake_password IS NULL)
           AND (privkey_store IS NULL) = (kdf_json IS NULL)),
        CHECK (privkey_store IS NOT NULL OR username IS NULL)
    );
    CREATE TABLE groups (
        group_id   TEXT PRIMARY KEY NOT NULL,
        creator_id TEXT NOT NULL,
        created_at INTEGER,
        meta       TEXT,
        version    INTEGER NOT NULL
    );
    -- The public channel exists from the start: version 0, created when this
    -- server's database was (when it learned of the channel), by 'system'.
    INSERT INTO groups (group_id, creator_id, created_at, meta, version)
        VALUES ('public', 'system', CAST(unixepoch('subsec') * 1000 AS INTEGER), NULL, 0);
    CREATE TABLE group_members (
        group_id    TEXT NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
        member_id   TEXT NOT NULL,
        role        TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
        wrapped_key TEXT,
        added_at    INTEGER,
        PRIMARY KEY (group_id, member_id)
    ) WITHOUT ROWID;
    CREATE TABLE server_state (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE pinned_servers (
        server_id TEXT PRIMARY KEY NOT NULL,
        pubkey    TEXT NOT NULL,
        host      TEXT NOT NULL,
        port      INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535)
    );
    ",
];

/// What can go wrong with a [`SqliteStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database's folder could not be created.
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened or set up.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer socp, with a schema this one does not know.
    #[error("database schema version {found} is newer than this socp ({known}); upgrade socp")]
    NewerSchema {
        /// The database's version.
        found: i64,
        /// The latest version this binary knows ([`SCHEMA_VERSION`]).
        known: i64,
    },
    /// A migration failed; the database stays at the version before it.
    #[error("cannot migrate the database to schema version {version}: {source}")]
    Migrate {
        /// The version the failed migration leads to.
        version: i64,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// An account write gave a username another account already has (compared
    /// ASCII-case-insensitively). The whole batch was refused.
    #[error(
        "username {username:?} of user {user_id} is already another account's; nothing of the batch was stored"
    )]
    UsernameTaken {
        /// The account that asked for the name.
        user_id: String,
        /// The name.
        username: String,
    },
    /// An account's KDF parameters could not be encoded as JSON.
    #[error("cannot encode an account's KDF parameters as JSON: {0}")]
    KdfJson(#[source] serde_json::Error),
    /// A row holds something no write of this store puts there.
    #[error("corrupt database: {0}")]
    Corrupt(String),
    /// A read this store does not know how to answer (a newer core's request).
    #[error("this store cannot answer {0}")]
    Unsupported(String),
    /// Any other SQLite failure (I/O, a locked or corrupt file).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A [`Store`] in a SQLite database: one file (WAL journal beside it), or
/// memory. See the [module docs](self) for the schema.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating it and its folder if need be) the database at `path`
    /// and brings its schema up to [`SCHEMA_VERSION`]. The journal is WAL with
    /// `synchronous=NORMAL` (a power loss may lose the last writes, never
    /// corrupt the file), foreign keys are enforced, and a locked database is
    /// waited for up to 5 s.
    ///
    /// # Errors
    /// When the folder or the file cannot be created or opened, the database is
    /// of a newer schema ([`StoreError::NewerSchema`]), or a migration fails.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // journal_mode answers with the mode in force; WAL is kept once set.
        let _mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        Self::setup(conn)
    }

    /// A database in memory, gone when the store is dropped (tests, and servers
    /// run without a database file).
    ///
    /// # Errors
    /// When SQLite cannot allocate it (out of memory).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    /// Settings every connection needs, then the migrations.
    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// The schema version of the open database (after [`SqliteStore::open`],
    /// always [`SCHEMA_VERSION`]).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(user_version(&self.conn)?)
    }

    /// The account `user_id`, if it has one (a plain user has none).
    fn account(&self, user_id: &str) -> Result<Option<AccountRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, pubkey, privkey_store, pake_password, kdf_json, username, version
             FROM users WHERE user_id = ?1 AND privkey_store IS NOT NULL",
        )?;
        let row = stmt
            .query_row(params![user_id], AccountRow::from_row)
            .optional()?;
        row.map(AccountRow::into_record).transpose()
    }
}

impl Store for SqliteStore {
    type Error = StoreError;

    fn load_state(&mut self) -> Result<StoredState, StoreError> {
        // One read transaction: a consistent snapshot even if another process writes.
        let tx = self.conn.transaction()?;
        let state = read_state(&tx)?;
        tx.commit()?;
        Ok(state)
    }

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        // IMMEDIATE takes the write lock at once, so a concurrent writer waits
        // (busy_timeout) instead of failing halfway through the batch.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for op in ops {
            apply_op(&tx, op)?;
        }
        // An error above drops `tx`, which rolls everything back.
        tx.commit()?;
        Ok(())
    }

    fn load(&mut self, request: &LoadRequest) -> Result<StoredReply, StoreError> {
        match request {
            LoadRequest::Account { link, user_id } => Ok(StoredReply::Account {
                link: *link,
                record: self.account(user_id)?,
            }),
            other => Err(StoreError::Unsupported(format!("{other:?}"))),
        }
    }
}

/// `PRAGMA user_version`.
fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the schema up to [`SCHEMA_VERSION`], one transaction per migration.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (done, sql) in (0_i64..).zip(MIGRATIONS) {
        if done < found {
            continue;
        }
        let version = done + 1;
        let fail = |source| StoreError::Migrate { version, source };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Another process may have migrated while we waited for the lock.
        let now = user_version(&tx).map_err(fail)?;
        if now > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: now,
                known: SCHEMA_VERSION,
            });
        }
        if now >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

/// A `u64` as the `i64` with the same bits (see the module docs).
fn to_sql(value: u64) -> i64 {
    value.cast_signed()
}

/// The inverse of [`to_sql`].
fn from_sql(value: i64) -> u64 {
    value.cast_unsigned()
}

/// Applies one write inside the batch's transaction, as `apply_to_state` does.
fn apply_op(tx: &Transaction<'_>, op: &StoreOp) -> Result<(), StoreError> {
    match op {
        StoreOp::ServerId { server_id } => {
            tx.prepare_cached(
                "INSERT INTO server_state (key, value) VALUES ('server_id', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![server_id])?;
        }
        StoreOp::User { user_id, pubkey } => {
            // Only the key and the flag: an account's other columns stay.
            tx.prepare_cached(
                "INSERT INTO users (user_id, pubkey, connected) VALUES (?1, ?2, 1)
                 ON CONFLICT (user_id) DO UPDATE SET pubkey = excluded.pubkey, connected = 1",
            )?
            .execute(params![user_id, pubkey])?;
        }
        StoreOp::PublicVersion { version } => {
            // Never backwards; compared as u64 (the column holds their bits).
            let current: Option<i64> = tx
                .prepare_cached("SELECT version FROM groups WHERE group_id = ?1")?
                .query_row(params![PUBLIC_GROUP], |row| row.get(0))
                .optional()?;
            if current.is_none_or(|v| from_sql(v) < *version) {
                tx.prepare_cached(
                    "INSERT INTO groups (group_id, creator_id, created_at, version)
                     VALUES (?1, 'system', CAST(unixepoch('subsec') * 1000 AS INTEGER), ?2)
                     ON CONFLICT (group_id) DO UPDATE SET version = excluded.version",
                )?
                .execute(params![PUBLIC_GROUP, to_sql(*version)])?;
            }
        }
        StoreOp::PublicMember {
            member_id,
            added_at,
        } => {
            // The migration made the row; should it be gone, the member's foreign key needs it.
            tx.prepare_cached(
                "INSERT INTO groups (group_id, creator_id, created_at, version)
                 VALUES (?1, 'system', CAST(unixepoch('subsec') * 1000 AS INTEGER), 0)
                 ON CONFLICT (group_id) DO NOTHING",
            )?
            .execute(params![PUBLIC_GROUP])?;
            tx.prepare_cached(
                "INSERT INTO group_members (group_id, member_id, role, added_at)
                 VALUES (?1, ?2, 'member', ?3)
                 ON CONFLICT (group_id, member_id) DO NOTHING",
            )?
            .execute(params![PUBLIC_GROUP, member_id, to_sql(*added_at)])?;
        }
        StoreOp::PinServer {
            server_id,
            pubkey,
            host,
            port,
        } => {
            tx.prepare_cached(
                "INSERT INTO pinned_servers (server_id, pubkey, host, port) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (server_id) DO UPDATE
                 SET pubkey = excluded.pubkey, host = excluded.host, port = excluded.port",
            )?
            .execute(params![server_id, pubkey, host, port])?;
        }
        StoreOp::Account(account) => write_account(tx, account)?,
        // A newer core's write this store does not know: nothing to persist.
        _ => {}
    }
    Ok(())
}

/// Upserts an account; `connected` and `meta` stay as they were.
fn write_account(tx: &Transaction<'_>, account: &AccountRecord) -> Result<(), StoreError> {
    let kdf = serde_json::to_string(&account.kdf).map_err(StoreError::KdfJson)?;
    let written = tx
        .prepare_cached(
            "INSERT INTO users (user_id, pubkey, privkey_store, pake_password, kdf_json, username, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (user_id) DO UPDATE SET
                 pubkey = excluded.pubkey, privkey_store = excluded.privkey_store,
                 pake_password = excluded.pake_password, kdf_json = excluded.kdf_json,
                 username = excluded.username, version = excluded.version",
        )?
        .execute(params![
            account.user_id,
            account.pubkey,
            account.privkey_store,
            account.verifier,
            kdf,
            account.username,
            to_sql(account.version),
        ]);
    match written {
        Ok(_) => Ok(()),
        // The user_id conflict is the upsert's; the only other UNIQUE is the username.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(StoreError::UsernameTaken {
                user_id: account.user_id.clone(),
                username: account.username.clone().unwrap_or_default(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Everything stored, every list sorted by id.
fn read_state(conn: &Connection) -> Result<StoredState, StoreError> {
    let server_id = conn
        .prepare_cached("SELECT value FROM server_state WHERE key = 'server_id'")?
        .query_row([], |row| row.get(0))
        .optional()?;
    let users = conn
        .prepare_cached("SELECT user_id, pubkey FROM users WHERE connected = 1 ORDER BY user_id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let public_version = conn
        .prepare_cached("SELECT version FROM groups WHERE group_id = ?1")?
        .query_row(params![PUBLIC_GROUP], |row| row.get::<_, i64>(0))
        .optional()?
        .map_or(0, from_sql);
    let public_members = conn
        .prepare_cached(
            "SELECT member_id, added_at FROM group_members WHERE group_id = ?1 ORDER BY member_id",
        )?
        .query_map(params![PUBLIC_GROUP], |row| {
            let added_at: Option<i64> = row.get(1)?;
            Ok((row.get(0)?, added_at.map_or(0, from_sql)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let servers = conn
        .prepare_cached(
            "SELECT server_id, pubkey, host, port FROM pinned_servers ORDER BY server_id",
        )?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get::<_, i64>(3)?))
        })?
        .map(|row| {
            let (id, key, host, port): (String, String, String, i64) = row?;
            let port = u16::try_from(port).map_err(|_| {
                StoreError::Corrupt(format!("server {id} has port {port}, not a u16"))
            })?;
            Ok((id, key, host, port))
        })
        .collect::<Result<_, StoreError>>()?;
    let accounts = conn
        .prepare_cached(
            "SELECT user_id, pubkey, privkey_store, pake_password, kdf_json, username, version
             FROM users WHERE privkey_store IS NOT NULL ORDER BY user_id",
        )?
        .query_map([], AccountRow::from_row)?
        .map(|row| row?.into_record())
        .collect::<Result<_, StoreError>>()?;
    Ok(StoredState {
        server_id,
        users,
        public_version,
        public_members,
        servers,
        accounts,
    })
}

/// An account's columns, before its KDF JSON is parsed.
struct AccountRow {
    user_id: String,
    pubkey: String,
    privkey_store: String,
    verifier: String,
    kdf_json: String,
    username: Option<String>,
    version: i64,
}

impl AccountRow {
    /// Reads `user_id, pubkey, privkey_store, pake_password, kdf_json, username, version`.
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            user_id: row.get(0)?,
            pubkey: row.get(1)?,
            privkey_store: row.get(2)?,
            verifier: row.get(3)?,
            kdf_json: row.get(4)?,
            username: row.get(5)?,
            version: row.get(6)?,
        })
    }

    fn into_record(self) -> Result<AccountRecord, StoreError> {
        let kdf: KdfParams = serde_json::from_str(&self.kdf_json).map_err(|e| {
            StoreError::Corrupt(format!("account {} has a bad kdf_json: {e}", self.user_id))
        })?;
        Ok(AccountRecord {
            user_id: self.user_id,
            pubkey: self.pubkey,
            privkey_store: self.privkey_store,
            verifier: self.verifier,
            kdf,
            username: self.username,
            version: from_sql(self.version),
        })
    }
}

/// Sorts a [`StoredState`]'s lists as [`Store::load_state`] returns them, so a
/// state built by [`MemoryStore`](socp_core::server::MemoryStore) (in write order) compares equal to one loaded
/// from a [`SqliteStore`].
#[must_use]
pub fn sorted(mut state: StoredState) -> StoredState {
    state.users.sort();
    state.public_members.sort();
    state.servers.sort();
    state.accounts.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    state
}
