pub mod config;
pub mod discovery;
pub mod flow;
pub mod http;
pub mod jose;
pub mod secret;
pub mod validate;
