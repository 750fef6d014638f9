//! A proptest state-machine test: random operations on a simulated mesh of real
//! servers, checked after every step against a small reference model.
//!
//! Operations: users connect (join) and disconnect (leave), DMs to online, offline
//! and unknown users, public messages, link kills, partitions and heals, a server
//! isolated from all others, crashes and restarts, time jumps, and tampered or
//! replayed server-to-server frames.
//!
//! Invariants, after every step:
//! - a DM to a user online and reachable is delivered exactly once, and to no one
//!   else; an unreachable or unknown recipient yields USER_NOT_FOUND to the sender;
//! - a public message reaches every reachable online user exactly once;
//! - nothing is ever delivered twice or to the wrong user, even across partitions
//!   (tampered and replayed frames change no state);
//! - after healing and quiescence every live server has the same roster, the set
//!   of users the model says are online;
//! - a server cut off from the others loses its users everywhere within the dead
//!   timeout plus one heartbeat interval.
//!
//! The case count comes from `PROPTEST_CASES` (default 256).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use core::time::Duration;
use proptest::prelude::*;
use rand_core::Rng;
use serde_json::Value;
use socp_core::crypto::{CoreRng, rng_from_seed};
use socp_core::server::ServerConfig;
use socp_core::sim::{Endpoint, InFlight, Sim, Verdict};
use socp_core::wire::{Envelope, Limits};

const HEARTBEAT: Duration = Duration::from_secs(5);
const DEAD: Duration = Duration::from_secs(15);
/// Time for a step's frames to settle (latency is at most 20 ms per hop).
const SETTLE: Duration = Duration::from_millis(800);
/// Time for a healed or restarted mesh to relink and resync.
const RESYNC: Duration = Duration::from_secs(25);

#[derive(Debug, Clone)]
enum Op {
    Connect { user: usize, server: usize },
    Disconnect { user: usize },
    Dm { from: usize, to: usize },
    DmUnknown { from: usize },
    Public { from: usize },
    KillLink { a: usize, b: usize },
    Partition { a: usize, b: usize },
    Heal,
    Isolate { server: usize },
    Crash { server: usize },
    Restart { server: usize },
    Advance { secs: u64 },
    Tamper { frames: u8 },
    Replay { frames: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0usize..64;
    prop_oneof![
        6 => (i.clone(), i.clone()).prop_map(|(user, server)| Op::Connect { user, server }),
        2 => i.clone().prop_map(|user| Op::Disconnect { user }),
        8 => (i.clone(), i.clone()).prop_map(|(from, to)| Op::Dm { from, to }),
        1 => i.clone().prop_map(|from| Op::DmUnknown { from }),
        2 => i.clone().prop_map(|from| Op::Public { from }),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::KillLink { a, b }),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::Partition { a, b }),
        1 => Just(Op::Heal),
        1 => i.clone().prop_map(|server| Op::Isolate { server }),
        1 => i.clone().prop_map(|server| Op::Crash { server }),
        1 => i.clone().prop_map(|server| Op::Restart { server }),
        1 => (1u64..120).prop_map(|secs| Op::Advance { secs }),
        1 => (1u8..6).prop_map(|frames| Op::Tamper { frames }),
        1 => (1u8..6).prop_map(|frames| Op::Replay { frames }),
    ]
}

/// What the hook should do to the next server-to-server frames.
#[derive(Default)]
struct Mischief {
    tamper: u32,
    replay: u32,
    done_tamper: u32,
    done_replay: u32,
}

/// The reference model: who is connected where, which servers run, which server
/// pairs may have lost or delayed frames since the last full resync.
struct Model {
    servers: usize,
    alive: Vec<bool>,
    at: Vec<Option<usize>>,
    dirty: BTreeSet<(usize, usize)>,
}

impl Model {
    fn online(&self) -> BTreeSet<usize> {
        (0..self.at.len())
            .filter(|&u| self.at[u].is_some())
            .collect()
    }

    fn clean(&self, a: usize, b: usize) -> bool {
        a == b || !self.dirty.contains(&(a.min(b), a.max(b)))
    }

    fn quiet(&self) -> bool {
        self.dirty.is_empty()
    }
}

struct Harness {
    sim: Sim,
    model: Model,
    mischief: Rc<RefCell<Mischief>>,
    /// Every tag sent, with its intended recipient (user index), if any.
    tags: BTreeMap<String, Option<usize>>,
}

