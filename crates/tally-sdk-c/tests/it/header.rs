//! `include/tally.h` is what cbindgen makes of the crate now; `TALLY_UPDATE_HEADER=1` rewrites
//! it. cbindgen is given the source files one by one, in the order the header should show them,
//! rather than the crate: it then needs no `cargo metadata` (which would fetch the crates of every
//! platform), and `lib.rs`, which only declares and re-exports, is left out.

use std::collections::BTreeSet;
use std::path::Path;

/// Every module, in header order: types, making and configuring a handle, using it, errors.
const MODULES: &[&str] = &[
    "types.rs",
    "handle.rs",
    "setup.rs",
    "calls.rs",
    "errors.rs",
    "vectors.rs",
    "boundary.rs",
];

#[test]
fn the_committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = crate_dir.join("src");
    let present: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lib.rs")
        .collect();
    let listed: BTreeSet<String> = MODULES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(present, listed, "list every module of src/ in MODULES");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut builder = cbindgen::Builder::new().with_config(config);
    for module in MODULES {
        builder = builder.with_src(src.join(module));
    }
    let mut generated = Vec::new();
    builder.generate().unwrap().write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();

    let path = crate_dir.join("include/tally.h");
    if std::env::var("TALLY_UPDATE_HEADER").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/tally.h is stale: run `TALLY_UPDATE_HEADER=1 cargo test -p tally-sdk-c --test it header`"
    );
}
