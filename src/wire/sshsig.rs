//! OpenSSH signatures (SSHSIG, Ed25519) over payloads hashed by streaming, and
//! trust through an OpenSSH allowed_signers file whose principals are node ids.
//!
//! The SSHSIG container, the key formats and Ed25519 come from the ssh-key crate;
//! only the prehash framing is assembled here, because ssh-key's own `sign`
//! wants the whole message in memory.

use crate::context::error::{Error, IoContext, Result};
use crate::wire::suite::PayloadDigest;
use signature::{Signer, Verifier};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use std::path::Path;

/// The SSHSIG "signed data" blob (PROTOCOL.sshsig) for an already-computed hash.
fn signed_data(namespace: &str, hash_alg: HashAlg, hash: &[u8]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }
    let mut out = b"SSHSIG".to_vec();
    string(&mut out, namespace.as_bytes());
    string(&mut out, b"");
    string(&mut out, hash_alg.as_str().as_bytes());
    string(&mut out, hash);
    out
}

fn hash_for(d: &PayloadDigest, alg: HashAlg) -> Option<&[u8]> {
    match alg {
        HashAlg::Sha256 => Some(&d.sha256),
        HashAlg::Sha512 => d.sha512.as_ref().map(|h| &h[..]),
        _ => None,
    }
}

pub fn load_private_key(path: &Path) -> Result<PrivateKey> {
    let key = PrivateKey::read_openssh_file(path)
        .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?;
    if key.is_encrypted() {
        return Err(Error::Key(format!(
            "{}: encrypted keys are not supported",
            path.display()
        )));
    }
    if key.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(Error::Key(format!(
            "{}: signing keys must be Ed25519",
            path.display()
        )));
    }
    Ok(key)
}

/// Make an armored SSHSIG signature, as `ssh-keygen -Y sign -n NAMESPACE` does (SHA-512).
pub fn sign(key: &PrivateKey, namespace: &str, digest: &PayloadDigest) -> Result<String> {
    let sha512 = digest
        .sha512
        .ok_or_else(|| Error::Key("payload was not hashed for SSHSIG".into()))?;
    let data = signed_data(namespace, HashAlg::Sha512, &sha512);
    let sig = key.try_sign(&data).map_err(|e| Error::Key(e.to_string()))?;
    let sshsig = SshSig::new(
        key.public_key().key_data().clone(),
        namespace,
        HashAlg::Sha512,
        sig,
    )
    .map_err(|e| Error::Key(e.to_string()))?;
    sshsig
        .to_pem(LineEnding::LF)
        .map_err(|e| Error::Key(e.to_string()))
}

/// A parsed, not yet verified signature.
pub struct ParsedSig(SshSig);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("signature is not an armored SSHSIG: {0}")]
    Malformed(String),
    #[error("signature uses hash {0}, expected sha256 or sha512")]
    Hash(String),
    #[error("signature does not verify")]
    Invalid,
    #[error("signing key {0} is not in allowed_signers")]
    UnknownKey(String),
    #[error("signing key {fingerprint} belongs to {principals}, not to {expected}")]
    WrongPrincipal {
        fingerprint: String,
        principals: String,
        expected: String,
    },
}

impl ParsedSig {
    pub fn parse(armored: &[u8]) -> Result<ParsedSig, SigError> {
        SshSig::from_pem(armored)
            .map(ParsedSig)
            .map_err(|e| SigError::Malformed(e.to_string()))
    }

    pub fn namespace(&self) -> &str {
        self.0.namespace()
    }

    pub fn fingerprint(&self) -> String {
        self.0.public_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// Check the signature over the payload with the key it carries.
    pub fn verify(&self, digest: &PayloadDigest) -> Result<(), SigError> {
        let alg = self.0.hash_alg();
        let hash = hash_for(digest, alg).ok_or_else(|| SigError::Hash(alg.as_str().into()))?;
        let data = signed_data(self.0.namespace(), alg, hash);
        self.0
            .public_key()
            .verify(&data, self.0.signature())
            .map_err(|_| SigError::Invalid)
    }
}

/// One line of an allowed_signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub principals: Vec<String>,
    pub namespaces: Option<Vec<String>>,
    pub key: PublicKey,
}

#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub entries: Vec<AllowedSigner>,
}

