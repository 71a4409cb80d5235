//! Architecture invariant: the engine takes I/O, time and randomness only from its Vfs. Its
//! source never names `std::fs`, the wall clock, threads (outside the real-disk runner) or an RNG.

/// Forbidden names found in `source`, as (line number, name).
fn forbidden(source: &str, allow_threads: bool) -> Vec<(usize, &'static str)> {
    let mut names = vec!["std::fs", "Instant::now", "SystemTime", "rand::", "thread_rng"];
    if !allow_threads {
        names.extend(["std::thread", "thread::spawn"]);
    }
    let mut found = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        found.extend(names.iter().filter(|n| code.contains(*n)).map(|n| (i + 1, *n)));
    }
    found
}

#[test]
fn the_engine_names_no_filesystem_clock_thread_or_rng() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let runner = path.file_name().is_some_and(|n| n == "runner.rs");
        let found = forbidden(&source, runner);
        assert!(found.is_empty(), "{}: {found:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 7, "read the engine's sources: {checked}");
}

#[test]
fn the_check_catches_a_violation() {
    let bad = "fn f() { let _ = std::fs::read(\"x\"); let _ = std::time::Instant::now(); }";
    assert_eq!(forbidden(bad, false).len(), 2);
    assert_eq!(forbidden("std::thread::sleep(d);", false).len(), 1);
    assert!(forbidden("std::thread::sleep(d);", true).is_empty());
    assert!(forbidden("// std::fs in a comment is fine", false).is_empty());
}
