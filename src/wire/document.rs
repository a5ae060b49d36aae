//! The XML documents on the wire: the batch and the acknowledgment. Streaming
//! readers and writers over quick-xml; nothing here holds a whole document.

use crate::context::error::{Code, Reject};
use crate::domain::{RawRecord, RecordKind};
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};
use std::io::{BufRead, Write};

pub const BATCH_NS: &str = "urn:sedx:batch:1";
pub const ACK_NS: &str = "urn:sedx:ack:1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Batch,
    Ack,
}

impl DocKind {
    /// The SSHSIG namespace a set of this kind is signed under.
    pub fn sig_namespace(self) -> &'static str {
        match self {
            DocKind::Batch => "sedx-batch",
            DocKind::Ack => "sedx-ack",
        }
    }
    pub fn from_sig_namespace(ns: &str) -> Option<DocKind> {
        match ns {
            "sedx-batch" => Some(DocKind::Batch),
            "sedx-ack" => Some(DocKind::Ack),
            _ => None,
        }
    }
    pub fn root(self) -> &'static str {
        match self {
            DocKind::Batch => "batch",
            DocKind::Ack => "ack",
        }
    }
}

/// The root element of a document and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub kind: DocKind,
    pub attrs: Vec<(String, String)>,
}

impl Root {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, Reject> {
        self.get(name).ok_or_else(|| {
            Reject::new(
                Code::BatchHeader,
                format!("<{}> has no {name} attribute", self.kind.root()),
            )
        })
    }
}

/// The header of a batch as it travels (every field present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    pub id: String,
    pub from: String,
    pub to: String,
    pub seq: u64,
    pub created: String,
    pub count: u64,
}

impl BatchHeader {
    pub fn from_root(root: &Root) -> Result<BatchHeader, Reject> {
        if root.kind != DocKind::Batch {
            return Err(Reject::new(Code::BatchHeader, "not a batch document"));
        }
        let num = |name: &str| -> Result<u64, Reject> {
            root.required(name)?
                .parse()
                .map_err(|_| Reject::new(Code::BatchHeader, format!("{name} is not a number")))
        };
        Ok(BatchHeader {
            id: root.required("id")?.to_string(),
            from: root.required("from")?.to_string(),
            to: root.required("to")?.to_string(),
            seq: num("seq")?,
            created: root.required("created")?.to_string(),
            count: num("count")?,
        })
    }

    pub fn attrs(&self) -> Vec<(String, String)> {
        vec![
            ("id".into(), self.id.clone()),
            ("from".into(), self.from.clone()),
            ("to".into(), self.to.clone()),
            ("seq".into(), self.seq.to_string()),
            ("created".into(), self.created.clone()),
            ("count".into(), self.count.to_string()),
        ]
    }
}

fn malformed(e: impl std::fmt::Display, pos: u64) -> Reject {
    Reject::new(Code::XmlMalformed, format!("at byte {pos}: {e}"))
}

fn root_of(e: &BytesStart, decoder: quick_xml::encoding::Decoder) -> Result<Root, Reject> {
    let local = e.local_name();
    let kind = match local.as_ref() {
        b"batch" => DocKind::Batch,
        b"ack" => DocKind::Ack,
        other => {
            return Err(Reject::new(
                Code::XmlSchema,
                format!(
                    "root element <{}> is neither batch nor ack",
                    String::from_utf8_lossy(other)
                ),
            ))
        }
    };
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| malformed(e, 0))?;
        let v = a
            .decode_and_unescape_value(decoder)
            .map_err(|e| malformed(e, 0))?;
        attrs.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            v.into_owned(),
        ));
    }
    Ok(Root { kind, attrs })
}

fn doctype_reject() -> Reject {
    Reject::new(
        Code::XmlDoctype,
        "document has a DOCTYPE; DTDs and entities are never accepted",
    )
}

/// Read up to the root element (for routing a set without reading all of it).
pub fn peek_root(input: impl BufRead) -> Result<Root, Reject> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    loop {
        let pos = reader.buffer_position();
        match reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(e, pos))?
        {
            Event::Start(e) | Event::Empty(e) => return root_of(&e, reader.decoder()),
            Event::DocType(_) => return Err(doctype_reject()),
            Event::Eof => return Err(Reject::new(Code::XmlMalformed, "no root element")),
            Event::Text(t) if !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(Reject::new(
                    Code::XmlMalformed,
                    "text before the root element",
                ))
            }
            _ => {}
        }
        buf.clear();
    }
}

