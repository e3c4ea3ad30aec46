//! Validation fields: where a request to a handshake code may come from (domains, app ids,
//! process names), with `*` and `?` wildcards. An empty list allows anything.

use tally_proto::admin::ValidationRules;
use tally_proto::wire::ValidationField;

/// Matches `text` against `pattern`, where `*` is any run of characters and `?` one character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `*` (linear for typical patterns).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn allowed(patterns: &[String], value: Option<&str>, fold_case: bool) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let Some(value) = value else { return false };
    let value = if fold_case {
        value.to_ascii_lowercase()
    } else {
        value.to_owned()
    };
    patterns.iter().any(|p| {
        let p = if fold_case {
            p.to_ascii_lowercase()
        } else {
            p.clone()
        };
        wildcard_match(&p, &value)
    })
}

/// Checks a request's fields against the rules; the error names the field that failed.
pub fn check(rules: &ValidationRules, field: &ValidationField) -> Result<(), &'static str> {
    if !allowed(&rules.domains, field.domain.as_deref(), true) {
        return Err("domain");
    }
    if !allowed(&rules.app_ids, field.app_id.as_deref(), false) {
        return Err("app id");
    }
    if !allowed(&rules.process_names, field.process.as_deref(), false) {
        return Err("process name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.example.com", "app.example.com"));
        assert!(!wildcard_match("*.example.com", "example.com"));
        assert!(wildcard_match("scan?r", "scaner"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxbyy"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
    }

    #[test]
    fn rules_apply_per_field() {
        let rules = ValidationRules {
            domains: vec!["*.Acme.com".into()],
            app_ids: vec![],
            process_names: vec!["scanner.exe".into()],
        };
        let mut f = ValidationField {
            domain: Some("portal.acme.COM".into()),
            app_id: None,
            process: Some("scanner.exe".into()),
        };
        assert_eq!(check(&rules, &f), Ok(()));
        f.process = Some("other.exe".into());
        assert_eq!(check(&rules, &f), Err("process name"));
        f.domain = None;
        assert_eq!(check(&rules, &f), Err("domain"));
        assert_eq!(
            check(&ValidationRules::default(), &ValidationField::default()),
            Ok(())
        );
    }
}
