//! `sedx demo`: an inspection node and a supervision node on this machine,
//! exchanging over a private sshd that scripts/demo.sh starts.

use crate::context::config::{Config, PeerConfig, Role, Suite};
use crate::context::error::{Error, IoContext, Result};
use crate::context::node::Node;
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
    /// Only make the two nodes (for scripts/bench.sh and your own trials).
    #[arg(long)]
    pub nodes_only: bool,
    /// Run the exchange on the two nodes already in --dir (made with
    /// --nodes-only, then given their peer accounts by scripts/demo.sh).
    #[arg(long)]
    pub existing: bool,
    /// The suite of the channel between the two nodes: ed25519 or sm2.
    #[arg(long, value_enum, default_value_t = Suite::Ed25519)]
    pub suite: Suite,
}

pub const SAMPLE_BATCH: &str = include_str!("../../samples/batch-inspection.xml");
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
    let insp = Node::init(&insp_dir, INSPECTION, Role::Inspection, args.suite)?;
    let sup = Node::init(&sup_dir, SUPERVISION, Role::Supervision, args.suite)?;
    append(&args.authorized_keys, &insp.login_public_key)?;
    append(&args.authorized_keys, &sup.login_public_key)?;
    for (dir, me, peer, peer_dir, peer_info) in [
        (&insp_dir, INSPECTION, SUPERVISION, &sup_dir, &sup),
        (&sup_dir, SUPERVISION, INSPECTION, &insp_dir, &insp),
    ] {
        let mut cfg = Config::load(dir)?;
        cfg.node.settle_ms = 200;
        cfg.peers.push(PeerConfig {
            id: peer.to_string(),
            transport: Default::default(),
            remote_outbox: None,
            local_outbox: None,
            local_inbound: None,
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
            suite: Some(args.suite),
        });
        cfg.save(dir)?;
        append(
            &dir.join("keys/allowed_signers"),
            &peer_info.allowed_signers_line,
        )?;
        append(&dir.join("keys/sm2_trust"), &peer_info.sm2_trust_line)?;
        crate::context::files::create_dir_all(&peer_dir.join("inbound").join(me))?;
    }
    Ok((insp_dir, sup_dir))
}

fn step(title: &str, node: &mut Node) -> Result<()> {
    // The demo ships at once, as `sedx run --now` does, whatever the window.
    let r = node.pass_with(true);
    println!(
        "   [{title}] sealed {}, shipped {}, applied {}, acknowledgments received {}, quarantined {}",
        r.sealed, r.shipped, r.applied, r.acks_received, r.quarantined
    );
    match r.errors.first() {
        Some(e) => Err(Error::Other(e.to_string())),
        None => Ok(()),
    }
}

/// Supervision passes, inspection passes, supervision reads the answer.
fn down(sup: &mut Node, insp: &mut Node) -> Result<()> {
    step("supervision", sup)?;
    step("inspection", insp)?;
    step("supervision", sup)
}

fn up(sup: &mut Node, insp: &mut Node) -> Result<()> {
    step("inspection", insp)?;
    step("supervision", sup)?;
    step("inspection", insp)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("     {l}\n")).collect()
}

pub const REGISTER: &str = include_str!("../../samples/demo/supervision-register.xml");
pub const NOTICE: &str = include_str!("../../samples/demo/construction-notice.xml");
pub const CODE_CHANGE: &str = include_str!("../../samples/demo/code-change.xml");

pub fn run(args: &DemoArgs) -> Result<()> {
    let (insp_dir, sup_dir) = if args.existing {
        (args.dir.join("inspection"), args.dir.join("supervision"))
    } else {
        pair(args)?
    };
    if args.nodes_only {
        println!("{}\n{}", insp_dir.display(), sup_dir.display());
        return Ok(());
    }
    println!(
        "Two nodes: {INSPECTION} (inspection, 检验; the city institute) in {}",
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
    let mut insp = Node::open(&insp_dir)?;
    let mut sup = Node::open(&sup_dir)?;

    println!(
        "1. Supervision loads its register (sedx import): elevator 31103101092006020031 is the"
    );
    println!("   上海市电梯检测站's to inspect.");
    let register = args.dir.join("supervision-register.xml");
    crate::context::files::write_atomic(&register, REGISTER.as_bytes())?;
    let r = crate::send::import_file(&mut sup, &register)?;
    println!("   {} record(s) in the supervision register\n", r.applied);

    println!("2. Supervision drops a construction notice (施工告知); it goes down to the city institute:");
    crate::context::files::write_atomic(&sup_dir.join("outbound/notice.xml"), NOTICE.as_bytes())?;
    down(&mut sup, &mut insp)?;
    let queue = crate::store::views::acceptance(&insp.store)?;
    println!(
        "   The city institute's acceptance queue (sedx acceptance), {} notice(s):",
        queue.len()
    );
    for a in &queue {
        println!(
            "     {} {} {} planned {}",
            a.notice, a.user_unit, a.address, a.planned_start
        );
    }

    println!("\n3. The inspection system drops its batch: two elevators, a boiler and a crane; two approved");
    println!(
        "   statutory reports, a commissioned (non-statutory) one, a report on an elevator another"
    );
    println!("   agency is responsible for, and the crane with a wrong organization code:");
    crate::context::files::write_atomic(
        &insp_dir.join("outbound/inspection-2006-06-12.xml"),
        SAMPLE_BATCH.as_bytes(),
    )?;
    up(&mut sup, &mut insp)?;
    let refused =
        std::fs::read_to_string(insp_dir.join("quarantine/inspection-2006-06-12.rejected.txt"))
            .unwrap_or_default();
    println!(
        "   Kept home: {} non-statutory report(s) (R15).",
        insp.store.counter("kept_home")?
    );
    println!("   Refused on the way out (quarantine/inspection-2006-06-12.rejected.txt):");
    print!("{}", indent(&refused));
    for e in insp
        .store
        .outbox_all()?
        .iter()
        .filter(|e| e.kind == crate::wire::document::DocKind::Batch)
    {
        println!(
            "   Acknowledgment from supervision: {} ({})",
            e.ack_status.as_deref().unwrap_or("none yet"),
            e.ack_detail.as_deref().unwrap_or("")
        );
    }
    println!(
        "   The construction notice's equipment is not inspected yet: {} notice(s) still queued.",
        crate::store::views::acceptance(&insp.store)?.len()
    );

    println!("\n4. Supervision changes the Huangpu elevator's registration code; it goes down:");
    crate::context::files::write_atomic(
        &sup_dir.join("outbound/code-change.xml"),
        CODE_CHANGE.as_bytes(),
    )?;
    down(&mut sup, &mut insp)?;
    println!("   sedx equipment show 31103101012006050007 (at the city institute):");
    if let Some(view) = crate::store::views::equipment_show(&insp.store, "31103101012006050007")? {
        print!("{}", indent(&view));
    }

    println!("\n5. What supervision holds and what it noticed:");
    let d = crate::store::views::discrepancies(&sup.store)?;
    println!(
        "   equipment {}, inspection reports {}, discrepancies {}",
        sup.store.count("equipment")?,
        sup.store.count("inspection_report")?,
        d.len()
    );
    for line in d {
        println!("     {line}");
    }
    println!(
        "\nStatus of the inspection node:\n{}",
        indent(&insp.status()?)
    );
    Ok(())
}