/// Summary of one full streaming pass over a document.
#[derive(Debug, Clone)]
pub struct Scan {
    pub root: Root,
    /// Record elements directly under a batch root.
    pub records: u64,
}

/// One pass over a whole document: refuses any DOCTYPE (so no entity is ever
/// declared, let alone expanded) and anything not well-formed; counts records.
pub fn scan(input: impl BufRead) -> Result<Scan, Reject> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::new();
    let mut root = None;
    let mut depth = 0usize;
    let mut records = 0u64;
    let mut closed = false;
    loop {
        let pos = reader.buffer_position();
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(e, pos))?;
        match ev {
            Event::DocType(_) => return Err(doctype_reject()),
            Event::Decl(_) if pos > 0 => {
                return Err(malformed(
                    "the XML declaration is allowed only at the start",
                    pos,
                ))
            }
            Event::Start(e) | Event::Empty(e) if closed => {
                let _ = e;
                return Err(Reject::new(
                    Code::XmlMalformed,
                    "content after the root element",
                ));
            }
            Event::Start(e) => {
                if depth == 0 {
                    root = Some(root_of(&e, reader.decoder())?);
                } else if depth == 1 && RecordKind::from_element(e.local_name().as_ref()).is_some()
                {
                    records += 1;
                }
                depth += 1;
            }
            Event::Empty(e) => {
                if depth == 0 {
                    root = Some(root_of(&e, reader.decoder())?);
                    closed = true;
                } else if depth == 1 && RecordKind::from_element(e.local_name().as_ref()).is_some()
                {
                    records += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    closed = true;
                }
            }
            Event::Text(t) => {
                // Entity references other than the five predefined ones need a DTD;
                // bytes that are not text in the declared encoding are refused, not
                // replaced (a declaration that lies).
                let text = t.unescape().map_err(|e| malformed(e, pos))?;
                if text.contains('\u{FFFD}') {
                    return Err(malformed(
                        "bytes that are not valid in the declared encoding",
                        pos,
                    ));
                }
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(Reject::new(
                        Code::XmlMalformed,
                        "text outside the root element",
                    ));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match root {
        Some(root) if closed => Ok(Scan { root, records }),
        Some(_) => Err(Reject::new(
            Code::XmlMalformed,
            "document ends inside an element",
        )),
        None => Err(Reject::new(Code::XmlMalformed, "no root element")),
    }
}

/// Streams the records of a batch, one at a time.
pub struct RecordReader<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    depth: usize,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R) -> Self {
        RecordReader {
            reader: Reader::from_reader(input),
            buf: Vec::new(),
            depth: 0,
        }
    }

    /// The next record, or None at the end of the document.
    pub fn next_record(&mut self) -> Result<Option<(RecordKind, RawRecord)>, Reject> {
        loop {
            self.buf.clear();
            let pos = self.reader.buffer_position();
            let ev = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| malformed(e, pos))?;
            match ev {
                Event::DocType(_) => return Err(doctype_reject()),
                Event::Start(e) => {
                    self.depth += 1;
                    if self.depth == 2 {
                        if let Some(kind) = RecordKind::from_element(e.local_name().as_ref()) {
                            let raw = self.read_fields()?;
                            self.depth -= 1;
                            return Ok(Some((kind, raw)));
                        }
                    }
                }
                Event::Empty(e) if self.depth == 1 => {
                    if let Some(kind) = RecordKind::from_element(e.local_name().as_ref()) {
                        return Ok(Some((kind, RawRecord::default())));
                    }
                }
                Event::End(_) => self.depth = self.depth.saturating_sub(1),
                Event::Eof => return Ok(None),
                _ => {}
            }
        }
    }

    /// Child elements of a record as (name, text); the record's end tag is consumed.
    fn read_fields(&mut self) -> Result<RawRecord, Reject> {
        let mut raw = RawRecord::default();
        let mut current: Option<(String, String)> = None;
        loop {
            self.buf.clear();
            let pos = self.reader.buffer_position();
            let ev = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| malformed(e, pos))?;
            match ev {
                Event::Start(e) => {
                    current = Some((
                        String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        String::new(),
                    ));
                }
                Event::Empty(e) => {
                    raw.fields.push((
                        String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        String::new(),
                    ));
                }
                Event::Text(t) => {
                    if let Some((_, v)) = current.as_mut() {
                        // Line ends normalised before references are resolved, as
                        // XML 1.0 (2.11) and libxml2 do: "&#13;" stays a CR.
                        let raw = std::str::from_utf8(&t)
                            .map_err(|_| malformed("text that is not UTF-8", pos))?;
                        let raw = normalize_line_ends(raw);
                        let s = quick_xml::escape::unescape(&raw).map_err(|e| malformed(e, pos))?;
                        v.push_str(&s);
                    }
                }
                Event::CData(t) => {
                    // The document is UTF-8 by now (crate::wire::decode); anything else
                    // is refused, never replaced.
                    if let Some((_, v)) = current.as_mut() {
                        let text = std::str::from_utf8(&t)
                            .map_err(|_| malformed("a CDATA section that is not UTF-8", pos))?;
                        v.push_str(&normalize_line_ends(text));
                    }
                }
                Event::End(_) => match current.take() {
                    Some(field) => raw.fields.push(field),
                    None => return Ok(raw),
                },
                Event::Eof => {
                    return Err(Reject::new(
                        Code::XmlMalformed,
                        "document ends inside a record",
                    ))
                }
                _ => {}
            }
        }
    }
}

