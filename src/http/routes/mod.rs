//! The routes: one module per resource, each owning its handlers and, for the API, their
//! OpenAPI description. Which path each serves is in the router ([`super::router_with`]).

pub mod health;
pub mod lists;
pub mod metrics;
pub mod openapi;
pub mod order;
pub mod page;
pub mod stream;
