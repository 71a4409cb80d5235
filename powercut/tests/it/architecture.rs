//! Architecture invariant: the harness knows an engine only through `Subject`. Outside the
//! built-in subject, its bug table, the durability report and the built-in binary's entry point,
//! no source names the built-in engine.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Lines of `source` that name the built-in engine (comments aside).
fn naming_the_engine(source: &str) -> Vec<usize> {
    let names = ["engine::", "Bitcask", "bitcask::"];
    let mut found = Vec::new();
    // The built-in binary's entry point is allowed to name it.
    let mut in_builtin = false;
    for (i, line) in source.lines().enumerate() {
        if line.starts_with("pub fn builtin_main") {
            in_builtin = true;
        } else if in_builtin && line.starts_with('}') {
            in_builtin = false;
        }
        let code = line.split("//").next().unwrap_or("");
        if !in_builtin && names.iter().any(|n| code.contains(n)) {
            found.push(i + 1);
        }
    }
    found
}

#[test]
fn only_the_built_in_subject_names_the_built_in_engine() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let allowed = ["bitcask.rs", "bugs.rs", "report.rs", "report_html.rs", "lib.rs"];
    let mut checked = 0;
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if allowed.contains(&name.as_str()) {
            continue;
        }
        let found = naming_the_engine(&std::fs::read_to_string(&path).unwrap());
        assert!(
            found.is_empty(),
            "{} names the built-in engine at lines {found:?}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 15, "checked {checked} files");
}

#[test]
fn the_check_sees_a_name() {
    assert_eq!(naming_the_engine("use engine::Config;\n// engine:: in a comment"), [1]);
    assert!(naming_the_engine("pub fn builtin_main() {\n    x::<Bitcask>()\n}").is_empty());
    assert_eq!(naming_the_engine("fn f() { Bitcask }"), [1]);
}
