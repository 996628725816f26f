//! hickory-server handler (stub).
