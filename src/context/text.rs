//! Printing text that came from a peer or a dropped file: control characters
//! (C0, DEL, C1, line and paragraph separators, bidirectional overrides) are
//! shown escaped, so a field value cannot forge a log line, a status line or a
//! view, and long values are cut.

use std::borrow::Cow;

/// Characters that would move the cursor, start a new line or reorder text.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `text` with every unsafe character written as `\u{XX}`, cut after `max`
/// characters (marked with `…`).
pub fn printable(text: &str, max: usize) -> Cow<'_, str> {
    let long = text.chars().nth(max).is_some();
    if !long && !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max * 4) + 8);
    for c in text.chars().take(max) {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    if long {
        out.push('…');
    }
    Cow::Owned(out)
}

/// [`printable`] with the length used for one value in a line of output.
pub fn field(text: &str) -> Cow<'_, str> {
    printable(text, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(printable("上海 A&B", 10), "上海 A&B");
        assert_eq!(printable("a\nb\r\u{85}c", 10), "a\\u{a}b\\u{d}\\u{85}c");
        assert_eq!(printable("x\u{202E}y", 10), "x\\u{202e}y");
        assert_eq!(printable("abcdef", 3), "abc…");
    }
}
