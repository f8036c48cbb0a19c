//! Parsing the host's command lines: `AT<basic>[<digits>]` and
//! `AT+<NAME>[?|=?|=<args>]`, chained with `;`. Nothing here panics on any input.

/// How a command failed: plain `ERROR` or `+CME ERROR: <code>` (shown per `AT+CMEE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmdError {
    /// Syntax error or unknown command: `ERROR`.
    Error,
    /// `+CME ERROR: <code>`.
    Cme(u16),
}

/// What a command handler produced.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Information lines, then `OK`.
    Lines(Vec<String>),
    /// The handler wrote everything itself (data mode, `OK` then something else...).
    Handled,
}

impl Reply {
    pub(crate) fn ok() -> Self {
        Reply::Lines(Vec::new())
    }

    pub(crate) fn line(s: impl Into<String>) -> Self {
        Reply::Lines(vec![s.into()])
    }
}

pub(crate) type CmdResult = Result<Reply, CmdError>;

/// The form of an extended command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// `AT+X`
    Exec,
    /// `AT+X?`
    Read,
    /// `AT+X=?`
    Test,
    /// `AT+X=<args>`
    Write,
}

/// One parameter as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Arg {
    pub(crate) text: String,
    pub(crate) quoted: bool,
}

/// The parameters of a write command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Args(pub(crate) Vec<Arg>);

impl Args {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, i: usize) -> Option<&Arg> {
        self.0.get(i).filter(|a| a.quoted || !a.text.is_empty())
    }

    /// Whether parameter `i` is present (not empty).
    pub(crate) fn has(&self, i: usize) -> bool {
        self.get(i).is_some()
    }

    /// A required unquoted integer.
    pub(crate) fn num(&self, i: usize) -> Result<i64, CmdError> {
        self.opt_num(i)?.ok_or(CmdError::Error)
    }

    /// An optional unquoted integer.
    pub(crate) fn opt_num(&self, i: usize) -> Result<Option<i64>, CmdError> {
        match self.get(i) {
            None => Ok(None),
            Some(a) if a.quoted => Err(CmdError::Error),
            Some(a) => {
                let t = a.text.as_str();
                let digits = t.strip_prefix('-').unwrap_or(t);
                if digits.is_empty()
                    || digits.len() > 12
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(CmdError::Error);
                }
                t.parse::<i64>().map(Some).map_err(|_| CmdError::Error)
            }
        }
    }

    /// A required integer in `lo..=hi`.
    pub(crate) fn ranged(&self, i: usize, lo: i64, hi: i64) -> Result<i64, CmdError> {
        let v = self.num(i)?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(CmdError::Error)
        }
    }

    /// An optional integer in `lo..=hi`, with a default.
    pub(crate) fn ranged_or(
        &self,
        i: usize,
        lo: i64,
        hi: i64,
        default: i64,
    ) -> Result<i64, CmdError> {
        match self.opt_num(i)? {
            None => Ok(default),
            Some(v) if (lo..=hi).contains(&v) => Ok(v),
            Some(_) => Err(CmdError::Error),
        }
    }

    /// A required string, quoted or not.
    pub(crate) fn text(&self, i: usize) -> Result<&str, CmdError> {
        self.get(i).map(|a| a.text.as_str()).ok_or(CmdError::Error)
    }

    /// A required quoted string.
    pub(crate) fn quoted(&self, i: usize) -> Result<&str, CmdError> {
        match self.get(i) {
            Some(a) if a.quoted => Ok(a.text.as_str()),
            _ => Err(CmdError::Error),
        }
    }
}

/// One parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Command {
    /// Upper-case name: `""` for bare `AT`, `"E"`, `"I"`, `"&W"`, `"+QHTTPGET"`, ...
    pub(crate) name: String,
    pub(crate) form: Form,
    pub(crate) args: Args,
    /// The command as written (without `AT`), for logs and fault matching.
    pub(crate) text: String,
}

