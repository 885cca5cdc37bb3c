//! kefu's integration tests: one binary, one module per pipeline stage.

mod access;
mod analysis;
mod browser;
mod check;
mod cli;
mod fusion;
mod gaps;
mod http;
mod kb;
mod ranking;
mod reload;
mod search;
mod semantic;
mod soak;
mod support;
