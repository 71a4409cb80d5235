//! Reading strace's output (`-f -xx -y`): one line per system call, `PID name(args) = ret`, with
//! every string and every `-y` path hex-escaped, calls split by another thread's line joined back
//! from `<unfinished ...>` and `<... name resumed>`.

use std::collections::BTreeMap;

/// One argument, as far as powercut needs to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A quoted string, decoded to its bytes.
    Bytes(Vec<u8>),
    /// A number or symbol with an optional `-y` path: `3<path>`, `AT_FDCWD<path>`.
    Word {
        /// The number or symbol as printed, without the path.
        text: String,
        /// The `-y` path between the angle brackets, decoded.
        path: Option<Vec<u8>>,
    },
    /// Anything bracketed (`[...]`, `{...}`), kept as text with its strings decoded in order.
    Nested {
        /// The whole argument as printed, brackets included, its strings still escaped.
        text: String,
        /// Every quoted string inside it, decoded, in the order they appear.
        strings: Vec<Vec<u8>>,
    },
}

impl Arg {
    /// The argument as a number (decimal or 0x hex), if it is one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Arg::Word { text, .. } => parse_int(text),
            _ => None,
        }
    }

    /// The symbolic text of a word argument (`O_RDWR|O_CREAT`, `AT_FDCWD`).
    pub fn text(&self) -> &str {
        match self {
            Arg::Word { text, .. } | Arg::Nested { text, .. } => text,
            Arg::Bytes(_) => "",
        }
    }

    /// The `-y` path of a descriptor argument.
    pub fn path(&self) -> Option<&[u8]> {
        match self {
            // Files are annotated with absolute paths; a pipe or a socket with `pipe:[N]`,
            // `socket:[N]`, which name nothing in a directory.
            Arg::Word { path, .. } => path.as_deref().filter(|p| p.starts_with(b"/")),
            _ => None,
        }
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    t.parse().ok()
}

/// A completed system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// The id of the process or thread that made the call (0 when the line has no pid).
    pub pid: u32,
    /// The system call's name (`openat`, `pwrite64`).
    pub name: String,
    /// The arguments, in order.
    pub args: Vec<Arg>,
    /// The return value (`-1` on an error) and its `-y` path, if any.
    pub ret: i64,
    /// The `-y` path of a returned descriptor (`= 3</d/log>`), decoded.
    pub ret_path: Option<Vec<u8>>,
    /// The errno name on failure (`EIO`).
    pub errno: Option<String>,
    /// strace's line number of the call's (last) line, for error messages.
    pub line: usize,
}

/// Joins split calls and parses each completed one.
#[derive(Debug, Default)]
pub struct Reader {
    unfinished: BTreeMap<u32, String>,
}

impl Reader {
    /// Feed one line; a completed system call comes back, and a process's end as the pseudo-call
    /// `exit`. Other lines that are not calls (signals) give `Ok(None)`; a call strace truncated
    /// is an error naming the line.
    pub fn line(&mut self, number: usize, line: &str) -> Result<Option<Syscall>, String> {
        let line = line.trim_end();
        let (pid, rest) = match line.split_once(char::is_whitespace) {
            Some((p, rest)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => (
                p.parse::<u32>().map_err(|e| format!("line {number}: pid {p}: {e}"))?,
                rest.trim_start(),
            ),
            _ => (0, line),
        };
        // A process that ended closes every descriptor it held: "+++ exited with N +++" or
        // "+++ killed by SIGKILL +++" becomes the pseudo-call `exit`.
        if rest.starts_with("+++ exited") || rest.starts_with("+++ killed") {
            return Ok(Some(Syscall {
                pid,
                name: "exit".into(),
                args: Vec::new(),
                ret: 0,
                ret_path: None,
                errno: None,
                line: number,
            }));
        }
        if rest.starts_with("---") || rest.starts_with("+++") || rest.is_empty() {
            return Ok(None);
        }
        let whole = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            self.unfinished.insert(pid, head.trim_end().to_string());
            return Ok(None);
        } else if let Some(tail) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = tail.split_once(" resumed>") else {
                return Err(format!("line {number}: cannot read the resumed call: {rest}"));
            };
            let Some(head) = self.unfinished.remove(&pid) else {
                return Err(format!("line {number}: a call resumed that never started: {rest}"));
            };
            // A call split after a complete argument resumes with ", next"; one split inside the
            // argument list resumes with the rest of it.
            let sep = if head.ends_with('(') || tail.starts_with(',') || tail.starts_with(')') {
                ""
            } else {
                ", "
            };
            format!("{head}{sep}{tail}")
        } else {
            rest.to_string()
        };
        parse_call(pid, number, &whole).map(Some)
    }
}

