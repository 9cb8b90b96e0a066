//! Debian's archive as data: control files, versions, a suite's package index, and
//! the closure of packages a build root needs (for the hermetic platform's roots).

pub mod apt_sources;
pub mod control;
pub mod index;
pub mod release;
pub mod resolve;
pub mod sources;
pub mod version;
