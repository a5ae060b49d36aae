//! Faults against real processes: the SFTP server stopped and started during a
//! transfer of many sets, the connection cut mid-file, the receiver's disk full,
//! and both nodes killed at random moments over many rounds. The end state is
//! compared with a run without faults: every record applied exactly once, none
//! lost, every set acknowledged.

use crate::common::*;
use sedx::context::config::Config;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_run(node: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(node)
        .args(["run", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_once_ok(node: &Path) -> bool {
    run_once(node, None).status.success()
}

/// Drive both nodes until every batch is acknowledged (bounded: a liveness
/// limit, not a timing assertion).
fn settle(p: &Pair, batches: i64) {
    let idb = p.insp.join("store.sqlite");
    for _ in 0..40 {
        run_once_ok(&p.insp);
        run_once_ok(&p.sup);
        run_once_ok(&p.insp);
        let acked = sql_count(
            &idb,
            "SELECT count(*) FROM outbox WHERE kind = 'batch' AND ack_status IS NOT NULL",
        );
        if acked == batches
            && files_in(&p.insp.join("outbound"))
                .iter()
                .all(|f| f.starts_with('.'))
        {
            return;
        }
    }
    panic!(
        "the nodes did not finish: {}",
        String::from_utf8_lossy(&sedx(&p.insp, &["status"]).stdout)
    );
}

/// What the receiver holds, for comparing runs.
fn register(node: &Path) -> (Vec<String>, Vec<(u64, String)>) {
    let cfg = Config::load(node).unwrap();
    let db = sedx::context::config::Layout::new(node).resolve(&cfg.node.store);
    // On PostgreSQL the store is no file: the node's folder names it.
    let db = if on_postgres() {
        node.join("store.sqlite")
    } else {
        db
    };
    let equipment = sql_rows(
        &db,
        "SELECT registration_code || ' ' || user_unit FROM equipment ORDER BY 1",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    let journal = sql_rows(&db, "SELECT seq, status FROM journal ORDER BY seq")
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].clone()))
        .collect();
    (equipment, journal)
}

fn drop_batches(p: &Pair, n: u32, per: u32) {
    for i in 0..n {
        p.drop_batch(&format!("b{i:03}.xml"), &equipment_batch(i * per + 1, per));
    }
}

fn assert_exactly_once(p: &Pair, n: u32, per: u32) {
    let (equipment, journal) = register(&p.sup);
    assert_eq!(equipment.len(), (n * per) as usize, "every record, once");
    assert_eq!(journal.len(), n as usize, "every batch applied once");
    assert!(
        journal
            .iter()
            .enumerate()
            .all(|(i, (seq, status))| *seq == i as u64 + 1 && status == "accepted"),
        "{journal:?}"
    );
    let idb = p.insp.join("store.sqlite");
    assert_eq!(
        sql_count(
            &idb,
            "SELECT count(*) FROM outbox WHERE kind = 'batch' AND ack_status = 'accepted'"
        ),
        n as i64,
        "every set acknowledged"
    );
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM quarantine"
        ),
        0
    );
}

#[test]
fn sshd_stopped_and_started_during_a_transfer_of_many_sets() {
    let p = Pair::new();
    // Sets of 100 records: each is sealed and shipped before the next is sealed, so
    // the 60 take long enough for the cut below to land among them.
    drop_batches(&p, 60, 100);
    let mut insp = spawn_run(&p.insp);
    // Cut the server as soon as the first sets have landed, while the rest go up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_in(&p.sup_inbound()).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    p.sshd.stop();
    let _ = insp.wait();
    let shipped_before = files_in(&p.sup_inbound())
        .iter()
        .filter(|f| is_marker(f))
        .count();
    assert!(
        shipped_before < 60,
        "the cut came during the transfer ({shipped_before} of 60 delivered)"
    );
    assert!(
        !run_once_ok(&p.insp),
        "while the server is down, a pass reports the failure"
    );
    let _back = Sshd::start_on(&p.sshd.dir, Some(p.sshd.port));
    settle(&p, 60);
    assert_exactly_once(&p, 60, 100);
}

