//! The tools that make and replay traffic, apart from the service's pipeline: [`send`]
//! produces orders (or a file's lines) to the orders topic, [`generator`] makes the fake
//! orders and bad messages it sends and prints them for `generate`, and [`replay`] re-checks
//! recorded rejections (`replay-rejected`).

pub mod generator;
pub mod replay;
pub mod send;