fn parse_call(pid: u32, line: usize, text: &str) -> Result<Syscall, String> {
    let open = text.find('(').ok_or_else(|| format!("line {line}: not a system call: {text}"))?;
    let name = text[..open].to_string();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("line {line}: not a system call: {text}"));
    }
    let (args, after) =
        split_args(&text[open + 1..]).map_err(|e| format!("line {line}: {e}: {text}"))?;
    let after = after.trim_start();
    let ret_text = after
        .strip_prefix('=')
        .map(str::trim)
        .ok_or_else(|| format!("line {line}: no return value: {text}"))?;
    if ret_text.starts_with('?') {
        // The process exited inside the call (exit_group): nothing returned.
        return Ok(Syscall {
            pid,
            name,
            args,
            ret: 0,
            ret_path: None,
            errno: Some("?".into()),
            line,
        });
    }
    let word_end = ret_text.find(' ').unwrap_or(ret_text.len());
    let word =
        parse_word(&ret_text[..word_end]).map_err(|e| format!("line {line}: {e}: {text}"))?;
    let ret =
        word.int().ok_or_else(|| format!("line {line}: return value is not a number: {text}"))?;
    let errno =
        (ret < 0).then(|| ret_text[word_end..].split_whitespace().next().unwrap_or("").to_string());
    let ret_path = word.path().map(<[u8]>::to_vec);
    Ok(Syscall { pid, name, args, ret, ret_path, errno, line })
}

/// Split `a, b, [c, d], {e=f}) = ...` at top-level commas up to the closing parenthesis; returns
/// the arguments and the text after it.
fn split_args(text: &str) -> Result<(Vec<Arg>, &str), String> {
    let bytes = text.as_bytes();
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= bytes.len() {
                    return Err("an unterminated string".into());
                }
                if text[i + 1..].starts_with("...") {
                    return Err("strace truncated a string (raise -s)".into());
                }
            }
            b'<' => {
                // A -y path: hex-escaped, so no brackets inside.
                while i < bytes.len() && bytes[i] != b'>' {
                    i += 1;
                }
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'(' => depth += 1,
            b',' if depth == 0 => {
                args.push(parse_arg(text[start..i].trim())?);
                start = i + 1;
            }
            b')' if depth == 0 => {
                let last = text[start..i].trim();
                if !last.is_empty() {
                    args.push(parse_arg(last)?);
                }
                return Ok((args, &text[i + 1..]));
            }
            b')' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    Err("no closing parenthesis".into())
}

fn parse_arg(text: &str) -> Result<Arg, String> {
    if text.starts_with('"') {
        let end = text.rfind('"').filter(|e| *e > 0).ok_or("an unterminated string")?;
        return Ok(Arg::Bytes(unescape(&text[1..end])?));
    }
    if text.starts_with('[') || text.starts_with('{') {
        let mut strings = Vec::new();
        let mut rest = text;
        while let Some(q) = rest.find('"') {
            let body = &rest[q + 1..];
            let mut end = 0;
            let b = body.as_bytes();
            while end < b.len() && b[end] != b'"' {
                end += if b[end] == b'\\' { 2 } else { 1 };
            }
            strings.push(unescape(&body[..end.min(body.len())])?);
            rest = &body[(end + 1).min(body.len())..];
        }
        return Ok(Arg::Nested { text: text.to_string(), strings });
    }
    parse_word(text)
}

fn parse_word(text: &str) -> Result<Arg, String> {
    let text = text.trim();
    match text.find('<') {
        Some(lt) => {
            let close = text.rfind('>').filter(|c| *c > lt).ok_or("an unterminated <path>")?;
            Ok(Arg::Word {
                text: text[..lt].to_string(),
                path: Some(unescape(&text[lt + 1..close])?),
            })
        }
        None => Ok(Arg::Word { text: text.to_string(), path: None }),
    }
}