#[test]
fn connection_cut_mid_file_resumes_where_it_stopped() {
    let p = Pair::new();
    // A large set made elsewhere and dropped sealed: 100 MB stored uncompressed
    // (a batch whose comment carries the bulk).
    let key = signing_key(&p.insp);
    let staging = p.tmp.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let mut rng = sedx::tools::generate::Rng::new(7);
    let mut xml = wire_batch(INSP, SUP, 1, &[]).into_bytes();
    let at = xml.len() - "</batch>\n".len();
    let bulk: Vec<u8> = (0..100 << 20)
        .map(|_| b'a' + (rng.next_u64() % 26) as u8)
        .collect();
    let tail = xml.split_off(at);
    // In comments of 8 KiB: no piece of a document may exceed the limits.
    for piece in bulk.chunks(8 << 10) {
        xml.extend_from_slice(b"<!-- ");
        xml.extend_from_slice(piece);
        xml.extend_from_slice(b" -->\n");
    }
    xml.extend_from_slice(&tail);
    for node in [&p.insp, &p.sup] {
        let mut cfg = sedx::context::config::Config::load(node).unwrap();
        cfg.node.max_payload_bytes = 256 << 20;
        cfg.save(node).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    std::io::Write::write_all(&mut gz, &xml).unwrap();
    let name = plant_in(&staging, "large", &gz.finish().unwrap(), &key);
    for (from, to) in parts(&name, &staging, &p.insp.join("outbound")) {
        std::fs::rename(from, to).unwrap();
    }
    let mut insp = spawn_run(&p.insp);
    let deadline = Instant::now() + Duration::from_secs(120);
    let part = loop {
        let size =
            std::fs::metadata(p.sup_inbound().join(".large.xml.gz.part")).map_or(0, |m| m.len());
        if size > 0 || Instant::now() > deadline {
            break size;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    p.sshd.cut();
    assert!(
        !insp.wait().unwrap().success(),
        "the cut broke the transfer"
    );
    assert!(part > 0 && part < 100 << 20, "the cut came mid-file");
    assert!(run_once_ok(&p.insp));
    let resumed = sql_count(
        &p.insp.join("store.sqlite"),
        "SELECT coalesce(max(value), 0) FROM meta WHERE name = 'resumed_bytes'",
    );
    assert!(resumed > 0, "continued from the part already there");
    // The checksum at the end decides: it agrees, and the batch is applied.
    assert!(run_once_ok(&p.sup));
    assert_eq!(
        sql_text(&p.sup.join("store.sqlite"), "SELECT status FROM journal").as_deref(),
        Some("accepted")
    );
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM quarantine"
        ),
        0
    );
}

/// A small filesystem mounted over the receiver's inbound folder.
struct Tmpfs(std::path::PathBuf);
impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs (the tests run as root)");
        Tmpfs(dir.to_path_buf())
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn receivers_store_and_scratch_full_nothing_is_lost_and_it_completes_once_space_returns() {
    let p = Pair::new();
    // The receiver's store and its scratch folder each on a small disk of its own,
    // nearly full.
    // (On PostgreSQL the store is the server's, not on this disk: only the
    // scratch folder fills up.)
    let store_disk = p.tmp.path().join("store-disk");
    std::fs::create_dir_all(&store_disk).unwrap();
    let _store = (!on_postgres()).then(|| Tmpfs::mount(&store_disk, "16m"));
    if !on_postgres() {
        std::fs::copy(p.sup.join("store.sqlite"), store_disk.join("store.sqlite")).unwrap();
        std::fs::remove_file(p.sup.join("store.sqlite")).unwrap();
        let mut cfg = Config::load(&p.sup).unwrap();
        cfg.node.store = store_disk.join("store.sqlite");
        cfg.save(&p.sup).unwrap();
    }
    let _work = Tmpfs::mount(&p.sup.join(".work"), "16m");
    let mut fillers = vec![(p.sup.join(".work/filler"), 15_900 * 1024)];
    if !on_postgres() {
        fillers.push((store_disk.join("filler"), 15_900 * 1024));
    }
    for (f, n) in &fillers {
        let _ = std::fs::write(f, vec![0u8; *n]);
    }
    drop_batches(&p, 1, 10);
    let big = p.tmp.path().join("big");
    let o = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args(["gen", "--out", big.to_str().unwrap(), "--records", "4000"])
        .args(["--batch-size", "5000", "--non-statutory", "0", "--to", SUP])
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::rename(big.join("gen-000001.xml"), p.insp.join("outbound/big.xml")).unwrap();
    assert!(run_once_ok(&p.insp), "the sender ships both");
    assert!(
        !run_once_ok(&p.sup),
        "the full disks are reported as failures"
    );
    assert!(
        files_in(&p.sup_inbound()).iter().any(|f| is_marker(f)),
        "what could not be applied stays in inbound"
    );
    for (f, _) in &fillers {
        std::fs::remove_file(f).unwrap();
    }
    settle(&p, 2);
    let (equipment, journal) = register(&p.sup);
    assert_eq!(journal.len(), 2, "{journal:?}");
    assert!(journal.iter().all(|(_, s)| s == "accepted"), "{journal:?}");
    assert_eq!(equipment.len(), 10 + 2000);
}

#[test]
fn receivers_disk_full_nothing_is_lost_and_it_completes_once_space_returns() {
    let p = Pair::new();
    let _disk = Tmpfs::mount(&p.sup_inbound(), "512k");
    let filler = p.sup_inbound().join(".filler");
    let _ = std::fs::write(&filler, vec![0u8; 400 * 1024]);
    drop_batches(&p, 1, 10);
    // Varied data (from gen) compresses to far more than the space left.
    let big = p.tmp.path().join("big");
    let o = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "gen",
            "--out",
            big.to_str().unwrap(),
            "--records",
            "4000",
            "--batch-size",
            "5000",
            "--non-statutory",
            "0",
            "--to",
            SUP,
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::rename(big.join("gen-000001.xml"), p.insp.join("outbound/big.xml")).unwrap();
    let r = p.insp().pass();
    assert!(!r.errors.is_empty(), "the full disk is reported: {r:?}");
    let queued: Vec<String> = files_in(&p.insp.join("outbound"))
        .into_iter()
        .filter(|f| is_marker(f))
        .collect();
    assert!(!queued.is_empty(), "what did not fit stays queued");
    // The receiver itself keeps running on what did arrive.
    assert!(run_once_ok(&p.sup));
    std::fs::remove_file(&filler).unwrap();
    let mut cfg = Config::load(&p.sup).unwrap();
    cfg.node.settle_ms = 50;
    cfg.save(&p.sup).unwrap();
    settle(&p, 2);
    let (equipment, journal) = register(&p.sup);
    assert_eq!(journal.len(), 2);
    assert_eq!(equipment.len(), 10 + 2000);
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM inspection_report"
        ),
        2000
    );
}

