//! The `powercut` command: the command line of the built-in Bitcask engine, plus the durability
//! report and black-box mode.

fn main() {
    powercut::cli::builtin_main()
}
