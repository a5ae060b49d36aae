//! Names and encodings: Chinese file names work end to end; batches declared in
//! GBK, GB2312 or GB18030 are accepted, validated and stored as UTF-8; bytes
//! that lie about their encoding are refused.

use crate::common::*;
use std::fs;

const UNIT: &str = "上海外滩置业有限公司";

fn encoded(label: &str) -> Vec<u8> {
    let xml = sample_batch().replace(r#"encoding="UTF-8""#, &format!(r#"encoding="{label}""#));
    let enc = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
    let (bytes, _, unmappable) = enc.encode(&xml);
    assert!(!unmappable);
    assert_ne!(bytes.as_ref(), xml.as_bytes(), "really another encoding");
    bytes.into_owned()
}

#[test]
fn gbk_gb2312_and_gb18030_batches_arrive_as_utf8() {
    let p = Pair::new();
    for label in ["GBK", "GB2312", "GB18030"] {
        fs::write(
            p.insp.join("outbound").join(format!("{label}.xml")),
            encoded(label),
        )
        .unwrap();
    }
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.shipped, r.quarantined), (3, 3, 0), "{r:?}");
    assert_eq!(p.pass(&p.sup).applied, 3);
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(
            &db,
            "SELECT user_unit FROM equipment WHERE registration_code = '31103101012006050007'"
        )
        .unwrap(),
        UNIT
    );
    assert_eq!(
        sql_text(
            &db,
            "SELECT conclusion FROM inspection_report WHERE report_number = 'DT-2006-0518-0007'"
        )
        .unwrap(),
        "合格"
    );
}

#[test]
fn a_gbk_set_made_elsewhere_is_received_and_stored_as_utf8() {
    let p = Pair::new();
    let key = signing_key(&p.insp);
    let equipment = format!("<equipment><registrationCode>31103101012006050007</registrationCode><category>3110</category><userUnit>{UNIT}</userUnit></equipment>");
    let xml = wire_batch(INSP, SUP, 1, &[&equipment]).replace(
        "<?xml version=\"1.0\"?>",
        "<?xml version=\"1.0\" encoding=\"GB18030\"?>",
    );
    let (bytes, _, _) = encoding_rs::GB18030.encode(&xml);
    plant_in(&p.sup_inbound(), "gb18030", &gzip(&bytes), &key);
    assert_eq!(p.pass(&p.sup).applied, 1);
    assert_eq!(
        sql_text(
            &p.sup.join("store.sqlite"),
            "SELECT user_unit FROM equipment"
        )
        .unwrap(),
        UNIT
    );
}

#[test]
fn chinese_file_names_work_end_to_end() {
    let p = Pair::new();
    p.drop_batch("检验批次（六月）.xml", &sample_batch());
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.shipped), (1, 1));
    let arrived = files_in(&p.sup_inbound());
    assert!(
        arrived
            .iter()
            .any(|f| f.contains("检验批次") && is_marker(f)),
        "{arrived:?}"
    );
    assert_eq!(p.pass(&p.sup).applied, 1);
    assert_eq!(p.pass(&p.insp).acks_received, 1);
    assert!(
        files_in(&p.insp.join("archive/outbound")).contains(&"检验批次（六月）.xml".to_string())
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let p = Pair::new();
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(sample_batch().as_bytes());
    fs::write(p.insp.join("outbound/bom.xml"), bytes).unwrap();
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.quarantined), (1, 0));
}

#[test]
fn a_declaration_that_lies_is_refused() {
    let p = Pair::new();
    // Declared UTF-8, written in GBK.
    let xml = sample_batch();
    let (gbk, _, _) = encoding_rs::GBK.encode(&xml);
    fs::write(p.insp.join("outbound/lies.xml"), gbk.as_ref()).unwrap();
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.quarantined), (0, 1));
    let reason = fs::read_to_string(p.insp.join("quarantine/lies.reason.txt")).unwrap();
    assert!(reason.starts_with("XML-ENCODING"), "{reason}");
}
