//! Sets `has_test_database` when `TALLY_TEST_DATABASE_URL` names a PostgreSQL database for the
//! tests; without it the PostgreSQL tests are reported as ignored, with the reason, rather than
//! as passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_test_database)");
    println!("cargo::rerun-if-env-changed=TALLY_TEST_DATABASE_URL");
    if std::env::var_os("TALLY_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=has_test_database");
    }
}