/// Split on `sep` (or whitespace when None) outside double quotes; quotes are kept.
fn split_unquoted(line: &str, sep: Option<char>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        let is_sep = match sep {
            Some(s) => c == s,
            None => c.is_whitespace(),
        };
        if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if is_sep && !quoted {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// OpenSSH principal patterns: `*` and `?` wildcards, `!` negation not supported.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

impl AllowedSigners {
    pub fn parse(text: &str) -> Result<AllowedSigners> {
        let mut entries = Vec::new();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_unquoted(line, None);
            let bad = |why: &str| Error::Key(format!("allowed_signers line {}: {why}", no + 1));
            if fields.len() < 3 {
                return Err(bad("expected: principals [options] keytype key"));
            }
            let principals: Vec<String> =
                unquote(&fields[0]).split(',').map(str::to_string).collect();
            let is_key_type =
                |f: &str| f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-");
            let key_at = if is_key_type(&fields[1]) { 1 } else { 2 };
            let mut namespaces = None;
            let mut cert_authority = false;
            if key_at == 2 {
                for opt in split_unquoted(&fields[1], Some(',')) {
                    if let Some(v) = opt.strip_prefix("namespaces=") {
                        namespaces = Some(unquote(v).split(',').map(str::to_string).collect());
                    } else if opt.eq_ignore_ascii_case("cert-authority") {
                        cert_authority = true;
                    }
                }
            }
            if cert_authority {
                // sedx does not use certificates; such a line trusts nothing here.
                continue;
            }
            let key_text = fields[key_at..].join(" ");
            let key = PublicKey::from_openssh(&key_text).map_err(|e| bad(&e.to_string()))?;
            entries.push(AllowedSigner {
                principals,
                namespaces,
                key,
            });
        }
        Ok(AllowedSigners { entries })
    }

    pub fn load(path: &Path) -> Result<AllowedSigners> {
        let text = std::fs::read_to_string(path).at(path)?;
        AllowedSigners::parse(&text)
    }

    /// Verify `sig` over `digest` as made by `principal` under `namespace`.
    pub fn check(
        &self,
        sig: &ParsedSig,
        principal: &str,
        namespace: &str,
        digest: &PayloadDigest,
    ) -> Result<(), SigError> {
        let key = sig.0.public_key();
        let mut holders = Vec::new();
        for e in self.entries.iter().filter(|e| e.key.key_data() == key) {
            let ns_ok = e
                .namespaces
                .as_ref()
                .is_none_or(|ns| ns.iter().any(|n| pattern_matches(n, namespace)));
            if e.principals.iter().any(|p| pattern_matches(p, principal)) && ns_ok {
                return sig.verify(digest);
            }
            holders.extend(e.principals.iter().cloned());
        }
        if holders.is_empty() {
            Err(SigError::UnknownKey(sig.fingerprint()))
        } else {
            Err(SigError::WrongPrincipal {
                fingerprint: sig.fingerprint(),
                principals: holders.join(","),
                expected: principal.to_string(),
            })
        }
    }
}

/// Generate an OpenSSH Ed25519 key pair at `path` (private, mode 600) and `path.pub`.
pub fn generate_key(path: &Path, comment: &str) -> Result<PublicKey> {
    let mut key = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(|e| Error::Key(e.to_string()))?;
    key.set_comment(comment);
    key.write_openssh_file(path, LineEnding::LF)
        .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?;
    let public = key.public_key().clone();
    let text = public.to_openssh().map_err(|e| Error::Key(e.to_string()))?;
    let pub_path = path.with_extension("pub");
    crate::context::files::write_atomic(&pub_path, format!("{text}\n").as_bytes())?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::suite::Hashing;

    #[test]
    fn sign_and_check() {
        let key = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
        let mut h = Hashing::default();
        h.update(b"payload");
        let d = h.finish();
        let pem = sign(&key, "sedx-batch", &d).unwrap();
        let sig = ParsedSig::parse(pem.as_bytes()).unwrap();
        let line = format!("insp-1 {}", key.public_key().to_openssh().unwrap());
        let signers = AllowedSigners::parse(&line).unwrap();
        signers.check(&sig, "insp-1", "sedx-batch", &d).unwrap();
        assert!(matches!(
            signers.check(&sig, "sup", "sedx-batch", &d),
            Err(SigError::WrongPrincipal { .. })
        ));
        let mut h = Hashing::default();
        h.update(b"payloaD");
        assert_eq!(
            signers.check(&sig, "insp-1", "sedx-batch", &h.finish()),
            Err(SigError::Invalid)
        );
        // The same data signed by ssh-key's whole-message API must verify with ours.
        let whole = SshSig::sign(&key, "sedx-batch", HashAlg::Sha512, b"payload").unwrap();
        ParsedSig(whole).verify(&d).unwrap();
    }

    #[test]
    fn namespaces_option_restricts() {
        let key = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
        let line = format!(
            "a,b namespaces=\"sedx-ack\" {}",
            key.public_key().to_openssh().unwrap()
        );
        let s = AllowedSigners::parse(&line).unwrap();
        assert_eq!(s.entries[0].principals, vec!["a", "b"]);
        assert_eq!(
            s.entries[0].namespaces.as_deref(),
            Some(&["sedx-ack".to_string()][..])
        );
    }
}
