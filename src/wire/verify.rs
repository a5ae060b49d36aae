//! Verify: a received set's suite, size and digest against its marker, and its
//! signature against the trusted keys with the peer it arrived from as signer.

use crate::context::error::{Code, Reject};
use crate::wire::document::DocKind;
use crate::wire::set::{self, Marker, SetName};
use crate::wire::sm2sig::{self, Sm2Error, Sm2Trust};
use crate::wire::sshsig::{AllowedSigners, ParsedSig, SigError};
use crate::wire::suite::{self, PayloadDigest, Suite};
use crate::wire::validate::{self, ExpandLimits};
use std::path::Path;

/// The keys a node trusts, by node id: OpenSSH allowed_signers (Ed25519 suite)
/// and the SM2 trust file.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub ssh: AllowedSigners,
    pub sm2: Sm2Trust,
}

/// A set whose bytes are those its trusted sender signed.
#[derive(Debug)]
pub struct Verified {
    pub digest: PayloadDigest,
    /// Batch or acknowledgment: from the signature's namespace (SSHSIG), or the
    /// signed document's root (SM2, whose signature covers the payload only).
    pub kind: DocKind,
    /// Fingerprint of the signing key.
    pub signer: String,
    pub suite: Suite,
}

/// The suite a set in `dir` is marked in: exactly one marker, in `expect`
/// when given (the channel's suite).
pub fn suite_of(
    dir: &Path,
    name: &SetName,
    peer: &str,
    expect: Option<Suite>,
) -> Result<Suite, Reject> {
    let marked = name.marked(dir);
    let suite = match marked[..] {
        [one] => one,
        [] => {
            return Err(Reject::new(
                Code::SetMarker,
                format!("no marker for {}", name.payload_file()),
            ))
        }
        _ => {
            return Err(Reject::new(
                Code::SetSuite,
                format!(
                    "两种套件的标记并存 / {} has markers of two suites ({} and {}); a set has one",
                    name.payload_file(),
                    name.marker_file(Suite::Ed25519),
                    name.marker_file(Suite::Sm2)
                ),
            ))
        }
    };
    match expect {
        Some(channel) if channel != suite => Err(Reject::new(
            Code::SetSuite,
            format!(
                "密码套件与通道不符，双方须设置相同的 suite / set is sealed with {} ({}), but the channel with {peer} uses {} (sedx.toml [[peer]] suite = \"{}\"); both sides must set the same suite",
                suite.describe(),
                name.marker_file(suite),
                channel.describe(),
                channel.as_str()
            ),
        )),
        _ => Ok(suite),
    }
}

/// Verify set `name` in `dir` as signed by `peer`, in the suite `expect` (the
/// channel's) or, when None, in the suite it is marked in. `limits` bound the
/// peek at an SM2 set's root (its kind).
pub fn verify_set(
    dir: &Path,
    name: &SetName,
    peer: &str,
    trust: &Trust,
    expect: Option<Suite>,
    max_payload: u64,
    limits: ExpandLimits,
) -> Result<Verified, Reject> {
    let suite = suite_of(dir, name, peer, expect)?;
    let marker = Marker::parse(&set::read_small(
        &name.marker(dir, suite),
        set::SMALL_FILE_MAX,
    )?)?;
    if marker.file != name.payload_file() {
        return Err(Reject::new(
            Code::SetMarker,
            format!(
                "marker names {:?}, not {:?}",
                marker.file,
                name.payload_file()
            ),
        ));
    }
    let payload = name.payload(dir);
    let meta = std::fs::symlink_metadata(&payload).map_err(|_| {
        Reject::new(
            Code::SetMarker,
            format!("marker present but {} is missing", name.payload_file()),
        )
    })?;
    if !meta.is_file() {
        return Err(Reject::new(
            Code::SetName,
            format!("{} is not a regular file", name.payload_file()),
        ));
    }
    if meta.len() > max_payload {
        return Err(Reject::new(
            Code::SetTooLarge,
            format!("payload is {} bytes (limit {max_payload})", meta.len()),
        ));
    }
    let sig_bytes = set::read_small(&name.sig(dir), set::SMALL_FILE_MAX).map_err(|r| {
        // A link or special file stays SET-NAME; anything else is the signature's.
        let code = if r.code == Code::SetName {
            Code::SetName
        } else {
            Code::SetSignature
        };
        Reject::new(code, format!("signature: {}", r.detail))
    })?;
    let hash = |z: &[[u8; 32]]| {
        suite::digest_file(&payload, suite, z).map_err(|e| match e {
            crate::context::error::Error::Rejected(r) => r,
            // The cause without the local path: this text may go to the peer.
            crate::context::error::Error::Io { source, .. } => Reject::new(
                Code::SetMarker,
                format!("reading {}: {source}", name.payload_file()),
            ),
            e => Reject::new(Code::SetMarker, format!("reading payload: {e}")),
        })
    };
    let checksum = |digest: &PayloadDigest| {
        let got = digest.marker_hex(suite);
        if got == marker.hex {
            Ok(())
        } else {
            Err(Reject::new(
                Code::SetChecksum,
                format!(
                    "{} of payload is {got}, marker says {}",
                    suite.marker_digest().to_uppercase(),
                    marker.hex
                ),
            ))
        }
    };
    match suite {
        Suite::Ed25519 => {
            let sig = ParsedSig::parse(&sig_bytes)
                .map_err(|e| Reject::new(Code::SetSignature, e.to_string()))?;
            let kind = DocKind::from_sig_namespace(sig.namespace()).ok_or_else(|| {
                Reject::new(
                    Code::SetSignature,
                    format!(
                        "signature namespace {:?} is neither sedx-batch nor sedx-ack",
                        sig.namespace()
                    ),
                )
            })?;
            let digest = hash(&[])?;
            checksum(&digest)?;
            trust
                .ssh
                .check(&sig, peer, sig.namespace(), &digest)
                .map_err(|e| match e {
                    SigError::WrongPrincipal { .. } => Reject::new(Code::SetSigner, e.to_string()),
                    _ => Reject::new(Code::SetSignature, e.to_string()),
                })?;
            Ok(Verified {
                digest,
                kind,
                signer: sig.fingerprint(),
                suite,
            })
        }
        Suite::Sm2 => {
            let sig = sm2sig::parse_sig(&sig_bytes)
                .map_err(|e| Reject::new(Code::SetSignature, e.to_string()))?;
            let keys = trust.sm2.keys_of(peer);
            if keys.is_empty() {
                return Err(Reject::new(
                    Code::SetSignature,
                    Sm2Error::NoKey(peer.to_string()).to_string(),
                ));
            }
            let z: Vec<[u8; 32]> = keys.iter().map(|k| k.z()).collect();
            let digest = hash(&z)?;
            checksum(&digest)?;
            let key = trust
                .sm2
                .check(&sig, peer, &digest.signed, &payload)
                .map_err(|e| match e {
                    Sm2Error::OtherSigner { .. } => Reject::new(Code::SetSigner, e.to_string()),
                    _ => Reject::new(Code::SetSignature, e.to_string()),
                })?;
            // Authentic: its kind is what its signed document says it is. One
            // the peek cannot read is taken as a batch, and refused as such
            // (with an answer) when it is read in full.
            let kind = validate::peek_kind(&payload, limits).unwrap_or(DocKind::Batch);
            Ok(Verified {
                digest,
                kind,
                signer: key.fingerprint(),
                suite,
            })
        }
    }
}