/// Splits a line at `;` outside quotes. `None` for unbalanced quotes.
pub(crate) fn split_chain(line: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&line[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    let last = &line[start..];
    if !last.trim().is_empty() || parts.is_empty() {
        parts.push(last);
    }
    Some(parts)
}

/// Parses one command (with or without the leading `AT`).
pub(crate) fn parse_command(cmd: &str) -> Result<Command, CmdError> {
    let cmd = cmd.trim();
    let body = match cmd.get(..2) {
        Some(head) if head.eq_ignore_ascii_case("AT") => &cmd[2..],
        _ => cmd,
    };
    let text = body.to_string();
    if body.is_empty() {
        return Ok(Command {
            name: String::new(),
            form: Form::Exec,
            args: Args::default(),
            text,
        });
    }
    if let Some(rest) = body.strip_prefix('+') {
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len == 0 {
            return Err(CmdError::Error);
        }
        let name = format!("+{}", rest[..name_len].to_ascii_uppercase());
        let tail = &rest[name_len..];
        let (form, args) = if tail.is_empty() {
            (Form::Exec, Args::default())
        } else if tail == "?" {
            (Form::Read, Args::default())
        } else if tail == "=?" {
            (Form::Test, Args::default())
        } else if let Some(a) = tail.strip_prefix('=') {
            (Form::Write, parse_args(a)?)
        } else {
            return Err(CmdError::Error);
        };
        return Ok(Command {
            name,
            form,
            args,
            text,
        });
    }
    // Basic command: a letter (or & + letter), optional digits, optional `?`.
    let bytes = body.as_bytes();
    let (name_len, name) = if bytes[0] == b'&' {
        if bytes.len() < 2 || !bytes[1].is_ascii_alphabetic() {
            return Err(CmdError::Error);
        }
        (2, body[..2].to_ascii_uppercase())
    } else if bytes[0].is_ascii_alphabetic() {
        (1, body[..1].to_ascii_uppercase())
    } else {
        return Err(CmdError::Error);
    };
    let tail = &body[name_len..];
    let (form, args) = if tail.is_empty() {
        (Form::Exec, Args::default())
    } else if tail == "?" {
        (Form::Read, Args::default())
    } else if tail.bytes().all(|b| b.is_ascii_digit()) && tail.len() <= 3 {
        (
            Form::Write,
            Args(vec![Arg {
                text: tail.to_string(),
                quoted: false,
            }]),
        )
    } else {
        return Err(CmdError::Error);
    };
    Ok(Command {
        name,
        form,
        args,
        text,
    })
}

/// Splits `a,"b,c",,d` into parameters. Quotes delimit strings (no escapes inside).
pub(crate) fn parse_args(s: &str) -> Result<Args, CmdError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut text = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            quoted = true;
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                text.push(c);
            }
            if !closed {
                return Err(CmdError::Error);
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err(CmdError::Error),
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(CmdError::Error);
                }
                text.push(c);
                chars.next();
            }
            let trimmed = text.trim_end().to_string();
            text = trimmed;
        }
        out.push(Arg { text, quoted });
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(_) => return Err(CmdError::Error),
        }
    }
    Ok(Args(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let c = parse_command("AT+QHTTPGET=80,12").unwrap();
        assert_eq!(c.name, "+QHTTPGET");
        assert_eq!(c.form, Form::Write);
        assert_eq!(c.args.num(1), Ok(12));
        assert_eq!(parse_command("at+cpin?").unwrap().form, Form::Read);
        assert_eq!(parse_command("AT+QHTTPGETEX=?").unwrap().form, Form::Test);
        assert_eq!(parse_command("ATE0").unwrap().name, "E");
        assert_eq!(parse_command("AT&W").unwrap().name, "&W");
        assert_eq!(parse_command("AT").unwrap().name, "");
        assert!(parse_command("AT+").is_err());
        assert!(parse_command("AT+X=\"a").is_err());
        assert!(parse_command("ATE0x").is_err());
        assert!(parse_command("AT#").is_err());
    }

    #[test]
    fn parses_args() {
        let a = parse_args("1,\"a,b\",,x").unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a.quoted(1), Ok("a,b"));
        assert!(!a.has(2));
        assert_eq!(a.text(3), Ok("x"));
        assert!(a.num(3).is_err());
        assert!(parse_args("\"a\"b").is_err());
    }

    #[test]
    fn chains() {
        assert_eq!(
            split_chain("AT+A;+B=\"x;y\"").unwrap(),
            vec!["AT+A", "+B=\"x;y\""]
        );
        assert!(split_chain("AT+A=\"").is_none());
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "\u{0}\u{ff}",
            "AT\u{e9}",
            "AT+\u{1F600}",
            "&",
            "AT&",
            "AT&1",
            "A",
            "AT+X==",
            ",,,",
        ] {
            let _ = parse_command(s);
            let _ = parse_args(s);
            let _ = split_chain(s);
        }
    }
}
