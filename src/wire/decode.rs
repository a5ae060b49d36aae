//! One decoding for every document sedx reads. A received payload or a dropped
//! file is copied once into the node's private scratch folder as UTF-8: the
//! declared encoding (UTF-8, or the GB family) is decoded strictly, the XML
//! declaration rewritten to say UTF-8, and every piece of markup and text held
//! to limits while it streams by. The validator (libxml2) and the record reader
//! both read that copy, so they see the same characters; neither ever meets a
//! DOCTYPE, an encoding of its own choosing, an over-long text or a byte that
//! means one thing to one parser and another to the other.

use crate::context::error::{Code, Error, IoContext, Reject, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Limits on the pieces of a document, checked before any parser sees them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of one text, CDATA section or comment. A field holds at most 512
    /// characters (xsd/batch.xsd), which take at most 5,120 bytes even written
    /// as character references; 16 KiB leaves room and keeps libxml2's work on
    /// one text small (it grows with the square of the length).
    pub text: usize,
    /// Bytes of one tag: its name and attributes.
    pub tag: usize,
    /// Elements open at once (a record is three deep).
    pub depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            text: 16 * 1024,
            tag: 16 * 1024,
            depth: 32,
        }
    }
}

/// The encodings sedx reads (docs/format.md). Anything else is refused as
/// XML-ENCODING before a parser runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// GBK and GB2312 (decoded as GB18030, their superset).
    Gbk,
    Gb18030,
}

impl Encoding {
    pub fn from_label(label: &str) -> Option<Encoding> {
        match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "gbk" | "gb2312" | "cp936" | "x-gbk" => Some(Encoding::Gbk),
            "gb18030" => Some(Encoding::Gb18030),
            _ => None,
        }
    }
}

fn encoding_reject(detail: impl Into<String>) -> Error {
    Reject::new(Code::XmlEncoding, detail).into()
}

fn malformed(detail: impl Into<String>) -> Error {
    Reject::new(Code::XmlMalformed, detail).into()
}

/// The pseudo-attributes of an XML declaration (`<?xml ... ?>`), ASCII only.
fn declaration(decl: &[u8]) -> Result<Vec<(String, String)>> {
    let text = std::str::from_utf8(decl)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| malformed("the XML declaration holds bytes that are not ASCII"))?;
    let mut rest = text.trim();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| malformed("the XML declaration is malformed"))?;
        let after = after.trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| malformed("the XML declaration is malformed"))?;
        let (value, tail) = after[1..]
            .split_once(quote)
            .ok_or_else(|| malformed("the XML declaration is malformed"))?;
        out.push((name.trim().to_string(), value.to_string()));
        rest = tail.trim_start();
    }
    Ok(out)
}

/// What [`normalize`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalized {
    pub encoding: Encoding,
    /// Bytes written (UTF-8).
    pub bytes: u64,
}

