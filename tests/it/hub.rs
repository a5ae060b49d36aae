//! A supervision hub and three agencies over a real sshd: the city institute and
//! a district institute push, the elevator testing station pulls. Responsibility
//! decisions (R12, R13) reach every agency they concern, with the equipment's
//! registration data, and every node's checks follow them at once.

use crate::common::*;
use sedx::context::config::{Config, PeerConfig, Transport};
use sedx::context::node::Node;
use sedx::domain::Role;
use std::fs;
use std::path::{Path, PathBuf};

const HUB: &str = "sup-city";
const CITY: &str = "insp-city";
const DIST: &str = "insp-pudong";
const STATION: &str = "insp-elev";
const PD: &str = "上海市浦东新区特种设备监督检验所";
const ST: &str = "上海市电梯检测站";
const LIFT: &str = "31103101152006070001";

struct City {
    hub: PathBuf,
    agencies: Vec<PathBuf>,
    _sshd: Sshd,
    _tmp: tempfile::TempDir,
}

impl City {
    fn new() -> City {
        let tmp = tempfile::tempdir().unwrap();
        let sshd = Sshd::start(&tmp.path().join("sshd"));
        let pin =
            ssh_key::PublicKey::from_openssh(fs::read_to_string(&sshd.host_key).unwrap().trim())
                .unwrap()
                .fingerprint(ssh_key::HashAlg::Sha256)
                .to_string();
        let dir = |id: &str| tmp.path().join(id);
        let mut infos = Vec::new();
        for (id, role) in [
            (HUB, Role::Supervision),
            (CITY, Role::Inspection),
            (DIST, Role::Inspection),
            (STATION, Role::Inspection),
        ] {
            let info = Node::init(&dir(id), id, role, Suite::Ed25519).unwrap();
            append_line(&sshd.authorized_keys, &info.login_public_key);
            infos.push(info);
        }
        let peer = |id: &str, remote_inbound: PathBuf| PeerConfig {
            id: id.into(),
            transport: Transport::Push,
            host: "127.0.0.1".into(),
            port: sshd.port,
            user: whoami(),
            key: None,
            remote_inbound: remote_inbound.display().to_string(),
            host_key: pin.clone(),
            remote_outbox: None,
            local_outbox: None,
            local_inbound: None,
            agency: None,
            suite: None,
        };
        let save = |id: &str, peers: Vec<PeerConfig>, trusted: &[usize]| {
            let mut cfg = Config::load(&dir(id)).unwrap();
            cfg.node.settle_ms = 50;
            cfg.node.window = "always".into();
            cfg.node.retry_base_secs = 0;
            cfg.peers = peers;
            cfg.save(&dir(id)).unwrap();
            for &i in trusted {
                append_line(
                    &dir(id).join("keys/allowed_signers"),
                    &infos[i].allowed_signers_line,
                );
                append_line(&dir(id).join("keys/sm2_trust"), &infos[i].sm2_trust_line);
            }
            for p in &cfg.peers {
                fs::create_dir_all(dir(id).join("inbound").join(&p.id)).unwrap();
            }
        };
        let mut to_city = peer(CITY, dir(CITY).join("inbound").join(HUB));
        to_city.agency = Some(CI.into());
        // The hub's channels differ in suite: the city institute's is Ed25519,
        // the district's and the pulling station's SM2/SM3 (each set on both sides).
        let mut to_dist = peer(DIST, dir(DIST).join("inbound").join(HUB));
        to_dist.agency = Some(PD.into());
        to_dist.suite = Some(Suite::Sm2);
        let mut to_station = peer(STATION, PathBuf::new());
        to_station.transport = Transport::Local;
        to_station.agency = Some(ST.into());
        to_station.suite = Some(Suite::Sm2);
        save(HUB, vec![to_city, to_dist, to_station], &[1, 2, 3]);
        save(
            CITY,
            vec![peer(HUB, dir(HUB).join("inbound").join(CITY))],
            &[0],
        );
        let mut from_dist = peer(HUB, dir(HUB).join("inbound").join(DIST));
        from_dist.suite = Some(Suite::Sm2);
        save(DIST, vec![from_dist], &[0]);
        let mut pulling = peer(HUB, dir(HUB).join("inbound").join(STATION));
        pulling.suite = Some(Suite::Sm2);
        pulling.transport = Transport::Pull;
        pulling.remote_outbox = Some(dir(HUB).join("outbox").join(STATION).display().to_string());
        save(STATION, vec![pulling], &[0]);
        City {
            hub: dir(HUB),
            agencies: vec![dir(CITY), dir(DIST), dir(STATION)],
            _sshd: sshd,
            _tmp: tmp,
        }
    }

    fn node(&self, id: &str) -> &Path {
        match id {
            HUB => &self.hub,
            CITY => &self.agencies[0],
            DIST => &self.agencies[1],
            _ => &self.agencies[2],
        }
    }

    fn pass(&self, dir: &Path) {
        let r = Node::open(dir).unwrap().pass();
        assert!(r.errors.is_empty(), "{}: {:?}", dir.display(), r.errors);
    }

