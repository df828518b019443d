//! Compiles `proto/notify.proto` without a system `protoc`: protox (a pure-Rust protobuf
//! compiler) produces the descriptor set, prost-build the message types the gateway uses,
//! and tonic-prost-build the server trait that the tests' real gRPC upstream implements
//! (it refers to the crate's own message types, so both sides share one definition).
use std::{env, io, path::PathBuf};

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto/notify.proto");
    let fds = protox::compile(["notify.proto"], ["proto"])
        .map_err(|e| io::Error::other(e.to_string()))?;

    prost_build::Config::new()
        .bytes(["."])
        .btree_map(["."])
        .compile_fds(fds.clone())?;

    let tonic_out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("tonic");
    std::fs::create_dir_all(&tonic_out)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .out_dir(&tonic_out)
        .extern_path(".notify.v2", "::smtpgate::notify")
        .compile_fds(fds)
}
