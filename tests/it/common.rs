//! The helpers every test shares: a real OpenSSH sshd (scripts/sshd.sh), a pair
//! of real nodes, the sedx command, records and batches, sets, SQL and waiting.

use sedx::context::config::Config;
use sedx::context::node::Node;
use sedx::context::report::PassReport;
use sedx::tools::demo::{pair, DemoArgs};
pub use sedx::wire::suite::Suite;
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
    /// With SEDX_TEST_STORE=postgres: the server holding both nodes' stores
    /// (kept for its life; dropped after the sshd, before the folders go).
    _pg: Option<PgServer>,
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

/// The suite of the tests' pairs: `SEDX_TEST_SUITE=sm2` (scripts/test.sh's
/// third round) runs the exchange on an SM2/SM3 channel.
pub fn test_suite() -> Suite {
    std::env::var("SEDX_TEST_SUITE")
        .ok()
        .and_then(|s| <Suite as clap::ValueEnum>::from_str(&s, false).ok())
        .unwrap_or_default()
}

impl Pair {
    pub fn new() -> Pair {
        Pair::with_suite(test_suite())
    }

    /// Two nodes whose channel uses `suite`.
    pub fn with_suite(suite: Suite) -> Pair {
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
            suite,
        };
        let (insp, sup) = pair(&args).unwrap();
        let pg = on_postgres().then(|| PgServer::start(&tmp.path().join("pg")));
        for dir in [&insp, &sup] {
            let mut cfg = Config::load(dir).unwrap();
            if let Some(pg) = &pg {
                // Each node its own database; the SQLite file it was made with goes.
                cfg.node.store = pg.database(&cfg.node.id).into();
                std::fs::remove_file(dir.join("store.sqlite")).unwrap();
            }
            cfg.node.settle_ms = 50;
            // Tests run at any hour and retry at once; the window and backoff
            // have tests of their own.
            cfg.node.window = "always".into();
            cfg.node.retry_base_secs = 0;
            cfg.save(dir).unwrap();
            if pg.is_some() {
                // As `sedx init` makes the SQLite store: the schema from the start.
                Node::open(dir).unwrap();
            }
        }
        Pair {
            tmp,
            sshd,
            _pg: pg,
            insp,
            sup,
        }
    }

    /// The suite of the pair's channel.
    pub fn suite(&self) -> Suite {
        Config::load(&self.sup).unwrap().suite_of(INSP)
    }

    pub fn insp(&self) -> Node {
        Node::open(&self.insp).unwrap()
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

/// Whether the tests' nodes keep their stores on PostgreSQL
/// (`SEDX_TEST_STORE=postgres`, scripts/test.sh's second round) or in SQLite files.
pub fn on_postgres() -> bool {
    std::env::var("SEDX_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// A throwaway PostgreSQL server (scripts/pg.sh), stopped by its PID when dropped.
pub struct PgServer {
    dir: PathBuf,
    url: String,
}

impl PgServer {
    pub fn start(dir: &Path) -> PgServer {
        let out = Command::new("bash")
            .arg(repo().join("scripts/pg.sh"))
            .arg("start")
            .arg(dir)
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            out.status.success(),
            "pg.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("PGURL="))
            .expect("pg.sh prints PGURL")
            .to_string();
        PgServer {
            dir: dir.to_path_buf(),
            url,
        }
    }

    /// A new database on this server; its URL.
    pub fn database(&self, name: &str) -> String {
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        format!("{}/{name}", self.url.rsplit_once('/').unwrap().0)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/pg.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// A SQL connection to a node's store, on either backend: `db` is the node's
/// store.sqlite path, whose folder's sedx.toml may name a PostgreSQL store instead.
enum StoreSql {
    Lite(rusqlite::Connection),
    Pg(postgres::Client),
}

fn store_sql(db: &Path) -> StoreSql {
    let cfg = db.parent().and_then(|node| Config::load(node).ok());
    match cfg.as_ref().and_then(|c| c.postgres_url()) {
        Some(url) => StoreSql::Pg(postgres::Client::connect(url, postgres::NoTls).unwrap()),
        None => StoreSql::Lite(rusqlite::Connection::open(db).unwrap()),
    }
}

pub fn sql_count(db: &Path, sql: &str) -> i64 {
    match store_sql(db) {
        StoreSql::Lite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
        StoreSql::Pg(mut c) => {
            let row = c
                .query_one(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            row.try_get::<_, i64>(0)
                .or_else(|_| row.try_get::<_, Option<i64>>(0).map(|v| v.unwrap_or(0)))
                .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    }
}

/// Run a statement (`?N` placeholders, text parameters) on a node's store, as
/// a local system writing into it would.
pub fn sql_exec(db: &Path, sql: &str, params: &[&str]) -> u64 {
    match store_sql(db) {
        StoreSql::Lite(c) => c
            .execute(sql, rusqlite::params_from_iter(params.iter()))
            .unwrap() as u64,
        StoreSql::Pg(mut c) => {
            let mut pg = String::new();
            let mut chars = sql.chars().peekable();
            while let Some(ch) = chars.next() {
                pg.push(
                    if ch == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
                        '$'
                    } else {
                        ch
                    },
                );
            }
            let ps: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                .collect();
            c.execute(&pg, &ps)
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        }
    }
}

/// Every row of a query, each column as text (NULL as "").
pub fn sql_rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    match store_sql(db) {
        StoreSql::Lite(c) => {
            let mut st = c.prepare(sql).unwrap();
            let n = st.column_count();
            st.query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => String::new(),
                            rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                            rusqlite::types::ValueRef::Real(v) => v.to_string(),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                        })
                    })
                    .collect()
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
        }
        StoreSql::Pg(mut c) => c
            .query(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<_, Option<String>>(i)
                            .map(Option::unwrap_or_default)
                            .or_else(|_| {
                                r.try_get::<_, Option<i64>>(i)
                                    .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
                            })
                            .or_else(|_| {
                                r.try_get::<_, Option<i32>>(i)
                                    .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
                            })
                            .unwrap_or_else(|e| panic!("{sql}: column {i}: {e}"))
                    })
                    .collect()
            })
            .collect(),
    }
}

