//! Test support shared by the three test binaries (integration, observability, faults), each
//! of which includes it with `#[path = "../common/mod.rs"] mod common;`. One way to do each
//! thing: names, databases, the broker, the built binary (and a running `serve` of it),
//! counts, rejections, the sample order and changed copies of it, waiting, and the in-process
//! service.

// Each binary uses a part of this module; what one binary leaves unused is dead code there.
#![allow(dead_code)]

pub mod app;
pub mod binary;
pub mod counts;
pub mod database;
pub mod kafka;
pub mod names;
pub mod rejections;
pub mod sample;
pub mod serve;
pub mod settings;
pub mod tls;
pub mod wait;
