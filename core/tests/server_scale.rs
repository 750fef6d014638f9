//! Scale: a full mesh of simulated servers with users on each converges, and
//! what it costs (docs/architecture.md, "Scale").
//!
//! Every server joins through one introducer at the same instant, then every user
//! connects (one per server per 100 ms round). The mesh has converged when each
//! server links to every other one and sees every user online. Then, with the
//! network settled, one user joins and later leaves, and the frames each presence
//! change costs, until [`SETTLE`] after every server has seen it, are counted
//! (`Sim::frames_sent` deltas, broken down by type and direction by a frame
//! hook). A frame budget stops a gossip storm before it exhausts memory. Run
//! with `--nocapture` to see the numbers; BENCHMARKS.md records them.
//!
//! Users only need to be counted, not to read anything, so the hook drops the
//! frames addressed to them after they are counted (they still count as sent):
//! parsing a million rosters in scripted users would only measure the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant as WallClock;

use core::time::Duration;
use socp_core::crypto::fixtures::RSA_KEY_COUNT;
use socp_core::server::ServerConfig;
use socp_core::sim::{Endpoint, Sim, Verdict};

/// How long a presence change is followed after every server has seen it: past
/// the batching of PUBLIC_CHANNEL_ADD (200 ms) and of the PUBLIC_CHANNEL_UPDATED
/// sent to local users (1 s), so each window holds all its change costs.
const SETTLE: Duration = Duration::from_secs(3);

