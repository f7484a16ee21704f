pub mod config;
pub mod http;
pub mod jose;
pub mod secret;
