//! A secret value that cannot leak through `Debug`, `Display` or serde.

use std::fmt;

use zeroize::Zeroizing;

/// A plaintext secret value: zeroed on drop, `<redacted>` in Debug, no Display, no Serialize.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Wraps a plaintext value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(Zeroizing::new(value.into()))
    }

    /// The plaintext, for the few places that must see it (sealing, rendering).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        SecretValue::new(s)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let v = SecretValue::new("hunter2");
        assert_eq!(format!("{v:?}"), "SecretValue(<redacted>)");
        assert_eq!(format!("{:?}", Some(&v)), "Some(SecretValue(<redacted>))");
        assert_eq!(v.expose(), "hunter2");
    }
}
