//! Mailroom: an example MCP server (mail and a SQLite database) embedding the Portcullis
//! policy layer, to show every policy feature against a real rmcp server.
//!
//! The server ([`server::Mailroom`]) knows nothing about policies; [`serve`] wraps it in
//! [`portcullis::mcp::PolicyLayer`] (or not, with `--no-policy`) and serves it over stdio or
//! streamable HTTP.

pub mod data;
pub mod db;
pub mod serve;
pub mod server;

pub use db::Database;
pub use serve::{Options, Policy};
pub use server::Mailroom;
