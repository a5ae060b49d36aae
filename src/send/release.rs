//! Records held back until their category's exchange starts (R9), released
//! as a drop when the day comes.

use crate::context::error::Result;
use crate::context::node::Node;
use crate::context::report::PassReport;
use crate::wire::document;

/// Records held back (R9) whose day has come go out as a batch dropped into
/// outbound/ like any other. Rows are marked with the file before it is written
/// and removed after, so a crash neither loses nor doubles them.
pub fn release_due(node: &mut Node, report: &mut PassReport) -> Result<()> {
    let policy = node.cfg.policy();
    let me = node.id().to_string();
    let started = |category: &str| {
        policy
            .start_of(category)
            .is_none_or(|d| d <= policy.today.as_str())
    };
    for (file, peer) in node.store.pending_releases(started)? {
        let path = node.layout.outbound.join(&file);
        let archived = node.layout.archive.join("outbound").join(&file);
        if !path.exists() && !archived.exists() {
            let rows = node.store.deferred_xml(&file)?;
            let mut xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{}\" from=\"{me}\" to=\"{peer}\">\n",
                document::BATCH_NS
            );
            for r in rows {
                xml.push_str(&r);
            }
            xml.push_str("</batch>\n");
            crate::context::files::write_atomic(&path, xml.as_bytes())?;
            report.released += 1;
        }
        node.store.forget_released(&file)?;
    }
    Ok(())
}
