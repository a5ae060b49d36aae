//! Library errors. A `Reject` is a verdict about a set or document (it goes into a
//! reason file and a negative acknowledgment); an `Error` is the node failing to work.

use std::fmt;
use std::path::PathBuf;

/// Stable reason codes carried in reason files and acknowledgments (docs/reason-codes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The set's file name is unsafe or not a regular file.
    SetName,
    /// The .sha256 marker is malformed or names another file.
    SetMarker,
    /// Size or digest (SHA-256 or SM3) of the payload differs from the marker.
    SetChecksum,
    /// The signature is malformed, of another namespace, by an unknown key, or does not verify.
    SetSignature,
    /// The signing key is trusted, but not for the sender of this set.
    SetSigner,
    /// The set is sealed in another suite (Ed25519 / SM2) than its channel's.
    SetSuite,
    /// The payload is not a complete gzip stream.
    SetGzip,
    /// The payload or its expansion exceeds the node's limits.
    SetTooLarge,
    /// The set failed or crashed the node several times while being processed.
    SetPoison,
    /// The document carries a DOCTYPE (no DTDs or entities, ever).
    XmlDoctype,
    /// The document's encoding is not one sedx reads, or its bytes are invalid in it.
    XmlEncoding,
    /// A text, attribute, name or comment is longer than the limits allow.
    XmlLimit,
    /// The document is not well-formed XML.
    XmlMalformed,
    /// The document is not valid against the XSD.
    XmlSchema,
    /// Header says another sender than the peer it arrived from.
    BatchSender,
    /// Header says another receiver than this node.
    BatchReceiver,
    /// Header lacks a field the wire format requires.
    BatchHeader,
    /// Sequence number already used by another batch (replay).
    BatchSequence,
    /// The record count in the header differs from the records present.
    BatchCount,
    /// A batch id already received with other content, or from another peer.
    BatchConflict,
    /// An acknowledgment for a batch that was sent to another peer.
    AckPeer,
    /// An acknowledgment naming another payload than the one sent.
    AckHash,
    /// A record's registration code is malformed.
    RecRegistrationCode,
    /// An organization code has a wrong check character.
    RecOrgCode,
    /// A unified social credit code is malformed or disagrees with the organization code.
    RecCreditCode,
    /// A mandatory field is missing or a value is out of its domain.
    RecField,
    /// The same record key appears twice in one batch.
    RecDuplicate,
    /// Sent by the side that does not own this kind of record (R4).
    RecOwner,
    /// A non-statutory inspection report (R15).
    RecNonStatutory,
    /// An inspection report not yet approved, or a request without the superior's approval.
    RecUnapproved,
    /// The record's category is not exchanged yet (R9).
    RecRollout,
    /// A report about equipment neither in the batch nor on record (R10).
    RecNoEquipment,
    /// The agency is neither responsible nor temporarily granted (R12, R13).
    RecResponsibility,
    /// The record has no peer to go to (no responsible agency among the peers).
    RecRoute,
}

