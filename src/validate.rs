//! Validate: expand a payload with a cap on its size, refuse DTDs, and check the
//! document against the XSD with libxml2.

use crate::document::{self, DocKind, Scan};
use crate::error::{Code, Error, IoContext, Reject, Result};
use flate2::bufread::MultiGzDecoder;
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub const BATCH_XSD: &str = include_str!("../xsd/batch.xsd");
pub const ACK_XSD: &str = include_str!("../xsd/ack.xsd");

/// Decompress `gz` into `out`, refusing more than `cap` bytes of output. A
/// truncated or corrupt stream is refused, not half-read.
pub fn expand(gz: &Path, out: &Path, cap: u64) -> Result<u64> {
    if std::fs::metadata(gz).at(gz)?.len() == 0 {
        return Err(Reject::new(Code::SetGzip, "payload is empty").into());
    }
    let input = BufReader::with_capacity(1 << 20, File::open(gz).at(gz)?);
    let mut dec = MultiGzDecoder::new(input).take(cap + 1);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out).at(out)?);
    let n = std::io::copy(&mut dec, &mut w).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput
        | std::io::ErrorKind::InvalidData
        | std::io::ErrorKind::UnexpectedEof => Error::Rejected(Reject::new(
            Code::SetGzip,
            format!("payload is not a complete gzip stream: {e}"),
        )),
        _ => Error::Io {
            path: gz.to_path_buf(),
            source: e,
        },
    })?;
    w.flush().at(out)?;
    if n > cap {
        return Err(Reject::new(
            Code::SetTooLarge,
            format!("payload expands beyond the limit of {cap} bytes"),
        )
        .into());
    }
    Ok(n)
}

/// Compiled schemas, built once per process.
pub struct Schemas {
    batch: SchemaValidationContext,
    ack: SchemaValidationContext,
}

