//! Memory stays flat however large a batch: measured as the peak resident size of
//! a real `sedx` process (by python3's getrusage, which scripts/deps.sh installs).

use std::process::Command;

/// Peak resident memory in MiB of `sedx ARGS`, which must succeed.
fn peak_mib(args: &[&str]) -> f64 {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n\
                  sys.stderr.write(r.stderr.decode(errors='replace'))\n\
                  print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_sedx"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    assert_eq!(
        parts.next(),
        Some("0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parts.next().unwrap().parse::<f64>().unwrap() / 1024.0
}

#[test]
fn validating_a_200_mb_batch_keeps_memory_flat() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("gen");
    let gen = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args(["gen", "--out", data.to_str().unwrap()])
        .args(["--records", "480000", "--batch-size", "480000"])
        .output()
        .unwrap();
    assert!(gen.status.success());
    let batch = data.join("gen-000001.xml");
    assert!(std::fs::metadata(&batch).unwrap().len() > 190_000_000);
    // libxml2 2.9 ran the XSD's first form (a repeated choice) with memory growing
    // by a third of the document: 67 MB here. The batch XSD avoids that form.
    let mib = peak_mib(&["validate", batch.to_str().unwrap()]);
    assert!(mib < 32.0, "validating 200 MB took {mib:.0} MiB");
}
