//! A corpus of broken and malicious sets, all arriving at once beside a good one.
//! Each is quarantined with a reason and answered negatively (or, for a bad
//! record inside a sound batch, refused by the acknowledgment); the node keeps
//! running and the good batch is applied as if nothing else had come.

use crate::common::*;
use sedx::wire::sshsig::load_private_key;
use ssh_key::PrivateKey;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

enum Expect {
    /// Quarantined with this reason code, answered "rejected".
    Quarantined(&'static str),
    /// Applied in part; the acknowledgment refuses a record with this code.
    RecordRefused(&'static str),
}
use Expect::*;

const EQUIP: &str = "<equipment><registrationCode>31103101012006050007</registrationCode><category>3110</category><userUnit>上海外滩置业有限公司</userUnit></equipment>";

fn doc(seq: u64, body: &[&str]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}{}</batch>\n",
        batch_header(seq, INSP, SUP, body.len()),
        body.concat()
    )
}

fn gz_of(s: &str) -> Vec<u8> {
    gzip(s.as_bytes())
}

struct Corpus<'a> {
    dir: &'a Path,
    key: TestKey,
    cases: Vec<(String, Expect)>,
}

impl Corpus<'_> {
    /// A set signed by the sender's own key (authentic), with this payload.
    fn signed(&mut self, name: &str, payload: &[u8], expect: Expect) {
        plant_in(self.dir, name, payload, &self.key);
        self.cases.push((name.to_string(), expect));
    }
    /// A set built by hand, file by file.
    fn raw(
        &mut self,
        name: &str,
        expect: Expect,
        build: impl FnOnce(&Path, &sedx::wire::set::SetName),
    ) {
        let set = sedx::wire::set::SetName::new(name).unwrap();
        build(self.dir, &set);
        self.cases.push((name.to_string(), expect));
    }
}