/// Decode strace's escapes (`-xx` writes every byte as `\xNN`; `\n`, `\t`, `\"`, `\\` and plain
/// characters are accepted too).
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 4);
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1).ok_or("a string ends in a backslash")?;
        match c {
            b'x' => {
                let hex = text.get(i + 2..i + 4).ok_or("a short \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?);
                i += 4;
            }
            b'n' => (out.push(b'\n'), i += 2).1,
            b't' => (out.push(b'\t'), i += 2).1,
            b'r' => (out.push(b'\r'), i += 2).1,
            b'v' => (out.push(0x0b), i += 2).1,
            b'f' => (out.push(0x0c), i += 2).1,
            b'0'..=b'7' => {
                let digits: String =
                    text[i + 1..].chars().take(3).take_while(|c| c.is_digit(8)).collect();
                out.push(
                    u8::from_str_radix(&digits, 8).map_err(|_| format!("bad escape \\{digits}"))?,
                );
                i += 1 + digits.len();
            }
            other => (out.push(other), i += 2).1,
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `s` as strace `-xx` prints it: every byte `\\xNN`.
    pub(crate) fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("\\x{b:02x}")).collect()
    }

    #[test]
    fn reads_a_write_with_its_fd_path_and_bytes() {
        let line = format!("42  write(3<{}>, \"{}\", 3) = 3", hex("/d/log"), hex("a\0\u{7f}"));
        let call = Reader::default().line(1, &line).unwrap().unwrap();
        assert_eq!((call.pid, call.name.as_str(), call.ret), (42, "write", 3));
        assert_eq!(call.args[0].int(), Some(3));
        assert_eq!(call.args[0].path(), Some(&b"/d/log"[..]));
        assert_eq!(call.args[1], Arg::Bytes(b"a\0\x7f".to_vec()));
    }

    #[test]
    fn joins_unfinished_and_resumed_lines() {
        let mut r = Reader::default();
        let head =
            format!("7 pwrite64(5<{}>, \"{}\", 2, 10 <unfinished ...>", hex("/d/x"), hex("hi"));
        assert_eq!(r.line(1, &head).unwrap(), None);
        assert_eq!(r.line(2, "8 close(9) = 0").unwrap().unwrap().name, "close");
        let call = r.line(3, "7 <... pwrite64 resumed>) = 2").unwrap().unwrap();
        assert_eq!(call.name, "pwrite64");
        assert_eq!(call.args.len(), 4);
        assert_eq!(call.args[3].int(), Some(10));
    }

    #[test]
    fn a_truncated_string_is_an_error_and_failures_keep_their_errno() {
        let mut r = Reader::default();
        let err = r.line(4, &format!("1 write(3, \"{}\"..., 100) = 100", hex("ab"))).unwrap_err();
        assert!(err.contains("line 4") && err.contains("truncated"), "{err}");
        let call = r.line(5, "1 fsync(3) = -1 EIO (Input/output error)").unwrap().unwrap();
        assert_eq!((call.ret, call.errno.as_deref()), (-1, Some("EIO")));
    }

    #[test]
    fn reads_writev_vectors_and_symbolic_flags() {
        let line = format!(
            "1 writev(3<{}>, [{{iov_base=\"{}\", iov_len=2}}, {{iov_base=\"{}\", iov_len=2}}], 2) = 4",
            hex("/d/f"),
            hex("ab"),
            hex("cd")
        );
        let call = Reader::default().line(1, &line).unwrap().unwrap();
        match &call.args[1] {
            Arg::Nested { strings, .. } => {
                assert_eq!(strings, &vec![b"ab".to_vec(), b"cd".to_vec()])
            }
            other => panic!("{other:?}"),
        }
        let open = format!(
            "1 openat(AT_FDCWD<{}>, \"{}\", O_RDWR|O_CREAT, 0644) = 4<{}>",
            hex("/w"),
            hex("f"),
            hex("/w/f")
        );
        let call = Reader::default().line(1, &open).unwrap().unwrap();
        assert_eq!(call.args[0].text(), "AT_FDCWD");
        assert_eq!(call.args[2].text(), "O_RDWR|O_CREAT");
        assert_eq!(call.ret_path.as_deref(), Some(&b"/w/f"[..]));
    }
}
