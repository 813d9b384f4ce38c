//! Rebuilds the crate when migrations change, so `embed_migrations!` sees edited SQL.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
