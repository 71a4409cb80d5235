//! harness tests
