//! `walsnap-powercut`: powercut's whole command line (run, replay, shrink, merge, list) for walsnap.

fn main() {
    powercut::cli::main::<walsnap::Subject>()
}
