//! Per-user secrets, sealed with AES-256-GCM under a rotating master key ring (DESIGN.md §3).

mod name;

pub use name::check_secret_name;