pub fn sql_text(db: &Path, sql: &str) -> Option<String> {
    match store_sql(db) {
        StoreSql::Lite(c) => c.query_row(sql, [], |r| r.get(0)).ok(),
        StoreSql::Pg(mut c) => c
            .query_opt(sql, &[])
            .ok()
            .flatten()
            .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten()),
    }
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
    sedx::tools::demo::SAMPLE_BATCH.to_string()
}

/// Equipment record number `i` (its code ends in `i`).
pub fn numbered_equipment(i: u32) -> String {
    format!("<equipment><registrationCode>3110310101200605{i:04}</registrationCode><category>3110</category><userUnit>上海测试单位{i}</userUnit><orgCode>63169638-2</orgCode></equipment>")
}

/// A small valid batch with `n` equipment records whose codes start at `first`.
pub fn equipment_batch(first: u32, n: u32) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"urn:sedx:batch:1\" from=\"insp-city\" to=\"sup-city\">\n");
    for i in first..first + n {
        s.push_str(&format!("  {}\n", numbered_equipment(i)));
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

/// A signing key of either suite, as the tests seal sets with it.
pub enum TestKey {
    Ed25519(ssh_key::PrivateKey),
    Sm2(sedx::wire::sm2sig::Sm2Key),
}

impl From<ssh_key::PrivateKey> for TestKey {
    fn from(k: ssh_key::PrivateKey) -> TestKey {
        TestKey::Ed25519(k)
    }
}

impl From<sedx::wire::sm2sig::Sm2Key> for TestKey {
    fn from(k: sedx::wire::sm2sig::Sm2Key) -> TestKey {
        TestKey::Sm2(k)
    }
}

/// Put a set with this gzip payload, sealed by `key` in its suite, into `dir`
/// (a peer's inbound).
pub fn plant_in(dir: &Path, name: &str, gz: &[u8], key: &TestKey) -> sedx::wire::set::SetName {
    plant_signed(dir, name, gz, key, "sedx-batch")
}

/// [`plant_in`] under a namespace of choice (`sedx-ack` for an acknowledgment;
/// an SM2 signature has none: the document's root says what it is).
pub fn plant_signed(
    dir: &Path,
    name: &str,
    gz: &[u8],
    key: &TestKey,
    namespace: &str,
) -> sedx::wire::set::SetName {
    let name = sedx::wire::set::SetName::new(name).unwrap();
    std::fs::write(name.payload(dir), gz).unwrap();
    sign_payload(dir, &name, key, namespace);
    name
}

/// Sign and mark the payload already in `dir` (SSHSIG under `namespace`, or SM2).
pub fn sign_payload(dir: &Path, name: &sedx::wire::set::SetName, key: &TestKey, namespace: &str) {
    let key = match key {
        TestKey::Ed25519(key) => key,
        TestKey::Sm2(key) => return sign_sm2(dir, name, key),
    };
    let digest = digest_of(&name.payload(dir), Suite::Ed25519);
    let sig = sedx::wire::sshsig::sign(key, namespace, &digest).unwrap();
    std::fs::write(name.sig(dir), sig).unwrap();
    write_marker(dir, name, Suite::Ed25519);
}

/// (Re)write a set's marker of `suite` for the payload as it is now.
pub fn write_marker(dir: &Path, name: &sedx::wire::set::SetName, suite: Suite) {
    let d = digest_of(&name.payload(dir), suite);
    std::fs::write(
        name.marker(dir, suite),
        sedx::wire::set::Marker::line(&d.marker_hex(suite), &name.payload_file()),
    )
    .unwrap();
}

/// A set's files present in `from` (its three: payload, signature, marker),
/// each with its place in `to`.
pub fn parts(name: &sedx::wire::set::SetName, from: &Path, to: &Path) -> Vec<(PathBuf, PathBuf)> {
    name.files(from)
        .into_iter()
        .zip(name.files(to))
        .filter(|(f, _)| f.exists())
        .collect()
}

/// A file's digests for a suite (no SM2 key: its marker digest only).
pub fn digest_of(path: &Path, suite: Suite) -> sedx::wire::suite::PayloadDigest {
    sedx::wire::suite::digest_file(path, suite, &[]).unwrap()
}

/// Put a set with this gzip payload into `dir`, sealed in the SM2 suite by
/// `key` as sedx seals it.
pub fn plant_sm2(
    dir: &Path,
    name: &str,
    gz: &[u8],
    key: &sedx::wire::sm2sig::Sm2Key,
) -> sedx::wire::set::SetName {
    let name = sedx::wire::set::SetName::new(name).unwrap();
    std::fs::write(name.payload(dir), gz).unwrap();
    sign_sm2(dir, &name, key);
    name
}

/// Sign (SM2) and mark (SM3) the payload already in `dir`, as sedx seals it.
fn sign_sm2(dir: &Path, name: &sedx::wire::set::SetName, key: &sedx::wire::sm2sig::Sm2Key) {
    let digest =
        sedx::wire::suite::digest_file(&name.payload(dir), Suite::Sm2, &[key.public().z()])
            .unwrap();
    sedx::wire::seal::finish(
        dir,
        name,
        sedx::wire::seal::Sealer::Sm2(key),
        sedx::wire::document::DocKind::Batch,
        &digest,
    )
    .unwrap();
}

/// The file that trusts the peers' signing keys in the node's suite
/// (allowed_signers or sm2_trust; lines start with the node id in both).
pub fn trust_file(node: &Path) -> PathBuf {
    match Config::load(node).unwrap().node.suite {
        Suite::Ed25519 => node.join("keys/allowed_signers"),
        Suite::Sm2 => node.join("keys/sm2_trust"),
    }
}

/// A node's SM2 signing key.
pub fn sm2_key(node: &Path) -> sedx::wire::sm2sig::Sm2Key {
    sedx::wire::sm2sig::Sm2Key::load(&node.join("keys/signing_sm2.pem")).unwrap()
}

/// A node's signing key in the suite of its channels.
pub fn signing_key(node: &Path) -> TestKey {
    match Config::load(node).unwrap().node.suite {
        Suite::Ed25519 => ed25519_key(node).into(),
        Suite::Sm2 => sm2_key(node).into(),
    }
}

/// A node's Ed25519 signing key.
pub fn ed25519_key(node: &Path) -> ssh_key::PrivateKey {
    sedx::wire::sshsig::load_private_key(&node.join("keys/signing_ed25519")).unwrap()
}

/// A wire batch's opening tag, every header attribute filled (a new id).
pub fn batch_header(seq: u64, from: &str, to: &str, count: usize) -> String {
    format!(
        r#"<batch xmlns="urn:sedx:batch:1" id="{}" from="{from}" to="{to}" seq="{seq}" created="2026-11-27T10:00:00Z" count="{count}">"#,
        uuid::Uuid::new_v4()
    )
}

/// A complete wire batch (header filled) holding `records`.
pub fn wire_batch(from: &str, to: &str, seq: u64, records: &[&str]) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n{}\n{}\n</batch>\n",
        batch_header(seq, from, to, records.len()),
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

/// The city institute, the agency the pair's inspection node speaks for.
pub const CI: &str = sedx::tools::demo::CITY_INSTITUTE;

/// A construction notice for the city institute (R11).
pub const NOTICE: &str = "<constructionNotice><noticeNumber>SG-1</noticeNumber><category>3110</category><userUnit>上海某公司</userUnit><address>黄浦区某路1号</address><constructionUnit>上海三菱电梯有限公司</constructionUnit><constructionKind>installation</constructionKind><plannedStart>2006-08-01</plannedStart><inspectionAgency>上海市特种设备监督检验技术研究院</inspectionAgency></constructionNotice>";

/// An elevator's equipment record, with its responsible agency if given.
pub fn equipment(code: &str, agency: Option<&str>) -> String {
    format!(
        "<equipment><registrationCode>{code}</registrationCode><category>3110</category><factorySerial>SN-{code}</factorySerial><userUnit>上海外滩置业有限公司</userUnit><orgCode>63169638-2</orgCode>{}</equipment>",
        agency.map(|a| format!("<inspectionAgency>{a}</inspectionAgency>")).unwrap_or_default()
    )
}

/// An inspection report (approved, or not).
pub fn report(no: &str, code: &str, kind: &str, agency: &str, approved: bool) -> String {
    format!(
        "<inspectionReport><reportNumber>{no}</reportNumber><registrationCode>{code}</registrationCode><kind>{kind}</kind><date>2006-07-01</date><conclusion>合格</conclusion><agency>{agency}</agency>{}</inspectionReport>",
        if approved { "<approved>2006-07-02T09:00:00+08:00</approved>" } else { "" }
    )
}

/// Drop a file into a node's outbound/.
pub fn drop_into(node: &Path, file: &str, xml: &str) {
    std::fs::write(node.join("outbound").join(file), xml).unwrap();
}

/// Change a node's sedx.toml.
pub fn configure(node: &Path, f: impl FnOnce(&mut Config)) {
    let mut cfg = Config::load(node).unwrap();
    f(&mut cfg);
    cfg.save(node).unwrap();
}

/// Run the sedx binary without a node.
pub fn sedx_plain(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args(args)
        .output()
        .unwrap()
}

/// `sedx run --once` on a node; with a crash point, it is killed there.
pub fn run_once(node: &Path, crash_at: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sedx"));
    cmd.arg("--node").arg(node).args(["run", "--once"]);
    if let Some(point) = crash_at {
        cmd.env("SEDX_CRASH_AT", point);
    }
    cmd.output().unwrap()
}

/// The process was stopped at the crash point.
pub fn crashed(out: &std::process::Output, point: &str) {
    assert!(!out.status.success(), "expected the crash at {point}");
    assert!(
        stderr(out).contains(&format!("crash injected at {point}")),
        "{}",
        stderr(out)
    );
}

/// The standard output of a command that must have succeeded.
pub fn stdout(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A command's exit status and everything it printed.
pub fn outcome(out: std::process::Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out),
    )
}

