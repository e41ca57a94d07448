//! End-to-end tests against the `syncchat` binary as a process.

mod cluster;
mod console;
mod faults;
mod observability;
mod process;
mod restart;
