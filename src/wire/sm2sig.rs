//! SM2 signatures (GM/T 0003) with SM3 over a payload hashed by streaming,
//! interoperable with OpenSSL 3's command line, and trust through a file of
//! SM2 public keys by node id (`keys/sm2_trust`).
//!
//! What is signed is e = SM3(Z || payload), Z the signer's identity hash over
//! GM/T 0009's default distinguishing id `1234567812345678`, the curve and the
//! public key. The signature file is the DER `SEQUENCE { r, s }` that
//! `openssl dgst -sm3 -sign KEY -sigopt distid:1234567812345678` writes. Keys
//! are PKCS#8 PEM files as `openssl genpkey -algorithm EC -pkeyopt
//! ec_paramgen_curve:SM2` writes them. The curve arithmetic is RustCrypto's
//! `sm2`; only Z is computed here, because the crate hashes whole messages
//! held in memory and a payload is streamed.

use crate::context::error::{Error, IoContext, Result};
use base64::Engine;
use der::{asn1::UintRef, Decode, Encode, Reader};
use sm2::dsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::sec1::ToEncodedPoint;
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sm2::{PublicKey, SecretKey};
use sm3::{Digest, Sm3};
use std::path::Path;

/// GM/T 0009-2012's default distinguishing identifier of a signer.
pub const DIST_ID: &str = "1234567812345678";

/// The curve's a, b and generator (GM/T 0003.5), as hashed into Z.
const CURVE: [&str; 4] = [
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC",
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93",
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7",
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0",
];

/// Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA).
fn identity_hash(id: &str, key: &PublicKey) -> [u8; 32] {
    let mut h = Sm3::new();
    h.update(((id.len() * 8) as u16).to_be_bytes());
    h.update(id.as_bytes());
    for c in CURVE {
        h.update(hex::decode(c).expect("constant hex"));
    }
    let point = key.to_encoded_point(false);
    // An uncompressed point always has both coordinates.
    h.update(point.x().map(|x| &x[..]).unwrap_or_default());
    h.update(point.y().map(|y| &y[..]).unwrap_or_default());
    h.finalize().into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Sm2Error {
    #[error("signature is not an SM2 signature in DER ({0}); it is made with `openssl dgst -sm3 -sign KEY.pem -sigopt distid:{DIST_ID}`")]
    Malformed(String),
    #[error("no SM2 key of {0} in sm2_trust: add the line from its card (`sedx peer add CARD`)")]
    NoKey(String),
    #[error("SM2 signature does not verify with the key of {peer} ({keys})")]
    Invalid { peer: String, keys: String },
    #[error("SM2 signature made with the distinguishing id left empty (OpenSSL's default): sign with `-sigopt distid:{DIST_ID}` (GM/T 0009)")]
    EmptyId,
    #[error("SM2 signature made with the key of {signer}, not of {expected}")]
    OtherSigner { signer: String, expected: String },
}

/// An SM2 public key with its identity hash (default id).
#[derive(Clone, PartialEq, Eq)]
pub struct Sm2Public {
    key: PublicKey,
    z: [u8; 32],
}

impl std::fmt::Debug for Sm2Public {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl Sm2Public {
    fn new(key: PublicKey) -> Sm2Public {
        Sm2Public {
            z: identity_hash(DIST_ID, &key),
            key,
        }
    }

    /// From the base64 of its DER SubjectPublicKeyInfo (one line of the trust
    /// file or a card; the body of `openssl pkey -pubout`'s PEM).
    pub fn from_base64(text: &str) -> Result<Sm2Public> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| Error::Key(format!("SM2 public key is not base64: {e}")))?;
        PublicKey::from_public_key_der(&der)
            .map(Sm2Public::new)
            .map_err(|e| Error::Key(format!("not an SM2 public key (SubjectPublicKeyInfo): {e}")))
    }

    fn der(&self) -> Vec<u8> {
        self.key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The base64 of its DER SubjectPublicKeyInfo, on one line.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.der())
    }

    /// As `openssl pkey -pubout` writes it.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(sm2::pkcs8::LineEnding::LF)
            .unwrap_or_default()
    }

    /// "SM3:" and the base64 of the SM3 of its DER form (as ssh-keygen shows
    /// "SHA256:..."): `openssl pkey -pubin -outform DER | openssl dgst -sm3
    /// -binary | base64`.
    pub fn fingerprint(&self) -> String {
        format!(
            "SM3:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sm3::digest(self.der()))
        )
    }

    /// Z for the default id: what goes before the payload in the signed hash.
    pub fn z(&self) -> [u8; 32] {
        self.z
    }

    /// Whether `sig` signs the hash `e` (= SM3(Z || payload)).
    pub fn verifies(&self, e: &[u8; 32], sig: &Signature) -> bool {
        VerifyingKey::new(DIST_ID, self.key)
            .and_then(|k| k.verify_prehash(e, sig))
            .is_ok()
    }

    /// The same key's Z for another distinguishing id (diagnosis only).
    fn z_with(&self, id: &str) -> [u8; 32] {
        identity_hash(id, &self.key)
    }
}

