//! The notice's rules end to end between two nodes over a real sshd: each rule
//! is checked where data is sent and again where it is received.

use crate::common::*;
use sedx::context::config::Config;
use std::fs;
use std::path::Path;

const OTHER: &str = "上海市电梯检测站";
const NATIONAL: &str = "国家客运索道检验中心";
const E1: &str = "31103101012006050007";
const E2: &str = "31103101152006070001";

fn responsibility_change(id: &str, code: &str, agency: &str, action: &str) -> String {
    format!("<responsibilityChange><changeId>{id}</changeId><registrationCode>{code}</registrationCode><agency>{agency}</agency><action>{action}</action><date>2006-08-01</date></responsibilityChange>")
}

/// Supervision's register already holds equipment E1 with this responsible agency.
fn register_at_supervision(p: &Pair, agency: &str) {
    let file = p.tmp.path().join("register.xml");
    fs::write(&file, drop_doc(SUP, &[&equipment(E1, Some(agency))])).unwrap();
    let out = stdout(sedx(&p.sup, &["import", file.to_str().unwrap()]));
    assert!(
        out.starts_with("1 record(s) in the register, 0 refused"),
        "{out}"
    );
}

/// Inspection sends; supervision applies and answers; inspection reads the answer.
fn exchange_up(p: &Pair) {
    p.pass(&p.insp);
    p.pass(&p.sup);
    p.pass(&p.insp);
}

fn exchange_down(p: &Pair) {
    p.pass(&p.sup);
    p.pass(&p.insp);
    p.pass(&p.sup);
}

/// The rejection codes in the acknowledgments inspection has received.
fn ack_codes(p: &Pair) -> String {
    acks_received(&p.insp, SUP).join("\n")
}

fn reports_at(node: &Path) -> i64 {
    sql_count(
        &node.join("store.sqlite"),
        "SELECT count(*) FROM inspection_report",
    )
}

#[test]
fn construction_notice_fills_the_acceptance_queue_until_installation_inspection() {
    let p = Pair::new();
    let notice = format!(
        "<constructionNotice><noticeNumber>SG-2006-0001</noticeNumber><category>3110</category><factorySerial>SN-{E1}</factorySerial><userUnit>上海外滩置业有限公司</userUnit><address>黄浦区中山东一路12号</address><district>310101</district><constructionUnit>上海三菱电梯有限公司</constructionUnit><constructionKind>installation</constructionKind><plannedStart>2006-07-15</plannedStart><inspectionAgency>{CI}</inspectionAgency></constructionNotice>"
    );
    drop_into(&p.sup, "notice.xml", &drop_doc(SUP, &[&notice]));
    exchange_down(&p);
    let queue = stdout(sedx(&p.insp, &["acceptance"]));
    assert!(
        queue.starts_with("1 construction notice(s)") && queue.contains("SG-2006-0001"),
        "{queue}"
    );
    // The installation inspection is done and approved: the notice leaves the queue.
    p.drop_batch(
        "install.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, None),
                &report("AZ-1", E1, "installation-supervision", CI, true),
            ],
        ),
    );
    exchange_up(&p);
    let queue = stdout(sedx(&p.insp, &["acceptance"]));
    assert!(queue.starts_with("0 construction notice(s)"), "{queue}");
    assert_eq!(reports_at(&p.sup), 1);
}

#[test]
fn non_statutory_reports_stay_home_and_are_refused_by_supervision() {
    let p = Pair::new();
    p.drop_batch(
        "b.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, None),
                &report("DJ-1", E1, "periodic", CI, true),
                &report("WT-1", E1, "commissioned", CI, true),
            ],
        ),
    );
    exchange_up(&p);
    assert_eq!(reports_at(&p.sup), 1);
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM inspection_report WHERE report_number='WT-1'"
        ),
        0
    );
    assert_eq!(
        sql_count(
            &p.insp.join("store.sqlite"),
            "SELECT count(*) FROM inspection_report WHERE report_number='WT-1'"
        ),
        0
    );
    let status = stdout(sedx(&p.insp, &["status"]));
    assert!(
        status.contains("1 non-statutory report(s) kept home"),
        "{status}"
    );
    // One that slipped through anyway is refused on arrival.
    let key = signing_key(&p.insp);
    let doc = wire_batch(
        INSP,
        SUP,
        2,
        &[&report("WT-2", E1, "commissioned", CI, true)],
    );
    plant_in(&p.sup_inbound(), "slipped", &gzip(doc.as_bytes()), &key);
    exchange_up(&p);
    assert!(
        ack_codes(&p).contains(r#"key="WT-2" code="REC-NONSTATUTORY""#),
        "{}",
        ack_codes(&p)
    );
}

