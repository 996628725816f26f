//! UDP fast path (stub).