/// Copy the document read from `input` into `out` as UTF-8 (see the module
/// comment). `cap` bounds the bytes written; `what` names the input in errors.
pub fn normalize(
    mut input: impl Read,
    out: &mut impl Write,
    limits: Limits,
    cap: u64,
    what: &Path,
) -> Result<Normalized> {
    let too_large = || -> Error {
        Reject::new(
            Code::SetTooLarge,
            format!("the document is larger than the limit of {cap} bytes"),
        )
        .into()
    };
    // The prolog: a byte order mark and the XML declaration, within 4 KiB.
    let mut head = Vec::with_capacity(4096);
    (&mut input)
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| read_error(e, what))?;
    let mut start = 0;
    let mut bom = false;
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        start = 3;
        bom = true;
    } else if head.starts_with(&[0xFE, 0xFF])
        || head.starts_with(&[0xFF, 0xFE])
        || head.starts_with(&[0, 0, 0xFE, 0xFF])
        || head.starts_with(&[0, b'<'])
        || head.starts_with(&[b'<', 0])
    {
        return Err(encoding_reject(
            "the document is in UTF-16 or UTF-32; sedx reads UTF-8, GBK, GB2312 and GB18030",
        ));
    }
    let mut encoding = Encoding::Utf8;
    let mut written = 0u64;
    let body = &head[start..];
    let body = if body.starts_with(b"<?xml") && body.get(5).is_some_and(|b| b.is_ascii_whitespace())
    {
        let end = body
            .windows(2)
            .position(|w| w == b"?>")
            .ok_or_else(|| malformed("the XML declaration does not end within 4 KiB"))?;
        let attrs = declaration(&body[5..end])?;
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if get("version") != Some("1.0") {
            return Err(malformed(format!(
                "XML version {:?}; sedx reads XML 1.0",
                crate::context::text::field(get("version").unwrap_or("(none)"))
            )));
        }
        if let Some(label) = get("encoding") {
            encoding = Encoding::from_label(label).ok_or_else(|| {
                encoding_reject(format!(
                    "encoding {:?} is not accepted; use UTF-8, GBK, GB2312 or GB18030",
                    crate::context::text::field(label)
                ))
            })?;
        }
        if bom && encoding != Encoding::Utf8 {
            return Err(encoding_reject(
                "a UTF-8 byte order mark before a declaration of another encoding",
            ));
        }
        let decl = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
        out.write_all(decl).at(what)?;
        written += decl.len() as u64;
        &body[end + 2..]
    } else {
        body
    };
    let mut lexer = Lexer::new(limits);
    let mut decoder = match encoding {
        Encoding::Utf8 => None,
        Encoding::Gbk => Some(encoding_rs::GBK.new_decoder_without_bom_handling()),
        Encoding::Gb18030 => Some(encoding_rs::GB18030.new_decoder_without_bom_handling()),
    };
    let mut pending: Vec<u8> = body.to_vec();
    let mut buf = vec![0u8; 1 << 16];
    let mut decoded = vec![0u8; (1 << 16) * 3 + 16];
    let mut offset = (head.len() - body.len()) as u64; // input bytes before `pending`
    let mut at_end = false;
    loop {
        if !at_end {
            let n = input.read(&mut buf).map_err(|e| read_error(e, what))?;
            at_end = n == 0;
            pending.extend_from_slice(&buf[..n]);
        }
        match decoder.as_mut() {
            None => {
                // UTF-8: checked in place; an incomplete sequence at the end of
                // the chunk waits for the next one.
                // Each piece is written before it is checked: when a check fails,
                // the copy still begins with the root element, so a batch whose
                // header is readable can use up its sequence number.
                let (valid, bad) = match std::str::from_utf8(&pending) {
                    Ok(_) => (pending.len(), None),
                    Err(e) if e.error_len().is_none() && !at_end => (e.valid_up_to(), None),
                    Err(e) => (e.valid_up_to(), Some(offset + e.valid_up_to() as u64)),
                };
                written += valid as u64;
                if written > cap {
                    return Err(too_large());
                }
                out.write_all(&pending[..valid]).at(what)?;
                lexer.feed(&pending[..valid], offset)?;
                if let Some(at) = bad {
                    return Err(encoding_reject(format!(
                        "byte {at} is not valid UTF-8 (the encoding the document declares)"
                    )));
                }
                offset += valid as u64;
                pending.drain(..valid);
            }
            Some(dec) => {
                let (result, read, produced) =
                    dec.decode_to_utf8_without_replacement(&pending, &mut decoded, at_end);
                if let encoding_rs::DecoderResult::Malformed(_, _) = result {
                    out.write_all(&decoded[..produced]).at(what)?;
                    return Err(encoding_reject(format!(
                        "bytes near byte {} are not valid {:?}",
                        offset + read as u64,
                        encoding
                    )));
                }
                written += produced as u64;
                if written > cap {
                    return Err(too_large());
                }
                out.write_all(&decoded[..produced]).at(what)?;
                lexer.feed(&decoded[..produced], offset)?;
                offset += read as u64;
                pending.drain(..read);
            }
        }
        if at_end && (pending.is_empty() || decoder.is_none()) {
            break;
        }
    }
    lexer.finish()?;
    Ok(Normalized {
        encoding,
        bytes: written,
    })
}

