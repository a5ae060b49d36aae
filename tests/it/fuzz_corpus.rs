//! The fuzz corpus (fuzz/corpus/<target>/), kept in the repository, run as a
//! regression test: every input through its stage of the inbound path or the
//! record rules, with no panic. (The fuzzers themselves: see fuzz/README.md.)

use std::fs;
use std::path::PathBuf;

#[test]
fn every_corpus_input_runs_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    for target in [
        "marker",
        "signature",
        "gzip",
        "xml",
        "records",
        "differential",
    ] {
        let run = sedx::tools::fuzzing::target(target).unwrap();
        let dir = root.join(target);
        let mut n = 0;
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} panics", path.display());
            n += 1;
        }
        assert!(n > 0, "{target} has a corpus");
        total += n;
    }
    assert!(total >= 40, "{total} inputs");
}

/// The differential target compares for real: a valid batch (with a CDATA
/// section, references and line ends) reaches the comparison of both views.
#[test]
fn the_differential_target_compares_both_views_of_a_valid_batch() {
    let doc = "<?xml version=\"1.0\" encoding=\"GBK\"?>\r\n<batch xmlns=\"urn:sedx:batch:1\" from=\"insp-city\">\r\n<equipment><registrationCode>31103101012006050007</registrationCode><category>3110</category><userUnit>A &amp; B\r\n<![CDATA[ <C> ]]>&#x4E0A;</userUnit></equipment></batch>\r\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(doc);
    assert!(sedx::tools::fuzzing::differential_compared(&gbk));
    assert!(!sedx::tools::fuzzing::differential_compared(
        b"<batch><nope/></batch>"
    ));
}
