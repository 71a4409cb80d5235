//! What one power-cut crash image costs, next to copying the data it would otherwise copy.
//!
//! A 16 MiB durable data file plus a 100-record unsynced tail: take a crash point, sample a state
//! and materialize it, many times; then copy 16 MiB the same number of times. Run with
//! `cargo run --release -p faultfs --example crash_cost`.

use faultfs::{OpenOptions, Profile, SimFs, Vfs, VfsFile};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Instant;

const FILE_BYTES: usize = 16 << 20;
const ROUNDS: u32 = 2_000;

fn main() -> std::io::Result<()> {
    let fs = SimFs::with_profile(Profile::posix());
    let f = fs.open("0000000001.data", OpenOptions::create())?;
    f.write_all_at(&vec![0xabu8; FILE_BYTES], 0)?;
    f.sync_data()?;
    fs.sync_dir()?;
    for i in 0..100u64 {
        f.write_all_at(&[i as u8; 100], FILE_BYTES as u64 + i * 100)?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let space = fs.crash_point_now().power_cut_space();
        let image = space.materialize(&space.sample(&mut rng));
        black_box(image.file_state("0000000001.data"));
    }
    let crash_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    let data = vec![0xabu8; FILE_BYTES];
    let start = Instant::now();
    for _ in 0..ROUNDS / 10 {
        black_box(data.clone());
    }
    let copy_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS / 10);
    println!("crash point + sampled state + image: {crash_us:.1} us");
    println!("copying the 16 MiB file once:        {copy_us:.1} us");
    println!("ratio: {:.1}x cheaper than a copy", copy_us / crash_us);
    Ok(())
}