fn read_error(e: std::io::Error, what: &Path) -> Error {
    match e.kind() {
        std::io::ErrorKind::InvalidInput
        | std::io::ErrorKind::InvalidData
        | std::io::ErrorKind::UnexpectedEof => Reject::new(
            Code::SetGzip,
            format!("payload is not a complete gzip stream: {e}"),
        )
        .into(),
        _ => Error::Io {
            path: what.to_path_buf(),
            source: e,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`.
    Open,
    /// In a start tag (`<name ...`), or an end tag (`</name`).
    Tag {
        end: bool,
        quote: u8,
        last: u8,
    },
    /// After `<!`: the bytes seen so far.
    Bang,
    Comment,
    CData,
    Pi,
}

/// The lexical limits, checked over the decoded bytes as they stream by.
struct Lexer {
    limits: Limits,
    state: State,
    /// Bytes in the current piece (text, tag, comment, ...).
    run: usize,
    depth: usize,
    /// The first bytes after `<!`, to tell a comment, a CDATA section and a DOCTYPE.
    bang: Vec<u8>,
    /// The last bytes of a comment, CDATA section or processing instruction.
    tail: [u8; 2],
    line: u64,
}

impl Lexer {
    fn new(limits: Limits) -> Lexer {
        Lexer {
            limits,
            state: State::Text,
            run: 0,
            depth: 0,
            bang: Vec::new(),
            tail: [0; 2],
            line: 1,
        }
    }

    fn limit(&self, what: &str, max: usize) -> Error {
        Reject::new(
            Code::XmlLimit,
            format!("line {}: {what} longer than {max} bytes", self.line),
        )
        .into()
    }

    fn feed(&mut self, bytes: &[u8], offset: u64) -> Result<()> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Text {
                // The common case: run to the next `<` at once.
                let rest = &bytes[i..];
                let n = memchr::memchr(b'<', rest).unwrap_or(rest.len());
                self.check_chars(&rest[..n], offset + i as u64)?;
                self.run += n;
                if self.run > self.limits.text {
                    return Err(self.limit("a text", self.limits.text));
                }
                i += n;
                if i < bytes.len() {
                    self.state = State::Open;
                    self.run = 1;
                    i += 1;
                }
                continue;
            }
            if let State::Tag { end, quote, .. } = self.state {
                // Inside a tag: run to the next byte that matters (`>` or a quote
                // outside a value, the closing quote inside one).
                let rest = &bytes[i..];
                let n = if quote != 0 {
                    memchr::memchr(quote, rest)
                } else {
                    memchr::memchr3(b'>', b'"', b'\'', rest)
                }
                .unwrap_or(rest.len());
                if n > 0 {
                    self.check_chars(&rest[..n], offset + i as u64)?;
                    self.run += n;
                    if self.run > self.limits.tag {
                        return Err(self.limit("a tag", self.limits.tag));
                    }
                    self.state = State::Tag {
                        end,
                        quote,
                        last: rest[n - 1],
                    };
                    i += n;
                    continue;
                }
            }
            let b = bytes[i];
            i += 1;
            self.check_chars(std::slice::from_ref(&b), offset + i as u64 - 1)?;
            self.run += 1;
            match self.state {
                State::Text => unreachable!(),
                State::Open => {
                    self.state = match b {
                        b'/' => State::Tag {
                            end: true,
                            quote: 0,
                            last: b,
                        },
                        b'?' => State::Pi,
                        b'!' => {
                            self.bang.clear();
                            State::Bang
                        }
                        _ => State::Tag {
                            end: false,
                            quote: 0,
                            last: b,
                        },
                    };
                }
                State::Tag { end, quote, last } => {
                    if self.run > self.limits.tag {
                        return Err(self.limit("a tag", self.limits.tag));
                    }
                    if quote != 0 {
                        let quote = if b == quote { 0 } else { quote };
                        self.state = State::Tag {
                            end,
                            quote,
                            last: b,
                        };
                    } else if b == b'"' || b == b'\'' {
                        self.state = State::Tag {
                            end,
                            quote: b,
                            last: b,
                        };
                    } else if b == b'>' {
                        if end {
                            self.depth = self.depth.saturating_sub(1);
                        } else if last != b'/' {
                            self.depth += 1;
                            if self.depth > self.limits.depth {
                                return Err(Reject::new(
                                    Code::XmlLimit,
                                    format!(
                                        "line {}: elements nested more than {} deep",
                                        self.line, self.limits.depth
                                    ),
                                )
                                .into());
                            }
                        }
                        self.back_to_text();
                    } else {
                        self.state = State::Tag {
                            end,
                            quote,
                            last: b,
                        };
                    }
                }
                State::Bang => {
                    self.bang.push(b);
                    if self.bang == b"--" {
                        self.state = State::Comment;
                        self.tail = [0; 2];
                        self.run = 0;
                    } else if self.bang == b"[CDATA[" {
                        self.state = State::CData;
                        self.tail = [0; 2];
                        self.run = 0;
                    } else if self.bang.eq_ignore_ascii_case(b"DOCTYPE") {
                        return Err(Reject::new(
                            Code::XmlDoctype,
                            "document has a DOCTYPE; DTDs and entities are never accepted",
                        )
                        .into());
                    } else if !(b"--".starts_with(&self.bang)
                        || b"[CDATA[".starts_with(&self.bang)
                        || b"DOCTYPE".starts_with(&self.bang.to_ascii_uppercase()))
                    {
                        return Err(malformed(format!(
                            "line {}: markup `<!{}` is not a comment or CDATA section",
                            self.line,
                            crate::context::text::field(&String::from_utf8_lossy(&self.bang))
                        )));
                    }
                }
                State::Comment | State::CData | State::Pi => {
                    let (closing, max, what) = match self.state {
                        State::Comment => (b"--", self.limits.text, "a comment"),
                        State::CData => (b"]]", self.limits.text, "a CDATA section"),
                        _ => (b"?\0", self.limits.tag, "a processing instruction"),
                    };
                    if self.run > max {
                        return Err(self.limit(what, max));
                    }
                    let done = b == b'>'
                        && if self.state == State::Pi {
                            self.tail[1] == b'?'
                        } else {
                            &self.tail == closing
                        };
                    if done {
                        self.back_to_text();
                    } else {
                        self.tail = [self.tail[1], b];
                    }
                }
            }
        }
        Ok(())
    }

    fn back_to_text(&mut self) {
        self.state = State::Text;
        self.run = 0;
    }

    /// Characters XML 1.0 does not allow (C0 controls but tab, line feed and
    /// carriage return) are refused here, for every parser alike.
    fn check_chars(&mut self, bytes: &[u8], offset: u64) -> Result<()> {
        for (k, &b) in bytes.iter().enumerate() {
            if b < 0x20 {
                match b {
                    b'\n' => self.line += 1,
                    b'\t' | b'\r' => {}
                    _ => {
                        return Err(malformed(format!(
                            "line {}: control character U+{b:04X} at byte {} is not allowed in XML",
                            self.line,
                            offset + k as u64
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&self) -> Result<()> {
        if self.state != State::Text {
            return Err(malformed("the document ends inside markup"));
        }
        Ok(())
    }
}

/// [`normalize`] a file into `out` (created, 0600), reading it only if it is a
/// regular file (never through a symbolic link); with the SHA-256 (hex) of the
/// bytes read, which names a dropped file's content.
pub fn normalize_file(
    src: &Path,
    out: &Path,
    limits: Limits,
    cap: u64,
) -> Result<(Normalized, String)> {
    use sha2::Digest;
    let mut reader = crate::context::files::HashingReader {
        inner: crate::context::files::open_regular(src)?,
        sha256: Default::default(),
    };
    let mut w =
        std::io::BufWriter::with_capacity(1 << 20, crate::context::files::create_private(out)?);
    let n = normalize(
        std::io::BufReader::with_capacity(1 << 20, &mut reader),
        &mut w,
        limits,
        cap,
        src,
    )?;
    w.flush().at(out)?;
    Ok((n, hex::encode(reader.sha256.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(doc: &[u8]) -> std::result::Result<(String, Encoding), Code> {
        let mut out = Vec::new();
        match normalize(doc, &mut out, Limits::default(), u64::MAX, Path::new("t")) {
            Ok(n) => Ok((String::from_utf8(out).unwrap(), n.encoding)),
            Err(Error::Rejected(r)) => Err(r.code),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn encodings() {
        let (gbk, _, _) =
            encoding_rs::GBK.encode("<?xml version=\"1.0\" encoding=\"GBK\"?><a>上海</a>");
        let (text, enc) = run(&gbk).unwrap();
        assert_eq!(enc, Encoding::Gbk);
        assert_eq!(
            text,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>上海</a>"
        );
        assert_eq!(run(b"<a>x</a>").unwrap().0, "<a>x</a>");
        for bad in [
            &b"<?xml version=\"1.0\" encoding=\"UTF-7\"?><a/>"[..],
            b"<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?><a/>",
            b"\xFF\xFE<\0a\0/\0>\0",
            b"<a>\xC3</a>",
            b"<?xml version=\"1.0\" encoding=\"GBK\"?><a>\x81</a>",
        ] {
            assert_eq!(run(bad).unwrap_err(), Code::XmlEncoding, "{bad:?}");
        }
        // A GBK CDATA section with a byte invalid in GBK is refused, not replaced.
        assert_eq!(
            run(b"<?xml version=\"1.0\" encoding=\"GBK\"?><a><![CDATA[\x81\x20]]></a>")
                .unwrap_err(),
            Code::XmlEncoding
        );
    }

    #[test]
    fn limits() {
        assert_eq!(
            run(b"<!DOCTYPE a [<!ENTITY x \"y\">]><a/>").unwrap_err(),
            Code::XmlDoctype
        );
        assert_eq!(run(b"<a>\x01</a>").unwrap_err(), Code::XmlMalformed);
        let long = format!("<a>{}</a>", "x".repeat(20_000));
        assert_eq!(run(long.as_bytes()).unwrap_err(), Code::XmlLimit);
        let cdata = format!("<a><![CDATA[{}]]></a>", "<x".repeat(10_000));
        assert_eq!(run(cdata.as_bytes()).unwrap_err(), Code::XmlLimit);
        let attr = format!("<a b=\"{}\"/>", "y".repeat(20_000));
        assert_eq!(run(attr.as_bytes()).unwrap_err(), Code::XmlLimit);
        let deep = "<a>".repeat(40);
        assert_eq!(run(deep.as_bytes()).unwrap_err(), Code::XmlLimit);
        let ok = "<a b='>'><c/><!-- <x> --><![CDATA[ <y> ]]><?pi x?></a>";
        assert_eq!(run(ok.as_bytes()).unwrap().0, ok);
    }
}
