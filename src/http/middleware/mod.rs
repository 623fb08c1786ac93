//! The layers around the routes, each its own concern; their order, and why, is in the
//! documentation of [`crate::http`].

pub mod access_line;
pub mod error_answer;
pub mod guard;
pub mod observe;
pub mod request_id;
pub mod trace_context;
