//! Moving sets between nodes over SFTP: the session (host key pinned, key
//! login), shipping (push, or a hub's local folder), pulling from a hub, backoff
//! and resending what is not acknowledged in time.

pub mod pull;
pub mod session;
pub mod ship;
