//! Participant cards: what one node tells another to exchange with it, in one
//! small TOML file (`sedx card`), and the join that reads it (`sedx peer add
//! CARD`): the [[peer]] section with the channel's suite, the allowed_signers
//! and sm2_trust lines and the inbound folder, instead of five hand edits.

use crate::context::config::{check_node_id, Config, Layout, PeerConfig, Role, Suite, Transport};
use crate::context::error::{Error, IoContext, Result};
use crate::wire::sm2sig::{Sm2Key, Sm2Public, Sm2Trust};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `{peer}` in a card's user, inbound and outbox is the reading node's id.
pub const PEER_PLACEHOLDER: &str = "{peer}";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub id: String,
    pub role: Role,
    /// The inspection agency this node speaks for (an agency's card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// The suite this node's channels use (ed25519 or sm2): a peer that adds
    /// this card uses it for their channel.
    #[serde(default)]
    pub suite: Suite,
    /// Verifies the sets and acknowledgments this node signs (Ed25519 suite).
    pub signing_key: String,
    /// Verifies what it signs in the SM2 suite: the base64 of its SM2 public
    /// key's DER (a line of sm2_trust after the node id).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sm2_key: String,
    /// Logs in to the peer's SFTP server.
    pub login_key: String,
    /// Where this node's SFTP server is reached, as whom, and its host key pin.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub inbound: String,
    /// On a hub: where sets wait for a pulling peer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outbox: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_key: String,
}

fn default_port() -> u16 {
    22
}

/// How this node's server is reached, for its card.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub inbound: String,
    pub outbox: String,
    /// A SHA256 pin, or a .pub file of the host key.
    pub host_key: String,
    pub agency: Option<String>,
}

/// The pin of a host key given as a pin, a .pub file or a key line.
pub fn pin_of(text_or_file: &str) -> Result<String> {
    if text_or_file.starts_with("SHA256:") {
        return Ok(text_or_file.to_string());
    }
    let text = if Path::new(text_or_file).is_file() {
        std::fs::read_to_string(text_or_file).at(Path::new(text_or_file))?
    } else {
        text_or_file.to_string()
    };
    let key = ssh_key::PublicKey::from_openssh(text.trim())
        .map_err(|e| Error::Key(format!("host key {text_or_file}: {e}")))?;
    Ok(key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
}

/// This node's card.
pub fn make(dir: &Path, reach: &Reach) -> Result<Card> {
    let cfg = Config::load(dir)?;
    let layout = Layout::new(dir);
    let public = |p: &Path| -> Result<String> {
        crate::wire::sshsig::load_private_key(&layout.resolve(p))?
            .public_key()
            .to_openssh()
            .map_err(|e| Error::Key(e.to_string()))
    };
    let sm2_path = layout.resolve(&cfg.node.sm2_signing_key);
    let sm2_key = if sm2_path.exists() {
        Sm2Key::load(&sm2_path)?.public().to_base64()
    } else if cfg.node.suite == Suite::Sm2 {
        return Err(Error::Config(format!(
            "this node's suite is sm2 but it has no SM2 key at {}",
            sm2_path.display()
        )));
    } else {
        String::new()
    };
    Ok(Card {
        id: cfg.node.id.clone(),
        role: cfg.node.role,
        agency: reach.agency.clone(),
        suite: cfg.node.suite,
        sm2_key,
        signing_key: public(&cfg.node.signing_key)?,
        login_key: public(&cfg.node.login_key)?,
        host: reach.host.clone(),
        port: reach.port,
        user: reach.user.clone(),
        inbound: reach.inbound.clone(),
        outbox: reach.outbox.clone(),
        host_key: if reach.host_key.is_empty() {
            String::new()
        } else {
            pin_of(&reach.host_key)?
        },
    })
}

pub fn to_text(card: &Card) -> Result<String> {
    let body = toml::to_string_pretty(card).map_err(|e| Error::Config(e.to_string()))?;
    Ok(format!(
        "# sedx participant card (参与方名片) of {}: give it to each peer's operator,\n# who runs `sedx peer add THIS_FILE`. {PEER_PLACEHOLDER} stands for the reading node's id.\n{body}",
        card.id
    ))
}

pub fn read(path: &Path) -> Result<Card> {
    let text = std::fs::read_to_string(path).at(path)?;
    let card: Card = toml::from_str(&text)
        .map_err(|e| Error::Config(format!("card {}: {}", path.display(), e.message())))?;
    check_node_id(&card.id)?;
    for (what, key) in [
        ("signing_key", &card.signing_key),
        ("login_key", &card.login_key),
    ] {
        let k = ssh_key::PublicKey::from_openssh(key.trim())
            .map_err(|e| Error::Key(format!("card {}: {what}: {e}", path.display())))?;
        if k.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(Error::Key(format!(
                "card {}: {what} must be an Ed25519 key",
                path.display()
            )));
        }
    }
    if !card.sm2_key.is_empty() {
        Sm2Public::from_base64(&card.sm2_key)
            .map_err(|e| Error::Key(format!("card {}: sm2_key: {e}", path.display())))?;
    } else if card.suite == Suite::Sm2 {
        return Err(Error::Key(format!(
            "card {}: its suite is sm2 but it carries no sm2_key; ask its operator for a new card",
            path.display()
        )));
    }
    Ok(card)
}