impl Code {
    pub const ALL: [Code; 34] = [
        Code::SetName,
        Code::SetMarker,
        Code::SetChecksum,
        Code::SetSignature,
        Code::SetSigner,
        Code::SetSuite,
        Code::SetGzip,
        Code::SetTooLarge,
        Code::SetPoison,
        Code::XmlDoctype,
        Code::XmlEncoding,
        Code::XmlLimit,
        Code::XmlMalformed,
        Code::XmlSchema,
        Code::BatchSender,
        Code::BatchReceiver,
        Code::BatchHeader,
        Code::BatchSequence,
        Code::BatchCount,
        Code::BatchConflict,
        Code::AckPeer,
        Code::AckHash,
        Code::RecRegistrationCode,
        Code::RecOrgCode,
        Code::RecCreditCode,
        Code::RecField,
        Code::RecDuplicate,
        Code::RecOwner,
        Code::RecNonStatutory,
        Code::RecUnapproved,
        Code::RecRollout,
        Code::RecNoEquipment,
        Code::RecResponsibility,
        Code::RecRoute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::SetName => "SET-NAME",
            Code::SetMarker => "SET-MARKER",
            Code::SetChecksum => "SET-CHECKSUM",
            Code::SetSignature => "SET-SIGNATURE",
            Code::SetSigner => "SET-SIGNER",
            Code::SetSuite => "SET-SUITE",
            Code::SetGzip => "SET-GZIP",
            Code::SetTooLarge => "SET-TOO-LARGE",
            Code::SetPoison => "SET-POISON",
            Code::XmlDoctype => "XML-DOCTYPE",
            Code::XmlEncoding => "XML-ENCODING",
            Code::XmlLimit => "XML-LIMIT",
            Code::XmlMalformed => "XML-MALFORMED",
            Code::XmlSchema => "XML-SCHEMA",
            Code::BatchSender => "BATCH-SENDER",
            Code::BatchReceiver => "BATCH-RECEIVER",
            Code::BatchHeader => "BATCH-HEADER",
            Code::BatchSequence => "BATCH-SEQUENCE",
            Code::BatchCount => "BATCH-COUNT",
            Code::BatchConflict => "BATCH-CONFLICT",
            Code::AckPeer => "ACK-PEER",
            Code::AckHash => "ACK-HASH",
            Code::RecRegistrationCode => "REC-REGCODE",
            Code::RecOrgCode => "REC-ORGCODE",
            Code::RecCreditCode => "REC-CREDITCODE",
            Code::RecField => "REC-FIELD",
            Code::RecDuplicate => "REC-DUPLICATE",
            Code::RecOwner => "REC-OWNER",
            Code::RecNonStatutory => "REC-NONSTATUTORY",
            Code::RecUnapproved => "REC-UNAPPROVED",
            Code::RecRollout => "REC-ROLLOUT",
            Code::RecNoEquipment => "REC-NOEQUIPMENT",
            Code::RecResponsibility => "REC-RESPONSIBILITY",
            Code::RecRoute => "REC-ROUTE",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a set or document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Reject {
    pub code: Code,
    pub detail: String,
}

impl Reject {
    /// The detail often quotes what a peer sent: it is made printable here, once,
    /// for every place it goes (logs, reason files, acknowledgments, status).
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let detail = match crate::context::text::printable(&detail, 2000) {
            std::borrow::Cow::Borrowed(_) => detail,
            std::borrow::Cow::Owned(clean) => clean,
        };
        Reject { code, detail }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("store (PostgreSQL): {}", pg_detail(.0))]
    Postgres(#[from] postgres::Error),
    #[error("key: {0}")]
    Key(String),
    #[error("transport to {peer}: {detail}")]
    Transport { peer: String, detail: String },
    #[error("host key of {peer} refused: {detail}")]
    HostKey { peer: String, detail: String },
    #[error(transparent)]
    Rejected(#[from] Reject),
    /// Another sedx process holds the node (a state-changing command is running).
    #[error("节点正被另一个 sedx 进程使用 / the node is in use by another sedx process ({holder}); stop it first (systemctl stop sedx), or pass --wait to wait for it")]
    Busy { holder: String },
    /// The store is missing, empty, damaged or of another node.
    #[error("节点存储不可用 / store {}: {detail}", path.display())]
    StoreDamaged { path: PathBuf, detail: String },
    /// The store was made or upgraded by a newer sedx.
    #[error("节点存储版本 {found} 高于本程序支持的 {known} / the store has schema version {found}, this sedx knows up to {known}: run the newer sedx that upgraded it")]
    StoreNewer { found: u32, known: u32 },
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// A failure of the machine (a full disk, a busy or read-only store, a peer
    /// out of reach), not of the item being worked on: it does not count
    /// against the item.
    pub fn is_environmental(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Error::Io { source, .. } => matches!(
                source.kind(),
                K::StorageFull
                    | K::QuotaExceeded
                    | K::ReadOnlyFilesystem
                    | K::PermissionDenied
                    | K::Interrupted
                    | K::WouldBlock
            ),
            Error::Store(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::SystemIoFailure
            ),
            // The server gone, the connection cut: the machine's trouble, not the data's.
            Error::Postgres(e) => e.is_closed() || e.code().is_none(),
            Error::Transport { .. } | Error::HostKey { .. } | Error::Busy { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an I/O error.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

/// A PostgreSQL error with what the server said (the driver's own text is
/// just "db error").
fn pg_detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn every_code_is_documented_and_listed_once() {
        let doc = include_str!("../../docs/reason-codes.md");
        for (i, code) in Code::ALL.iter().enumerate() {
            assert!(
                doc.contains(&format!("`{}`", code.as_str())),
                "{code} missing from docs/reason-codes.md"
            );
            assert!(!Code::ALL[..i].contains(code), "{code} listed twice");
        }
    }
}
