//! The deployment docs/security.md describes, on a real sshd: each peer logs in
//! to an account of its own, chrooted to its drop folders by
//! scripts/peer-account.sh. Logged in with a peer's key, the node's keys, store
//! and configuration cannot be read, another peer's folder cannot be written,
//! no command runs and nothing is forwarded; and the exchange works.

use crate::common::*;
use sedx::context::config::Config;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Accounts and chroot folders made for the test, removed when dropped.
struct Deployment {
    accounts: Vec<String>,
    base: PathBuf,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for a in &self.accounts {
            let _ = Command::new("userdel").arg(a).status();
            let _ = Command::new("groupdel").arg(a).status();
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn peer_account(
    p: &Pair,
    node: &Path,
    peer: &str,
    key_of: &Path,
    account: &str,
    base: &Path,
    pull: bool,
) {
    let conf = p.tmp.path().join("sshd.d");
    let keys = p.tmp.path().join("authorized");
    let key = fs::read_to_string(key_of.join("keys/login_ed25519.pub")).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/peer-account.sh"))
        .arg("--node")
        .arg(node)
        .args(["--peer", peer, "--key", key.trim(), "--account", account])
        .arg("--base")
        .arg(base)
        .arg("--sshd-dir")
        .arg(&conf)
        .arg("--keys-dir")
        .arg(&keys)
        .arg("--sedx")
        .arg(env!("CARGO_BIN_EXE_sedx"));
    if pull {
        cmd.arg("--pull");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "peer-account.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's own throwaway server: no known_hosts, never a prompt.
const CLIENT_OPTIONS: [&str; 6] = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
];

/// An sftp session of `account` with `node`'s login key, running `batch`.
fn sftp(p: &Pair, key_node: &Path, account: &str, batch: &str) -> (bool, String) {
    let mut child = Command::new("sftp")
        .args(["-b", "-", "-P", &p.sshd.port.to_string()])
        .arg("-i")
        .arg(key_node.join("keys/login_ed25519"))
        .args(CLIENT_OPTIONS)
        .arg(format!("{account}@127.0.0.1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(batch.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ssh(p: &Pair, key_node: &Path, account: &str, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("30")
        .arg("ssh")
        .args(["-p", &p.sshd.port.to_string()])
        .arg("-i")
        .arg(key_node.join("keys/login_ed25519"))
        .args(CLIENT_OPTIONS)
        .args(args)
        .arg(format!("{account}@127.0.0.1"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_peer_logged_in_reaches_its_drop_folder_and_nothing_else() {
    let p = Pair::new();
    let tag: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    // ChrootDirectory needs root-owned folders all the way up: not under /tmp.
    let base = PathBuf::from(format!("/var/lib/sedx-test-{tag}"));
    let (insp_on_sup, sup_on_insp, b_on_sup) = (
        format!("sx{tag}i"),
        format!("sx{tag}s"),
        format!("sx{tag}b"),
    );
    let _cleanup = Deployment {
        accounts: vec![insp_on_sup.clone(), sup_on_insp.clone(), b_on_sup.clone()],
        base: base.clone(),
    };
    // The supervision node's server: a login for insp-city, and one for insp-b
    // (a second agency, here only to be attacked).
    peer_account(
        &p,
        &p.sup,
        INSP,
        &p.insp,
        &insp_on_sup,
        &base.join("sup"),
        false,
    );
    let mut cfg = Config::load(&p.sup).unwrap();
    let mut second = cfg.peers[0].clone();
    second.id = "insp-b".into();
    second.local_inbound = None;
    second.agency = Some("上海市电梯检测站".into());
    cfg.peers.push(second);
    cfg.save(&p.sup).unwrap();
    peer_account(
        &p,
        &p.sup,
        "insp-b",
        &p.sup,
        &b_on_sup,
        &base.join("sup"),
        false,
    );
    // The inspection node's server: a login for sup-city (its acknowledgments).
    peer_account(
        &p,
        &p.insp,
        SUP,
        &p.sup,
        &sup_on_insp,
        &base.join("insp"),
        false,
    );
    p.sshd
        .restart_including(&format!("{}/*.conf", p.tmp.path().join("sshd.d").display()));
    // Each side now logs in to the other as the account made for it.
    for (node, account) in [(&p.insp, &insp_on_sup), (&p.sup, &sup_on_insp)] {
        let mut cfg = Config::load(node).unwrap();
        cfg.peers[0].user = account.clone();
        cfg.peers[0].remote_inbound = "/inbound".into();
        cfg.save(node).unwrap();
    }

    // The exchange works through the chroots.
    p.drop_batch("b.xml", &equipment_batch(1, 2));
    assert_eq!(p.pass(&p.insp).shipped, 1);
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.shipped), (1, 1), "{r:?}");
    assert_eq!(p.pass(&p.insp).acks_received, 1);
    assert!(files_in(&base.join("sup").join(INSP).join("inbound")).is_empty());

    // What the peer's login sees: its drop folder only.
    let (ok, listing) = sftp(&p, &p.insp, &insp_on_sup, "ls -a /\n");
    assert!(ok, "{listing}");
    assert!(listing.contains("inbound"), "{listing}");
    for absent in ["keys", "store.sqlite", "sedx.toml", "insp-b", "etc"] {
        assert!(!listing.contains(absent), "{absent} visible: {listing}");
    }
    let stolen = p.tmp.path().join("stolen");
    for target in [
        p.sup.join("keys/signing_ed25519"),
        p.sup.join("store.sqlite"),
        p.sup.join("sedx.toml"),
        PathBuf::from("/keys/signing_ed25519"),
        PathBuf::from("/../../etc/shadow"),
    ] {
        let (ok, out) = sftp(
            &p,
            &p.insp,
            &insp_on_sup,
            &format!("get {} {}\n", target.display(), stolen.display()),
        );
        assert!(!ok && !stolen.exists(), "read {}: {out}", target.display());
    }
    // Writing into another peer's folder, or the node's own outbound.
    let evil = p.tmp.path().join("evil.xml");
    fs::write(&evil, equipment_batch(9, 1)).unwrap();
    let b_inbound = base.join("sup").join("insp-b").join("inbound");
    for target in [
        "/../insp-b/inbound/evil.xml".to_string(),
        format!("{}/evil.xml", b_inbound.display()),
        format!("{}/evil.xml", p.sup.join("outbound").display()),
    ] {
        let (ok, out) = sftp(
            &p,
            &p.insp,
            &insp_on_sup,
            &format!("put {} {target}\n", evil.display()),
        );
        assert!(!ok, "wrote {target}: {out}");
    }
    assert!(files_in(&b_inbound).is_empty());
    assert!(!p.sup.join("outbound/evil.xml").exists());
    // No command runs; no forwarding is set up.
    let out = ssh(&p, &p.insp, &insp_on_sup, &["cat", "/etc/passwd"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("root:"),
        "a command ran"
    );
    let out = ssh(
        &p,
        &p.insp,
        &insp_on_sup,
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:22",
        ],
    );
    assert!(
        !out.status.success() && out.status.code() != Some(124),
        "remote forwarding was refused at once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another peer's key does not open this peer's account.
    let (ok, _) = sftp(&p, &p.sup, &insp_on_sup, "ls /\n");
    assert!(!ok, "insp-city's account opened with another key");
}