/// Wait (at most a minute: a liveness bound, not a timing assertion) for `cond`.
pub fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// A complete set has arrived in the supervision node's inbound.
pub fn arrived(p: &Pair) -> bool {
    files_in(&p.sup_inbound()).iter().any(|f| is_marker(f))
}

/// Whether a file name is a set's marker, in either suite.
pub fn is_marker(file: &str) -> bool {
    matches!(
        sedx::wire::set::SetName::of_file(file),
        Some((_, sedx::wire::set::Part::Marker(_)))
    )
}

/// A child process, killed when dropped.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shell block that follows `<!-- recipe:TAG -->` in docs/format.md.
pub fn recipe(tag: &str) -> String {
    let doc = std::fs::read_to_string(repo().join("docs/format.md")).unwrap();
    let at = doc
        .find(&format!("<!-- recipe:{tag} -->"))
        .unwrap_or_else(|| panic!("no recipe {tag}"));
    let rest = &doc[at..];
    let start = rest.find("```sh\n").unwrap() + 6;
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

/// Run a recipe with bash (-euo pipefail) in `dir` with these variables.
pub fn shell(script: &str, dir: &Path, env: &[(&str, String)]) -> std::process::Output {
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

/// [`shell`], which must succeed.
pub fn sh(script: &str, dir: &Path, env: &[(&str, String)]) {
    let out = shell(script, dir, env);
    assert!(
        out.status.success(),
        "recipe failed:\n{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

/// Append a line to a file that exists.
pub fn append_line(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(f, "{line}").unwrap();
}

/// The reason file of a set the supervision node quarantined from the
/// inspection node.
pub fn reason_of(p: &Pair, name: &str) -> String {
    std::fs::read_to_string(
        p.sup
            .join("quarantine")
            .join(INSP)
            .join(format!("{name}.reason.txt")),
    )
    .unwrap_or_else(|e| panic!("no reason for {name}: {e}"))
}
