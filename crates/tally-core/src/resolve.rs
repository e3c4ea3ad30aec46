//! Which handshake code a client request targets (SPEC section 1, resolution table).

/// What the (organization, handshake code) pair of a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The organization's default handshake code.
    DefaultOf { organization: String },
    /// That code; `organization` is set when the client named one, and then must own the code.
    Code {
        code: String,
        organization: Option<String>,
    },
    /// Neither given: a public trial, once per device.
    Trial,
}

/// Applies the resolution table. Surrounding whitespace is not significant.
pub fn resolve(organization: &str, handshake_code: &str) -> Target {
    let org = organization.trim();
    let code = handshake_code.trim();
    match (org.is_empty(), code.is_empty()) {
        (false, true) => Target::DefaultOf {
            organization: org.to_owned(),
        },
        (false, false) => Target::Code {
            code: code.to_owned(),
            organization: Some(org.to_owned()),
        },
        (true, false) => Target::Code {
            code: code.to_owned(),
            organization: None,
        },
        (true, true) => Target::Trial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_resolution_table() {
        assert_eq!(
            resolve("1001", ""),
            Target::DefaultOf {
                organization: "1001".into()
            }
        );
        assert_eq!(
            resolve("1001", "abc"),
            Target::Code {
                code: "abc".into(),
                organization: Some("1001".into())
            }
        );
        assert_eq!(
            resolve("", "abc"),
            Target::Code {
                code: "abc".into(),
                organization: None
            }
        );
        assert_eq!(resolve(" ", ""), Target::Trial);
    }
}