/// A node's SM2 signing key.
pub struct Sm2Key {
    signing: SigningKey,
    public: Sm2Public,
}

impl Sm2Key {
    /// A PKCS#8 PEM private key (`openssl genpkey ... ec_paramgen_curve:SM2`).
    pub fn load(path: &Path) -> Result<Sm2Key> {
        let text = std::fs::read_to_string(path).at(path)?;
        let secret = SecretKey::from_pkcs8_pem(&text).map_err(|e| {
            Error::Key(format!(
                "{}: not an unencrypted SM2 private key in PKCS#8 PEM ({e})",
                path.display()
            ))
        })?;
        Sm2Key::of(&secret).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    fn of(secret: &SecretKey) -> Result<Sm2Key> {
        let signing =
            SigningKey::new(DIST_ID, secret).map_err(|e| Error::Key(format!("SM2 key: {e}")))?;
        Ok(Sm2Key {
            signing,
            public: Sm2Public::new(secret.public_key()),
        })
    }

    /// Make a key pair: `path` (PKCS#8 PEM, mode 600) and `path.pub` (PEM).
    pub fn generate(path: &Path) -> Result<Sm2Key> {
        let secret = SecretKey::random(&mut rand_core::OsRng);
        let pem = secret
            .to_pkcs8_pem(sm2::pkcs8::LineEnding::LF)
            .map_err(|e| Error::Key(format!("SM2 key: {e}")))?;
        crate::context::files::write_atomic(path, pem.as_bytes())?;
        let key = Sm2Key::of(&secret)?;
        crate::context::files::write_atomic(
            &public_pem_path(path),
            key.public.to_pem().as_bytes(),
        )?;
        Ok(key)
    }

    pub fn public(&self) -> &Sm2Public {
        &self.public
    }

    /// Sign e = SM3(Z || payload); the DER signature.
    pub fn sign(&self, e: &[u8; 32]) -> Result<Vec<u8>> {
        let sig: Signature = self
            .signing
            .sign_prehash(e)
            .map_err(|err| Error::Key(format!("SM2 signing: {err}")))?;
        to_der(&sig)
    }
}

/// Where the public half of a generated key is written: KEY.pub.
pub fn public_pem_path(key: &Path) -> std::path::PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    s.into()
}

fn to_der(sig: &Signature) -> Result<Vec<u8>> {
    let (r, s) = (sig.r_bytes(), sig.s_bytes());
    let bad = |e: der::Error| Error::Key(format!("SM2 signature encoding: {e}"));
    let (r, s) = (
        UintRef::new(&r).map_err(bad)?,
        UintRef::new(&s).map_err(bad)?,
    );
    let len = (r.encoded_len().map_err(bad)? + s.encoded_len().map_err(bad)?).map_err(bad)?;
    let mut out = Vec::with_capacity(72);
    der::Header::new(der::Tag::Sequence, len)
        .map_err(bad)?
        .encode_to_vec(&mut out)
        .map_err(bad)?;
    r.encode_to_vec(&mut out).map_err(bad)?;
    s.encode_to_vec(&mut out).map_err(bad)?;
    Ok(out)
}

