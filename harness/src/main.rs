//! The `powercut` command.

fn main() {
    harness::keep_freed_memory();
    std::process::exit(harness::cli::main());
}