fn config(sim: &Sim, idx: usize) -> ServerConfig {
    // Server 0 starts the network; the others join through up to three others.
    let introducers: Vec<usize> = (0..idx.max(1)).filter(|&i| i != idx).take(3).collect();
    let mut cfg = if idx == 0 {
        ServerConfig::default()
    } else {
        sim.config_joining(&introducers)
    };
    cfg.heartbeat_interval = HEARTBEAT;
    cfg.dead_timeout = DEAD;
    cfg.reconnect_initial = Duration::from_millis(500);
    cfg.reconnect_max = Duration::from_secs(4);
    cfg.seen_ttl = Duration::from_secs(60);
    cfg
}

impl Harness {
    fn new(seed: u64, servers: usize, users: usize) -> Self {
        let mut sim = Sim::new(seed);
        for s in 0..servers {
            let cfg = config(&sim, s);
            sim.add_server(cfg, 1 + s % 12);
            sim.run_for(Duration::from_millis(300));
        }
        for u in 0..users {
            sim.add_user(1 + u % 12);
        }
        sim.run_for(Duration::from_secs(2));
        let mischief = Rc::new(RefCell::new(Mischief::default()));
        let hook_state = Rc::clone(&mischief);
        let mut rng = rng_from_seed([seed as u8; 32]);
        sim.set_hook(Box::new(move |f: &mut InFlight| {
            hook(&hook_state, &mut rng, f)
        }));
        Self {
            sim,
            model: Model {
                servers,
                alive: vec![true; servers],
                at: vec![None; users],
                dirty: BTreeSet::new(),
            },
            mischief,
            tags: BTreeMap::new(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let n = self.model.servers;
        let users = self.model.at.len();
        match *op {
            Op::Connect { user, server } => {
                let (u, s) = (user % users, server % n);
                if !self.model.alive[s] {
                    return Ok(());
                }
                if self.model.at[u].is_some() {
                    // Leave first, and let the server notice, as a real client would.
                    self.sim.disconnect_user(u);
                    self.model.at[u] = None;
                    self.sim.run_for(SETTLE);
                }
                self.sim.connect_user(u, s);
                self.model.at[u] = Some(s);
                self.sim.run_for(SETTLE);
                prop_assert!(
                    self.sim.user(u).is_connected(),
                    "user {u} was refused by server {s}: {:?}",
                    self.sim.user(u).error_codes()
                );
            }
            Op::Disconnect { user } => {
                let u = user % users;
                self.sim.disconnect_user(u);
                self.model.at[u] = None;
                self.sim.run_for(SETTLE);
            }
            Op::Dm { from, to } => {
                let (u, v) = (from % users, to % users);
                let Some(su) = self.model.at[u] else {
                    return Ok(());
                };
                if u == v {
                    return Ok(());
                }
                let errors_before = not_found(&self.sim, u);
                let tag = self.sim.send_dm(u, v);
                self.tags.insert(tag.clone(), Some(v));
                self.sim.run_for(SETTLE);
                let delivered = self.sim.user(v).deliveries_of(&tag);
                let errors = not_found(&self.sim, u) - errors_before;
                match self.model.at[v] {
                    Some(sv) if self.model.clean(su, sv) => {
                        prop_assert_eq!(
                            delivered,
                            1,
                            "DM {} from {} to online {} not delivered once",
                            tag,
                            u,
                            v
                        );
                        prop_assert_eq!(errors, 0);
                    }
                    None if self.model.quiet() => {
                        prop_assert_eq!(delivered, 0);
                        prop_assert_eq!(
                            errors,
                            1,
                            "no USER_NOT_FOUND for a DM to offline user {}",
                            v
                        );
                    }
                    _ => prop_assert!(delivered <= 1 && errors <= 1),
                }
            }
            Op::DmUnknown { from } => {
                let u = from % users;
                if self.model.at[u].is_none() {
                    return Ok(());
                }
                let errors_before = not_found(&self.sim, u);
                let tag = self
                    .sim
                    .send_dm_to_id(u, "00000000-0000-4000-8000-000000000000");
                self.tags.insert(tag, None);
                self.sim.run_for(SETTLE);
                prop_assert_eq!(not_found(&self.sim, u) - errors_before, 1);
            }
            Op::Public { from } => {
                let u = from % users;
                let Some(su) = self.model.at[u] else {
                    return Ok(());
                };
                let tag = self.sim.send_public(u);
                self.sim.run_for(SETTLE);
                for v in self.model.online() {
                    let got = self.sim.user(v).public_of(&tag);
                    let sv = self.model.at[v].unwrap();
                    if v == u {
                        prop_assert_eq!(got, 0, "the sender got its own public message");
                    } else if self.model.clean(su, sv) {
                        prop_assert_eq!(
                            got,
                            1,
                            "public {} from {} reached {} {} times",
                            tag,
                            u,
                            v,
                            got
                        );
                    } else {
                        prop_assert!(got <= 1);
                    }
                }
            }
            Op::KillLink { a, b } => {
                let (a, b) = (a % n, b % n);
                self.sim.kill_link(a, b);
                // Both sides redial; a few backoff rounds settle it.
                self.sim.run_for(Duration::from_secs(6));
            }
            Op::Partition { a, b } => {
                let (a, b) = (a % n, b % n);
                if a != b {
                    self.sim.partition(a, b);
                    self.model.dirty.insert((a.min(b), a.max(b)));
                }
                self.sim.run_for(SETTLE);
            }
            Op::Isolate { server } => {
                let s = server % n;
                if !self.model.alive[s] {
                    return Ok(());
                }
                self.sim.isolate(s);
                for o in (0..n).filter(|&o| o != s) {
                    self.model.dirty.insert((s.min(o), s.max(o)));
                }
                // Within the dead timeout plus one heartbeat, its users are gone elsewhere.
                self.sim
                    .run_for(DEAD + HEARTBEAT + Duration::from_millis(500));
                let theirs: BTreeSet<String> = (0..users)
                    .filter(|&u| self.model.at[u] == Some(s))
                    .map(|u| self.sim.user(u).id.clone())
                    .collect();
                for o in (0..n).filter(|&o| o != s && self.model.alive[o]) {
                    let seen: Vec<String> = self
                        .sim
                        .server(o)
                        .online_users()
                        .into_iter()
                        .filter(|id| theirs.contains(id))
                        .collect();
                    prop_assert!(
                        seen.is_empty(),
                        "server {o} still lists isolated server {s}'s users {seen:?}"
                    );
                }
            }
            Op::Heal => {
                self.sim.heal_all();
                self.sim.run_for(RESYNC);
                self.model.dirty.clear();
            }
            Op::Crash { server } => {
                let s = server % n;
                // Keep at least two servers running.
                if !self.model.alive[s] || self.model.alive.iter().filter(|a| **a).count() <= 2 {
                    return Ok(());
                }
                self.sim.crash_server(s);
                self.model.alive[s] = false;
                for u in 0..users {
                    if self.model.at[u] == Some(s) {
                        self.model.at[u] = None;
                    }
                }
                self.sim.run_for(SETTLE);
            }
            Op::Restart { server } => {
                let s = server % n;
                if self.model.alive[s] {
                    return Ok(());
                }
                self.sim.restart_server(s);
                self.model.alive[s] = true;
                self.sim.run_for(RESYNC);
            }
            Op::Advance { secs } => self.sim.run_for(Duration::from_secs(secs)),
            Op::Tamper { frames } => self.mischief.borrow_mut().tamper += u32::from(frames),
            Op::Replay { frames } => self.mischief.borrow_mut().replay += u32::from(frames),
        }
        self.check_invariants()
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        // Nothing ever reaches a user it was not sent to, or arrives twice.
        let users = self.model.at.len();
        for u in 0..users {
            for env in &self.sim.user(u).inbox {
                if env.msg_type != socp_core::wire::MsgType::UserDeliver {
                    continue;
                }
                let tag = env
                    .payload
                    .get("ciphertext")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match self.tags.get(tag) {
                    Some(Some(v)) => {
                        prop_assert_eq!(*v, u, "DM {} delivered to the wrong user", tag)
                    }
                    _ => prop_assert!(false, "user {} got a DM nobody sent to it: {}", u, tag),
                }
                prop_assert!(
                    self.sim.user(u).deliveries_of(tag) <= 1,
                    "DM {} delivered twice",
                    tag
                );
            }
        }
        // With no partition since the last resync, every live server agrees with the model.
        if self.model.quiet() {
            let expected: Vec<String> = {
                let mut ids: Vec<String> = self
                    .model
                    .online()
                    .into_iter()
                    .map(|u| self.sim.user(u).id.clone())
                    .collect();
                ids.sort();
                ids
            };
            for s in (0..self.model.servers).filter(|&s| self.model.alive[s]) {
                prop_assert_eq!(
                    self.sim.server(s).online_users(),
                    expected.clone(),
                    "server {} roster differs from the model",
                    s
                );
            }
        }
        Ok(())
    }
}

fn not_found(sim: &Sim, u: usize) -> usize {
    sim.user(u)
        .error_codes()
        .iter()
        .filter(|c| *c == "USER_NOT_FOUND")
        .count()
}

/// Tampers with (injects an altered copy of) or replays server-to-server frames.
fn hook(state: &Rc<RefCell<Mischief>>, rng: &mut CoreRng, f: &mut InFlight) -> Verdict {
    let both_servers = matches!(
        (f.from, f.to),
        (Endpoint::Server { .. }, Endpoint::Server { .. })
    );
    if !both_servers {
        return Verdict::Deliver;
    }
    let mut m = state.borrow_mut();
    if m.tamper > 0
        && let Some(altered) = tampered(&f.frame, rng)
    {
        m.tamper -= 1;
        m.done_tamper += 1;
        return Verdict::Inject {
            frame: altered,
            after: Duration::from_millis(rng.next_u64() % 500),
        };
    }
    if m.replay > 0 {
        m.replay -= 1;
        m.done_replay += 1;
        return Verdict::Replay(Duration::from_millis(rng.next_u64() % 3000));
    }
    Verdict::Deliver
}

/// The frame with one signed (payload) byte changed, its signature kept.
fn tampered(frame: &[u8], rng: &mut CoreRng) -> Option<Vec<u8>> {
    let mut env = Envelope::decode(frame, &Limits::default()).ok()?;
    let strings: Vec<String> = env
        .payload
        .iter()
        .filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty()))
        .map(|(k, _)| k.clone())
        .collect();
    if strings.is_empty() {
        env.payload.insert("x".into(), Value::from(1));
    } else {
        let key = &strings[(rng.next_u32() as usize) % strings.len()];
        let old = env.payload[key].as_str()?.to_owned();
        let mut chars: Vec<char> = old.chars().collect();
        let at = (rng.next_u32() as usize) % chars.len();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        env.payload
            .insert(key.clone(), Value::String(chars.into_iter().collect()));
    }
    Some(env.encode())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 200,
        .. ProptestConfig::default()
    })]

    #[test]
    fn mesh_matches_the_model(
        seed in any::<u64>(),
        servers in 3usize..=6,
        users in 5usize..=30,
        ops in proptest::collection::vec(op(), 1..30),
    ) {
        let mut h = Harness::new(seed, servers, users);
        h.check_invariants()?;
        for op in &ops {
            h.apply(op)?;
        }
        // Finally heal everything, bring every server back, and check convergence.
        for s in 0..servers {
            h.apply(&Op::Restart { server: s })?;
        }
        h.apply(&Op::Heal)?;
        prop_assert!(h.model.quiet());
    }
}

