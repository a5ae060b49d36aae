//! The two cryptographic suites a channel may use, and the streaming digests
//! of a payload that each needs, computed in one pass over the file.
//!
//! - `ed25519`: an OpenSSH signature (SSHSIG, Ed25519 over SHA-512) and a
//!   SHA-256 marker (`sha256sum`).
//! - `sm2`: the national algorithms (GB/T 39786-2021): an SM2 signature (GM/T
//!   0003) with SM3 (GM/T 0004) over the payload, as `openssl dgst -sm3 -sign`
//!   makes it, and an SM3 marker (`openssl dgst -sm3 -r`).
//!
//! Both peers of a channel agree on its suite in sedx.toml; a set in the other
//! suite is refused (SET-SUITE). Either way the store names a payload by its
//! SHA-256 (acknowledgments carry it): an identifier inside a signed document,
//! not what the set's integrity rests on.

use crate::context::error::{IoContext, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use sm3::Sm3;
use std::io::Read;
use std::path::Path;

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// SSHSIG (Ed25519), SHA-256 marker.
    #[default]
    Ed25519,
    /// SM2 signature with SM3, SM3 marker.
    Sm2,
}

impl Suite {
    pub const ALL: [Suite; 2] = [Suite::Ed25519, Suite::Sm2];

    pub fn as_str(self) -> &'static str {
        match self {
            Suite::Ed25519 => "ed25519",
            Suite::Sm2 => "sm2",
        }
    }

    /// For people: the signature and the marker's digest.
    pub fn describe(self) -> &'static str {
        match self {
            Suite::Ed25519 => "Ed25519 (SSHSIG) / SHA-256",
            Suite::Sm2 => "SM2 / SM3 (国密)",
        }
    }

    /// The marker's digest, as its file extension and `sha256sum`-style name.
    pub fn marker_digest(self) -> &'static str {
        match self {
            Suite::Ed25519 => "sha256",
            Suite::Sm2 => "sm3",
        }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Size and digests of a payload, computed in one streaming pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadDigest {
    pub size: u64,
    /// The payload's name in the store and in acknowledgments (both suites).
    pub sha256: [u8; 32],
    /// What SSHSIG signs (Ed25519 suite).
    pub sha512: Option<[u8; 64]>,
    /// The SM3 marker's digest (SM2 suite).
    pub sm3: Option<[u8; 32]>,
    /// SM3(Z || payload) for each SM2 key asked for, in order: what an SM2
    /// signature by that key signs (GM/T 0003: Z binds the signer's key and id).
    pub signed: Vec<[u8; 32]>,
}

impl PayloadDigest {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The digest a marker of `suite` carries, in hex.
    pub fn marker_hex(&self, suite: Suite) -> String {
        match suite {
            Suite::Ed25519 => self.sha256_hex(),
            Suite::Sm2 => self.sm3.map(hex::encode).unwrap_or_default(),
        }
    }
}

/// Streaming digests of a payload for one suite.
pub struct Hashing {
    size: u64,
    sha256: Sha256,
    sha512: Option<Sha512>,
    sm3: Option<Sm3>,
    signed: Vec<Sm3>,
}

impl Default for Hashing {
    fn default() -> Self {
        Hashing::new(Suite::Ed25519, &[])
    }
}

impl Hashing {
    /// `z`: the SM2 identity hashes of the keys whose signature is to be made or
    /// checked (SM2 suite only).
    pub fn new(suite: Suite, z: &[[u8; 32]]) -> Hashing {
        let sm2 = suite == Suite::Sm2;
        Hashing {
            size: 0,
            sha256: Sha256::new(),
            sha512: (!sm2).then(Sha512::new),
            sm3: sm2.then(Sm3::new),
            signed: if sm2 {
                z.iter().map(Sm3::new_with_prefix).collect()
            } else {
                Vec::new()
            },
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        self.sha256.update(data);
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
        if let Some(h) = &mut self.sm3 {
            h.update(data);
        }
        for h in &mut self.signed {
            h.update(data);
        }
    }

    pub fn finish(self) -> PayloadDigest {
        PayloadDigest {
            size: self.size,
            sha256: self.sha256.finalize().into(),
            sha512: self.sha512.map(|h| h.finalize().into()),
            sm3: self.sm3.map(|h| h.finalize().into()),
            signed: self
                .signed
                .into_iter()
                .map(|h| h.finalize().into())
                .collect(),
        }
    }
}

pub const CHUNK: usize = 1 << 20;

/// Feed a file to `each` a chunk at a time, without loading it.
fn for_each_chunk(path: &Path, mut each: impl FnMut(&[u8])) -> Result<()> {
    // Never through a link: a set's files are read only if they are regular.
    let mut f = crate::context::files::open_regular(path)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).at(path)?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n]);
    }
}

/// Hash a file for `suite` without loading it (`z` as for [`Hashing::new`]).
pub fn digest_file(path: &Path, suite: Suite, z: &[[u8; 32]]) -> Result<PayloadDigest> {
    let mut h = Hashing::new(suite, z);
    for_each_chunk(path, |chunk| h.update(chunk))?;
    Ok(h.finish())
}

/// The SHA-256 of a file, in hex (names a dropped file's content).
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for_each_chunk(path, |chunk| h.update(chunk))?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_gives_each_suite_its_digests() {
        let mut h = Hashing::new(Suite::Sm2, &[[7; 32]]);
        h.update(b"pay");
        h.update(b"load");
        let d = h.finish();
        assert_eq!(d.size, 7);
        assert_eq!(d.sha256, <[u8; 32]>::from(Sha256::digest(b"payload")));
        assert_eq!(d.sm3, Some(<[u8; 32]>::from(Sm3::digest(b"payload"))));
        let mut zm = [7u8; 32].to_vec();
        zm.extend_from_slice(b"payload");
        assert_eq!(d.signed, vec![<[u8; 32]>::from(Sm3::digest(&zm))]);
        assert_eq!(d.sha512, None);
        // GM/T 0004's example: SM3("abc").
        assert_eq!(
            hex::encode(Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        let e = Hashing::default();
        assert!(e.sha512.is_some() && e.sm3.is_none());
        use clap::ValueEnum;
        assert_eq!(Suite::from_str("sm2", false), Ok(Suite::Sm2));
        assert!(Suite::from_str("SM2", false).is_err());
        for s in Suite::ALL {
            assert_eq!(
                Suite::from_str(s.as_str(), false),
                Ok(s),
                "one name for {s:?}"
            );
        }
    }
}