/// Parse a DER signature strictly: one SEQUENCE of two minimal INTEGERs and
/// nothing after it (OpenSSL refuses any other encoding too, so both read the
/// same bytes the same way).
pub fn parse_sig(bytes: &[u8]) -> std::result::Result<Signature, Sm2Error> {
    let bad = |e: der::Error| Sm2Error::Malformed(e.to_string());
    let mut reader = der::SliceReader::new(bytes).map_err(bad)?;
    let (r, s) = reader
        .sequence(|seq| Ok((UintRef::decode(seq)?, UintRef::decode(seq)?)))
        .map_err(bad)?;
    reader.finish(()).map_err(bad)?;
    let mut raw = [0u8; 64];
    for (part, at) in [(r.as_bytes(), 32), (s.as_bytes(), 64)] {
        if part.len() > 32 {
            return Err(Sm2Error::Malformed(
                "a scalar is longer than 32 bytes".into(),
            ));
        }
        raw[at - part.len()..at].copy_from_slice(part);
    }
    Signature::from_bytes(&raw).map_err(|_| Sm2Error::Malformed("r or s is out of range".into()))
}

/// The SM2 public keys trusted, by node id: lines `NODE_ID BASE64` (the base64
/// of the key's DER SubjectPublicKeyInfo), `#` comments.
#[derive(Debug, Clone, Default)]
pub struct Sm2Trust {
    entries: Vec<(String, Sm2Public)>,
}

/// Telling why a signature failed reads the payload once more, hashing it for
/// each key tried: at most this many bytes hashed in all (a refused set must
/// not cost much more than an accepted one).
const DIAGNOSE_BUDGET: u64 = 256 << 20;

