//! First light: a three-server mesh in the simulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;
use socp_core::server::ServerConfig;
use socp_core::sim::Sim;

#[test]
fn three_servers_route_a_dm_across_the_mesh() {
    let mut sim = Sim::new(1);
    let intro = sim.add_server(ServerConfig::default(), 1);
    let cfg = sim.config_joining(&[intro]);
    let a = sim.add_server(cfg.clone(), 2);
    sim.run_for(Duration::from_secs(2));
    let b = sim.add_server(cfg, 3);
    sim.run_for(Duration::from_secs(2));
    for s in [intro, a, b] {
        println!(
            "server {s}: {} linked {:?}",
            sim.server(s).id(),
            sim.server(s).linked_servers()
        );
    }
    for (t, s, e) in sim.events() {
        println!("{t:?} {s} {e:?}");
    }
    assert_eq!(sim.server(a).linked_servers().len(), 2);
    assert_eq!(sim.server(b).linked_servers().len(), 2);

    let alice = sim.add_user(4);
    let bob = sim.add_user(5);
    sim.connect_user(alice, a);
    sim.connect_user(bob, b);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.server(intro).online_users().len(), 2);
    let tag = sim.send_dm(alice, bob);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.user(bob).deliveries_of(&tag), 1);
    assert_eq!(sim.user(alice).deliveries_of(&tag), 0);
}
