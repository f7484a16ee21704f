pub mod browser;
pub mod cli;
pub mod config;
pub mod discovery;
mod error;
pub mod flow;
pub mod http;
pub mod jose;
pub mod secret;
pub mod session;
pub mod store;
pub mod validate;

pub use error::{Error, Kind};
