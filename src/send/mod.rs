//! The sending stage: what any program drops into outbound/ is taken once it
//! has settled (`drop`), judged by the rules and routed to the peers concerned
//! (`sift`), sealed with each channel's next sequence number (`sealing`); records
//! held back for their category's start go out when it comes (`release`); and a
//! side's own register is loaded without sending (`import`).

mod drop;
mod import;
mod release;
mod sealing;
mod sift;

pub use drop::seal_dropped;
pub use import::{import_file, Imported};
pub use release::release_due;
pub use sealing::seal_file;