/// The log lines that mark the steps of a pass (sender and receiver).
const STEPS: [&str; 6] = [
    "sealed",
    "uploaded",
    "shipped",
    "applied",
    "acknowledgment sealed",
    "acknowledged",
];

/// Run one pass of `node` and kill it: right after it logs `target` (a step),
/// or at a random moment when there is no target. Returns whether it was
/// killed, and the last step it had logged then ("start" for none).
fn run_and_kill(node: &Path, target: Option<&str>, delay_us: u64) -> (bool, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(node)
        .args(["run", "--once"])
        .env("SEDX_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in log.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut last = "start".to_string();
    let step_of = |line: &str| {
        STEPS
            .iter()
            .rev()
            .find(|s| line.contains(&format!(" {s} ")) || line.contains(&format!("m {s}")))
            .map(|s| s.to_string())
    };
    match target {
        Some(t) => {
            // Wait for the step (or the end of the pass), then kill at once.
            for line in rx.iter() {
                if let Some(step) = step_of(&line) {
                    last = step.clone();
                    if step == t {
                        break;
                    }
                }
            }
        }
        None => std::thread::sleep(Duration::from_micros(delay_us)),
    }
    let killed = child.try_wait().unwrap().is_none() && child.kill().is_ok();
    let _ = child.wait();
    let _ = reader.join();
    for line in rx.try_iter() {
        if let Some(step) = step_of(&line) {
            last = step;
        }
    }
    (killed, last)
}

#[test]
fn a_hundred_random_kills_change_nothing() {
    const BATCHES: u32 = 40;
    // The same work without faults, for comparison.
    let calm = Pair::new();
    drop_batches(&calm, BATCHES, 10);
    settle(&calm, BATCHES as i64);
    let expected = register(&calm.sup);

    let p = Pair::new();
    let mut rng = sedx::tools::generate::Rng::new(20061127);
    let mut kills = 0;
    let mut round = 0;
    let mut dropped = 0;
    // Where the kills landed: the last step the killed pass had logged.
    let mut landed: std::collections::BTreeMap<String, u32> = Default::default();
    while kills < 120 || dropped < BATCHES {
        round += 1;
        // A batch dropped each round, so that every pass has work to be cut in.
        if dropped < BATCHES {
            p.drop_batch(
                &format!("b{dropped:03}.xml"),
                &equipment_batch(dropped * 10 + 1, 10),
            );
            dropped += 1;
        }
        for node in [&p.insp, &p.sup, &p.insp] {
            // Most kills right after a step of the pass (the receiver's apply, its
            // acknowledgment, sealing, shipping...), the rest at a random moment.
            let pick = rng.below(STEPS.len() as u64 + 2) as usize;
            let target = STEPS.get(pick).copied();
            let (killed, last) = run_and_kill(node, target, rng.below(150_000));
            if killed {
                kills += 1;
                let side = if node == &p.sup { "receiver" } else { "sender" };
                *landed.entry(format!("{side} after {last}")).or_default() += 1;
            }
        }
        assert!(round < 2000, "{kills} kills in {round} rounds");
    }
    eprintln!("where the {kills} kills landed: {landed:#?}");
    for window in [
        "receiver after applied",
        "receiver after acknowledgment sealed",
        "sender after sealed",
        "sender after shipped",
    ] {
        assert!(
            landed.contains_key(window),
            "no kill landed {window}: {landed:#?}"
        );
    }
    settle(&p, BATCHES as i64);
    assert!(kills >= 100);
    assert_eq!(
        register(&p.sup),
        expected,
        "same end state as the run without faults"
    );
    assert_exactly_once(&p, BATCHES, 10);
}
