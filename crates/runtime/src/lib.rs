//! berth-runtime: from a container's resolved config to a running, supervised process.
//!
//! * [`spec`] — the pure function that turns a container's resolved settings into an OCI runtime spec.
//! * [`proto`] — the framed wire format between the daemon and a container's shim.
//! * [`shim`] — `berth shim`: one small single-threaded process per container that mounts its root, creates
//!   it with youki's `libcontainer`, holds its stdio, writes its json-file log, records its exit and serves
//!   attach/kill/start on a unix socket. It outlives the daemon, so containers survive a daemon restart.
//! * [`filter`] — seccomp filters compiled once per profile by the daemon and loaded by the shim.
//! * [`logfile`] — Docker's json-file log format with size-based rotation.

pub mod filter;
pub mod logfile;
pub mod proto;
pub mod shim;
pub mod spec;
