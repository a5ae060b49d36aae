//! Peers join without hand edits (`sedx card`, `sedx peer add`), and `sedx
//! check` catches each misconfiguration an operator meets, with its fix.

use crate::common::*;
use sedx::context::config::Config;
use std::fs;
use std::process::Command;

#[test]
fn two_nodes_join_by_their_cards_and_check_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(&tmp.path().join("sshd"));
    let insp = tmp.path().join("insp");
    let sup = tmp.path().join("sup");
    let (code, text) = outcome(sedx_plain(&[
        "init",
        insp.to_str().unwrap(),
        "--id",
        INSP,
        "--role",
        "inspection",
    ]));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Peers pin it only if they reach this node through that server")
            || text.contains("No system SSH host key"),
        "{text}"
    );
    assert_eq!(
        outcome(sedx_plain(&[
            "init",
            sup.to_str().unwrap(),
            "--id",
            SUP,
            "--role",
            "supervision"
        ]))
        .0,
        0
    );
    let toml = fs::read_to_string(insp.join("sedx.toml")).unwrap();
    assert!(
        !toml.contains("peer = []"),
        "no trap for appended [[peer]] sections: {toml}"
    );

    let port = sshd.port.to_string();
    let me = whoami();
    let host_key = sshd.host_key.to_str().unwrap();
    for (node, name, agency) in [
        (&insp, "insp.card", Some(sedx::tools::demo::CITY_INSTITUTE)),
        (&sup, "sup.card", None),
    ] {
        let inbound = format!(
            "{}/inbound/{{peer}}",
            fs::canonicalize(node).unwrap().display()
        );
        let out = tmp.path().join(name);
        let mut args = vec![
            "card",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &me,
            "--inbound",
            &inbound,
            "--host-key",
            host_key,
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(a) = agency {
            args.extend(["--agency", a]);
        }
        let (code, text) = outcome(sedx(node, &args));
        assert_eq!(code, 0, "{text}");
    }
    let card = fs::read_to_string(tmp.path().join("insp.card")).unwrap();
    assert!(
        card.contains("host_key = \"SHA256:") && card.contains("role = \"inspection\""),
        "{card}"
    );

    let (code, text) = outcome(sedx(
        &sup,
        &[
            "peer",
            "add",
            tmp.path().join("insp.card").to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("scripts/peer-account.sh --node"), "{text}");
    let (code, text) = outcome(sedx(
        &insp,
        &["peer", "add", tmp.path().join("sup.card").to_str().unwrap()],
    ));
    assert_eq!(code, 0, "{text}");
    let (code, text) = outcome(sedx(
        &insp,
        &["peer", "add", tmp.path().join("sup.card").to_str().unwrap()],
    ));
    assert_ne!(code, 0, "added twice: {text}");
    assert_eq!(
        Config::load(&sup).unwrap().peers[0].agency.as_deref(),
        Some(sedx::tools::demo::CITY_INSTITUTE),
        "the agency comes with the card"
    );
    // The SFTP side: the login keys go into the server's authorized_keys, as
    // `peer add` says (scripts/peer-account.sh does it in a real deployment).
    for node in [&insp, &sup] {
        let key = fs::read_to_string(node.join("keys/login_ed25519.pub")).unwrap();
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&sshd.authorized_keys)
            .unwrap();
        std::io::Write::write_all(&mut f, key.as_bytes()).unwrap();
    }
    for node in [&insp, &sup] {
        let (code, text) = outcome(sedx(node, &["check"]));
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("is writable (probe file written and removed)"),
            "{text}"
        );
        let mut cfg = Config::load(node).unwrap();
        cfg.node.settle_ms = 50;
        cfg.node.window = "always".into();
        cfg.save(node).unwrap();
    }
    fs::write(insp.join("outbound/b.xml"), equipment_batch(1, 2)).unwrap();
    let r = sedx::context::node::Node::open(&insp).unwrap().pass();
    assert!(r.errors.is_empty() && r.shipped == 1, "{:?}", r.errors);
    let r = sedx::context::node::Node::open(&sup).unwrap().pass();
    assert_eq!(r.applied, 1, "{:?}", r.errors);
}

