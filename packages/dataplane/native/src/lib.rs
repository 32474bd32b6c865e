//! Bollard's ingress data plane: the snapshot TypeScript hands over, the one request matcher, and the HTTP
//! proxy that executes it. The N-API surface (feature `node`) is in `node.rs`; everything else is plain Rust
//! that `cargo test` exercises without Node.
#![deny(unsafe_code)]

pub mod body;
pub mod conn;
pub mod h1;
pub mod head;
pub mod logs;
pub mod metrics;
pub mod outcome;
pub mod passthrough;
pub mod paths;
pub mod policy;
pub mod proxy;
pub mod request_id;
pub mod rewind;
pub mod snapshot;
pub mod table;
pub mod tls;
pub mod trim;
pub mod trust;
pub mod upgrade;
pub mod upstream;

#[cfg(feature = "node")]
#[allow(unsafe_code)] // only what napi-derive generates; the hand-written unsafe is trim.rs's malloc_trim call
mod node;
