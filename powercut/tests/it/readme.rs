//! The README shows what the commands print today. Every `$ powercut ...` line in its code
//! blocks is run, in a scratch directory holding the black-box examples (a `trace` gets a fresh,
//! empty `data`), and every output line shown under it must appear, in order, in what the
//! command prints. Left aside: the scratch directory's path (the README says `/tmp`), timings (a
//! line with `states/s`, a closing `, N.N s`), and a `...` line, which stands for lines left out.

use std::path::Path;
use std::process::Command;

/// Each fenced code block's lines.
fn code_blocks(text: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        if line.starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(Vec::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push(line);
        }
    }
    blocks
}

/// Split a command line as sh would, for the quoting the README uses (single quotes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// A line as compared: a closing elapsed time dropped, and a summary table row's last column
/// (states/s).
fn comparable(line: &str) -> String {
    let time = regex::Regex::new(r", \d+(\.\d+)? s$").unwrap();
    let row = regex::Regex::new(r"^([a-z0-9_.-]+ +\d+ +\d+ +\d+ +\d+ +.*?) +\d+$").unwrap();
    let line = time.replace(line.trim_end(), "");
    row.replace(&line, "$1").into_owned()
}

#[test]
fn the_readme_shows_what_the_commands_print() {
    let readme = include_str!("../../../README.md");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/blackbox");
    let mut commands = 0;
    for block in code_blocks(readme) {
        if !block.iter().any(|l| l.starts_with("$ powercut ")) {
            continue;
        }
        let scratch = tempfile::tempdir().unwrap();
        for py in ["kvstore.py", "powercut_check.py", "sqlite_kv.py"] {
            std::fs::copy(examples.join(py), scratch.path().join(py)).unwrap();
        }
        let dir = scratch.path().display().to_string();
        let mut lines = block.iter().peekable();
        while let Some(line) = lines.next() {
            let Some(command) = line.strip_prefix("$ powercut ") else { continue };
            let mut shown = Vec::new();
            while let Some(next) = lines.peek().filter(|l| !l.starts_with("$ ")) {
                shown.push(*next);
                lines.next();
            }
            let args = words(command);
            if args.first().map(String::as_str) == Some("trace") {
                let data = scratch.path().join("data");
                let _ = std::fs::remove_dir_all(&data);
                std::fs::create_dir(&data).unwrap();
            }
            let o = Command::new(env!("CARGO_BIN_EXE_powercut"))
                .args(&args)
                .current_dir(scratch.path())
                .output()
                .unwrap();
            let printed = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .replace(&dir, "/tmp");
            let printed: Vec<String> = printed.lines().map(comparable).collect();
            let mut at = 0;
            for want in shown.iter().filter(|l| l.trim() != "..." && !l.contains("states/s")) {
                let want = comparable(want);
                match printed[at..].iter().position(|l| *l == want) {
                    Some(i) => at += i + 1,
                    None => panic!(
                        "README: `powercut {command}` no longer prints\n  {want}\nafter what \
                         matched so far; it printed:\n{}",
                        printed.join("\n")
                    ),
                }
            }
            commands += 1;
        }
    }
    assert!(commands >= 6, "only {commands} README commands found: the parser lost them");
}
