//! The executor every socp-smol task runs on.
//!
//! smol's global executor (`smol::spawn`) runs a single thread unless the
//! `SMOL_THREADS` environment variable says otherwise, so one busy state
//! machine (a server signing every relayed frame with RSA-4096, about 7 ms
//! each) would hold up every connection and timer in the process. socp-smol
//! therefore runs its own [`Executor`] on one thread per core
//! (`std::thread::available_parallelism`), or `SMOL_THREADS` threads when that
//! variable is set, started on first use. Sockets and timers still live on
//! async-io's reactor, so nothing here depends on the caller's executor.

use std::future::Future;
use std::sync::Once;

use smol::{Executor, Task};

static EXECUTOR: Executor<'static> = Executor::new();
static START: Once = Once::new();

/// How many executor threads to run.
fn threads() -> usize {
    std::env::var("SMOL_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

fn start() {
    START.call_once(|| {
        let mut started = 0;
        for i in 0..threads() {
            let spawned = std::thread::Builder::new()
                .name(format!("socp-smol-{i}"))
                .spawn(|| smol::block_on(EXECUTOR.run(smol::future::pending::<()>())));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start an executor thread"),
            }
        }
        if started == 0 {
            // Without a thread of our own, tasks would never run: lend the
            // work to smol's global executor instead.
            tracing::error!("no executor thread started; running on smol's global executor");
            smol::spawn(EXECUTOR.run(smol::future::pending::<()>())).detach();
        }
    });
}

/// Spawns `future` on socp-smol's executor (started on first use).
pub(crate) fn spawn<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Task<T> {
    start();
    EXECUTOR.spawn(future)
}
