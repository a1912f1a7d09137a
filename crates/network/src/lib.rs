//! berth-network: everything a container's network is made of.
//!
//! - [`ipam`]: address pools, subnets and per-network address allocation, as pure data (the engine persists
//!   the allocations with its network records, so they survive a daemon restart);
//! - [`link`]: bridges and veth pairs over netlink, behind the [`link::Links`] trait (real: rtnetlink;
//!   a recording fake for tests);
//! - [`firewall`]: the whole rule set berth needs (masquerade, isolation, published ports) described as data
//!   and applied as one atomic nftables transaction, behind the [`firewall::Firewall`] trait;
//! - [`ports`]: host port reservations for published ports;
//! - [`dns`]: the embedded DNS server (127.0.0.11 inside a container's namespace on user networks);
//! - [`sysctl`]: the few kernel settings networking needs.
//!
//! Network namespaces themselves are created and entered through `berth_sys::netns`.

pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod ports;
pub mod sysctl;

pub use error::{NetworkError, Result};
