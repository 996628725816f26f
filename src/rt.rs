//! Threads with a Tokio runtime of their own: `spawn_runtime_thread`, the one
//! way the daemon starts a named OS thread that runs a future on a
//! current-thread runtime (the RIB, the health checks), so their work never
//! stalls the main runtime's tasks.
//!
//! Talks to the OS (std threads) and Tokio; no policy of its own.

use std::future::Future;
use std::thread::JoinHandle;

/// Start OS thread `name` that builds a current-thread runtime (all drivers
/// enabled) and runs the future `make` returns on it until it ends; if the
/// runtime cannot be built, the thread logs the error and ends. Fails only
/// if the thread cannot be spawned.
pub fn spawn_runtime_thread<F, Fut>(name: &str, make: F) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = name.to_string();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(make()),
                Err(e) => tracing::error!(error = %e, thread, "thread runtime"),
            }
        })
}
