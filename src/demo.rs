//! `sedx demo`: an inspection node and a supervision node on this machine,
//! exchanging over a private sshd that scripts/demo.sh starts.

use crate::config::{Config, PeerConfig, Role};
use crate::error::{Error, IoContext, Result};
use crate::node::Node;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder for the two nodes (created; must not hold nodes yet).
    #[arg(long)]
    pub dir: PathBuf,
    /// Port of the sshd both nodes use as their SFTP server.
    #[arg(long)]
    pub sshd_port: u16,
    /// That sshd's host public key (pinned by both nodes).
    #[arg(long)]
    pub host_key: PathBuf,
    /// The authorized_keys file that sshd reads (the nodes' login keys are added).
    #[arg(long)]
    pub authorized_keys: PathBuf,
    /// The user the nodes log in as.
    #[arg(long, default_value = "root")]
    pub user: String,
}

pub const SAMPLE_BATCH: &str = include_str!("../samples/batch-inspection.xml");
const INSPECTION: &str = "insp-city";
const SUPERVISION: &str = "sup-city";
pub const CITY_INSTITUTE: &str = "上海市特种设备监督检验技术研究院";

fn append(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .at(path)?;
    writeln!(f, "{line}").at(path)
}

/// Make two nodes that trust each other and reach each other through one sshd.
pub fn pair(args: &DemoArgs) -> Result<(PathBuf, PathBuf)> {
    let host_key = std::fs::read_to_string(&args.host_key).at(&args.host_key)?;
    let pin = ssh_key::PublicKey::from_openssh(host_key.trim())
        .map_err(|e| Error::Key(format!("{}: {e}", args.host_key.display())))?
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    let insp_dir = args.dir.join("inspection");
    let sup_dir = args.dir.join("supervision");
    let insp = Node::init(&insp_dir, INSPECTION, Role::Inspection)?;
    let sup = Node::init(&sup_dir, SUPERVISION, Role::Supervision)?;
    append(&args.authorized_keys, &insp.login_public_key)?;
    append(&args.authorized_keys, &sup.login_public_key)?;
    for (dir, me, peer, peer_dir, peer_line) in [
        (
            &insp_dir,
            INSPECTION,
            SUPERVISION,
            &sup_dir,
            &sup.allowed_signers_line,
        ),
        (
            &sup_dir,
            SUPERVISION,
            INSPECTION,
            &insp_dir,
            &insp.allowed_signers_line,
        ),
    ] {
        let mut cfg = Config::load(dir)?;
        cfg.node.settle_ms = 200;
        cfg.peers.push(PeerConfig {
            id: peer.to_string(),
            host: "127.0.0.1".into(),
            port: args.sshd_port,
            user: args.user.clone(),
            key: None,
            remote_inbound: std::fs::canonicalize(peer_dir)
                .at(peer_dir)?
                .join("inbound")
                .join(me)
                .display()
                .to_string(),
            host_key: pin.clone(),
            // The inspection node is the city institute: supervision routes its records there.
            agency: (me == SUPERVISION).then(|| CITY_INSTITUTE.to_string()),
        });
        cfg.save(dir)?;
        append(&dir.join("keys/allowed_signers"), peer_line)?;
        crate::fsx::create_dir_all(&peer_dir.join("inbound").join(me))?;
    }
    Ok((insp_dir, sup_dir))
}

fn step(title: &str, node: &mut Node) -> Result<()> {
    let r = node.pass();
    println!(
        "  {title}: sealed {}, shipped {}, applied {}, acknowledgments received {}, quarantined {}",
        r.sealed, r.shipped, r.applied, r.acks_received, r.quarantined
    );
    match r.errors.first() {
        Some(e) => Err(Error::Other(e.clone())),
        None => Ok(()),
    }
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let (insp_dir, sup_dir) = pair(args)?;
    println!(
        "Two nodes: {INSPECTION} (inspection, 检验) in {}",
        insp_dir.display()
    );
    println!(
        "           {SUPERVISION} (supervision, 监察) in {}",
        sup_dir.display()
    );
    println!(
        "Both log in to the sshd on 127.0.0.1:{} with their own keys; host key pinned.\n",
        args.sshd_port
    );
    let drop = insp_dir.join("outbound/inspection-2006-06-05.xml");
    crate::fsx::write_atomic(&drop, SAMPLE_BATCH.as_bytes())?;
    println!(
        "1. The inspection system drops {} (3 equipment, 2 approved reports) into outbound/.",
        drop.display()
    );
    let mut insp = Node::open(&insp_dir)?;
    let mut sup = Node::open(&sup_dir)?;
    step("inspection node", &mut insp)?;
    println!("2. The supervision node verifies, validates, applies and acknowledges:");
    step("supervision node", &mut sup)?;
    println!("3. The acknowledgment travels back:");
    step("inspection node", &mut insp)?;

    println!("\nIn the supervision store now:");
    for code in [
        "31103101012006050007",
        "11203101122006040013",
        "40003101072006030021",
    ] {
        match crate::views::equipment_show(&sup.store, code)? {
            Some(view) => print!("{view}"),
            None => println!("equipment {code}: not applied (rejected, see the acknowledgment)"),
        }
    }
    println!("\nStatus of the inspection node:\n{}", insp.status()?);
    Ok(())
}