impl Sm2Trust {
    pub fn parse(text: &str) -> Result<Sm2Trust> {
        let mut entries = Vec::new();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: String| Error::Key(format!("sm2_trust line {}: {why}", no + 1));
            let mut fields = line.split_whitespace();
            let (Some(id), Some(key)) = (fields.next(), fields.next()) else {
                return Err(bad("expected: NODE_ID BASE64-SM2-PUBLIC-KEY".into()));
            };
            crate::context::config::check_node_id(id).map_err(|e| bad(e.to_string()))?;
            let key = Sm2Public::from_base64(key).map_err(|e| bad(e.to_string()))?;
            entries.push((id.to_string(), key));
        }
        Ok(Sm2Trust { entries })
    }

    /// The trust file; none yet is an empty trust (a node of before SM2).
    pub fn load(path: &Path) -> Result<Sm2Trust> {
        match std::fs::read_to_string(path) {
            Ok(text) => Sm2Trust::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Sm2Trust::default()),
            Err(e) => Err(e).at(path),
        }
    }

    /// One line of the file.
    pub fn line(id: &str, key: &Sm2Public) -> String {
        format!("{id} {}", key.to_base64())
    }

    /// Trust `key` for `id` (this node's own key, which the file may lack).
    pub fn add(&mut self, id: &str, key: &Sm2Public) {
        if !self.entries.iter().any(|(i, k)| i == id && k == key) {
            self.entries.push((id.to_string(), key.clone()));
        }
    }

    pub fn keys_of(&self, id: &str) -> Vec<&Sm2Public> {
        self.entries
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, k)| k)
            .collect()
    }

    /// Check `sig` over a payload whose signed hashes were computed for
    /// `keys_of(peer)`, in that order. When none verifies, the payload is read
    /// once more (refusals only) to say why: another trusted node's key, or
    /// the right key with OpenSSL's empty default id.
    pub fn check(
        &self,
        sig: &Signature,
        peer: &str,
        signed: &[[u8; 32]],
        payload: &Path,
    ) -> std::result::Result<Sm2Public, Sm2Error> {
        let keys = self.keys_of(peer);
        if keys.is_empty() {
            return Err(Sm2Error::NoKey(peer.to_string()));
        }
        let invalid = || Sm2Error::Invalid {
            peer: peer.to_string(),
            keys: keys
                .iter()
                .map(|k| k.fingerprint())
                .collect::<Vec<_>>()
                .join(", "),
        };
        for (key, e) in keys.iter().zip(signed) {
            if key.verifies(e, sig) {
                return Ok((*key).clone());
            }
        }
        let mut suspects: Vec<(Option<&str>, &Sm2Public, [u8; 32])> =
            keys.iter().map(|k| (None, *k, k.z_with(""))).collect();
        suspects.extend(
            self.entries
                .iter()
                .filter(|(i, k)| i != peer && !keys.contains(&k))
                .map(|(i, k)| (Some(i.as_str()), k, k.z)),
        );
        let size = std::fs::metadata(payload)
            .map(|m| m.len())
            .unwrap_or(u64::MAX);
        let affordable = (DIAGNOSE_BUDGET / size.max(1)) as usize;
        suspects.truncate(affordable);
        if suspects.is_empty() {
            return Err(invalid());
        }
        let z: Vec<[u8; 32]> = suspects.iter().map(|s| s.2).collect();
        if let Ok(d) = crate::wire::suite::digest_file(payload, crate::wire::suite::Suite::Sm2, &z)
        {
            for ((id, key, _), e) in suspects.iter().zip(&d.signed) {
                if key.verifies(e, sig) {
                    return Err(match id {
                        None => Sm2Error::EmptyId,
                        Some(signer) => Sm2Error::OtherSigner {
                            signer: signer.to_string(),
                            expected: peer.to_string(),
                        },
                    });
                }
            }
        }
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm2::dsa::signature::Signer;

    #[test]
    fn streamed_hash_matches_the_crates_own_signer() {
        // The crate signs whole messages with its own Z: ours must give the same e.
        let secret = SecretKey::random(&mut rand_core::OsRng);
        let key = Sm2Key::of(&secret).unwrap();
        let whole: Signature = SigningKey::new(DIST_ID, &secret).unwrap().sign(b"payload");
        let mut h =
            crate::wire::suite::Hashing::new(crate::wire::suite::Suite::Sm2, &[key.public().z()]);
        h.update(b"pay");
        h.update(b"load");
        let e = h.finish().signed[0];
        assert!(key.public().verifies(&e, &whole));
        let ours = parse_sig(&key.sign(&e).unwrap()).unwrap();
        assert!(VerifyingKey::new(DIST_ID, secret.public_key())
            .unwrap()
            .verify_prehash(&e, &ours)
            .is_ok());
        let mut other = e;
        other[0] ^= 1;
        assert!(!key.public().verifies(&other, &ours));
    }

    #[test]
    fn signatures_are_strict_der() {
        let secret = SecretKey::random(&mut rand_core::OsRng);
        let der = Sm2Key::of(&secret).unwrap().sign(&[1; 32]).unwrap();
        assert!(parse_sig(&der).is_ok());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(parse_sig(&trailing).is_err());
        assert!(parse_sig(b"-----BEGIN SSH SIGNATURE-----").is_err());
        assert!(parse_sig(&[]).is_err());
        // A non-minimal INTEGER (a needless leading zero) is not DER.
        let mut padded = vec![0x30, 0, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01];
        padded[1] = (padded.len() - 2) as u8;
        assert!(parse_sig(&padded).is_err());
    }

    #[test]
    fn trust_file_lines() {
        let secret = SecretKey::random(&mut rand_core::OsRng);
        let key = Sm2Key::of(&secret).unwrap();
        let text = format!("# comment\n{}\n", Sm2Trust::line("insp-1", key.public()));
        let t = Sm2Trust::parse(&text).unwrap();
        assert_eq!(t.keys_of("insp-1"), vec![key.public()]);
        assert!(t.keys_of("sup").is_empty());
        assert!(Sm2Trust::parse("insp-1").is_err());
        assert!(Sm2Trust::parse("insp-1 AAAA").is_err());
        assert!(Sm2Trust::parse("../x MFkw").is_err());
        let pem = key.public().to_pem();
        let read = PublicKey::from_public_key_pem(&pem).map(Sm2Public::new);
        assert_eq!(&read.unwrap(), key.public());
        assert!(key.public().fingerprint().starts_with("SM3:"));
    }
}