    /// Enough passes for a batch either way and its acknowledgment back.
    fn settle(&self) {
        for _ in 0..2 {
            self.pass(&self.hub);
            for a in &self.agencies {
                self.pass(a);
            }
        }
        self.pass(&self.hub);
    }

    fn drop(&self, id: &str, file: &str, records: &[&str]) {
        fs::write(
            self.node(id).join("outbound").join(file),
            drop_doc(id, records),
        )
        .unwrap();
    }

    fn show(&self, id: &str) -> String {
        let out = sedx(self.node(id), &["equipment", "show", LIFT]);
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Every batch this node sent has been answered, and how.
    fn acks(&self, id: &str) -> Vec<(String, String)> {
        let node = Node::open(self.node(id)).unwrap();
        node.store
            .outbox_all()
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == sedx::wire::document::DocKind::Batch)
            .map(|e| {
                (
                    stem_of(&e.set_name),
                    e.ack_status.clone().unwrap_or_else(|| "none".into()),
                )
            })
            .collect()
    }

    /// The reason codes this node refused on the way out, from a drop.
    fn refused_here(&self, id: &str, file: &str) -> String {
        let stem = file.strip_suffix(".xml").unwrap();
        fs::read_to_string(
            self.node(id)
                .join("quarantine")
                .join(format!("{stem}.rejected.txt")),
        )
        .unwrap_or_default()
    }
}

