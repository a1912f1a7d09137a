//! berth-build: Dockerfiles as data.
//!
//! - [`parser`]: the Dockerfile syntax (parser directives, comments, line continuations, heredocs, JSON and
//!   shell forms, instruction flags) into typed instructions with their line numbers;
//! - [`shell`]: Docker's word expansion (`$VAR`, `${VAR:-x}`, quotes and escapes) and word splitting;
//! - [`duration`]: Go durations (`HEALTHCHECK --interval=30s`);
//! - [`ignore`]: `.dockerignore` patterns with Docker's rules (`!` exceptions, `**`, last match wins).
//!
//! Executing a build (containers, layers, the cache) is the engine's job; this crate only describes.

pub mod duration;
pub mod ignore;
pub mod parser;
pub mod shell;