#[test]
fn forty_kinds_of_hostile_sets_are_each_refused_and_nothing_else_is_affected() {
    // SSHSIG's namespaces and armour are attacked here (the SM2 suite's
    // attacks: tests/it/national.rs).
    let p = Pair::with_suite(Suite::Ed25519);
    let key: TestKey = load_private_key(&p.insp.join("keys/signing_ed25519"))
        .unwrap()
        .into();
    let dir = p.sup_inbound();
    let mut c = Corpus {
        dir: &dir,
        key: load_private_key(&p.insp.join("keys/signing_ed25519"))
            .unwrap()
            .into(),
        cases: Vec::new(),
    };
    let good = gz_of(&doc(1, &[EQUIP]));
    // The good batch, first in name order.
    plant_in(&dir, "aaa-good", &good, &key);

    // --- the set's files -------------------------------------------------
    c.raw("truncated-gzip", Quarantined("SET-GZIP"), |d, s| {
        fs::write(s.payload(d), &good[..good.len() / 2]).unwrap();
        sign_payload(d, s, &key, "sedx-batch");
    });
    for (i, at) in [10usize, 40, 80].into_iter().enumerate() {
        c.raw(
            &format!("bit-flip-{i}"),
            Quarantined("SET-CHECKSUM"),
            |d, s| {
                plant_in(d, s.as_str(), &good, &key);
                let mut b = fs::read(s.payload(d)).unwrap();
                let at = at.min(b.len() - 1);
                b[at] ^= 0x10;
                fs::write(s.payload(d), b).unwrap();
            },
        );
    }
    c.raw(
        "flip-and-new-checksum",
        Quarantined("SET-SIGNATURE"),
        |d, s| {
            plant_in(d, s.as_str(), &good, &key);
            let mut b = fs::read(s.payload(d)).unwrap();
            b[30] ^= 0x01;
            fs::write(s.payload(d), b).unwrap();
            write_marker(d, s, Suite::Ed25519);
        },
    );
    let stranger: TestKey = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519)
        .unwrap()
        .into();
    c.raw("wrong-key", Quarantined("SET-SIGNATURE"), |d, s| {
        plant_in(d, s.as_str(), &good, &stranger);
    });
    c.raw("other-namespace", Quarantined("SET-SIGNATURE"), |d, s| {
        fs::write(s.payload(d), &good).unwrap();
        sign_payload(d, s, &key, "file");
    });
    c.raw("garbage-signature", Quarantined("SET-SIGNATURE"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::write(
            s.sig(d),
            "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
        )
        .unwrap();
    });
    c.raw("empty-signature", Quarantined("SET-SIGNATURE"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::write(s.sig(d), "").unwrap();
    });
    c.raw("huge-signature", Quarantined("SET-SIGNATURE"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::write(s.sig(d), vec![b'A'; 1 << 20]).unwrap();
    });
    c.raw("missing-signature", Quarantined("SET-SIGNATURE"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::remove_file(s.sig(d)).unwrap();
    });
    c.raw("zero-length-payload", Quarantined("SET-GZIP"), |d, s| {
        fs::write(s.payload(d), b"").unwrap();
        sign_payload(d, s, &key, "sedx-batch");
    });
    c.raw("empty-marker", Quarantined("SET-MARKER"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::write(s.marker(d, Suite::Ed25519), b"").unwrap();
    });
    c.raw(
        "marker-names-another-file",
        Quarantined("SET-MARKER"),
        |d, s| {
            plant_in(d, s.as_str(), &good, &key);
            let d2 = digest_of(&s.payload(d), Suite::Ed25519);
            fs::write(
                s.marker(d, Suite::Ed25519),
                sedx::wire::set::Marker::line(&d2.sha256_hex(), "../../etc/passwd"),
            )
            .unwrap();
        },
    );
    c.raw("marker-two-lines", Quarantined("SET-MARKER"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        let m = fs::read_to_string(s.marker(d, Suite::Ed25519)).unwrap();
        fs::write(s.marker(d, Suite::Ed25519), format!("{m}{m}")).unwrap();
    });
    c.raw("huge-marker", Quarantined("SET-TOO-LARGE"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::write(s.marker(d, Suite::Ed25519), vec![b'0'; 1 << 20]).unwrap();
    });
    c.raw(
        "marker-without-payload",
        Quarantined("SET-MARKER"),
        |d, s| {
            plant_in(d, s.as_str(), &good, &key);
            fs::remove_file(s.payload(d)).unwrap();
        },
    );
    c.raw("payload-symlink", Quarantined("SET-NAME"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::remove_file(s.payload(d)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.payload(d)).unwrap();
    });
    c.raw("marker-symlink", Quarantined("SET-NAME"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        let real = d.join("elsewhere-marker");
        fs::rename(s.marker(d, Suite::Ed25519), &real).unwrap();
        std::os::unix::fs::symlink(&real, s.marker(d, Suite::Ed25519)).unwrap();
    });
    c.raw("payload-is-a-folder", Quarantined("SET-NAME"), |d, s| {
        plant_in(d, s.as_str(), &good, &key);
        fs::remove_file(s.payload(d)).unwrap();
        fs::create_dir(s.payload(d)).unwrap();
    });

    // --- the payload -----------------------------------------------------
    c.signed(
        "not-gzip",
        doc(0, &[EQUIP]).as_bytes(),
        Quarantined("SET-GZIP"),
    );
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"\x1f\x8b\x08\x00garbage after the member");
    c.signed("gzip-trailing-garbage", &trailing, Quarantined("SET-GZIP"));
    let bomb = {
        // Well-formed: records, each under every limit, a few hundred thousand times.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(batch_header(0, INSP, SUP, 0).as_bytes())
            .unwrap();
        let records = EQUIP.repeat(1 << 12);
        for _ in 0..128 {
            e.write_all(records.as_bytes()).unwrap();
        }
        e.finish().unwrap()
    };
    c.signed("gzip-bomb", &bomb, Quarantined("SET-TOO-LARGE"));
    c.signed(
        "binary-noise",
        &gzip(
            &(0..4096u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<_>>(),
        ),
        Quarantined("XML-MALFORMED"),
    );

    // --- the XML -----------------------------------------------------------
    let xxe = format!("<?xml version=\"1.0\"?>\n<!DOCTYPE batch [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n{}{}</batch>", batch_header(0, INSP, SUP, 1), EQUIP.replace("上海外滩置业有限公司", "&x;"));
    c.signed("xxe", &gz_of(&xxe), Quarantined("XML-DOCTYPE"));
    let laughs = format!("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>\n{}{}</batch>", batch_header(0, INSP, SUP, 1), EQUIP.replace("上海外滩置业有限公司", "&lol3;"));
    c.signed(
        "billion-laughs",
        &gz_of(&laughs),
        Quarantined("XML-DOCTYPE"),
    );
    let external = format!("<?xml version=\"1.0\"?>\n<!DOCTYPE batch SYSTEM \"http://127.0.0.1:9/evil.dtd\">\n{}{EQUIP}</batch>", batch_header(0, INSP, SUP, 1));
    c.signed(
        "external-dtd",
        &gz_of(&external),
        Quarantined("XML-DOCTYPE"),
    );
    let mut bad_utf8 = doc(0, &[EQUIP]).into_bytes();
    let at = bad_utf8
        .windows(3)
        .position(|w| w == "上".as_bytes())
        .unwrap();
    bad_utf8[at] = 0xFF;
    c.signed(
        "invalid-utf8",
        &gzip(&bad_utf8),
        Quarantined("XML-ENCODING"),
    );
    let lying = doc(0, &[EQUIP])
        .replace("encoding=\"UTF-8\"", "encoding=\"GBK\"")
        .into_bytes();
    let mut lying = lying;
    let at = lying.windows(3).position(|w| w == "上".as_bytes()).unwrap();
    lying[at] = 0x81;
    lying[at + 1] = 0x7F; // not a GBK trail byte
    c.signed("encoding-lies", &gzip(&lying), Quarantined("XML-ENCODING"));
    c.signed(
        "unknown-entity",
        &gz_of(&doc(0, &[&EQUIP.replace("上海外滩置业有限公司", "&nbsp;")])),
        Quarantined("XML-MALFORMED"),
    );
    c.signed(
        "unclosed-tag",
        &gz_of(&doc(0, &[&EQUIP.replace("</userUnit>", "")])),
        Quarantined("XML-MALFORMED"),
    );
    c.signed(
        "two-roots",
        &gz_of(&format!("{}<batch/>", doc(0, &[EQUIP]))),
        Quarantined("XML-MALFORMED"),
    );
    c.signed(
        "text-outside-root",
        &gz_of(&format!("{}trailing text", doc(0, &[EQUIP]))),
        Quarantined("XML-MALFORMED"),
    );
    c.signed(
        "no-root",
        &gz_of("<?xml version=\"1.0\"?>\n<!-- nothing -->\n"),
        Quarantined("XML-MALFORMED"),
    );
    c.signed(
        "wrong-root",
        &gz_of("<?xml version=\"1.0\"?><inventory from=\"insp-city\"/>"),
        Quarantined("XML-SCHEMA"),
    );
    c.signed(
        "wrong-receiver",
        &gz_of(&doc(0, &[EQUIP]).replace(r#"to="sup-city""#, r#"to="sup-other""#)),
        Quarantined("BATCH-RECEIVER"),
    );
    c.signed(
        "wrong-sender",
        &gz_of(&doc(0, &[EQUIP]).replace(r#"from="insp-city""#, r#"from="insp-other""#)),
        Quarantined("BATCH-SENDER"),
    );
    c.signed(
        "missing-seq",
        &gz_of(&doc(7, &[EQUIP]).replace(r#" seq="7""#, "")),
        Quarantined("BATCH-HEADER"),
    );
    c.signed(
        "far-future-seq",
        &gz_of(&doc(1_000_000_000, &[EQUIP])),
        Quarantined("BATCH-SEQUENCE"),
    );
    c.signed(
        "zz-replayed-seq",
        &gz_of(&doc(1, &[EQUIP])),
        Quarantined("BATCH-SEQUENCE"),
    );

    // --- authentic and in sequence, but wrong inside (each uses its number) ----
    let mut seq = 1;
    let mut next = || {
        seq += 1;
        seq
    };
    c.signed(
        "schema-wrong-element",
        &gz_of(&doc(
            next(),
            &[&EQUIP.replace("<category>3110</category>", "<colour>red</colour>")],
        )),
        Quarantined("XML-SCHEMA"),
    );
    c.signed(
        "schema-wrong-namespace",
        &gz_of(&doc(next(), &[EQUIP]).replace("urn:sedx:batch:1", "urn:evil:1")),
        Quarantined("XML-SCHEMA"),
    );
    c.signed(
        "schema-bad-id",
        &gz_of(&{
            let d = doc(next(), &[EQUIP]);
            let at = d.find(" id=\"").unwrap() + 5;
            format!("{}not-a-uuid{}", &d[..at], &d[at + 36..])
        }),
        Quarantined("XML-SCHEMA"),
    );
    c.signed(
        "huge-single-line",
        &gz_of(&doc(
            next(),
            &[&EQUIP.replace("上海外滩置业有限公司", &"长".repeat(2_000_000))],
        )),
        Quarantined("XML-LIMIT"),
    );
    c.signed(
        "count-lies",
        &gz_of(&doc(next(), &[EQUIP]).replace(r#"count="1""#, r#"count="5""#)),
        Quarantined("BATCH-COUNT"),
    );
    c.signed(
        "duplicate-records",
        &gz_of(&doc(next(), &[EQUIP, EQUIP])),
        RecordRefused("REC-DUPLICATE"),
    );
    c.signed(
        "bad-org-code",
        &gz_of(&doc(
            next(),
            &[&EQUIP.replace("</userUnit>", "</userUnit><orgCode>63169638-3</orgCode>")],
        )),
        RecordRefused("REC-ORGCODE"),
    );
    c.signed("record-of-the-other-side", &gz_of(&doc(next(), &[EQUIP, "<codeChange><changeId>X</changeId><field>registration-code</field><oldValue>31103101012006050007</oldValue><newValue>31103101012006050008</newValue><date>2006-01-01</date></codeChange>"])), RecordRefused("REC-OWNER"));

    // --- names sedx would never make ---------------------------------------
    let raw_names: Vec<Vec<u8>> = vec![
        b"ctrl\nname".to_vec(),
        b"back\\slash".to_vec(),
        [b"not-utf8-".as_slice(), &[0xFF, 0xFE]].concat(),
        vec![b'n'; 220],
    ];
    for raw in &raw_names {
        for (ext, body) in [
            (".xml.gz", good.clone()),
            (".xml.gz.sig", b"sig".to_vec()),
            (".xml.gz.sha256", b"x".to_vec()),
        ] {
            let name = std::ffi::OsStr::from_bytes(&[raw.as_slice(), ext.as_bytes()].concat())
                .to_os_string();
            fs::write(dir.join(name), &body).unwrap();
        }
    }

    let kinds = c.cases.len() + raw_names.len();
    assert!(kinds >= 40, "{kinds} kinds");
    let mut cfg = sedx::context::config::Config::load(&p.sup).unwrap();
    cfg.node.max_expanded_bytes = 16 << 20;
    cfg.save(&p.sup).unwrap();

    // One pass takes it all; the node keeps running (no error) and the good batch is applied.
    let r = p.pass(&p.sup);
    let quarantined = c
        .cases
        .iter()
        .filter(|(_, e)| matches!(e, Quarantined(_)))
        .count()
        + raw_names.len();
    assert_eq!(r.quarantined as usize, quarantined, "{r:?}");
    assert_eq!(r.held, 0);
    assert!(
        files_in(&dir).iter().all(|f| f == "elsewhere-marker"),
        "inbound is clear: {:?}",
        files_in(&dir)
    );
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(&db, "SELECT status FROM journal WHERE seq = 1").unwrap(),
        "accepted"
    );
    assert_eq!(sql_count(&db, "SELECT count(*) FROM code_change"), 0);
    assert_eq!(sql_count(&db, "SELECT count(*) FROM equipment WHERE user_unit LIKE 'root:%' OR user_unit LIKE '%lol%'"), 0);

    for (name, expect) in &c.cases {
        if let Quarantined(code) = expect {
            let reason = fs::read_to_string(
                p.sup
                    .join("quarantine")
                    .join(INSP)
                    .join(format!("{name}.reason.txt")),
            )
            .unwrap_or_else(|e| panic!("{name}: no reason file: {e}"));
            assert!(
                reason.starts_with(code),
                "{name}: expected {code}, got {reason}"
            );
        }
    }
    let reasons = fs::read_dir(p.sup.join("quarantine").join(INSP).join("unsafe-names"))
        .unwrap()
        .count();
    assert!(
        reasons >= raw_names.len() * 2,
        "unsafe names kept with reasons"
    );

    // Every one is answered.
    p.pass(&p.insp);
    let acks = acks_received(&p.insp, SUP);
    for (name, expect) in &c.cases {
        let ack = acks
            .iter()
            .find(|a| a.contains(&format!("set=\"{name}\"")))
            .unwrap_or_else(|| panic!("{name}: no acknowledgment"));
        match expect {
            Quarantined(code) => assert!(
                ack.contains(r#"status="rejected""#) && ack.contains(&format!("code=\"{code}\"")),
                "{name}: {ack}"
            ),
            RecordRefused(code) => {
                assert!(ack.contains(&format!("code=\"{code}\"")), "{name}: {ack}")
            }
        }
    }
    let unsafe_answers = acks
        .iter()
        .filter(|a| a.contains(r#"code="SET-NAME""#) && a.contains("is not a safe name"))
        .count();
    assert_eq!(
        unsafe_answers,
        raw_names.len(),
        "{:?} {:?}",
        acks.iter()
            .filter(|a| a.contains("SET-NAME"))
            .collect::<Vec<_>>(),
        files_in(&p.insp.join("quarantine").join(SUP))
    );

    // And the node goes on: the next batch in sequence is applied.
    let next_seq = sql_count(&db, "SELECT max(seq) FROM journal") as u64 + 1;
    plant_in(&dir, "next", &gz_of(&doc(next_seq, &[EQUIP])), &key);
    assert_eq!(p.pass(&p.sup).applied, 1);
}