fn compile(xsd: &str) -> Result<SchemaValidationContext> {
    let mut parser = SchemaParserContext::from_buffer(xsd);
    SchemaValidationContext::from_parser(&mut parser).map_err(|errs| {
        Error::Other(format!(
            "built-in XSD does not compile: {}",
            errs.iter()
                .filter_map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

impl Schemas {
    pub fn new() -> Result<Schemas> {
        Ok(Schemas {
            batch: compile(BATCH_XSD)?,
            ack: compile(ACK_XSD)?,
        })
    }

    /// Check a plain XML file: a first streaming pass refuses a DOCTYPE or
    /// malformed XML (quick-xml never expands entities), then libxml2 validates.
    pub fn check(&mut self, path: &Path, expect: DocKind) -> Result<Scan> {
        let scan = scan_file(path, expect)?;
        self.validate(path, expect)?;
        Ok(scan)
    }

    /// XSD validation of a file that has passed [`scan_file`].
    pub fn validate(&mut self, path: &Path, kind: DocKind) -> Result<()> {
        let ctx = match kind {
            DocKind::Batch => &mut self.batch,
            DocKind::Ack => &mut self.ack,
        };
        let path_str = path
            .to_str()
            .filter(|s| !s.contains('\0'))
            .ok_or_else(|| Error::Other(format!("{} is not a usable path", path.display())))?;
        ctx.validate_file(path_str).map_err(|errs| {
            let first = errs.first();
            let detail = match first {
                Some(e) => format!(
                    "line {}, column {}: {}",
                    e.line.unwrap_or(0),
                    e.col.unwrap_or(0),
                    e.message.as_deref().unwrap_or("invalid").trim()
                ),
                None => "invalid against the XSD".to_string(),
            };
            let more = if errs.len() > 1 {
                format!(" (and {} more)", errs.len() - 1)
            } else {
                String::new()
            };
            Error::Rejected(Reject::new(Code::XmlSchema, format!("{detail}{more}")))
        })
    }
}

/// The root element of a file, read from its start only: refuses a DOCTYPE (the
/// prolog is the only place one may stand) and a root of another kind. The rest
/// is checked by [`Validator::submit`] while the records are read.
pub fn peek_root_file(path: &Path, expect: DocKind) -> Result<document::Root> {
    let f = File::open(path).at(path)?;
    let root = document::peek_root(BufReader::with_capacity(1 << 16, f))?;
    of_kind(&root, expect)?;
    Ok(root)
}

/// A document whose root is not of the expected kind is refused.
fn of_kind(root: &document::Root, expect: DocKind) -> Result<()> {
    if root.kind == expect {
        return Ok(());
    }
    Err(Reject::new(
        Code::XmlSchema,
        format!(
            "expected a <{}> document, found <{}>",
            expect.root(),
            root.kind.root()
        ),
    )
    .into())
}

/// Whether a refusal came from reading the document itself (not from the XSD).
fn is_unreadable(rej: &Reject) -> bool {
    matches!(rej.code, Code::XmlMalformed | Code::XmlDoctype)
}

/// The streaming pre-pass: no DOCTYPE, well-formed, root of the expected kind.
pub fn scan_file(path: &Path, expect: DocKind) -> Result<Scan> {
    let f = File::open(path).at(path)?;
    let scan = document::scan(BufReader::with_capacity(1 << 16, f))?;
    of_kind(&scan.root, expect)?;
    Ok(scan)
}

/// XSD validation on a thread of its own, so that libxml2 checks a batch while
/// the records of the same batch are applied (both cores at work). The libxml2
/// contexts are made on that thread and never leave it (they are not `Send`).
pub struct Validator {
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

struct Job {
    path: PathBuf,
    kind: DocKind,
    reply: mpsc::SyncSender<(Result<Scan>, Duration)>,
    /// Set when the caller no longer wants the answer (a set held for later, a
    /// duplicate): a job not started by then is skipped.
    dropped: Arc<AtomicBool>,
}

/// A check under way; [`Pending::wait`] gives its outcome.
pub struct Pending {
    answer: mpsc::Receiver<(Result<Scan>, Duration)>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::Relaxed);
    }
}

impl Pending {
    pub fn wait(self) -> Result<Scan> {
        self.wait_timed().0
    }

    /// The outcome and the time the check took on its thread.
    pub fn wait_timed(self) -> (Result<Scan>, Duration) {
        self.answer.recv().unwrap_or_else(|_| {
            (
                Err(Error::Other("the XSD validator stopped".into())),
                Duration::ZERO,
            )
        })
    }
}

/// A check running alongside the work on its document (sifting a drop, applying
/// a batch): the work asks for its outcome before committing, and a refusal the
/// work meets on its own gives way to the check's, which says more (line, column).
pub struct Alongside {
    pending: Option<Pending>,
    spent: Duration,
}

impl Alongside {
    pub fn new(pending: Pending) -> Alongside {
        Alongside {
            pending: Some(pending),
            spent: Duration::ZERO,
        }
    }

    /// Wait for the check; None once it has been waited for.
    pub fn outcome(&mut self) -> Option<Result<Scan>> {
        let (outcome, spent) = self.pending.take()?.wait_timed();
        self.spent = spent;
        Some(outcome)
    }

    /// The work's result, unless the work was refused before asking and the
    /// check failed too: then the check's failure.
    pub fn settle<T>(&mut self, done: Result<T>) -> Result<T> {
        match done {
            Err(Error::Rejected(rej)) => match self.outcome() {
                Some(Err(e)) => Err(e),
                _ => Err(rej.into()),
            },
            done => done,
        }
    }

    /// A refusal before the work: a document that cannot be read at all is
    /// refused as such first, as when the whole document was read before the rest.
    pub fn first_refusal(&mut self, rej: Reject) -> Reject {
        match self.outcome() {
            Some(Err(Error::Rejected(unreadable))) if is_unreadable(&unreadable) => unreadable,
            _ => rej,
        }
    }

    /// The time the check took on its thread.
    pub fn spent(&self) -> Duration {
        self.spent
    }
}

impl Validator {
    pub fn start() -> Result<Validator> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel::<Result<()>>(1);
        let worker = std::thread::Builder::new()
            .name("sedx-xsd".into())
            .spawn(move || {
                let mut schemas = match Schemas::new() {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in rx {
                    if job.dropped.load(Ordering::Relaxed) {
                        continue;
                    }
                    // The caller may yet go (its batch failed otherwise): fine.
                    let started = std::time::Instant::now();
                    let outcome = schemas.check(&job.path, job.kind);
                    let _ = job.reply.send((outcome, started.elapsed()));
                }
            })
            .map_err(|e| Error::Other(format!("cannot start the XSD validator: {e}")))?;
        ready
            .recv()
            .unwrap_or_else(|_| Err(Error::Other("the XSD validator did not start".into())))?;
        Ok(Validator {
            jobs: Some(jobs),
            worker: Some(worker),
        })
    }

    /// Start checking a file on the validator's thread: the streaming pre-pass
    /// ([`scan_file`]: no DOCTYPE, well-formed, counted), then the XSD.
    pub fn submit(&self, path: &Path, kind: DocKind) -> Pending {
        let (reply, answer) = mpsc::sync_channel(1);
        let dropped = Arc::new(AtomicBool::new(false));
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job {
                path: path.to_path_buf(),
                kind,
                reply,
                dropped: dropped.clone(),
            });
        }
        Pending { answer, dropped }
    }

    /// [`Validator::submit`] and wait.
    pub fn check(&self, path: &Path, kind: DocKind) -> Result<Scan> {
        self.submit(path, kind).wait()
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