/// Frames seen by the hook, per (direction, type).
type Counts = BTreeMap<(&'static str, String), u64>;

/// The message type of a frame we or the simulator encoded: canonical JSON puts
/// `"type"` last, so only the tail is searched.
fn frame_type(frame: &[u8]) -> String {
    const KEY: &[u8] = b"\"type\":\"";
    let tail = &frame[frame.len().saturating_sub(64)..];
    let Some(at) = tail.windows(KEY.len()).rposition(|w| w == KEY) else {
        return "?".into();
    };
    let rest = &tail[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

/// The difference of two snapshots of the counts.
fn delta(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn total(counts: &Counts, skip_heartbeats: bool) -> u64 {
    counts
        .iter()
        .filter(|((_, t), _)| !(skip_heartbeats && t == "HEARTBEAT"))
        .map(|(_, v)| v)
        .sum()
}

fn show(counts: &Counts) -> String {
    counts
        .iter()
        .map(|((dir, t), v)| format!("      {dir:<14} {t:<24} {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Mesh {
    sim: Sim,
    counts: Rc<RefCell<Counts>>,
    /// Most frames the whole run may send: a gossip loop grows exponentially and
    /// would exhaust memory inside one long `run_for`, so time advances in 10 ms
    /// slices and the run stops as soon as the budget is blown.
    budget: u64,
}

impl Mesh {
    fn counts(&self) -> Counts {
        self.counts.borrow().clone()
    }

    /// Runs for `d` in 10 ms slices, within the frame budget.
    fn run_for(&mut self, d: Duration) {
        let until = self.sim.now().mono + d;
        while self.sim.now().mono < until {
            let slice = until
                .saturating_duration_since(self.sim.now().mono)
                .min(Duration::from_millis(10));
            self.sim.run_for(slice);
            let sent = self.sim.frames_sent();
            assert!(
                sent <= self.budget,
                "{sent} frames sent, over the budget of {}: a gossip storm?",
                self.budget
            );
        }
    }

    /// Runs in `step`s until `done` holds; panics past `deadline` of virtual time.
    fn run_until(&mut self, step: Duration, deadline: Duration, done: impl Fn(&Sim) -> bool) {
        let start = self.sim.now().mono;
        while !done(&self.sim) {
            let waited = self.sim.now().mono.saturating_duration_since(start);
            assert!(waited < deadline, "not converged after {waited:?}");
            self.run_for(step);
        }
    }

    fn mesh_complete(sim: &Sim, servers: usize) -> bool {
        (0..servers).all(|s| sim.server(s).linked_servers().len() == servers - 1)
    }

    fn everyone_sees(sim: &Sim, servers: usize, users: usize) -> bool {
        (0..servers).all(|s| sim.server(s).online_users().len() == users)
    }
}

/// What one run measured.
struct Report {
    servers: usize,
    users: usize,
    mesh_virtual: Duration,
    mesh_frames: u64,
    users_virtual: Duration,
    users_after_last: Duration,
    users_frames: u64,
    join_frames: u64,
    join: Counts,
    leave_frames: u64,
    leave: Counts,
    wall: Duration,
}

fn run(servers: usize, users_per_server: usize, seed: u64) -> Report {
    let wall = WallClock::now();
    // The legacy profile: this measures SOCP v1.3 gossip by frame type, which
    // secure links would hide inside SECURE records (BENCHMARKS.md section 2).
    let mut sim = Sim::legacy(seed);
    let counts: Rc<RefCell<Counts>> = Rc::default();
    let sink = Rc::clone(&counts);
    sim.set_hook(Box::new(move |flight| {
        let dir = match (flight.from, flight.to) {
            (Endpoint::Server { .. }, Endpoint::Server { .. }) => "server→server",
            (Endpoint::Server { .. }, Endpoint::User { .. }) => "server→user",
            _ => "user→server",
        };
        *sink
            .borrow_mut()
            .entry((dir, frame_type(&flight.frame)))
            .or_default() += 1;
        if matches!(flight.to, Endpoint::User { .. }) {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }));

    // The mesh: every server joins through server 0 at once; keys 1..=12 cyclically.
    let intro = sim.add_server(ServerConfig::default(), 1);
    let cfg = sim.config_joining(&[intro]);
    for i in 1..servers {
        sim.add_server(cfg.clone(), i % RSA_KEY_COUNT + 1);
    }
    // Generous: 4x a rough upper bound of the whole run (each user's join costs
    // about n^2 server frames and 3 frames per online user).
    let (n, users) = (servers as u64, (servers * users_per_server) as u64);
    let budget = 4 * (10 * n * n + users * (n * n + 3 * users));
    let mut mesh = Mesh {
        sim,
        counts,
        budget,
    };
    mesh.run_until(Duration::from_millis(10), Duration::from_secs(120), |sim| {
        Mesh::mesh_complete(sim, servers)
    });
    let mesh_virtual = mesh
        .sim
        .now()
        .mono
        .saturating_duration_since(Default::default());
    let mesh_frames = mesh.sim.frames_sent();
    println!(
        "[{servers}x{users_per_server}] mesh of {servers} linked after {mesh_virtual:?} virtual, {mesh_frames} frames, {:?} wall",
        wall.elapsed()
    );

    // The users: one per server every 100 ms.
    let users_start = mesh.sim.now().mono;
    let users_frames_before = mesh.sim.frames_sent();
    for round in 0..users_per_server {
        for s in 0..servers {
            let u = mesh.sim.add_user((round * servers + s) % RSA_KEY_COUNT + 1);
            mesh.sim.connect_user(u, s);
        }
        if round + 1 < users_per_server {
            mesh.run_for(Duration::from_millis(100));
        }
    }
    let last_connect = mesh.sim.now().mono;
    let all = servers * users_per_server;
    mesh.run_until(Duration::from_millis(10), Duration::from_secs(300), |sim| {
        Mesh::everyone_sees(sim, servers, all)
    });
    let users_virtual = mesh.sim.now().mono.saturating_duration_since(users_start);
    let users_after_last = mesh.sim.now().mono.saturating_duration_since(last_connect);
    let users_frames = mesh.sim.frames_sent() - users_frames_before;
    println!(
        "[{servers}x{users_per_server}] all {all} users seen by every server {users_virtual:?} virtual after the first connect ({users_after_last:?} after the last), {users_frames} frames, {:?} wall",
        wall.elapsed()
    );
    for s in 0..servers {
        assert_eq!(mesh.sim.server(s).linked_servers().len(), servers - 1);
        assert_eq!(mesh.sim.server(s).online_users().len(), all);
        assert_eq!(mesh.sim.server(s).local_users().len(), users_per_server);
    }

    // Settle (public-channel batches flush, rosters drain), then one user joins.
    mesh.run_for(Duration::from_secs(2));
    let newcomer = mesh.sim.add_user(1);
    let id = mesh.sim.user(newcomer).id.clone();
    let (frames0, counts0) = (mesh.sim.frames_sent(), mesh.counts());
    mesh.sim.connect_user(newcomer, 0);
    mesh.run_until(Duration::from_millis(50), Duration::from_secs(10), |sim| {
        (0..servers).all(|s| sim.server(s).location(&id).is_some())
    });
    mesh.run_for(SETTLE);
    let join_frames = mesh.sim.frames_sent() - frames0;
    let join = delta(&mesh.counts(), &counts0);

    // And leaves.
    let (frames1, counts1) = (mesh.sim.frames_sent(), mesh.counts());
    mesh.sim.disconnect_user(newcomer);
    mesh.run_until(Duration::from_millis(50), Duration::from_secs(10), |sim| {
        (0..servers).all(|s| sim.server(s).location(&id).is_none())
    });
    mesh.run_for(SETTLE);
    let leave_frames = mesh.sim.frames_sent() - frames1;
    let leave = delta(&mesh.counts(), &counts1);
    for s in 0..servers {
        assert_eq!(mesh.sim.server(s).online_users().len(), all);
    }
    // Gossip is loop-free: the home server sends each change to the n-1 others and
    // each of them forwards it at most once to the n-2 others besides the origin.
    let n = servers as u64;
    let bound = (n - 1) + (n - 1) * (n - 2);
    let s2s = |c: &Counts, t: &str| c.get(&("server→server", t.to_owned())).copied();
    assert!(s2s(&join, "USER_ADVERTISE").is_some_and(|v| v <= bound));
    assert!(s2s(&leave, "USER_REMOVE").is_some_and(|v| v <= bound));

    Report {
        servers,
        users: all,
        mesh_virtual,
        mesh_frames,
        users_virtual,
        users_after_last,
        users_frames,
        join_frames,
        join,
        leave_frames,
        leave,
        wall: wall.elapsed(),
    }
}

fn print(r: &Report) {
    let n = r.servers as u64;
    println!("== {} servers, {} users ==", r.servers, r.users);
    println!(
        "  mesh converged: {:?} virtual, {} frames",
        r.mesh_virtual, r.mesh_frames
    );
    println!(
        "  users converged: {:?} virtual after the first connect, {:?} after the last, {} frames",
        r.users_virtual, r.users_after_last, r.users_frames
    );
    println!(
        "  one user joins: {} frames ({} without heartbeats); server→server {} (n-1 = {}, (n-1)(n-2) = {})",
        r.join_frames,
        total(&r.join, true),
        r.join
            .iter()
            .filter(|((d, t), _)| *d == "server→server" && t != "HEARTBEAT")
            .map(|(_, v)| v)
            .sum::<u64>(),
        n - 1,
        (n - 1) * (n - 2)
    );
    println!("{}", show(&r.join));
    println!(
        "  one user leaves: {} frames ({} without heartbeats)",
        r.leave_frames,
        total(&r.leave, true)
    );
    println!("{}", show(&r.leave));
    println!("  wall time: {:?}", r.wall);
}

/// Always on: 12 servers with 5 users each.
#[test]
fn mesh_of_12_servers_with_5_users_each_converges() {
    let r = run(12, 5, 12);
    print(&r);
}

/// The full size: 50 servers with 20 users each (1,000 users). About six
/// minutes in the dev test profile on two cores (3.4 million frames, each parsed
/// by unoptimised socp-core), so it is opt-in:
/// `cargo test -p socp-core --test server_scale -- --ignored --nocapture`.
#[test]
#[ignore = "slow (minutes): the 50-server, 1,000-user mesh; run with --ignored"]
fn mesh_of_50_servers_with_20_users_each_converges() {
    let r = run(50, 20, 50);
    print(&r);
}
