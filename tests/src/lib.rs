//! Helpers shared by zeropool's integration tests and benchmarks.