/// CR LF and a lone CR become LF (XML 1.0, 2.11).
fn normalize_line_ends(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Write one element with text content.
pub fn text_element<W: Write>(w: &mut Writer<W>, name: &str, text: &str) -> std::io::Result<()> {
    w.write_event(Event::Start(BytesStart::new(name)))?;
    w.write_event(Event::Text(BytesText::new(text)))?;
    w.write_event(Event::End(BytesEnd::new(name)))?;
    Ok(())
}

/// Serialise a record as its batch element (fields in schema order). Written
/// directly: element names come from the spec, values are escaped.
pub fn record_xml<W: std::io::Write>(
    w: &mut quick_xml::Writer<W>,
    rec: &crate::domain::Record,
) -> std::io::Result<()> {
    let out = w.get_mut();
    let el = rec.kind.element().as_bytes();
    out.write_all(b"<")?;
    out.write_all(el)?;
    out.write_all(b">")?;
    for (k, v) in &rec.fields {
        out.write_all(b"<")?;
        out.write_all(k.as_bytes())?;
        out.write_all(b">")?;
        out.write_all(quick_xml::escape::escape(v.as_str()).as_bytes())?;
        out.write_all(b"</")?;
        out.write_all(k.as_bytes())?;
        out.write_all(b">")?;
    }
    out.write_all(b"</")?;
    out.write_all(el)?;
    out.write_all(b">\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_counts_and_refuses_doctype() {
        let doc = br#"<?xml version="1.0"?><batch xmlns="urn:sedx:batch:1" from="a" to="b"><equipment><registrationCode>x</registrationCode></equipment><inspectionReport/></batch>"#;
        let s = scan(&doc[..]).unwrap();
        assert_eq!(s.records, 2);
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE batch [<!ENTITY x SYSTEM "file:///etc/passwd">]><batch>&x;</batch>"#;
        assert_eq!(scan(&xxe[..]).unwrap_err().code, Code::XmlDoctype);
        assert_eq!(
            scan(&b"<batch><a></b></batch>"[..]).unwrap_err().code,
            Code::XmlMalformed
        );
    }

    #[test]
    fn records_stream() {
        let doc = br#"<batch><equipment><registrationCode>R1</registrationCode><userUnit>A &amp; B</userUnit></equipment><inspectionReport><reportNumber>N</reportNumber></inspectionReport></batch>"#;
        let mut r = RecordReader::new(&doc[..]);
        let (k, raw) = r.next_record().unwrap().unwrap();
        assert_eq!(k, RecordKind::Equipment);
        assert_eq!(raw.fields[1], ("userUnit".into(), "A & B".into()));
        let (k, _) = r.next_record().unwrap().unwrap();
        assert_eq!(k, RecordKind::InspectionReport);
        assert!(r.next_record().unwrap().is_none());
    }
}
