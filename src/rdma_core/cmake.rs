//! A CMake-language reader: enough to list the command invocations of a
//! `CMakeLists.txt` with their arguments (quoted, bracket and unquoted arguments,
//! line and bracket comments, nested parentheses). It never evaluates anything.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct CmakeError {
    pub line: usize,
    pub message: String,
}

/// One command invocation, `name(arg ...)`; the name lower-cased as CMake compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: Vec<String>,
    pub line: usize,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Lexer<'_> {
    fn err(&self, message: impl Into<String>) -> CmakeError {
        CmakeError {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// `[[`, `[=[`, … at the cursor: the number of `=`.
    fn bracket_open(&self) -> Option<usize> {
        if self.peek() != Some(b'[') {
            return None;
        }
        let mut j = self.i + 1;
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        (self.s.get(j) == Some(&b'[')).then_some(j - self.i - 1)
    }

    fn bracket_body(&mut self, level: usize) -> Result<String, CmakeError> {
        let start_line = self.line;
        for _ in 0..level + 2 {
            self.bump();
        }
        let close: Vec<u8> = std::iter::once(b']')
            .chain(std::iter::repeat_n(b'=', level))
            .chain(std::iter::once(b']'))
            .collect();
        let start = self.i;
        while self.i < self.s.len() {
            if self.s[self.i..].starts_with(&close) {
                let body = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                for _ in 0..close.len() {
                    self.bump();
                }
                return Ok(body);
            }
            self.bump();
        }
        Err(CmakeError {
            line: start_line,
            message: "unterminated bracket argument or comment".into(),
        })
    }

    fn skip_space_and_comments(&mut self) -> Result<(), CmakeError> {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.bump();
            } else if c == b'#' {
                self.bump();
                if let Some(level) = self.bracket_open() {
                    self.bracket_body(level)?;
                } else {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
            } else {
                break;
            }
        }
        Ok(())
    }

    fn quoted(&mut self) -> Result<String, CmakeError> {
        let start_line = self.line;
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => {
                    return Err(CmakeError {
                        line: start_line,
                        message: "unterminated quoted argument".into(),
                    })
                }
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    Some(b'n') => out.push(b'\n'),
                    Some(b't') => out.push(b'\t'),
                    Some(b'\n') => {}
                    Some(c) => out.push(c),
                    None => return Err(self.err("unterminated escape")),
                },
                Some(c) => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn unquoted(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || c == b'(' || c == b')' || c == b'#' || c == b'"' {
                break;
            }
            if c == b'\\' {
                self.bump();
                if let Some(c) = self.bump() {
                    out.push(c);
                }
                continue;
            }
            out.push(c);
            self.bump();
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn arguments(&mut self) -> Result<Vec<String>, CmakeError> {
        let open_line = self.line;
        let mut args = Vec::new();
        let mut depth = 0usize;
        loop {
            self.skip_space_and_comments()?;
            match self.peek() {
                None => {
                    return Err(CmakeError {
                        line: open_line,
                        message: "unbalanced parentheses: command is not closed".into(),
                    })
                }
                Some(b')') => {
                    self.bump();
                    if depth == 0 {
                        return Ok(args);
                    }
                    depth -= 1;
                    args.push(")".into());
                }
                Some(b'(') => {
                    self.bump();
                    depth += 1;
                    args.push("(".into());
                }
                Some(b'"') => args.push(self.quoted()?),
                Some(_) => {
                    if let Some(level) = self.bracket_open() {
                        args.push(self.bracket_body(level)?);
                    } else {
                        args.push(self.unquoted());
                    }
                }
            }
        }
    }
}

/// All command invocations of a CMake file, in order.
pub fn parse(text: &str) -> Result<Vec<Command>, CmakeError> {
    let mut lx = Lexer {
        s: text.as_bytes(),
        i: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        lx.skip_space_and_comments()?;
        let Some(c) = lx.peek() else { break };
        if !(c.is_ascii_alphabetic() || c == b'_') {
            return Err(lx.err(format!("expected a command name, found {:?}", c as char)));
        }
        let line = lx.line;
        let start = lx.i;
        while lx
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            lx.bump();
        }
        let name = String::from_utf8_lossy(&lx.s[start..lx.i]).to_ascii_lowercase();
        while lx.peek().is_some_and(|c| c == b' ' || c == b'\t') {
            lx.bump();
        }
        if lx.peek() != Some(b'(') {
            return Err(lx.err(format!("command {name} is not followed by '('")));
        }
        lx.bump();
        let args = lx.arguments()?;
        out.push(Command { name, args, line });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_arguments() {
        let text = "# comment\nrdma_provider(rxe\n  ${TRACE_FILE} # why\n  rxe.c\n  )\n\
                    set(X \"a b\\\"c\" [=[raw ]] text]=])\nif((A) AND B)\nendif()\n#[[ block\ncomment ]]\nx()";
        let cmds = parse(text).unwrap();
        let names: Vec<_> = cmds.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rdma_provider", "set", "if", "endif", "x"]);
        assert_eq!(cmds[0].args, ["rxe", "${TRACE_FILE}", "rxe.c"]);
        assert_eq!(cmds[1].args, ["X", "a b\"c", "raw ]] text"]);
        assert_eq!(cmds[2].args, ["(", "A", ")", "AND", "B"]);
        assert_eq!(cmds[4].line, 11);
    }

    #[test]
    fn malformed_input_names_the_line() {
        for (text, msg, line) in [
            ("a(b\n", "not closed", 1),
            ("a(\"b\n)", "unterminated quoted", 1),
            ("\n\nfoo bar", "not followed", 3),
            ("(x)", "expected a command", 1),
            ("#[[ open", "unterminated bracket", 1),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(msg), "{text:?}: {e}");
            assert_eq!(e.line, line, "{text:?}");
        }
    }
}
