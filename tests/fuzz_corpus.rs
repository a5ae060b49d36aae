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
        let run = sedx::fuzzing::target(target).unwrap();
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