/// The dropped file's stem in a set name `FROM-TO-SEQ-STEM` (SEQ: 8 digits).
fn stem_of(set_name: &str) -> String {
    let parts: Vec<&str> = set_name.split('-').collect();
    let i = parts
        .iter()
        .position(|p| p.len() == 8 && p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap();
    format!("{}.xml", parts[i + 1..].join("-"))
}

fn reports_at_hub(c: &City) -> String {
    sql_text(
        &c.hub.join("store.sqlite"),
        "SELECT group_concat(report_number, ',') FROM (SELECT report_number FROM inspection_report ORDER BY 1)",
    )
    .unwrap_or_default()
}

fn decisions(c: &City) -> String {
    let out = sedx(&c.hub, &["decisions"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn responsibility_decisions_reach_every_agency_concerned() {
    let c = City::new();
    // The hub registers a Pudong elevator; the city institute is responsible.
    let registration = format!(
        "<useRegistration><registrationCode>{LIFT}</registrationCode><useCertificate>沪梯（2006）0231</useCertificate><category>3110</category><userUnit>上海陆家嘴物业有限公司</userUnit><address>浦东新区世纪大道100号</address><district>310115</district><registrationAuthority>浦东新区质量技术监督局</registrationAuthority><registrationDate>2006-07-12</registrationDate><inspectionAgency>{CI}</inspectionAgency></useRegistration>"
    );
    c.drop(HUB, "registration.xml", &[&registration]);
    c.settle();
    assert!(c
        .show(CITY)
        .contains(&format!("inspectionAgency       {CI}")));
    for id in [DIST, STATION] {
        assert!(
            c.show(id).contains("no equipment"),
            "{id} is not concerned yet"
        );
    }

    // 1. The city institute proposes the Pudong institute (R12).
    let proposal = format!("<responsibilityProposal><proposalId>P-1</proposalId><registrationCode>{LIFT}</registrationCode><proposedAgency>{PD}</proposedAgency><date>2006-08-01</date></responsibilityProposal>");
    c.drop(CITY, "proposal.xml", &[&proposal]);
    c.settle();
    let waiting = decisions(&c);
    assert!(
        waiting.contains("1 awaiting decision") && waiting.contains("proposal P-1"),
        "{waiting}"
    );
    let status = sedx(&c.hub, &["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("awaiting decision 待决定: 1"), "{status}");
    assert!(
        c.show(HUB)
            .contains("awaiting decision 待决定: proposal P-1"),
        "{}",
        c.show(HUB)
    );

    // 2. The hub assigns it: the Pudong institute (newly responsible) and the city
    // institute (previously responsible, and the proposer) are both told.
    let assignment = format!("<responsibilityAssignment><assignmentId>A-1</assignmentId><registrationCode>{LIFT}</registrationCode><agency>{PD}</agency><date>2006-08-03</date><proposalId>P-1</proposalId></responsibilityAssignment>");
    c.drop(HUB, "assignment.xml", &[&assignment]);
    c.settle();
    assert!(decisions(&c).contains("0 awaiting decision"));
    for id in [HUB, CITY, DIST] {
        let view = c.show(id);
        assert!(
            view.contains(&format!("inspectionAgency       {PD}"))
                && view.contains("userUnit               上海陆家嘴物业有限公司")
                && view.contains("assignment A-1"),
            "{id}: {view}"
        );
    }
    assert!(
        c.show(STATION).contains("no equipment"),
        "the station is not concerned"
    );

    // 3. Reports: the Pudong institute's goes through; the city institute's own
    // outbound check refuses its report at home, before it travels.
    c.drop(
        DIST,
        "r-pd-1.xml",
        &[&report("PD-1", LIFT, "periodic", PD, true)],
    );
    c.drop(
        CITY,
        "r-ci-1.xml",
        &[&report("CI-1", LIFT, "periodic", CI, true)],
    );
    c.settle();
    assert!(c
        .refused_here(CITY, "r-ci-1.xml")
        .contains("REC-RESPONSIBILITY"));
    assert_eq!(reports_at_hub(&c), "PD-1");

    // 4. The station asks for a temporary change (R13); the hub grants it.
    let request = format!("<responsibilityChangeRequest><requestId>Q-1</requestId><registrationCode>{LIFT}</registrationCode><agency>{ST}</agency><reason>同期检验</reason><superiorApproval>true</superiorApproval><date>2006-09-10</date></responsibilityChangeRequest>");
    c.drop(STATION, "request.xml", &[&request]);
    c.settle();
    assert!(decisions(&c).contains("change request Q-1"));
    let grant = format!("<responsibilityChange><changeId>C-1</changeId><registrationCode>{LIFT}</registrationCode><agency>{ST}</agency><action>grant</action><date>2006-09-12</date><requestId>Q-1</requestId></responsibilityChange>");
    c.drop(HUB, "grant.xml", &[&grant]);
    c.settle();
    assert!(decisions(&c).contains("0 awaiting decision"));
    for id in [HUB, DIST, STATION] {
        let view = c.show(id);
        assert!(
            view.contains(&format!(
                "temporaryAgency        {ST} (temporary change, R13)"
            )) && view.contains(&format!("inspectionAgency       {PD}")),
            "{id}: {view}"
        );
    }

    // 5. Reports under the temporary change: only the station's.
    c.drop(
        STATION,
        "r-st-1.xml",
        &[&report("ST-1", LIFT, "periodic", ST, true)],
    );
    c.drop(
        DIST,
        "r-pd-2.xml",
        &[&report("PD-2", LIFT, "periodic", PD, true)],
    );
    c.settle();
    assert!(c
        .refused_here(DIST, "r-pd-2.xml")
        .contains("REC-RESPONSIBILITY"));
    assert_eq!(reports_at_hub(&c), "PD-1,ST-1");

    // 6. The hub reclaims it: the station (whose change ends) and the Pudong
    // institute are told.
    let reclaim = format!("<responsibilityChange><changeId>C-2</changeId><registrationCode>{LIFT}</registrationCode><agency>{ST}</agency><action>reclaim</action><date>2006-10-01</date></responsibilityChange>");
    c.drop(HUB, "reclaim.xml", &[&reclaim]);
    c.settle();
    for id in [HUB, DIST, STATION] {
        let view = c.show(id);
        assert!(
            !view.contains("temporaryAgency") && view.contains("temporary change C-2: reclaim"),
            "{id}: {view}"
        );
    }

    // 7. Reports after the reclaim: the Pudong institute's again, not the station's.
    c.drop(
        STATION,
        "r-st-2.xml",
        &[&report("ST-2", LIFT, "periodic", ST, true)],
    );
    c.drop(
        DIST,
        "r-pd-3.xml",
        &[&report("PD-3", LIFT, "periodic", PD, true)],
    );
    c.settle();
    assert!(c
        .refused_here(STATION, "r-st-2.xml")
        .contains("REC-RESPONSIBILITY"));
    assert_eq!(reports_at_hub(&c), "PD-1,PD-3,ST-1");

    // Every batch that travelled was answered, and accepted whole: no node sent
    // anything the receiver refused.
    let sent = |id: &str| -> Vec<String> {
        let acks = c.acks(id);
        for (src, status) in &acks {
            assert_eq!(status, "accepted", "{id}: {src}");
        }
        let mut names: Vec<String> = acks.into_iter().map(|a| a.0).collect();
        names.sort();
        names
    };
    assert_eq!(
        sent(HUB),
        [
            "assignment.xml",
            "assignment.xml",
            "grant.xml",
            "grant.xml",
            "reclaim.xml",
            "reclaim.xml",
            "registration.xml"
        ],
        "each decision went to exactly the two agencies concerned"
    );
    assert_eq!(sent(CITY), ["proposal.xml"]);
    assert_eq!(sent(DIST), ["r-pd-1.xml", "r-pd-3.xml"]);
    assert_eq!(sent(STATION), ["r-st-1.xml", "request.xml"]);

    // Each channel kept its suite, both ways (the station's through pulls).
    let markers = |dir: PathBuf| -> Vec<String> {
        let mut m: Vec<String> = files_in(&dir)
            .into_iter()
            .filter(|f| is_marker(f))
            .map(|f| f.rsplit('.').next().unwrap().to_string())
            .collect();
        m.dedup();
        m
    };
    for (id, suite) in [(CITY, "sha256"), (DIST, "sm3"), (STATION, "sm3")] {
        assert_eq!(markers(c.node(id).join("sent")), [suite], "{id} sent");
        assert_eq!(
            markers(c.node(id).join("archive").join(HUB)),
            [suite],
            "{id} received"
        );
        assert_eq!(
            markers(c.hub.join("archive").join(id)),
            [suite],
            "the hub received from {id}"
        );
    }
}