#[test]
fn report_from_an_unauthorised_agency_is_rejected_and_registration_fields_are_not_overwritten() {
    let p = Pair::new();
    register_at_supervision(&p, OTHER);
    p.drop_batch(
        "b.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, Some(CI)),
                &report("DJ-1", E1, "periodic", CI, true),
            ],
        ),
    );
    exchange_up(&p);
    let acks = ack_codes(&p);
    assert!(acks.contains(r#"status="partially-accepted""#), "{acks}");
    assert!(
        acks.contains(r#"key="DJ-1" code="REC-RESPONSIBILITY""#),
        "{acks}"
    );
    assert_eq!(reports_at(&p.sup), 0);
    // Responsible agency is supervision's field (R4): kept, and the difference listed (R6).
    let view = stdout(sedx(&p.sup, &["equipment", "show", E1]));
    assert!(
        view.contains(&format!("inspectionAgency       {OTHER}")),
        "{view}"
    );
    let d = stdout(sedx(&p.sup, &["discrepancies"]));
    assert!(
        d.contains("inspectionAgency") && d.contains(OTHER) && d.contains(CI),
        "{d}"
    );
    let detail = sql_text(
        &p.insp.join("store.sqlite"),
        "SELECT ack_detail FROM outbox WHERE kind='batch'",
    )
    .unwrap();
    assert!(detail.contains("REC-RESPONSIBILITY"), "{detail}");
}

#[test]
fn temporary_change_lets_only_the_named_agency_upload_until_reclaimed() {
    let p = Pair::new();
    register_at_supervision(&p, OTHER);
    p.drop_batch(
        "r1.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, None),
                &report("R1", E1, "periodic", CI, true),
            ],
        ),
    );
    exchange_up(&p);
    drop_into(
        &p.sup,
        "grant.xml",
        &drop_doc(SUP, &[&responsibility_change("TC-1", E1, CI, "grant")]),
    );
    exchange_down(&p);
    let view = stdout(sedx(&p.insp, &["equipment", "show", E1]));
    assert!(view.contains("(temporary change, R13)"), "{view}");
    p.drop_batch(
        "r2.xml",
        &drop_doc(INSP, &[&report("R2", E1, "periodic", CI, true)]),
    );
    exchange_up(&p);
    drop_into(
        &p.sup,
        "reclaim.xml",
        &drop_doc(SUP, &[&responsibility_change("TC-2", E1, CI, "reclaim")]),
    );
    exchange_down(&p);
    p.drop_batch(
        "r3.xml",
        &drop_doc(INSP, &[&report("R3", E1, "periodic", CI, true)]),
    );
    exchange_up(&p);
    let db = p.sup.join("store.sqlite");
    let stored = sql_text(
        &db,
        "SELECT report_number FROM inspection_report ORDER BY 1",
    )
    .unwrap_or_default();
    assert_eq!(sql_count(&db, "SELECT count(*) FROM inspection_report"), 1);
    assert_eq!(
        stored, "R2",
        "only the report made under the temporary change is accepted"
    );
    let acks = ack_codes(&p);
    assert!(
        acks.contains(r#"key="R1" code="REC-RESPONSIBILITY""#),
        "{acks}"
    );
    // The reclaim reached the city institute too: its own check refuses R3 at home.
    let refused = fs::read_to_string(p.insp.join("quarantine/r3.rejected.txt")).unwrap();
    assert!(refused.contains("R3\tREC-RESPONSIBILITY"), "{refused}");
}

#[test]
fn national_level_agency_is_accepted_and_flagged() {
    let p = Pair::new();
    let mut cfg = Config::load(&p.sup).unwrap();
    cfg.rules.national_agencies = vec![NATIONAL.into()];
    cfg.save(&p.sup).unwrap();
    register_at_supervision(&p, OTHER);
    p.drop_batch(
        "b.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, None),
                &report("GJ-1", E1, "periodic", NATIONAL, true),
            ],
        ),
    );
    exchange_up(&p);
    assert_eq!(reports_at(&p.sup), 1);
    let view = stdout(sedx(&p.sup, &["equipment", "show", E1]));
    assert!(
        view.contains("GJ-1") && view.contains("[national-level agency]"),
        "{view}"
    );
}

