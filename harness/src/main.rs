//! The `powercut` command.

fn main() {
    std::process::exit(harness::cli::main());
}
