//! End-to-end tests against the `syncchat` binary as a process.

mod process;
mod restart;