#[test]
fn responsibility_proposal_then_final_assignment_goes_down() {
    let p = Pair::new();
    register_at_supervision(&p, OTHER);
    p.drop_batch("e.xml", &drop_doc(INSP, &[&equipment(E1, None)]));
    exchange_up(&p);
    let proposal = format!("<responsibilityProposal><proposalId>P-1</proposalId><registrationCode>{E1}</registrationCode><proposedAgency>{CI}</proposedAgency><date>2006-08-01</date></responsibilityProposal>");
    p.drop_batch("p.xml", &drop_doc(INSP, &[&proposal]));
    exchange_up(&p);
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM responsibility_proposal"
        ),
        1
    );
    let assignment = format!("<responsibilityAssignment><assignmentId>A-1</assignmentId><registrationCode>{E1}</registrationCode><agency>{CI}</agency><date>2006-08-03</date><proposalId>P-1</proposalId></responsibilityAssignment>");
    drop_into(&p.sup, "a.xml", &drop_doc(SUP, &[&assignment]));
    exchange_down(&p);
    for node in [&p.sup, &p.insp] {
        let view = stdout(sedx(node, &["equipment", "show", E1]));
        assert!(
            view.contains(&format!("inspectionAgency       {CI}")),
            "{view}"
        );
    }
    p.drop_batch(
        "r.xml",
        &drop_doc(INSP, &[&report("DJ-9", E1, "periodic", CI, true)]),
    );
    exchange_up(&p);
    assert_eq!(reports_at(&p.sup), 1);
}

#[test]
fn code_change_is_followed_by_equipment_show() {
    let p = Pair::new();
    p.drop_batch(
        "b.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, Some(CI)),
                &report("DJ-1", E1, "periodic", CI, true),
            ],
        ),
    );
    exchange_up(&p);
    let change = format!("<codeChange><changeId>BG-1</changeId><field>registration-code</field><oldValue>{E1}</oldValue><newValue>{E2}</newValue><date>2006-09-01</date></codeChange>");
    drop_into(&p.sup, "change.xml", &drop_doc(SUP, &[&change]));
    exchange_down(&p);
    for node in [&p.insp, &p.sup] {
        let view = stdout(sedx(node, &["equipment", "show", E1]));
        assert!(view.starts_with(&format!("equipment {E2}")), "{view}");
        assert!(
            view.contains(&format!("registration codes: {E1} → {E2}")),
            "{view}"
        );
        assert!(view.contains("report DJ-1"), "{view}");
    }
}

#[test]
fn rollout_holds_records_until_the_category_starts() {
    let p = Pair::new();
    let set_elevator_start = |date: &str| {
        let mut cfg = Config::load(&p.insp).unwrap();
        cfg.rules.rollout.insert("3".into(), date.into());
        cfg.save(&p.insp).unwrap();
    };
    set_elevator_start("2099-01-01");
    p.drop_batch(
        "b.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, None),
                &report("DJ-1", E1, "periodic", CI, true),
            ],
        ),
    );
    let r = p.pass(&p.insp);
    assert_eq!(r.shipped, 0);
    let status = stdout(sedx(&p.insp, &["status"]));
    assert!(
        status.contains("2 record(s) held back for their category's start (R9), 2 still waiting"),
        "{status}"
    );
    set_elevator_start("2006-06-29");
    let r = p.pass(&p.insp);
    assert_eq!((r.released, r.shipped), (1, 1), "{r:?}");
    p.pass(&p.sup);
    assert_eq!(reports_at(&p.sup), 1);
    assert_eq!(
        sql_count(
            &p.insp.join("store.sqlite"),
            "SELECT count(*) FROM deferred"
        ),
        0
    );
    // Supervision refuses what arrives before the category's start.
    let mut cfg = Config::load(&p.sup).unwrap();
    cfg.rules.rollout.insert("1".into(), "2099-01-01".into());
    cfg.save(&p.sup).unwrap();
    let boiler = "<equipment><registrationCode>11203101122006040013</registrationCode><category>1120</category><userUnit>上海闵行热力有限公司</userUnit></equipment>";
    let key = signing_key(&p.insp);
    plant_in(
        &p.sup_inbound(),
        "early",
        &gzip(wire_batch(INSP, SUP, 2, &[boiler]).as_bytes()),
        &key,
    );
    exchange_up(&p);
    assert!(
        ack_codes(&p).contains(r#"code="REC-ROLLOUT""#),
        "{}",
        ack_codes(&p)
    );
}