/// Shrunk failures found by long runs, replayed by name (seed and ops as printed).
fn replay(seed: u64, servers: usize, users: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = Harness::new(seed, servers, users);
    h.check_invariants()?;
    for op in ops {
        h.apply(op)?;
    }
    for s in 0..servers {
        h.apply(&Op::Restart { server: s })?;
    }
    h.apply(&Op::Heal)
}

#[test]
fn regression_restart_while_a_peer_is_isolated() {
    let ops = [
        Op::Connect { user: 4, server: 4 },
        Op::Heal,
        Op::Crash { server: 59 },
        Op::Disconnect { user: 0 },
        Op::KillLink { a: 45, b: 12 },
        Op::Connect {
            user: 0,
            server: 10,
        },
        Op::Disconnect { user: 5 },
        Op::Partition { a: 0, b: 0 },
        Op::Isolate { server: 9 },
        Op::Partition { a: 0, b: 0 },
        Op::Heal,
    ];
    replay(4272107887715792815, 4, 29, &ops).unwrap();
}

#[test]
fn regression_the_first_server_restarts_under_its_own_id() {
    let ops = [
        Op::Connect { user: 5, server: 0 },
        Op::Disconnect { user: 0 },
        Op::Crash { server: 3 },
        Op::Restart { server: 3 },
        Op::Connect {
            user: 0,
            server: 16,
        },
        Op::Connect { user: 0, server: 3 },
        Op::Connect { user: 0, server: 0 },
    ];
    replay(691924243759515790, 3, 15, &ops).unwrap();
}
