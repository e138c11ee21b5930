//! The text log's field formatter: every value is written through an escaper,
//! so nothing a client sends can start a line of its own or reach a terminal
//! as a control sequence.
//!
//! tracing's own formatter escapes only the message. A field given with `%`
//! (Display), such as a request's path or a login name that failed, went out
//! as it came: a login name of `x\nFAKE LINE` made a second line, and a path
//! may carry raw UTF-8 such as U+009B (the 8-bit introducer of terminal
//! control sequences) or U+202E (which reverses the text after it). The JSON
//! format is safe from new lines (its strings escape C0 controls) and is left
//! as it is.

use std::{
    cell::RefCell,
    fmt::{self, Write},
};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{FormatFields, format::Writer},
};

/// Formats fields as tracing's default does (`name=value`, separated by
/// spaces, values in their Debug form, the message bare), escaped, and with
/// every value that is not plain quoted (see [`write_value`]).
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Fields { out: writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Fields<'w> {
    out: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let sep = if std::mem::take(&mut self.first) { "" } else { " " };
        self.result = match field.name() {
            "message" => {
                self.out.write_str(sep).and_then(|()| write!(Escaped(&mut self.out), "{value:?}"))
            }
            name => {
                write!(self.out, "{sep}{name}=").and_then(|()| write_value(&mut self.out, value))
            }
        };
    }
}

/// A field's value: as it is when plain (a number, a method, a path without
/// spaces, quotes, `=` or backslashes) or already a quoted string (a value
/// logged in its Debug form), otherwise quoted and escaped as a Rust string.
/// A value logged with `%` as it came, a login name of `x action="ok"`,
/// would otherwise read as more fields, and a backslash in it as an escape.
fn write_value(out: &mut Writer<'_>, value: &dyn fmt::Debug) -> fmt::Result {
    // Every request logs a few fields: one buffer per thread, not one per
    // field (a fresh one if a value's own formatting logs meanwhile).
    thread_local!(static TEXT: RefCell<String> = const { RefCell::new(String::new()) });
    let mut write = |text: &mut String| {
        text.clear();
        write!(text, "{value:?}")?;
        match is_plain(text) || is_quoted(text) {
            true => write!(Escaped(&mut *out), "{text}"),
            false => write!(Escaped(&mut *out), "{text:?}"),
        }
    };
    TEXT.with(|t| match t.try_borrow_mut() {
        Ok(mut text) => write(&mut text),
        Err(_) => write(&mut String::new()),
    })
}

fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '=' | '\\') || unsafe_char(c))
}

/// A string literal as Debug writes one: quotes around, no quote inside
/// that a backslash does not escape.
fn is_quoted(text: &str) -> bool {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return false,
            '"' => return false,
            _ => {}
        }
    }
    true
}

/// Writes text with every character that could end a line, steer a
/// terminal or reorder what is shown replaced by its `\u{…}` escape.
pub struct Escaped<W>(pub W);

impl<W: Write> Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(unsafe_char) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(self.0, "\\u{{{:x}}}", c as u32)?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// Control characters (C0, DEL, C1), the Unicode line and paragraph
/// separators, and the marks and overrides of bidirectional text.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn text_that_could_forge_a_line_or_steer_a_terminal_is_escaped() {
        let mut out = String::new();
        write!(Escaped(&mut out), "a\nb\u{1b}[31mc\u{9b}d\u{202e}e\u{2028}f\u{7f}g é ✓").unwrap();
        assert_eq!(out, "a\\u{a}b\\u{1b}[31mc\\u{9b}d\\u{202e}e\\u{2028}f\\u{7f}g é ✓");
    }

    #[test]
    fn a_log_line_stays_one_line_and_its_fields_cannot_multiply() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(sink.clone()))
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        let login = "ev\u{1b}[31mil\nFAKE LINE";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", id = "abc", user = tracing::field::Empty);
            span.record("user", "bob\u{9b}");
            let _in = span.enter();
            tracing::warn!(login = %login, status = 401, "authentication failed");
            let (fake, path) = ("x action=\"ok\"", r"/a b\u{a}x");
            tracing::info!(login = %fake, %path, method = %"GET", ms = ?"0.25", "request");
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines.iter().all(|l| !l.chars().any(unsafe_char)), "{text}");
        assert!(lines[0].contains(r#"request{id="abc" user="bob\u{9b}"}: "#), "{text}");
        assert!(
            lines[0]
                .ends_with(r#"authentication failed login="ev\u{1b}[31mil\nFAKE LINE" status=401"#),
            "{text}"
        );
        assert!(
            lines[1].ends_with(
                r#"request login="x action=\"ok\"" path="/a b\\u{a}x" method=GET ms="0.25""#
            ),
            "{text}"
        );
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
