//! `docs/sdk/c.md` and `docs/sdk/cpp.md` quote, unchanged, the examples the end-to-end tests
//! compile and run: each follows a `<!-- path -->` line, in a fenced block.

use std::path::Path;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The fenced block of `language` right after the `<!-- path -->` line of `doc`.
fn quoted<'a>(doc: &'a str, path: &str, language: &str) -> Option<&'a str> {
    let marker = format!("<!-- {path} -->\n```{language}\n");
    let start = doc.find(&marker)? + marker.len();
    let length = doc[start..].find("\n```\n")? + 1;
    Some(&doc[start..start + length])
}

fn check(page: &str, example: &str, language: &str) {
    let root = Path::new(ROOT);
    let doc = std::fs::read_to_string(root.join("docs/sdk").join(page)).unwrap();
    let file = std::fs::read_to_string(root.join(example)).unwrap();
    let shown = quoted(&doc, example, language).unwrap_or_else(|| {
        panic!("docs/sdk/{page} should quote {example} after `<!-- {example} -->`")
    });
    assert!(
        shown == file,
        "docs/sdk/{page} quotes another {example} than the file: copy the file into the page"
    );
}

#[test]
fn the_c_page_quotes_the_c_example() {
    check("c.md", "crates/tally-sdk-c/examples/c/minimal.c", "c");
}

#[test]
fn the_cpp_page_quotes_the_cpp_example() {
    check(
        "cpp.md",
        "crates/tally-sdk-c/examples/cpp/minimal.cpp",
        "cpp",
    );
}

#[test]
fn a_page_that_drifted_from_its_example_is_noticed() {
    let doc = "<!-- a.c -->\n```c\nint main(void) { return 0; }\n```\n";
    assert_eq!(
        quoted(doc, "a.c", "c"),
        Some("int main(void) { return 0; }\n")
    );
    assert_eq!(quoted(doc, "b.c", "c"), None);
}
