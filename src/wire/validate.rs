//! Validate: expand a payload with a cap on its size, refuse DTDs, and check the
//! document against the XSD with libxml2.

use crate::context::error::{Code, Error, IoContext, Reject, Result};
use crate::domain::RecordKind;
use crate::wire::document::{self, DocKind, Scan};
use flate2::bufread::MultiGzDecoder;
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub const BATCH_XSD: &str = include_str!("../../xsd/batch.xsd");
pub const ACK_XSD: &str = include_str!("../../xsd/ack.xsd");

/// The bounds on expanding a payload.
#[derive(Debug, Clone, Copy)]
pub struct ExpandLimits {
    /// Largest expanded document, in bytes.
    pub max_bytes: u64,
    /// Largest ratio of expanded to compressed bytes, checked once a mebibyte
    /// has come out: real batches expand 5-20 times, a gzip bomb a thousand.
    pub max_ratio: u64,
    pub doc: crate::wire::decode::Limits,
}

/// Counts the compressed bytes consumed, for the expansion ratio.
struct Counting<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Refuses to give out more than `ratio` times the compressed bytes read.
struct RatioGuard<R> {
    inner: R,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
    out: u64,
    ratio: u64,
    tripped: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > 1 << 20 && self.out / self.ratio.max(1) > self.compressed.get() {
            self.tripped.set(true);
            return Err(std::io::Error::other("expansion ratio exceeded"));
        }
        Ok(n)
    }
}

/// Decompress `gz` into `out` as one UTF-8 document ([`crate::wire::decode`]),
/// refusing more than the limits allow while it streams: the expanded size, the
/// expansion ratio, and the size of every piece of the document. A truncated or
/// corrupt stream is refused, not half-read.
pub fn expand(gz: &Path, out: &Path, limits: ExpandLimits) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, crate::context::files::create_private(out)?);
    let n = expand_into(gz, &mut w, limits)?;
    w.flush().at(out)?;
    Ok(n)
}

/// [`expand`] into any writer.
fn expand_into(gz: &Path, w: &mut impl Write, limits: ExpandLimits) -> Result<u64> {
    let file = crate::context::files::open_regular(gz)?;
    if file.metadata().at(gz)?.len() == 0 {
        return Err(Reject::new(Code::SetGzip, "payload is empty").into());
    }
    let compressed = std::rc::Rc::new(std::cell::Cell::new(0));
    let tripped = std::rc::Rc::new(std::cell::Cell::new(false));
    let input = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            read: compressed.clone(),
        },
    );
    let dec = RatioGuard {
        inner: MultiGzDecoder::new(input),
        compressed,
        out: 0,
        ratio: limits.max_ratio,
        tripped: tripped.clone(),
    };
    let done = crate::wire::decode::normalize(
        BufReader::with_capacity(1 << 16, dec),
        w,
        limits.doc,
        limits.max_bytes,
        gz,
    );
    if tripped.get() {
        return Err(Reject::new(
            Code::SetTooLarge,
            format!(
                "payload expands more than {} times its size (a compression bomb)",
                limits.max_ratio
            ),
        )
        .into());
    }
    Ok(done?.bytes)
}

/// How much of a document is expanded to read only its start (its root and
/// header): more than the decoder's first piece (its 4 KiB prolog and a 64 KiB
/// read), which is written whole or not at all.
pub const HEAD_BYTES: u64 = 256 << 10;

