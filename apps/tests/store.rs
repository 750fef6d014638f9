//! The SQLite store against the reference semantics (`apply_to_state`, through
//! `MemoryStore`): every op kind, random op sequences, reopening a file,
//! atomic batches, schema versions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use socp_apps::store::{SCHEMA_VERSION, SqliteStore, StoreError, sorted};
use socp_core::server::{
    AccountRecord, LinkId, LoadRequest, MemoryStore, Store, StoreOp, StoredReply, StoredState,
};
use socp_core::wire::messages::KdfParams;

/// A folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "socp-store-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn account(user_id: &str, username: Option<&str>, version: u64) -> AccountRecord {
    AccountRecord {
        user_id: user_id.into(),
        pubkey: format!("key-{user_id}"),
        privkey_store: format!("sealed-{user_id}-{version}"),
        verifier: format!("verifier-{user_id}"),
        kdf: KdfParams {
            salt: "c2FsdHNhbHRzYWx0c2FsdA".into(),
            m: 65_536,
            t: 3,
            p: u64::MAX,
        },
        username: username.map(Into::into),
        version,
    }
}

fn user(user_id: &str) -> StoreOp {
    StoreOp::User {
        user_id: user_id.into(),
        pubkey: format!("key-{user_id}"),
    }
}

/// One op of every kind, some twice (upserts, max, insert-or-ignore).
fn every_op() -> Vec<StoreOp> {
    vec![
        StoreOp::ServerId {
            server_id: "s-old".into(),
        },
        StoreOp::ServerId {
            server_id: "s-1".into(),
        },
        user("u-1"),
        user("u-2"),
        StoreOp::PublicVersion { version: 7 },
        StoreOp::PublicVersion { version: 3 },
        StoreOp::PublicMember {
            member_id: "u-2".into(),
            added_at: 20,
        },
        StoreOp::PublicMember {
            member_id: "u-1".into(),
            added_at: 10,
        },
        StoreOp::PublicMember {
            member_id: "u-1".into(),
            added_at: 99,
        },
        StoreOp::PinServer {
            server_id: "s-2".into(),
            pubkey: "key-s-2".into(),
            host: "10.0.0.1".into(),
            port: 1,
        },
        StoreOp::PinServer {
            server_id: "s-2".into(),
            pubkey: "key-s-2b".into(),
            host: "example.invalid".into(),
            port: 65_535,
        },
        StoreOp::PinServer {
            server_id: "s-0".into(),
            pubkey: "key-s-0".into(),
            host: "localhost".into(),
            port: 0,
        },
        StoreOp::Account(account("u-3", Some("Carol"), 1)),
        StoreOp::Account(account("u-3", Some("carol2"), 2)),
        StoreOp::Account(account("u-4", None, u64::MAX)),
    ]
}

fn memory_state(ops: &[StoreOp]) -> StoredState {
    let mut memory = MemoryStore::default();
    memory.apply(ops).unwrap();
    sorted(memory.state().clone())
}

fn load_account(store: &mut SqliteStore, user_id: &str) -> Option<AccountRecord> {
    let request = LoadRequest::Account {
        link: LinkId(42),
        user_id: user_id.into(),
    };
    match store.load(&request).unwrap() {
        StoredReply::Account { link, record } => {
            assert_eq!(link, LinkId(42));
            record
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

#[test]
fn every_op_kind_round_trips() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(store.load_state().unwrap(), StoredState::default());
    let ops = every_op();
    store.apply(&ops).unwrap();
    let state = store.load_state().unwrap();
    assert_eq!(state, memory_state(&ops));
    // Spelled out, so a bug shared by both stores still shows.
    assert_eq!(state.server_id.as_deref(), Some("s-1"));
    assert_eq!(state.public_version, 7);
    assert_eq!(
        state.public_members,
        vec![("u-1".to_owned(), 10), ("u-2".to_owned(), 20)]
    );
    assert_eq!(state.servers.len(), 2);
    assert_eq!(
        state.servers[1],
        (
            "s-2".into(),
            "key-s-2b".into(),
            "example.invalid".into(),
            65_535
        )
    );
    assert_eq!(
        state.users.len(),
        2,
        "accounts are not users until they connect"
    );
    assert_eq!(
        state.accounts,
        vec![
            account("u-3", Some("carol2"), 2),
            account("u-4", None, u64::MAX)
        ]
    );
    assert_eq!(
        load_account(&mut store, "u-3"),
        Some(account("u-3", Some("carol2"), 2))
    );
    assert_eq!(load_account(&mut store, "u-1"), None, "a plain user");
    assert_eq!(load_account(&mut store, "nobody"), None);
    // Applying everything again changes nothing: writes are idempotent.
    store.apply(&ops).unwrap();
    assert_eq!(store.load_state().unwrap(), state);
}

#[test]
fn public_version_compares_as_u64() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let big = u64::MAX - 1;
    for version in [5, big, 6, i64::MAX as u64, u64::MAX, 0] {
        store.apply(&[StoreOp::PublicVersion { version }]).unwrap();
    }
    assert_eq!(store.load_state().unwrap().public_version, u64::MAX);
}

#[test]
fn a_user_write_keeps_the_account() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let record = account("u-1", Some("alice"), 4);
    let ops = [StoreOp::Account(record.clone()), user("u-1")];
    store.apply(&ops).unwrap();
    assert_eq!(load_account(&mut store, "u-1"), Some(record.clone()));
    let state = store.load_state().unwrap();
    assert_eq!(state, memory_state(&ops));
    assert_eq!(state.users, vec![("u-1".into(), "key-u-1".into())]);
    assert_eq!(state.accounts, vec![record.clone()]);
    // And the other way round: an account registered by a user that had connected.
    store
        .apply(&[user("u-2"), StoreOp::Account(account("u-2", None, 1))])
        .unwrap();
    let state = store.load_state().unwrap();
    assert_eq!(state.users.len(), 2);
    assert_eq!(state.accounts.len(), 2);
}

