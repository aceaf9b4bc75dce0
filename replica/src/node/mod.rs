//! The tokio node that runs one core in a real process (being built).

mod intercept;

pub use intercept::{Honest, InterceptContext, Interceptor};
