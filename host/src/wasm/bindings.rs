//! Host bindings generated from `wit/policy.wit`.

wasmtime::component::bindgen!({
    world: "policy-enforcer",
    path: "../wit",
});

pub use self::exports::portcullis::policy::enforcer as guest;
pub use self::portcullis::policy::host;
