//! What creating a file costs on this machine's file system, in a clean place and right after many deletions in
//! the same place: the effect that made every fresh run of the benchmark pay for the files of the run before it
//! (docs/BENCHMARKS.md, "Why the fresh runs each get a database of their own").
//!
//! ```sh
//! cargo run --release -p bench --bin fs-probe -- [DIR] [FILES]   # default: /var/tmp, 3000 files
//! ```
//!
//! It works in a new folder under DIR (PostgreSQL's data directory is on the same file system here) and removes
//! it at the end. Files are created as PostgreSQL creates a relation's: `O_CREAT | O_EXCL`, then closed.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = PathBuf::from(args.next().unwrap_or_else(|| "/var/tmp".to_owned()));
    let count: usize = match args.next() {
        Some(count) => count.parse().map_err(|_| invalid(&format!("FILES must be a number, not {count:?}")))?,
        None => 3000,
    };
    let root = base.join(format!("fs-probe-{}", std::process::id()));
    let outcome = probe(&root, count);
    let removed = std::fs::remove_dir_all(&root);
    outcome?;
    removed
}

fn probe(root: &Path, count: usize) -> std::io::Result<()> {
    let dir = root.join("relations");
    std::fs::create_dir_all(&dir)?;
    println!("{count} files a step, in {}", dir.display());
    println!("{:>7.0} µs a file: into a new folder", create(&dir, "clean", count)?);
    delete(&dir, "clean", count)?;
    // Deleted in the same second counts as not yet recent; a moment later it does.
    std::thread::sleep(Duration::from_millis(1500));
    println!("{:>7.0} µs a file: 1.5 s after deleting {count} in the same folder", create(&dir, "after", count)?);
    delete(&dir, "after", count)?;
    std::thread::sleep(Duration::from_millis(1500));
    let sibling = root.join("sibling");
    std::fs::create_dir_all(&sibling)?;
    println!(
        "{:>7.0} µs a file: 1.5 s after deleting {count}, in a new folder beside it",
        create(&sibling, "new", count)?
    );
    delete(&sibling, "new", count)?;
    Ok(())
}

/// Create `count` files and return the mean time a file, in microseconds.
fn create(dir: &Path, tag: &str, count: usize) -> std::io::Result<f64> {
    let started = Instant::now();
    for i in 0..count {
        OpenOptions::new().read(true).write(true).create_new(true).open(dir.join(format!("{tag}_{i}")))?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / count as f64)
}

fn delete(dir: &Path, tag: &str, count: usize) -> std::io::Result<()> {
    (0..count).try_for_each(|i| std::fs::remove_file(dir.join(format!("{tag}_{i}"))))
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_owned())
}
