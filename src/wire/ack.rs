//! Acknowledge: the acknowledgment document (xsd/ack.xsd), written by the
//! receiver of a batch and read back by its sender.

use crate::context::error::{Code, Reject};
use crate::wire::document::{Root, ACK_NS};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};
use std::io::{BufRead, Write};

/// The status an acknowledgment reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    Accepted,
    PartiallyAccepted,
    Rejected,
    Duplicate,
}

impl AckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Accepted => "accepted",
            AckStatus::PartiallyAccepted => "partially-accepted",
            AckStatus::Rejected => "rejected",
            AckStatus::Duplicate => "duplicate",
        }
    }
    pub fn parse(s: &str) -> Option<AckStatus> {
        Some(match s {
            "accepted" => AckStatus::Accepted,
            "partially-accepted" => AckStatus::PartiallyAccepted,
            "rejected" => AckStatus::Rejected,
            "duplicate" => AckStatus::Duplicate,
            _ => return None,
        })
    }
}

/// One rejected record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRejection {
    pub index: u64,
    pub key: String,
    pub code: String,
    pub message: String,
}

/// The facts an acknowledgment states about one received set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckDoc {
    pub from: String,
    pub to: String,
    pub batch: Option<String>,
    pub set: String,
    pub sha256: Option<String>,
    pub status: AckStatus,
    pub original_status: Option<AckStatus>,
    pub seq: Option<u64>,
    pub accepted: u64,
    pub rejected: u64,
    pub created: String,
    /// Set-level reason (code, detail) when the whole set was refused.
    pub reason: Option<(String, String)>,
    /// Whether the batch's sequence number is used up (the sender sends its
    /// next batch with the next number) or not (the sender may send it again
    /// with the same number once the cause is fixed).
    pub seq_used: Option<bool>,
}

/// Streams an acknowledgment: header, then one element per rejected record.
pub struct AckWriter<W: Write> {
    w: Writer<W>,
}

impl<W: Write> AckWriter<W> {
    pub fn begin(out: W, doc: &AckDoc) -> std::io::Result<Self> {
        let mut w = Writer::new_with_indent(out, b' ', 2);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut root = BytesStart::new("ack");
        root.push_attribute(("xmlns", ACK_NS));
        root.push_attribute(("from", doc.from.as_str()));
        root.push_attribute(("to", doc.to.as_str()));
        if let Some(b) = &doc.batch {
            root.push_attribute(("batch", b.as_str()));
        }
        root.push_attribute(("set", doc.set.as_str()));
        if let Some(s) = &doc.sha256 {
            root.push_attribute(("sha256", s.as_str()));
        }
        root.push_attribute(("status", doc.status.as_str()));
        if let Some(o) = doc.original_status {
            root.push_attribute(("original-status", o.as_str()));
        }
        if let Some(seq) = doc.seq {
            root.push_attribute(("seq", seq.to_string().as_str()));
        }
        root.push_attribute(("accepted", doc.accepted.to_string().as_str()));
        root.push_attribute(("rejected", doc.rejected.to_string().as_str()));
        root.push_attribute(("created", doc.created.as_str()));
        if let Some(used) = doc.seq_used {
            root.push_attribute(("seq-used", if used { "true" } else { "false" }));
        }
        w.write_event(Event::Start(root))?;
        if let Some((code, detail)) = &doc.reason {
            let mut el = BytesStart::new("reason");
            el.push_attribute(("code", code.as_str()));
            w.write_event(Event::Start(el))?;
            w.write_event(Event::Text(BytesText::new(detail)))?;
            w.write_event(Event::End(BytesEnd::new("reason")))?;
        }
        Ok(AckWriter { w })
    }

    pub fn record(&mut self, r: &RecordRejection) -> std::io::Result<()> {
        let mut el = BytesStart::new("record");
        el.push_attribute(("index", r.index.to_string().as_str()));
        el.push_attribute(("key", r.key.as_str()));
        el.push_attribute(("code", r.code.as_str()));
        self.w.write_event(Event::Start(el))?;
        self.w
            .write_event(Event::Text(BytesText::new(&r.message)))?;
        self.w.write_event(Event::End(BytesEnd::new("record")))?;
        Ok(())
    }

