//! Packet ids as a script gives them: a literal, a `{n}` placeholder, a
//! variable captured earlier, or (when none is given) the client's next.

use super::{Run, StepAt, StepError};
use crate::model::IdSpec;

impl Run<'_> {
    /// The id `spec` stands for now; a variable not yet captured or a
    /// placeholder that is not a number is a script error.
    pub(crate) fn resolve_id(&self, at: StepAt<'_>, spec: &IdSpec) -> Result<u16, StepError> {
        match spec {
            IdSpec::Literal(n) => Ok(*n),
            IdSpec::Template(t) => {
                let text = self.ph.expand(t);
                text.parse().map_err(|_| {
                    StepError::Harness(format!(
                        "{}: packet id {text:?} is not a number from 0 to 65535 (script error)",
                        at.location
                    ))
                })
            }
            IdSpec::Var(v) => self.vars.get(v).copied().ok_or_else(|| {
                StepError::Harness(format!(
                    "{}: packet id variable ${v} is used before an expectation captured it (script error)",
                    at.location
                ))
            }),
        }
    }

    /// The id `spec` stands for, or `client`'s next one when it is `None`.
    pub(crate) fn id_for(
        &mut self,
        at: StepAt<'_>,
        client: &str,
        spec: Option<&IdSpec>,
    ) -> Result<u16, StepError> {
        match spec {
            Some(s) => self.resolve_id(at, s),
            None => Ok(self.client_mut(client).alloc_id()),
        }
    }
}
