//! berth-runtime: from a container's resolved config to a running, supervised process.
//!
//! * [`spec`] — the pure function that turns a container's resolved settings into an OCI runtime spec.
//! * [`proto`] — the framed wire format between the daemon and a container's shim.
//! * [`shim`] — `berth shim`: one small single-threaded process per container that mounts its root, creates
//!   it with berth's own runtime ([`container`]), holds its stdio, writes its json-file log, records its exit
//!   and serves attach/kill/start/exec on a unix socket. It outlives the daemon, so containers survive a
//!   daemon restart.
//! * [`container`] — the OCI spec as berth's launcher (`berth_sys::container`) takes it.
//! * [`cgroups`] — the container's cgroup (made, limited, frozen, removed) and its limits as cgroup v1 and
//!   v2 file writes.
//! * [`filter`] — seccomp filters compiled once per profile by the daemon and loaded by the shim.
//! * [`logfile`] — Docker's json-file log format with size-based rotation.

pub mod cgroups;
pub mod container;
pub mod filter;
pub mod logfile;
pub mod proto;
pub mod shim;
pub mod spec;
