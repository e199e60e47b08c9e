//! Broken rules, collected: [`Issues`] gathers every problem of a document, and the two
//! refusals that list them, [`ValidationError`] (catalog rules) and [`PolicyError`] (what its
//! author may not declare), are what [`super::error::CatalogError`] carries.

use std::fmt;

/// At most this many issues are reported; more would only bury the first one.
const MAX_ISSUES: usize = 50;

/// One broken rule: where (`registry.<server>.<field>`) and what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Dotted location, e.g. `registry.github.image`.
    pub path: String,
    /// What is wrong, phrased as what to fix.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All the issues found in one document (never empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Every issue found, up to a cap, in document order.
    pub issues: Vec<Issue>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "invalid catalog ({n} problem{}): ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Collects issues; `Err` only at the end so the caller sees all of them at once.
#[derive(Default)]
pub(crate) struct Issues(Vec<Issue>);

impl Issues {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.0.len() < MAX_ISSUES {
            self.0.push(Issue {
                path: path.into(),
                message: message.into(),
            });
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Issue> {
        self.0
    }

    pub(crate) fn finish(self) -> Result<(), ValidationError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { issues: self.0 })
        }
    }
}

/// A refusal: every field the policy rejects, and whether it was found in stored files.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The user whose stored layers broke the policy (a merge, not a write, found it).
    pub stored_for: Option<String>,
    /// What was refused, `custom.registry.<server>.<field>` / `overrides.<server>.<field>` /
    /// `registry.<server>.<field>`.
    pub issues: Vec<Issue>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        match &self.stored_for {
            Some(slug) => write!(
                f,
                "the catalog layers stored for user {slug} break the catalog policy; replace \
                 them (PUT /api/v1/users/{{user}}/catalogs) or remove them ({n} problem{}): ",
                if n == 1 { "" } else { "s" }
            )?,
            None => write!(
                f,
                "refused by the catalog policy ({n} problem{}): ",
                if n == 1 { "" } else { "s" }
            )?,
        }
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}
