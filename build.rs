//! Compiles the gateway init (`init/src/main.rs`, std only) with plain `rustc` into a static
//! binary that the front door carries inside itself (`include_bytes!` in
//! `src/gateways/init.rs`) and puts into a Docker volume for its gateway containers. Plain
//! `rustc` rather than a nested `cargo build`: the outer build holds the target directory's lock.
// A build script reports failure by panicking (cargo shows the message); the variables it
// expects are always set by cargo.
#![allow(clippy::expect_used)]

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "init/src/main.rs";
    // The whole directory: main.rs has modules (wire.rs).
    println!("cargo:rerun-if-changed=init/src");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("mcp-frontdoor-init");
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let mut cmd = Command::new(&rustc);
    cmd.args([
        "--edition=2021",
        "--crate-type=bin",
        "--crate-name=mcp_frontdoor_init",
        "-Copt-level=s",
        "-Cpanic=abort",
        "-Cstrip=symbols",
        "-Ccodegen-units=1",
        // Gateway images are often FROM scratch: no dynamic loader, no libc.
        "-Ctarget-feature=+crt-static",
        "--target",
        &target,
        "-o",
    ])
    .arg(&out)
    .arg(src);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {rustc} for the gateway init failed: {e}"));
    if !output.status.success() {
        panic!(
            "compiling the gateway init ({src}) as a static binary for {target} failed; \
             a static C library is needed (Debian: libc6-dev, or the musl target):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