/// What `peer add` did, and what the SFTP side still needs.
pub struct Added {
    pub peer: PeerConfig,
    pub login_key: String,
}

/// Add the card's node as a peer of the node in `dir`, in the card's suite
/// unless `suite` says otherwise (both sides must agree).
pub fn add(
    dir: &Path,
    card: &Card,
    transport: Transport,
    agency: Option<String>,
    suite: Option<Suite>,
) -> Result<Added> {
    let mut cfg = Config::load(dir)?;
    let me = cfg.node.id.clone();
    if card.id == me {
        return Err(Error::Config(format!(
            "card {} is this node's own",
            card.id
        )));
    }
    if card.role == cfg.node.role {
        return Err(Error::Config(format!(
            "{} is a {} node like this one; peers are always of the other side",
            card.id,
            card.role.as_str()
        )));
    }
    if cfg.peer(&card.id).is_some() {
        return Err(Error::Config(format!(
            "{} is already a peer in sedx.toml; remove its [[peer]] section first (or change it with `sedx peer-set`)",
            card.id
        )));
    }
    let fill = |s: &str| s.replace(PEER_PLACEHOLDER, &me);
    let need = |what: &str, v: &str| {
        if v.is_empty() && transport != Transport::Local {
            Err(Error::Config(format!(
                "card of {} has no {what}: ask its operator for a card made with `sedx card --{what} ...`",
                card.id
            )))
        } else {
            Ok(())
        }
    };
    need("host", &card.host)?;
    need("user", &card.user)?;
    need("inbound", &card.inbound)?;
    need("host-key", &card.host_key)?;
    if transport == Transport::Pull && card.outbox.is_empty() {
        return Err(Error::Config(format!(
            "card of {} has no outbox: pulling needs the hub's folder for this node (`sedx card --outbox`)",
            card.id
        )));
    }
    let suite = suite.unwrap_or(card.suite);
    if suite == Suite::Sm2 && card.sm2_key.is_empty() {
        return Err(Error::Config(format!(
            "card of {} carries no SM2 key, so an SM2 channel with it cannot be checked: ask its operator for a card made by this version of sedx",
            card.id
        )));
    }
    let peer = PeerConfig {
        suite: Some(suite),
        id: card.id.clone(),
        transport,
        host: if transport == Transport::Local {
            String::new()
        } else {
            card.host.clone()
        },
        port: card.port,
        user: if transport == Transport::Local {
            String::new()
        } else {
            fill(&card.user)
        },
        key: None,
        remote_inbound: if transport == Transport::Local {
            String::new()
        } else {
            fill(&card.inbound)
        },
        host_key: if transport == Transport::Local {
            String::new()
        } else {
            card.host_key.clone()
        },
        remote_outbox: (transport == Transport::Pull).then(|| fill(&card.outbox)),
        local_outbox: None,
        local_inbound: None,
        agency: agency.or_else(|| card.agency.clone()),
    };
    let layout = Layout::new(dir);
    let signers = layout.resolve(&cfg.node.allowed_signers);
    let line = format!(
        "{} namespaces=\"sedx-batch,sedx-ack\" {}",
        card.id,
        card.signing_key.trim()
    );
    let text = std::fs::read_to_string(&signers).at(&signers)?;
    if !text.lines().any(|l| l.trim() == line) {
        let text = with_line(text, &line);
        crate::wire::sshsig::AllowedSigners::parse(&text)?;
        crate::context::files::write_atomic(&signers, text.as_bytes())?;
    }
    if !card.sm2_key.is_empty() {
        let path = layout.resolve(&cfg.node.sm2_trust);
        let key = Sm2Public::from_base64(&card.sm2_key)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).at(&path),
        };
        if !Sm2Trust::parse(&text)?.keys_of(&card.id).contains(&&key) {
            let text = with_line(text, &Sm2Trust::line(&card.id, &key));
            crate::context::files::write_atomic(&path, text.as_bytes())?;
        }
    }
    cfg.peers.push(peer.clone());
    cfg.save(dir)?;
    // Checked as the node will read it.
    Config::load(dir)?;
    crate::context::files::create_dir_all(&layout.inbound_of(&peer))?;
    Ok(Added {
        peer,
        login_key: card.login_key.trim().to_string(),
    })
}

/// A trust file's text with `line` added on a line of its own.
fn with_line(mut text: String, line: &str) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    text
}
