//! The contract's sample order (`tests/fixtures/sample-order.json`).

/// The sample order from the contract.
pub const SAMPLE: &str = include_str!("../fixtures/sample-order.json");
