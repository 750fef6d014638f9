//! `socp demo`: a whole network in one process, on loopback ports and a
//! temporary directory: an introducer, two servers, three users; it runs the
//! story (register, log in again from a password, /list, DMs across servers,
//! a multi-part DM, a public message, a file, a wrong password), prints the
//! transcript and a summary, and tells whether everything arrived.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socp_core::client::{ClientConfig, ClientEvent, FileTarget, UserIdentity, sha256_hex};
use socp_core::crypto::KeystoreParams;
use socp_core::crypto::rsa::RsaIdentity;
use socp_core::server::{BootstrapEntry, Event};
use socp_tokio::{ClientOptions, ClientUpdate};

use crate::runtime::{ClientHandle, Clock, Runtime, login_with_password};

use crate::node::{self, KeySource, NodeOptions};

/// How long any one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Size of the demo file.
const FILE_BYTES: usize = 64 * 1024;

/// What the demo measured.
#[derive(Debug, Default)]
pub struct Summary {
    /// Checks that passed.
    pub passed: Vec<String>,
    /// Checks that failed, with why.
    pub failed: Vec<String>,
    /// DM latencies (send → shown), in milliseconds.
    pub dm_latency_ms: Vec<f64>,
}

impl Summary {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        if ok {
            say(&format!("  ok   {what}"));
            self.passed.push(what);
        } else {
            say(&format!("  FAIL {what}"));
            self.failed.push(what);
        }
    }
}

fn say(line: &str) {
    println!("{line}");
}

