//! The binary's allocator settings (src/main.rs): mimalloc's options that bound `serve`'s
//! peak RSS are set before `main`, by name as mimalloc itself lists them, and the
//! environment still overrides them.

use crate::common::binary::command;

/// Asserts that mimalloc's listing of its options (`MIMALLOC_VERBOSE=1`), from
/// `order-service --version` with `overrides` in its environment, holds each of `wanted`.
fn assert_listed(overrides: &[(&str, &str)], wanted: &[&str]) {
    let mut version = command("--version");
    version
        .env_remove("MIMALLOC_ARENA_EAGER_COMMIT")
        .env_remove("MIMALLOC_PURGE_DELAY")
        .env("MIMALLOC_VERBOSE", "1")
        .envs(overrides.iter().copied());
    let output = version.output().expect("order-service --version runs");
    assert!(output.status.success(), "{output:?}");
    let listing = String::from_utf8_lossy(&output.stderr);
    for wanted in wanted {
        assert!(listing.contains(wanted), "{wanted:?} not in:\n{listing}");
    }
}

#[test]
fn mimalloc_gives_memory_back_by_default() {
    assert_listed(
        &[],
        &[
            "option 'arena_eager_commit': 0 ",
            "option 'purge_delay': 10 ",
        ],
    );
}

#[test]
fn the_environment_overrides_the_allocator_settings() {
    assert_listed(
        &[
            ("MIMALLOC_ARENA_EAGER_COMMIT", "2"),
            ("MIMALLOC_PURGE_DELAY", "1000"),
        ],
        &[
            "option 'arena_eager_commit': 2 ",
            "option 'purge_delay': 1000 ",
        ],
    );
}
