//! Test harness: a real OpenSSH sshd (scripts/sshd.sh) and two real nodes.
#![allow(dead_code)]

use sedx::config::Config;
use sedx::demo::{pair, DemoArgs};
use sedx::node::{Node, PassReport};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const INSP: &str = "insp-city";
pub const SUP: &str = "sup-city";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A private sshd on a free loopback port, stopped when dropped.
pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    pub host_key: PathBuf,
    pub authorized_keys: PathBuf,
}

impl Sshd {
    pub fn start(dir: &Path) -> Sshd {
        Sshd::start_on(dir, None)
    }

    pub fn start_on(dir: &Path, port: Option<u16>) -> Sshd {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/sshd.sh"))
            .arg("start")
            .arg(dir);
        if let Some(p) = port {
            cmd.env("SSHD_PORT", p.to_string());
        }
        let out = cmd.output().expect("run scripts/sshd.sh");
        assert!(
            out.status.success(),
            "sshd.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("sshd.sh printed no {k}: {text}"))
                .to_string()
        };
        Sshd {
            dir: dir.to_path_buf(),
            port: get("PORT").parse().unwrap(),
            host_key: get("HOST_KEY").into(),
            authorized_keys: get("AUTHORIZED_KEYS").into(),
        }
    }

    /// Start again on the same port and host key, the configuration ending with
    /// `Include GLOB`.
    pub fn restart_including(&self, glob: &str) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/sshd.sh"))
            .arg("start")
            .arg(&self.dir)
            .env("SSHD_PORT", self.port.to_string())
            .env("SSHD_INCLUDE", glob)
            .output()
            .expect("run scripts/sshd.sh");
        assert!(
            out.status.success(),
            "sshd.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Drop every live connection; the server keeps listening.
    pub fn cut(&self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/sshd.sh"))
            .arg("cut")
            .arg(&self.dir)
            .status();
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/sshd.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An inspection node and a supervision node that reach each other through `sshd`.
/// Fields drop in order: the server stops before its folder is removed.
pub struct Pair {
    pub sshd: Sshd,
    pub insp: PathBuf,
    pub sup: PathBuf,
    pub tmp: tempfile::TempDir,
}

pub fn whoami() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

impl Pair {
    pub fn new() -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let sshd = Sshd::start(&tmp.path().join("sshd"));
        let args = DemoArgs {
            dir: tmp.path().join("nodes"),
            sshd_port: sshd.port,
            host_key: sshd.host_key.clone(),
            authorized_keys: sshd.authorized_keys.clone(),
            user: whoami(),
            nodes_only: true,
            existing: false,
        };
        let (insp, sup) = pair(&args).unwrap();
        for dir in [&insp, &sup] {
            let mut cfg = Config::load(dir).unwrap();
            cfg.node.settle_ms = 50;
            // Tests run at any hour and retry at once; the window and backoff
            // have tests of their own.
            cfg.node.window = "always".into();
            cfg.node.retry_base_secs = 0;
            cfg.save(dir).unwrap();
        }
        Pair {
            tmp,
            sshd,
            insp,
            sup,
        }
    }

    pub fn insp(&self) -> Node {
        Node::open(&self.insp).unwrap()
    }
    pub fn sup(&self) -> Node {
        Node::open(&self.sup).unwrap()
    }

    /// One pass of a node, which must not report errors.
    pub fn pass(&self, dir: &Path) -> PassReport {
        let r = Node::open(dir).unwrap().pass();
        assert!(
            r.errors.is_empty(),
            "pass of {} failed: {:?}",
            dir.display(),
            r.errors
        );
        r
    }

    /// Drop a plain batch into the inspection node's outbound.
    pub fn drop_batch(&self, file: &str, xml: &str) {
        let path = self.insp.join("outbound").join(file);
        std::fs::write(&path, xml).unwrap();
    }

    /// The inbound folder of the supervision node for the inspection node's sets.
    pub fn sup_inbound(&self) -> PathBuf {
        self.sup.join("inbound").join(INSP)
    }
}

/// Run the sedx binary against a node.
pub fn sedx(node: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(node)
        .args(args)
        .output()
        .expect("run sedx")
}

pub fn sql_count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

pub fn sql_text(db: &Path, sql: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).ok()
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn sample_batch() -> String {
    sedx::demo::SAMPLE_BATCH.to_string()
}

/// A small valid batch with `n` equipment records whose codes start at `first`.
pub fn equipment_batch(first: u32, n: u32) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"urn:sedx:batch:1\" from=\"insp-city\" to=\"sup-city\">\n");
    for i in first..first + n {
        s.push_str(&format!(
            "  <equipment><registrationCode>3110310101200605{i:04}</registrationCode><category>3110</category><userUnit>上海测试单位{i}</userUnit><orgCode>63169638-2</orgCode></equipment>\n"
        ));
    }
    s.push_str("</batch>\n");
    s
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Put a set with this gzip payload, signed by `key`, into `dir` (a peer's inbound).
pub fn plant_in(
    dir: &Path,
    name: &str,
    gz: &[u8],
    key: &ssh_key::PrivateKey,
) -> sedx::set::SetName {
    let name = sedx::set::SetName::new(name).unwrap();
    std::fs::write(name.payload(dir), gz).unwrap();
    let digest = sedx::signature::digest_file(&name.payload(dir)).unwrap();
    sedx::seal::finish(dir, &name, key, "sedx-batch", &digest).unwrap();
    name
}

/// A complete wire batch (header filled) holding `records`.
pub fn wire_batch(from: &str, to: &str, seq: u64, records: &[&str]) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<batch xmlns=\"urn:sedx:batch:1\" id=\"{}\" from=\"{from}\" to=\"{to}\" seq=\"{seq}\" created=\"2026-11-27T10:00:00Z\" count=\"{}\">\n{}\n</batch>\n",
        uuid::Uuid::new_v4(),
        records.len(),
        records.join("\n")
    )
}

/// A plain batch as a system drops it into outbound.
pub fn drop_doc(from: &str, records: &[&str]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"urn:sedx:batch:1\" from=\"{from}\">\n{}\n</batch>\n",
        records.join("\n")
    )
}

/// The texts of the acknowledgments a node has received from `peer`.
pub fn acks_received(node: &Path, peer: &str) -> Vec<String> {
    use std::io::Read;
    walkdir::WalkDir::new(node.join("archive").join(peer))
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".xml.gz"))
        .map(|e| {
            let mut s = String::new();
            flate2::read::MultiGzDecoder::new(std::fs::File::open(e.path()).unwrap())
                .read_to_string(&mut s)
                .unwrap();
            s
        })
        .collect()
}