    pub fn end(mut self) -> std::io::Result<W> {
        self.w.write_event(Event::End(BytesEnd::new("ack")))?;
        let mut out = self.w.into_inner();
        out.write_all(b"\n")?;
        Ok(out)
    }
}

fn header_error(why: String) -> Reject {
    Reject::new(Code::BatchHeader, why)
}

impl AckDoc {
    /// A negative acknowledgment of a set refused before it was journaled: its
    /// sequence number is free, unless another batch used it (a replay).
    pub fn refusal(from: &str, to: &str, set: &str, rej: &Reject) -> AckDoc {
        AckDoc {
            from: from.to_string(),
            to: to.to_string(),
            batch: None,
            set: set.to_string(),
            sha256: None,
            status: AckStatus::Rejected,
            original_status: None,
            seq: None,
            accepted: 0,
            rejected: 0,
            created: crate::context::clock::now(),
            reason: Some((rej.code.as_str().to_string(), rej.detail.clone())),
            seq_used: Some(rej.code == Code::BatchSequence),
        }
    }

    /// The header facts from an ack's root element (the document is XSD-valid).
    pub fn from_root(root: &Root) -> Result<AckDoc, Reject> {
        let get = |k: &str| root.get(k).map(str::to_string);
        let need = |k: &str| get(k).ok_or_else(|| header_error(format!("<ack> has no {k}")));
        let num = |k: &str| -> Result<u64, Reject> {
            need(k)?
                .parse()
                .map_err(|_| header_error(format!("{k} is not a number")))
        };
        let status = |k: &str| {
            get(k)
                .map(|s| AckStatus::parse(&s).ok_or_else(|| header_error(format!("bad {k} {s:?}"))))
        };
        Ok(AckDoc {
            from: need("from")?,
            to: need("to")?,
            batch: get("batch"),
            set: need("set")?,
            sha256: get("sha256"),
            status: status("status")
                .unwrap_or_else(|| Err(header_error("<ack> has no status".into())))?,
            original_status: status("original-status").transpose()?,
            seq: get("seq").and_then(|s| s.parse().ok()),
            accepted: num("accepted")?,
            rejected: num("rejected")?,
            created: need("created")?,
            reason: None,
            seq_used: get("seq-used").map(|v| v == "true" || v == "1"),
        })
    }
}

/// Read the set-level reason and the first few record results of an ack, as a
/// one-line summary for the sender's records.
/// Returns the summary and the set-level reason code, if any.
pub fn summarize(
    input: impl BufRead,
    max_records: usize,
) -> Result<(String, Option<String>), Reject> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut parts = Vec::new();
    let mut current: Option<String> = None;
    let mut records = 0usize;
    let mut reason = None;
    loop {
        let decoder = reader.decoder();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let attr = |k: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == k)
                        .and_then(|a| {
                            a.decode_and_unescape_value(decoder)
                                .ok()
                                .map(|v| v.into_owned())
                        })
                        .unwrap_or_default()
                };
                match e.local_name().as_ref() {
                    b"reason" => {
                        reason = Some(attr(b"code"));
                        current = reason.clone();
                    }
                    b"record" => {
                        records += 1;
                        if records <= max_records {
                            current = Some(format!(
                                "#{} {} {}",
                                attr(b"index"),
                                attr(b"key"),
                                attr(b"code")
                            ));
                        }
                    }
                    _ => {}
                }
            }
            Ok(Event::Text(t)) => {
                if let Some(head) = current.take() {
                    let text = t.unescape().map(|s| s.into_owned()).unwrap_or_default();
                    parts.push(format!("{head}: {text}"));
                }
            }
            Ok(Event::End(_)) => {
                if let Some(head) = current.take() {
                    parts.push(head);
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(Reject::new(Code::XmlMalformed, e.to_string())),
            _ => {}
        }
        buf.clear();
    }
    if records > max_records {
        parts.push(format!(
            "... {} more rejected records",
            records - max_records
        ));
    }
    Ok((parts.join("; "), reason))
}