/// Change sedx.toml's text, run `sedx check`, put the text back.
fn check_with_text(p: &Pair, edit: impl FnOnce(&str) -> String) -> (i32, String) {
    let path = p.insp.join("sedx.toml");
    let good = fs::read_to_string(&path).unwrap();
    fs::write(&path, edit(&good)).unwrap();
    let r = outcome(sedx(&p.insp, &["check"]));
    fs::write(&path, good).unwrap();
    r
}

fn check_with(p: &Pair, edit: impl FnOnce(&mut Config)) -> (i32, String) {
    check_with_text(p, |text| {
        let mut cfg: Config = toml::from_str(text).unwrap();
        edit(&mut cfg);
        toml::to_string_pretty(&cfg).unwrap()
    })
}

fn caught(r: (i32, String), what: &[&str]) {
    let (code, text) = r;
    assert_eq!(code, 2, "{text}");
    for w in what {
        assert!(text.contains(w), "missing {w:?} in:\n{text}");
    }
}

#[test]
fn check_catches_each_misconfiguration_with_its_fix() {
    let p = Pair::new();
    let (code, text) = outcome(sedx(&p.insp, &["check"]));
    assert_eq!(code, 0, "a good node passes: {text}");

    // `peer = []` from an old init, then an appended [[peer]] section.
    caught(
        check_with_text(&p, |t| format!("peer = []\n{t}")),
        &["duplicate key", "remove the line `peer = []`"],
    );
    // A typo is refused by name, never passes silently.
    caught(
        check_with_text(&p, |t| {
            t.replacen("[node]\n", "[node]\nwindw = \"always\"\n", 1)
        }),
        &["unknown field `windw`", "misspelt"],
    );
    // No host key pin: where to get it, without type names.
    let (code, text) = check_with(&p, |c| c.peers[0].host_key.clear());
    caught(
        (code, text.clone()),
        &["host_key is missing", "ssh-keyscan -p"],
    );
    assert!(!text.contains("Push"), "{text}");
    // The wrong pin: what the server showed and how to pin it once confirmed.
    caught(
        check_with(&p, |c| {
            c.peers[0].host_key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()
        }),
        &["not the pinned key", "set host_key = \"SHA256:"],
    );
    // A login key the server does not know: which line goes where.
    let other = p.tmp.path().join("other_login");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "other", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let other_pub = fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_pub: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    caught(
        check_with(&p, |c| c.peers[0].key = Some(other.clone())),
        &[
            "does not accept this node's login key",
            "authorized_keys",
            &other_pub.join(" "),
        ],
    );
    // The peer's inbound folder is missing (or this node is not set up there).
    caught(
        check_with(&p, |c| c.peers[0].remote_inbound.push_str("-missing")),
        &["does not exist on the peer's server", "sedx peer add"],
    );
    // The peer's key is not trusted.
    let signers = trust_file(&p.insp);
    let good = fs::read_to_string(&signers).unwrap();
    let without: String = good
        .lines()
        .filter(|l| !l.starts_with(SUP))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&signers, without).unwrap();
    let missing = match p.suite() {
        Suite::Ed25519 => "no key of sup-city in allowed_signers",
        Suite::Sm2 => "sm2_trust has no key of sup-city",
    };
    caught(
        outcome(sedx(&p.insp, &["check"])),
        &[missing, "sedx peer add"],
    );
    fs::write(&signers, good).unwrap();
    // A key readable by others.
    let key = p.insp.join("keys/signing_ed25519");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    caught(
        outcome(sedx(&p.insp, &["check"])),
        &["can be read by others", "chmod 600"],
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(outcome(sedx(&p.insp, &["check"])).0, 0, "all fixed again");
}
