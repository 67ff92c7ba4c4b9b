//! Rebuild when the console's production build changes: `src/ui.rs` embeds every file of
//! `prompt-ui/dist`, whose names change with their content hashes.

fn main() {
    println!("cargo:rerun-if-changed=../prompt-ui/dist");
}