#[test]
fn records_of_the_other_side_are_refused_both_ways() {
    let p = Pair::new();
    let registration = format!("<useRegistration><registrationCode>{E1}</registrationCode><useCertificate>沪梯（2006）0107</useCertificate><category>3110</category><userUnit>上海外滩置业有限公司</userUnit><registrationAuthority>黄浦区质量技术监督局</registrationAuthority><registrationDate>2006-05-18</registrationDate></useRegistration>");
    p.drop_batch("reg.xml", &drop_doc(INSP, &[&registration]));
    let r = p.pass(&p.insp);
    assert_eq!(r.shipped, 0);
    let reasons = fs::read_to_string(p.insp.join("quarantine/reg.rejected.txt")).unwrap();
    assert!(reasons.contains("REC-OWNER"), "{reasons}");
    let key = signing_key(&p.insp);
    plant_in(
        &p.sup_inbound(),
        "usurper",
        &gzip(wire_batch(INSP, SUP, 1, &[&registration]).as_bytes()),
        &key,
    );
    exchange_up(&p);
    assert!(
        ack_codes(&p).contains(r#"code="REC-OWNER""#),
        "{}",
        ack_codes(&p)
    );
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM use_registration"
        ),
        0
    );
}

#[test]
fn unapproved_orphan_and_duplicate_records_are_refused() {
    let p = Pair::new();
    p.drop_batch(
        "b.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, None),
                &report("U-1", E1, "periodic", CI, false),
                &report("O-1", E2, "periodic", CI, true),
            ],
        ),
    );
    exchange_up(&p);
    let reasons = fs::read_to_string(p.insp.join("quarantine/b.rejected.txt")).unwrap();
    assert!(
        reasons.contains("U-1\tREC-UNAPPROVED") && reasons.contains("O-1\tREC-NOEQUIPMENT"),
        "{reasons}"
    );
    let key = signing_key(&p.insp);
    let doc = wire_batch(
        INSP,
        SUP,
        2,
        &[
            &report("U-2", E1, "periodic", CI, false),
            &equipment(E2, None),
            &equipment(E2, None),
        ],
    );
    plant_in(&p.sup_inbound(), "mixed", &gzip(doc.as_bytes()), &key);
    exchange_up(&p);
    let acks = ack_codes(&p);
    assert!(
        acks.contains(r#"key="U-2" code="REC-UNAPPROVED""#),
        "{acks}"
    );
    assert!(
        acks.contains(&format!(r#"index="2" key="{E2}" code="REC-DUPLICATE""#)),
        "{acks}"
    );
}

#[test]
fn full_width_codes_are_normalised_not_rejected() {
    let p = Pair::new();
    let messy = "<equipment><registrationCode> ３１１０3101012006050007 </registrationCode><category>３１１０</category><userUnit>　上海外滩置业有限公司 </userUnit><creditCode>91310000631696382c</creditCode></equipment>";
    p.drop_batch("b.xml", &drop_doc(INSP, &[messy]));
    exchange_up(&p);
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(
            &db,
            "SELECT org_code FROM equipment WHERE registration_code = '31103101012006050007'"
        )
        .unwrap(),
        "63169638-2"
    );
    assert_eq!(
        sql_text(&db, "SELECT user_unit FROM equipment").unwrap(),
        "上海外滩置业有限公司"
    );
}

#[test]
fn delta_export_sends_only_what_changed_since_the_last_acknowledged_export() {
    let p = Pair::new();
    // A supervision system with no exporter of its own writes into the store.
    let db = p.sup.join("store.sqlite");
    sql_exec(
        &db,
        "INSERT INTO equipment(registration_code, category, user_unit, use_status, inspection_agency) VALUES(?1, '3110', '上海外滩置业有限公司', '在用', ?2)",
        &[E1, CI],
    );
    sql_exec(
        &db,
        "INSERT INTO construction_notice(notice_number, category, user_unit, address, construction_unit, construction_kind, planned_start, inspection_agency)
         VALUES('SG-9', '3110', '上海某公司', '黄浦区某路1号', '上海三菱电梯有限公司', 'installation', '2006-08-01', ?1)",
        &[CI],
    );
    let out = stdout(sedx(&p.sup, &["export"]));
    assert!(out.starts_with("2 record(s) in 1 batch file(s)"), "{out}");
    exchange_down(&p);
    let idb = p.insp.join("store.sqlite");
    assert_eq!(
        sql_text(&idb, "SELECT use_status FROM equipment").unwrap(),
        "在用"
    );
    assert_eq!(
        sql_count(&idb, "SELECT count(*) FROM construction_notice"),
        1
    );
    let out = stdout(sedx(&p.sup, &["export"]));
    assert!(
        out.starts_with("0 record(s)"),
        "nothing changed since the acknowledged export: {out}"
    );
    sql_exec(
        &db,
        "UPDATE equipment SET use_status = '停用' WHERE registration_code = ?1",
        &[E1],
    );
    let out = stdout(sedx(&p.sup, &["export"]));
    assert!(out.starts_with("1 record(s) in 1 batch file(s)"), "{out}");
    exchange_down(&p);
    assert_eq!(
        sql_text(&idb, "SELECT use_status FROM equipment").unwrap(),
        "停用"
    );
    // Records received from the peer are never exported back.
    let out = stdout(sedx(&p.insp, &["export"]));
    assert!(out.starts_with("0 record(s)"), "{out}");
}

#[test]
fn supervision_routes_each_record_to_the_responsible_agency() {
    let p = Pair::new();
    // A second agency, reached over the same sshd; its inbound is a plain folder here.
    let other_inbound = p.tmp.path().join("other-agency-inbound");
    fs::create_dir_all(&other_inbound).unwrap();
    let mut cfg = Config::load(&p.sup).unwrap();
    let mut other = cfg.peers[0].clone();
    other.id = "insp-b".into();
    other.agency = Some(OTHER.into());
    other.remote_inbound = other_inbound.display().to_string();
    cfg.peers.push(other);
    cfg.save(&p.sup).unwrap();
    let registration = |code: &str, agency: &str| {
        format!("<useRegistration><registrationCode>{code}</registrationCode><useCertificate>沪梯（2006）0107</useCertificate><category>3110</category><userUnit>上海外滩置业有限公司</userUnit><registrationAuthority>黄浦区质量技术监督局</registrationAuthority><registrationDate>2006-05-18</registrationDate><inspectionAgency>{agency}</inspectionAgency></useRegistration>")
    };
    drop_into(
        &p.sup,
        "regs.xml",
        &drop_doc(SUP, &[&registration(E1, CI), &registration(E2, OTHER)]),
    );
    let r = p.pass(&p.sup);
    assert_eq!((r.sealed, r.shipped), (2, 2), "one batch per agency");
    assert_eq!(
        files_in(&other_inbound).len(),
        3,
        "a set for the other agency"
    );
    p.pass(&p.insp);
    let view = stdout(sedx(&p.insp, &["equipment", "show", E1]));
    assert!(
        view.contains("useCertificate         沪梯（2006）0107"),
        "a use registration updates the equipment: {view}"
    );
    let idb = p.insp.join("store.sqlite");
    assert_eq!(
        sql_count(&idb, "SELECT count(*) FROM use_registration"),
        1,
        "only its own agency's record"
    );
    assert_eq!(
        sql_text(&idb, "SELECT registration_code FROM use_registration").unwrap(),
        E1
    );
}

/// The front database interface (front_v1_* views, docs/integration.md): a local
/// system writes its records with plain SQL, `sedx export` sends them, and the
/// peer's local system reads what was applied by change number.
#[test]
fn a_local_system_writes_and_reads_through_the_front_views() {
    let p = Pair::new();
    let sdb = p.sup.join("store.sqlite");
    let idb = p.insp.join("store.sqlite");
    sql_exec(
        &sdb,
        "INSERT INTO front_v1_equipment(registration_code, category, user_unit, use_status, inspection_agency)
         VALUES(?1, '3110', '上海外滩置业有限公司', '在用', ?2)",
        &[E1, CI],
    );
    let out = stdout(sedx(&p.sup, &["export"]));
    assert!(out.starts_with("1 record(s) in 1 batch file(s)"), "{out}");
    // On PostgreSQL the agency's system may LISTEN to hear of applied batches.
    let mut listener = Config::load(&p.insp).unwrap().postgres_url().map(|url| {
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        c.batch_execute("LISTEN sedx_applied").unwrap();
        c
    });
    exchange_down(&p);
    if let Some(c) = listener.as_mut() {
        use postgres::fallible_iterator::FallibleIterator;
        let heard: Vec<serde_json::Value> = c
            .notifications()
            .timeout_iter(std::time::Duration::from_secs(10))
            .take(1)
            .map(|n| Ok(serde_json::from_str(n.payload()).unwrap()))
            .collect()
            .unwrap();
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert_eq!(heard[0]["peer"], SUP);
        assert_eq!(heard[0]["accepted"], 1);
    }
    let read = |after: i64| {
        sql_rows(
            &idb,
            &format!(
                "SELECT change_no, registration_code, use_status, source FROM front_v1_equipment
                 WHERE change_no > {after} ORDER BY change_no"
            ),
        )
    };
    let rows = read(0);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(&rows[0][1..], [E1, "在用", SUP]);
    let last: i64 = rows[0][0].parse().unwrap();
    assert!(read(last).is_empty(), "nothing after the last change seen");
    // The supervision system changes one field: the row keeps the others.
    sql_exec(
        &sdb,
        "INSERT INTO front_v1_equipment(registration_code, use_status) VALUES(?1, '停用')",
        &[E1],
    );
    assert_eq!(
        sql_text(&sdb, "SELECT user_unit FROM front_v1_equipment").unwrap(),
        "上海外滩置业有限公司"
    );
    let out = stdout(sedx(&p.sup, &["export"]));
    assert!(out.starts_with("1 record(s) in 1 batch file(s)"), "{out}");
    exchange_down(&p);
    let rows = read(last);
    assert_eq!(rows.len(), 1, "only the change: {rows:?}");
    assert_eq!(&rows[0][1..], [E1, "停用", SUP]);
}

/// `auto_export = true`: what a local system writes through the front views goes
/// out by itself, one export at a time (a change made while an export is on its
/// way waits for that export's answer, then goes out).
#[test]
fn with_auto_export_local_writes_go_out_without_a_command() {
    let p = Pair::new();
    configure(&p.sup, |c| c.node.auto_export = true);
    let sdb = p.sup.join("store.sqlite");
    let idb = p.insp.join("store.sqlite");
    let write = |code: &str, status: &str| {
        sql_exec(
            &sdb,
            "INSERT INTO front_v1_equipment(registration_code, category, user_unit, use_status, inspection_agency)
             VALUES(?1, '3110', '上海外滩置业有限公司', ?2, ?3)",
            &[code, status, CI],
        )
    };
    let at_insp = |code: &str| {
        sql_text(
            &idb,
            &format!(
                "SELECT use_status FROM front_v1_equipment WHERE registration_code = '{code}'"
            ),
        )
    };
    write(E1, "在用");
    p.pass(&p.sup); // exported, sealed, shipped
    write(E2, "在用"); // while the first export awaits its answer
    p.pass(&p.sup);
    assert_eq!(
        sql_count(&sdb, "SELECT count(*) FROM exports"),
        1,
        "one export on its way at a time"
    );
    p.pass(&p.insp);
    assert_eq!(at_insp(E1).as_deref(), Some("在用"));
    assert_eq!(at_insp(E2), None);
    p.pass(&p.sup); // the answer comes back; the second change goes out
    p.pass(&p.insp);
    assert_eq!(at_insp(E2).as_deref(), Some("在用"));
    assert_eq!(sql_count(&sdb, "SELECT count(*) FROM exports"), 2);
    // Nothing new: nothing exported.
    p.pass(&p.sup);
    p.pass(&p.sup);
    assert_eq!(sql_count(&sdb, "SELECT count(*) FROM exports"), 2);
}
