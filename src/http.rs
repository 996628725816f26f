//! HTTP redirect listener (optional): answers GET and HEAD with a 302 to the
//! chosen POP's base URL (`pops[].url`), keeping path and query.
//!
//! Stub: being written.

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::config::Config;
use crate::pops::PopState;
use crate::steer;

/// Bind `cfg.http.listen` and spawn the listener tasks into `tasks`.
pub async fn start(
    _cfg: Arc<Config>,
    _steering: steer::Handle,
    _pops: Arc<PopState>,
    _tasks: &mut JoinSet<()>,
) -> std::io::Result<()> {
    Ok(())
}
