//! Verify: a received set's size and SHA-256 against its marker, and its
//! signature against allowed_signers with the peer it arrived from as signer.

use crate::context::error::{Code, Reject};
use crate::wire::document::DocKind;
use crate::wire::set::{self, Marker, SetName};
use crate::wire::sshsig::{self, AllowedSigners, ParsedSig, PayloadDigest, SigError};
use std::path::Path;

/// A set whose bytes are those its trusted sender signed.
#[derive(Debug)]
pub struct Verified {
    pub digest: PayloadDigest,
    /// Batch or acknowledgment, from the signature's namespace.
    pub kind: DocKind,
    /// Fingerprint of the signing key.
    pub signer: String,
}

/// Verify set `name` in `dir` as signed by `peer`.
pub fn verify_set(
    dir: &Path,
    name: &SetName,
    peer: &str,
    signers: &AllowedSigners,
    max_payload: u64,
) -> Result<Verified, Reject> {
    let marker = Marker::parse(&set::read_small(&name.marker(dir), set::SMALL_FILE_MAX)?)?;
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
    let sig =
        ParsedSig::parse(&sig_bytes).map_err(|e| Reject::new(Code::SetSignature, e.to_string()))?;
    let kind = DocKind::from_sig_namespace(sig.namespace()).ok_or_else(|| {
        Reject::new(
            Code::SetSignature,
            format!(
                "signature namespace {:?} is neither sedx-batch nor sedx-ack",
                sig.namespace()
            ),
        )
    })?;
    let digest = sshsig::digest_file(&payload).map_err(|e| match e {
        crate::context::error::Error::Rejected(r) => r,
        // The cause without the local path: this text may go to the peer.
        crate::context::error::Error::Io { source, .. } => Reject::new(
            Code::SetMarker,
            format!("reading {}: {source}", name.payload_file()),
        ),
        e => Reject::new(Code::SetMarker, format!("reading payload: {e}")),
    })?;
    if digest.sha256_hex() != marker.sha256_hex {
        return Err(Reject::new(
            Code::SetChecksum,
            format!(
                "SHA-256 of payload is {}, marker says {}",
                digest.sha256_hex(),
                marker.sha256_hex
            ),
        ));
    }
    signers
        .check(&sig, peer, sig.namespace(), &digest)
        .map_err(|e| match e {
            SigError::WrongPrincipal { .. } => Reject::new(Code::SetSigner, e.to_string()),
            _ => Reject::new(Code::SetSignature, e.to_string()),
        })?;
    Ok(Verified {
        digest,
        kind,
        signer: sig.fingerprint(),
    })
}
