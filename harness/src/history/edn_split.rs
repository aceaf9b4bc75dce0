//! Finds where each operation of an EDN history starts, so every message can name its line.
//!
//! The EDN crate parses values but reports no position for a value it parsed, so this scanner
//! only walks the document's structure: strings, comments, character literals, `#` prefixes
//! and brackets. Each form it cuts out is handed to the crate whole. A history is either one
//! top-level vector or list of operations (knossos' test data) or a sequence of top-level
//! operations (Jepsen's `history.edn`, one map per line).

/// One top-level operation form: the text of the form and the line it starts on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form<'a> {
    pub line: usize,
    pub text: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitError {
    pub line: usize,
    pub reason: String,
}

/// The operation forms of `text`, in document order.
pub fn operation_forms(text: &str) -> Result<Vec<Form<'_>>, SplitError> {
    let mut scanner = Scanner::new(text);
    scanner.skip_blank();
    let wrapped = match scanner.peek() {
        Some(open @ (b'[' | b'(')) => {
            scanner.bump();
            Some(if open == b'[' { b']' } else { b')' })
        }
        _ => None,
    };
    let mut forms = Vec::new();
    loop {
        scanner.skip_blank();
        match (scanner.peek(), wrapped) {
            (None, None) => return Ok(forms),
            (None, Some(close)) => {
                return Err(scanner.error(format!(
                    "the history's outer collection is never closed with `{}`",
                    close as char
                )));
            }
            (Some(c), Some(close)) if c == close => {
                scanner.bump();
                scanner.skip_blank();
                if scanner.peek().is_some() {
                    return Err(
                        scanner.error("text after the history's closing bracket".to_string())
                    );
                }
                return Ok(forms);
            }
            _ => {
                if let Some(form) = scanner.form()? {
                    forms.push(form);
                }
            }
        }
    }
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
        }
        self.pos += 1;
    }

    fn error(&self, reason: String) -> SplitError {
        SplitError {
            line: self.line,
            reason,
        }
    }

    /// Whitespace, commas (whitespace in EDN) and `;` comments.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b';' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                c if c.is_ascii_whitespace() || c == b',' => self.bump(),
                _ => return,
            }
        }
    }

    /// One whole form; `None` for a form discarded with `#_`.
    fn form(&mut self) -> Result<Option<Form<'a>>, SplitError> {
        let (start, line) = (self.pos, self.line);
        let kept = self.skip_form()?;
        Ok(kept.then(|| Form {
            line,
            text: &self.text[start..self.pos],
        }))
    }

    /// Moves past one form; false if it was a `#_` discard.
    fn skip_form(&mut self) -> Result<bool, SplitError> {
        match self.peek() {
            None => Err(self.error("the history ends inside a form".into())),
            Some(b'"') => self.skip_string().map(|()| true),
            Some(b'\\') => {
                // A character literal: the backslash and at least one character.
                self.bump();
                self.bump();
                self.skip_atom();
                Ok(true)
            }
            Some(b'#') => self.skip_dispatch(),
            Some(open @ (b'{' | b'[' | b'(')) => self.skip_collection(open).map(|()| true),
            Some(close @ (b'}' | b']' | b')')) => Err(self.error(format!(
                "unexpected `{}` with no collection open",
                close as char
            ))),
            Some(_) => {
                self.skip_atom();
                Ok(true)
            }
        }
    }

    /// `#{..}` a set, `#_ form` a discard, `#tag form` a tagged value (`#jepsen.history.Op{..}`).
    fn skip_dispatch(&mut self) -> Result<bool, SplitError> {
        self.bump();
        match self.peek() {
            Some(b'{') => self.skip_collection(b'{').map(|()| true),
            Some(b'_') => {
                self.bump();
                self.skip_blank();
                self.skip_form()?;
                Ok(false)
            }
            _ => {
                self.skip_atom();
                self.skip_blank();
                self.skip_form()
            }
        }
    }

    fn skip_collection(&mut self, open: u8) -> Result<(), SplitError> {
        let close = match open {
            b'{' => b'}',
            b'[' => b']',
            _ => b')',
        };
        let opened_on = self.line;
        self.bump();
        loop {
            self.skip_blank();
            match self.peek() {
                None => {
                    return Err(SplitError {
                        line: opened_on,
                        reason: format!("`{}` opened here is never closed", open as char),
                    });
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => {
                    self.skip_form()?;
                }
            }
        }
    }

    fn skip_string(&mut self) -> Result<(), SplitError> {
        let opened_on = self.line;
        self.bump();
        loop {
            match self.peek() {
                None => {
                    return Err(SplitError {
                        line: opened_on,
                        reason: "a string opened here is never closed".into(),
                    });
                }
                Some(b'\\') => {
                    self.bump();
                    self.bump();
                }
                Some(b'"') => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => self.bump(),
            }
        }
    }

    /// A symbol, keyword, number, `nil`, `true` or `false`: up to the next delimiter.
    fn skip_atom(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || b",;\"{}[]()".contains(&c) {
                return;
            }
            self.bump();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, &str)> {
        operation_forms(text)
            .expect("splits")
            .into_iter()
            .map(|f| (f.line, f.text))
            .collect()
    }

    #[test]
    fn a_wrapped_history_yields_its_elements_with_their_lines() {
        let text = "; comment\n[{:a 1}\n ; inside\n {:b \"x}\"}\n ({:c [1 2]})]\n";
        assert_eq!(
            lines(text),
            vec![(2, "{:a 1}"), (4, "{:b \"x}\"}"), (5, "({:c [1 2]})")]
        );
    }

    #[test]
    fn one_map_per_line_and_tagged_records_are_forms() {
        let text = "{:a 1}\n#jepsen.history.Op{:b 2}\n#_ {:discarded 3}\n{:c \\}}\n";
        assert_eq!(
            lines(text),
            vec![
                (1, "{:a 1}"),
                (2, "#jepsen.history.Op{:b 2}"),
                (4, "{:c \\}}")
            ]
        );
    }

    #[test]
    fn unbalanced_input_names_the_line_where_it_went_wrong() {
        let open = operation_forms("[{:a 1}\n {:b 2\n").expect_err("unclosed map");
        assert_eq!(open.line, 2);
        assert!(open.reason.contains("never closed"), "{}", open.reason);
        let stray = operation_forms("{:a 1}\n}\n").expect_err("stray close");
        assert_eq!(stray.line, 2);
        let string = operation_forms("{:a \"oops}\n").expect_err("unclosed string");
        assert_eq!(string.line, 1);
        let trailing = operation_forms("[{:a 1}]\n{:b 2}").expect_err("after the close");
        assert_eq!(trailing.line, 2);
    }
}