struct Tmp(PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo with every node and client on `runtime`. `Ok(summary)`
/// when it could run (check `summary.failed`).
///
/// # Errors
/// When the network could not be set up at all.
pub async fn run(runtime: Runtime) -> Result<Summary, String> {
    let started = Instant::now();
    let tmp = Tmp(std::env::temp_dir().join(format!(
        "socp-demo-{}-{}",
        std::process::id(),
        hex8(&socp_tokio::random_seed())
    )));
    std::fs::create_dir_all(&tmp.0).map_err(|e| format!("temporary directory: {e}"))?;
    say(&format!(
        "socp demo: everything lives in {} and is removed at the end",
        tmp.0.display()
    ));
    say("[1/8] generating six RSA-4096 keys (3 servers, 3 users)...");
    let mut keys = Vec::new();
    let mut jobs = Vec::new();
    for _ in 0..6 {
        jobs.push(tokio::task::spawn_blocking(crate::keyfile::generate));
    }
    for job in jobs {
        keys.push(Arc::new(
            job.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?,
        ));
    }
    let [k_intro, k_a, k_b, k_alice, k_bob, k_carol]: [Arc<RsaIdentity>; 6] = keys
        .try_into()
        .map_err(|_| "key generation gave the wrong count".to_owned())?;
    say(&format!(
        "      done in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    say("[2/8] starting an introducer and two servers on loopback ports");
    let mut intro_opts = NodeOptions::new("127.0.0.1", 0, &tmp.0);
    intro_opts.runtime = runtime;
    intro_opts.key = KeySource::Given(k_intro);
    intro_opts.db = Some(tmp.0.join("introducer.db"));
    let intro = node::start(intro_opts).await.map_err(|e| e.to_string())?;
    let intro_port = intro.handle.local_addr().port();
    let entry = BootstrapEntry {
        host: "127.0.0.1".into(),
        port: intro_port,
        pubkey: Some(intro.pubkey.clone()),
    };
    let mut servers = Vec::new();
    for (name, key) in [("A", k_a), ("B", k_b)] {
        let mut opts = NodeOptions::new("127.0.0.1", 0, &tmp.0);
        opts.runtime = runtime;
        opts.key = KeySource::Given(key);
        opts.db = Some(tmp.0.join(format!("server-{name}.db")));
        opts.bootstrap = vec![entry.clone()];
        let node = node::start(opts).await.map_err(|e| e.to_string())?;
        let events = node.handle.subscribe();
        servers.push((name, node, events));
    }
    say(&format!(
        "      introducer {} (its key pinned by the servers)",
        intro.url
    ));
    for (name, node, events) in &mut servers {
        // Each server joins through the introducer, then links to the other
        // server (best effort here: the /list step below waits for the roster).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut linked = 0;
        while linked < 2 {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(Event::ServerLinked { .. })) => linked += 1,
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        say(&format!(
            "      server {} {} id {} ({linked} links)",
            name,
            node.url,
            node.handle.server_id()
        ));
    }
    let (url_a, url_b) = match servers.as_slice() {
        [(_, a, _), (_, b, _)] => (a.url.clone(), b.url.clone()),
        _ => return Err("two servers expected".into()),
    };

    let mut summary = Summary::default();
    let clock = runtime.clock();
    let downloads = tmp.0.join("downloads");

    say("[3/8] alice registers on A, bob and carol on B (keys sealed under their passwords)");
    let alice = register(&url_a, "alice", &k_alice, &downloads.join("alice"), &clock).await?;
    let mut bob = register(&url_b, "bob", &k_bob, &downloads.join("bob"), &clock).await?;
    let carol = register(&url_b, "carol", &k_carol, &downloads.join("carol"), &clock).await?;
    let ids = [
        alice.user_id().to_owned(),
        bob.user_id().to_owned(),
        carol.user_id().to_owned(),
    ];
    let name = move |id: &str| -> String {
        match ids.iter().position(|u| u == id) {
            Some(0) => "alice".into(),
            Some(1) => "bob".into(),
            Some(2) => "carol".into(),
            _ => id.into(),
        }
    };
    summary.check(true, "three accounts registered");

    say("[4/8] alice logs in again from another machine: only her name and password");
    let alice_id = alice.user_id().to_owned();
    alice.close().await;
    let wrong = login_with_password(
        &url_a,
        "alice",
        b"not her password",
        ClientConfig::new(vec![url_a.clone()]),
        ClientOptions::new(downloads.join("alice")),
        clock,
    )
    .await;
    let wrong_refused = matches!(&wrong, Err(socp_tokio::LoginError::Refused { code, .. }) if code.as_str() == "INVALID_SIG");
    if let Err(e) = &wrong {
        say(&format!("      a wrong password: {e}"));
    }
    summary.check(wrong_refused, "a wrong password is refused (INVALID_SIG)");
    let mut alice = login_with_password(
        &url_a,
        "alice",
        PASSWORD_ALICE.as_bytes(),
        ClientConfig::new(vec![url_a.clone()]),
        ClientOptions::new(downloads.join("alice")),
        clock,
    )
    .await
    .map_err(|e| format!("alice's login: {e}"))?;
    summary.check(
        alice.user_id() == alice_id,
        "alice logged in with her password alone",
    );
    wait(&mut alice, |u| {
        matches!(u, ClientUpdate::Event(ClientEvent::Connected { .. }))
    })
    .await;

    say("[5/8] /list from alice");
    let bob_id = bob.user_id().to_owned();
    let carol_id = carol.user_id().to_owned();
    let mut listed = Vec::new();
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while !(listed.contains(&bob_id) && listed.contains(&carol_id))
        && tokio::time::Instant::now() < deadline
    {
        alice.with(|c, now| c.request_list(now)).await;
        if let Some(ClientUpdate::Event(ClientEvent::List(users))) = wait(&mut alice, |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::List(_)))
        })
        .await
        {
            listed = users;
        }
        if !(listed.contains(&bob_id) && listed.contains(&carol_id)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    say(&format!(
        "      online: {}",
        listed
            .iter()
            .map(|u| name(u))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    summary.check(
        listed.contains(&bob_id) && listed.contains(&carol_id),
        "alice sees bob and carol (both on server B)",
    );

    // The secure profile: every server link and every client link runs a
    // ratcheted channel (no RSA signature per relayed frame).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (secure_servers, secure_clients) = loop {
        let mut servers_ok = intro.handle.with(|s| s.secure_servers().len()).await == Some(2);
        for (_, node, _) in &servers {
            servers_ok &= node.handle.with(|s| s.secure_servers().len()).await == Some(2);
        }
        let mut clients_ok = true;
        for client in [&alice, &bob, &carol] {
            clients_ok &= client.with(|c, _| c.is_link_secure()).await == Some(true);
        }
        if (servers_ok && clients_ok) || tokio::time::Instant::now() >= deadline {
            break (servers_ok, clients_ok);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    say(&format!(
        "      secure profile: server links {}, client links {}",
        if secure_servers {
            "all sealed"
        } else {
            "NOT all sealed"
        },
        if secure_clients {
            "all sealed"
        } else {
            "NOT all sealed"
        },
    ));
    summary.check(
        secure_servers && secure_clients,
        "every server and client link runs the secure profile",
    );

    say("[6/8] direct messages across servers (end to end: RSA-OAEP + content signatures)");
    for text in [
        "hi bob, this crosses from server A to server B",
        "second message",
    ] {
        let t0 = Instant::now();
        let to = bob_id.clone();
        let body = text.to_owned();
        alice
            .with(move |c, now| c.send_direct(now, &to, &body))
            .await;
        let got = wait_message(&mut bob, text, false).await;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        summary.dm_latency_ms.push(ms);
        transcript(&name(&alice_id), "bob", text, got.as_deref(), ms);
        summary.check(
            got.as_deref() == Some("verified"),
            format!("bob got {text:?}, verified"),
        );
    }
    let long = "A long reply that does not fit one RSA block, so it goes in parts. ".repeat(20);
    let t0 = Instant::now();
    let to = alice_id.clone();
    let body = long.clone();
    bob.with(move |c, now| c.send_direct(now, &to, &body)).await;
    let got = wait_message(&mut alice, &long, false).await;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    say(&format!(
        "      bob -> alice: {} bytes in {} parts [{}] {ms:.1} ms",
        long.len(),
        long.len().div_ceil(446),
        got.as_deref().unwrap_or("NOT DELIVERED")
    ));
    summary.check(
        got.as_deref() == Some("verified"),
        "a multi-part DM is reassembled in order, verified",
    );

    say("[7/8] carol posts to the public channel");
    let text = "hello everyone, from carol";
    carol.with(move |c, now| c.send_public(now, text)).await;
    let to_alice = wait_message(&mut alice, text, true).await;
    let to_bob = wait_message(&mut bob, text, true).await;
    say(&format!(
        "      carol -> public: alice [{}], bob [{}]",
        to_alice.as_deref().unwrap_or("NOT DELIVERED"),
        to_bob.as_deref().unwrap_or("NOT DELIVERED")
    ));
    summary.check(
        to_alice.as_deref() == Some("verified") && to_bob.as_deref() == Some("verified"),
        "the public message reached alice (server A) and bob (server B)",
    );

    say(&format!(
        "[8/8] alice sends bob a {} KiB file",
        FILE_BYTES / 1024
    ));
    let mut content = vec![0u8; FILE_BYTES];
    let mut rng = socp_core::crypto::rng_from_seed(socp_tokio::random_seed());
    rand_core::Rng::fill_bytes(&mut rng, &mut content);
    let expected = sha256_hex(&content);
    let t0 = Instant::now();
    let to = bob_id.clone();
    alice
        .with(move |c, now| c.send_file(now, FileTarget::User(to), "../../report.bin", content))
        .await;
    let saved = wait(&mut bob, |u| {
        matches!(
            u,
            ClientUpdate::FileSaved { .. }
                | ClientUpdate::FileSaveFailed { .. }
                | ClientUpdate::Event(ClientEvent::FileFailed { .. })
        )
    })
    .await;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    match saved {
        Some(ClientUpdate::FileSaved { path, .. }) => {
            let got = std::fs::read(&path)
                .map(|b| sha256_hex(&b))
                .unwrap_or_default();
            let inside = path.starts_with(downloads.join("bob"));
            say(&format!(
                "      saved as {} ({:.0} ms); the sender's name was \"../../report.bin\"",
                path.display(),
                ms
            ));
            summary.check(got == expected, "the file's SHA-256 matches");
            summary.check(inside, "the file landed inside bob's download folder");
        }
        other => summary.check(false, format!("file transfer: {other:?}")),
    }

    for handle in [alice, bob, carol] {
        handle.close().await;
    }
    for (_, node, _) in servers {
        node.handle.shutdown().await;
    }
    intro.handle.shutdown().await;

    let mut lat = summary.dm_latency_ms.clone();
    lat.sort_by(f64::total_cmp);
    say("");
    say("summary");
    say(&format!(
        "  {} checks passed, {} failed; total {:.1} s",
        summary.passed.len(),
        summary.failed.len(),
        started.elapsed().as_secs_f64()
    ));
    if let (Some(min), Some(max)) = (lat.first(), lat.last()) {
        say(&format!(
            "  DM latency across two servers (RSA encrypt and sign, two server hops over secure links, verify, decrypt): {min:.1} to {max:.1} ms"
        ));
    }
    Ok(summary)
}

const PASSWORD_ALICE: &str = "alice's long passphrase";

fn password_of(user: &str) -> String {
    match user {
        "alice" => PASSWORD_ALICE.to_owned(),
        other => format!("{other}'s long passphrase"),
    }
}

fn hex8(bytes: &[u8; 32]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn transcript(from: &str, to: &str, text: &str, status: Option<&str>, ms: f64) {
    say(&format!(
        "      {from} -> {to}: {text:?} [{}] {ms:.1} ms",
        status.unwrap_or("NOT DELIVERED")
    ));
}

async fn register(
    url: &str,
    username: &str,
    key: &Arc<RsaIdentity>,
    downloads: &std::path::Path,
    clock: &Clock,
) -> Result<ClientHandle, String> {
    let key = RsaIdentity::from_pkcs8_der(&key.to_pkcs8_der()).map_err(|e| e.to_string())?;
    let mut rng = socp_core::crypto::rng_from_seed(socp_tokio::random_seed());
    let identity = UserIdentity::with_random_id(key, &mut rng);
    let mut handle = crate::runtime::spawn_registration(
        url,
        identity,
        password_of(username).as_bytes(),
        Some(username),
        &KeystoreParams::default(),
        ClientOptions::new(downloads),
        *clock,
    )
    .map_err(|e| e.to_string())?;
    match wait(&mut handle, |u| {
        matches!(
            u,
            ClientUpdate::Event(ClientEvent::Registered { .. } | ClientEvent::LoginFailed { .. })
        )
    })
    .await
    {
        Some(ClientUpdate::Event(ClientEvent::Registered { user_id, .. })) => {
            say(&format!("      {username} registered as {user_id}"));
            Ok(handle)
        }
        other => Err(format!("{username} could not register: {other:?}")),
    }
}

/// The first update that `pred` accepts, within [`STEP_TIMEOUT`].
async fn wait(
    handle: &mut ClientHandle,
    pred: impl Fn(&ClientUpdate) -> bool,
) -> Option<ClientUpdate> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let update = tokio::time::timeout_at(deadline, handle.next())
            .await
            .ok()??;
        if let ClientUpdate::Event(ClientEvent::KeyChanged { user_id, .. }) = &update {
            say(&format!("      WARNING: key of {user_id} changed"));
        }
        if pred(&update) {
            return Some(update);
        }
    }
}

/// The status of the message `text` (a DM, or public) when it arrives.
async fn wait_message(handle: &mut ClientHandle, text: &str, public: bool) -> Option<String> {
    match wait(handle, |u| {
        matches!(u, ClientUpdate::Event(ClientEvent::Message { text: t, public: p, .. }) if t == text && *p == public)
    })
    .await?
    {
        ClientUpdate::Event(ClientEvent::Message { status, .. }) => Some(status.as_str().to_owned()),
        _ => None,
    }
}
