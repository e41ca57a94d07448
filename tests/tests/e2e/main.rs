#![allow(clippy::unwrap_used, clippy::expect_used, clippy::large_futures)] // test code: a failed step stops the test with its reason
//! End-to-end tests against the `syncchat` binary as a process.

mod cluster;
mod console;
mod faults;
mod observability;
mod process;
mod restart;
mod webhooks;