/// The kind of document a payload holds, from its root element: the start of
/// the payload ([`HEAD_BYTES`] expanded) through the same decoder as a full
/// expansion, so that the kind is the one the XSD check will see. None when
/// that start is not a readable root.
pub fn peek_kind(gz: &Path, limits: ExpandLimits) -> Option<DocKind> {
    let mut head = Vec::new();
    let limits = ExpandLimits {
        max_bytes: HEAD_BYTES,
        ..limits
    };
    // Stopping at the cap is expected: the root is in what came before.
    let _ = expand_into(gz, &mut head, limits);
    document::peek_root(&head[..]).ok().map(|r| r.kind)
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

/// libxml2 never loads anything from outside the document it is given: no DTD,
/// no external entity, nothing over the network, whatever a document or a
/// default option asks (the decoder refuses a DOCTYPE before libxml2 sees a
/// document; this holds even if one got through).
unsafe extern "C" fn refuse_external(
    _: *const std::ffi::c_char,
    _: *const std::ffi::c_char,
    _: libxml::bindings::xmlParserCtxtPtr,
) -> libxml::bindings::xmlParserInputPtr {
    std::ptr::null_mut()
}

impl Schemas {
    pub fn new() -> Result<Schemas> {
        static LOADER: std::sync::Once = std::sync::Once::new();
        // SAFETY: sets libxml2's process-wide loader once, before any parse of ours.
        LOADER.call_once(|| unsafe {
            libxml::bindings::xmlSetExternalEntityLoader(Some(refuse_external))
        });
        Ok(Schemas {
            batch: compile(BATCH_XSD)?,
            ack: compile(ACK_XSD)?,
        })
    }

    /// Check a plain XML file in one pass of libxml2 (the root's kind first, from
    /// its start): well-formed, valid against the XSD, its records counted.
    /// The file comes from [`crate::wire::decode`], which has refused any DOCTYPE,
    /// other encoding or over-long piece before a parser saw it.
    pub fn check(&mut self, path: &Path, expect: DocKind) -> Result<Scan> {
        let root = peek_root_file(path, expect)?;
        let records = self.validate(path, expect)?;
        Ok(Scan { root, records })
    }

    /// XSD validation of a file; the number of record elements under its root.
    /// libxml2 streams it through its SAX parser with the schema plugged in (no
    /// tree is built): it loads no DTD and substitutes no entity, its external
    /// loader refuses everything ([`refuse_external`]), and the file comes from
    /// [`crate::wire::decode`], which has refused any DOCTYPE, so no entity can
    /// be declared; a DOCTYPE that got this far would still be refused. A document that is not well-formed is
    /// refused as XML-MALFORMED (libxml2's parser errors), an invalid one as
    /// XML-SCHEMA.
    pub fn validate(&mut self, path: &Path, kind: DocKind) -> Result<u64> {
        use libxml::bindings as xml;
        use std::ffi::{c_void, CString};
        let ctx = match kind {
            DocKind::Batch => &mut self.batch,
            DocKind::Ack => &mut self.ack,
        };
        let c_path = path
            .to_str()
            .and_then(|s| CString::new(s).ok())
            .ok_or_else(|| Error::Other(format!("{} is not a usable path", path.display())))?;
        let mut errors = Errors::default();
        let mut seen = Seen::default();
        let outcome = unsafe {
            let input = xml::xmlParserInputBufferCreateFilename(
                c_path.as_ptr(),
                xml::xmlCharEncoding_XML_CHAR_ENCODING_UTF8,
            );
            if input.is_null() {
                return Err(Error::Other(format!(
                    "libxml2 cannot open {}",
                    path.display()
                )));
            }
            let mut sax: xml::xmlSAXHandler = std::mem::zeroed();
            sax.initialized = xml::XML_SAX2_MAGIC;
            sax.startElementNs = Some(sax_start);
            sax.endElementNs = Some(sax_end);
            sax.internalSubset = Some(sax_doctype);
            let errors_ptr = &mut errors as *mut Errors as *mut c_void;
            // The validator's errors, and the parser's (through this thread's
            // handler; the validator thread is sedx's own).
            xml::xmlSchemaSetValidStructuredErrors(ctx.as_ptr(), Some(collect_error), errors_ptr);
            xml::xmlSetStructuredErrorFunc(errors_ptr, Some(collect_error));
            xml::xmlResetLastError();
            let outcome = xml::xmlSchemaValidateStream(
                ctx.as_ptr(),
                input,
                xml::xmlCharEncoding_XML_CHAR_ENCODING_UTF8,
                &mut sax,
                &mut seen as *mut Seen as *mut c_void,
            );
            if outcome != 0 && !errors.list.iter().any(|e| e.malformed) {
                let last = xml::xmlGetLastError();
                if !last.is_null()
                    && !(*last).message.is_null()
                    && (*last).domain == xml::xmlErrorDomain_XML_FROM_PARSER as i32
                {
                    errors.list.push(Message::of(&*last));
                }
            }
            xml::xmlSetStructuredErrorFunc(std::ptr::null_mut(), None);
            xml::xmlSchemaSetValidStructuredErrors(ctx.as_ptr(), None, std::ptr::null_mut());
            outcome
        };
        if seen.doctype {
            return Err(Reject::new(
                Code::XmlDoctype,
                "document has a DOCTYPE; DTDs and entities are never accepted",
            )
            .into());
        }
        if outcome == 0 && errors.list.is_empty() {
            return Ok(seen.records);
        }
        // Not well-formed outweighs not valid, wherever it was met.
        let (code, first) = match errors.list.iter().find(|e| e.malformed) {
            Some(e) => (Code::XmlMalformed, Some(e)),
            None => (Code::XmlSchema, errors.list.first()),
        };
        let detail = match first {
            Some(e) => {
                // Schema errors met in the stream carry no column.
                let column = match e.column {
                    0 => String::new(),
                    c => format!(", column {c}"),
                };
                format!(
                    "line {}{column}: {}",
                    e.line,
                    crate::context::text::printable(e.message.trim(), 300)
                )
            }
            None if outcome < 0 => "libxml2 could not read the document".to_string(),
            None => "invalid against the XSD".to_string(),
        };
        let more = if errors.count > 1 {
            format!(" (and {} more)", errors.count - 1)
        } else {
            String::new()
        };
        Err(Reject::new(code, format!("{detail}{more}")).into())
    }
}

/// What the SAX stream tells besides validity: records under the root, a DOCTYPE.
#[derive(Default)]
struct Seen {
    depth: u32,
    records: u64,
    doctype: bool,
}

unsafe extern "C" fn sax_start(
    ctx: *mut std::ffi::c_void,
    localname: *const libxml::bindings::xmlChar,
    _: *const libxml::bindings::xmlChar,
    _: *const libxml::bindings::xmlChar,
    _: std::ffi::c_int,
    _: *mut *const libxml::bindings::xmlChar,
    _: std::ffi::c_int,
    _: std::ffi::c_int,
    _: *mut *const libxml::bindings::xmlChar,
) {
    // SAFETY: `ctx` is the `Seen` of the validate call under way; `localname`
    // a NUL-terminated name from libxml2.
    let seen = unsafe { &mut *(ctx as *mut Seen) };
    if seen.depth == 1 && !localname.is_null() {
        let name = unsafe { std::ffi::CStr::from_ptr(localname as *const std::ffi::c_char) };
        if RecordKind::from_element(name.to_bytes()).is_some() {
            seen.records += 1;
        }
    }
    seen.depth += 1;
}

unsafe extern "C" fn sax_end(
    ctx: *mut std::ffi::c_void,
    _: *const libxml::bindings::xmlChar,
    _: *const libxml::bindings::xmlChar,
    _: *const libxml::bindings::xmlChar,
) {
    // SAFETY: as in `sax_start`.
    let seen = unsafe { &mut *(ctx as *mut Seen) };
    seen.depth = seen.depth.saturating_sub(1);
}

unsafe extern "C" fn sax_doctype(
    ctx: *mut std::ffi::c_void,
    _: *const libxml::bindings::xmlChar,
    _: *const libxml::bindings::xmlChar,
    _: *const libxml::bindings::xmlChar,
) {
    // SAFETY: as in `sax_start`.
    unsafe { (*(ctx as *mut Seen)).doctype = true };
}

/// One message of libxml2's.
struct Message {
    line: i32,
    column: i32,
    message: String,
    /// From the parser (the document is not well-formed), not the validator.
    malformed: bool,
}

impl Message {
    fn of(error: &libxml::bindings::xmlError) -> Message {
        use libxml::bindings as xml;
        let message = if error.message.is_null() {
            String::new()
        } else {
            // SAFETY: libxml2's message, a NUL-terminated string it owns.
            unsafe { std::ffi::CStr::from_ptr(error.message) }
                .to_string_lossy()
                .into_owned()
        };
        Message {
            line: error.line,
            column: error.int2,
            message,
            // An error (not a warning) that is not the schema's: the XML is broken.
            malformed: error.domain != xml::xmlErrorDomain_XML_FROM_SCHEMASV as i32
                && error.domain != xml::xmlErrorDomain_XML_FROM_SCHEMASP as i32
                && error.level >= xml::xmlErrorLevel_XML_ERR_ERROR,
        }
    }
}

/// libxml2's messages about one document: the first few (and the first
/// parser error), and how many.
#[derive(Default)]
struct Errors {
    list: Vec<Message>,
    count: usize,
}

unsafe extern "C" fn collect_error(
    user: *mut std::ffi::c_void,
    error: libxml::bindings::xmlErrorPtr,
) {
    if user.is_null() || error.is_null() {
        return;
    }
    // SAFETY: `user` is the `Errors` of the validate call under way (libxml2
    // calls back only inside it), `error` a valid libxml2 error.
    let errors = unsafe { &mut *(user as *mut Errors) };
    let error = unsafe { &*error };
    errors.count += 1;
    let message = Message::of(error);
    if errors.list.len() < 5 || (message.malformed && !errors.list.iter().any(|e| e.malformed)) {
        errors.list.push(message);
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
pub struct BackgroundCheck {
    pending: Option<Pending>,
    spent: Duration,
}

impl BackgroundCheck {
    pub fn new(pending: Pending) -> BackgroundCheck {
        BackgroundCheck {
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

    /// Start checking a file on the validator's thread ([`Schemas::check`]:
    /// well-formed, valid, its records counted).
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

/// `sedx validate FILE`: a document (`.xml`, or `.xml.gz` expanded) read as a
/// node reads what it receives, decoded once into a scratch copy (encoding,
/// limits, no DOCTYPE), then checked against its XSD. Its kind and records.
pub fn validate_file(file: &Path) -> Result<(DocKind, u64)> {
    let scratch = crate::context::files::Scratch::new_in(&std::env::temp_dir(), ".sedx-validate");
    let limits = ExpandLimits {
        max_bytes: 4 << 30,
        max_ratio: u64::MAX,
        doc: crate::wire::decode::Limits::default(),
    };
    if file.extension().is_some_and(|e| e == "gz") {
        expand(file, scratch.path(), limits)?;
    } else {
        crate::wire::decode::normalize_file(file, scratch.path(), limits.doc, limits.max_bytes)?;
    }
    let f = File::open(scratch.path()).at(scratch.path())?;
    let kind = document::peek_root(BufReader::with_capacity(1 << 16, f))?.kind;
    let scan = Schemas::new()?.check(scratch.path(), kind)?;
    Ok((kind, scan.records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("doc.xml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn libxml2_loads_nothing_from_outside_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let secret = doc(dir.path(), "<?xml version=\"1.0\"?><secret/>");
        let _schemas = Schemas::new().unwrap();
        let url = std::ffi::CString::new(secret.to_str().unwrap()).unwrap();
        // SAFETY: a parser context of our own, freed here; a valid C string.
        let loaded = unsafe {
            let ctxt = libxml::bindings::xmlNewParserCtxt();
            assert!(!ctxt.is_null());
            let input =
                libxml::bindings::xmlLoadExternalEntity(url.as_ptr(), std::ptr::null(), ctxt);
            let loaded = !input.is_null();
            if loaded {
                libxml::bindings::xmlFreeInputStream(input);
            }
            libxml::bindings::xmlFreeParserCtxt(ctxt);
            loaded
        };
        assert!(!loaded, "libxml2 loaded a file named by a document");
    }

    #[test]
    fn a_doctype_that_got_past_the_decoder_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = doc(
            dir.path(),
            "<?xml version=\"1.0\"?>\n<!DOCTYPE batch [<!ENTITY x \"y\">]>\n<batch xmlns=\"urn:sedx:batch:1\"/>",
        );
        let err = Schemas::new()
            .unwrap()
            .validate(&path, DocKind::Batch)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Rejected(r) if r.code == Code::XmlDoctype),
            "{err}"
        );
    }

    #[test]
    fn broken_xml_and_invalid_xml_get_their_own_codes_and_records_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut schemas = Schemas::new().unwrap();
        let code = |schemas: &mut Schemas, text: &str| match schemas
            .validate(&doc(dir.path(), text), DocKind::Batch)
        {
            Err(Error::Rejected(r)) => Some(r.code),
            _ => None,
        };
        let valid = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/batch-inspection.xml"),
        )
        .unwrap();
        let n = schemas
            .validate(&doc(dir.path(), &valid), DocKind::Batch)
            .unwrap();
        assert_eq!(
            n,
            valid.matches("<equipment>").count() as u64
                + valid.matches("<inspectionReport>").count() as u64
        );
        let unclosed = valid.replacen("</userUnit>", "", 1);
        assert_eq!(code(&mut schemas, &unclosed), Some(Code::XmlMalformed));
        let entity = valid.replacen("<userUnit>", "<userUnit>&nbsp;", 1);
        assert_eq!(code(&mut schemas, &entity), Some(Code::XmlMalformed));
        let invalid = valid.replacen("<userUnit>", "<userUnitX>", 1).replacen(
            "</userUnit>",
            "</userUnitX>",
            1,
        );
        assert_eq!(code(&mut schemas, &invalid), Some(Code::XmlSchema));
    }
}
