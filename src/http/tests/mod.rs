//! The HTTP layer's unit tests: the router in-process (`oneshot`) over one fake store
//! ([`fake_store`], set up through [`support`]), split by behaviour. No database, no Kafka,
//! no socket.

mod fake_store;
mod support;

mod errors;
mod front;
mod health;
mod limits;
mod lists;
mod lookup_limit;
mod observe;
mod operator;
mod order;
mod routing;
mod stream;