#[test]
fn a_file_database_is_found_again_after_reopening() {
    let dir = TempDir::new();
    let path = dir.path().join("nested/deeper/socp.db");
    let ops = every_op();
    {
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.apply(&ops[..5]).unwrap();
        store.apply(&ops[5..]).unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.load_state().unwrap(), memory_state(&ops));
    assert_eq!(
        load_account(&mut store, "u-4"),
        Some(account("u-4", None, u64::MAX))
    );
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = TempDir::new();
    let path = dir.path().join("socp.db");
    drop(SqliteStore::open(&path).unwrap());
    let newer = SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, known } if found == newer && known == SCHEMA_VERSION),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version {newer} is newer than this socp ({SCHEMA_VERSION}); upgrade socp"
        )
    );
}

#[test]
fn a_failing_op_leaves_nothing_of_its_batch() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let before = [StoreOp::Account(account("u-1", Some("alice"), 1))];
    store.apply(&before).unwrap();
    let state = store.load_state().unwrap();
    // The clash comes last: everything before it in the batch must be rolled back.
    let batch = [
        StoreOp::ServerId {
            server_id: "s-1".into(),
        },
        user("u-2"),
        StoreOp::PublicVersion { version: 9 },
        StoreOp::PublicMember {
            member_id: "u-2".into(),
            added_at: 1,
        },
        StoreOp::Account(account("u-1", Some("alice"), 2)),
        StoreOp::Account(account("u-2", Some("ALICE"), 1)),
    ];
    let err = store.apply(&batch).unwrap_err();
    assert!(
        matches!(&err, StoreError::UsernameTaken { user_id, username } if user_id == "u-2" && username == "ALICE"),
        "{err:?}"
    );
    assert_eq!(store.load_state().unwrap(), state);
    assert_eq!(
        load_account(&mut store, "u-1"),
        Some(account("u-1", Some("alice"), 1))
    );
    // The store still works, and a freed name can be taken.
    store
        .apply(&[
            StoreOp::Account(account("u-1", Some("alice2"), 2)),
            StoreOp::Account(account("u-2", Some("ALICE"), 1)),
        ])
        .unwrap();
    assert_eq!(store.load_state().unwrap().accounts.len(), 2);
}

#[test]
fn in_memory_stores_are_separate() {
    let mut a = SqliteStore::open_in_memory().unwrap();
    let mut b = SqliteStore::open_in_memory().unwrap();
    a.apply(&[user("u-1")]).unwrap();
    assert_eq!(a.load_state().unwrap().users.len(), 1);
    assert_eq!(b.load_state().unwrap(), StoredState::default());
    assert_eq!(b.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn two_connections_share_a_file() {
    let dir = TempDir::new();
    let path = dir.path().join("socp.db");
    let mut writer = SqliteStore::open(&path).unwrap();
    let mut reader = SqliteStore::open(&path).unwrap();
    writer.apply(&every_op()).unwrap();
    assert_eq!(reader.load_state().unwrap(), memory_state(&every_op()));
}

#[test]
fn a_file_in_the_way_of_the_folder_is_reported() {
    let dir = TempDir::new();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let err = SqliteStore::open(&blocker.join("socp.db")).unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
}

// ----- random sequences against MemoryStore ----------------------------------------

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Few ids, so ops collide. A user id always has the same key, and a username
/// belongs to one user id (in any case): the server guarantees both (see the
/// store's module docs for what happens otherwise).
fn op() -> impl Strategy<Value = StoreOp> {
    let id = || (0u8..6).prop_map(|i| format!("id-{i}"));
    prop_oneof![
        id().prop_map(|server_id| StoreOp::ServerId { server_id }),
        id().prop_map(|id| user(&id)),
        any::<u64>().prop_map(|version| StoreOp::PublicVersion { version }),
        (0u64..20).prop_map(|version| StoreOp::PublicVersion { version }),
        (id(), any::<u64>()).prop_map(|(member_id, added_at)| StoreOp::PublicMember {
            member_id,
            added_at
        }),
        (id(), 0u8..3, 0u8..3, any::<u16>()).prop_map(|(server_id, key, host, port)| {
            StoreOp::PinServer {
                pubkey: format!("key-{server_id}-{key}"),
                host: format!("host-{host}"),
                server_id,
                port,
            }
        }),
        (0u8..6, 0u8..4, any::<u64>(), "[a-z]{0,3}").prop_map(|(i, name, version, kdf)| {
            let id = format!("id-{i}");
            let username = match name {
                0 => None,
                1 => Some(format!("name{i}")),
                2 => Some(format!("NAME{i}")),
                _ => Some(format!("Other.{i}")),
            };
            let mut record = account(&id, username.as_deref(), version);
            record.kdf.salt = kdf;
            StoreOp::Account(record)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_batches_match_memory_store(
        batches in proptest::collection::vec(proptest::collection::vec(op(), 0..12), 0..6),
    ) {
        let mut sqlite = SqliteStore::open_in_memory().unwrap();
        let mut memory = MemoryStore::default();
        for batch in &batches {
            sqlite.apply(batch).unwrap();
            memory.apply(batch).unwrap();
            prop_assert_eq!(sqlite.load_state().unwrap(), sorted(memory.state().clone()));
        }
        for i in 0u8..6 {
            let user_id = format!("id-{i}");
            let expected = memory.state().accounts.iter().find(|a| a.user_id == user_id).cloned();
            prop_assert_eq!(load_account(&mut sqlite, &user_id), expected);
        }
    }
}
