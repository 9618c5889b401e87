//! Uploads from memory to a real Garage (`Transport::put_bytes`): one `PUT` for a small
//! object, a multipart upload on parallel streams for a large one, both read back equal
//! and replacing what was there.

use amsu_core::Transport;
use amsu_tests::garage::Garage;

/// `len` bytes that differ from offset to offset.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32 ^ seed).wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_put_bytes_single_and_multipart_round_trip() {
    let g = Garage::single();
    let t = g.transport(0, "mem");
    let dir = tempfile::tempdir().unwrap();
    let small = pattern(1000, 1);
    let big = pattern(19 * 1024 * 1024 + 7, 2);
    for (path, data) in [("a/small", &small), ("a/big", &big), ("a/small", &big)] {
        let n = t.put_bytes(data.clone().into(), path).await.unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(t.size(path).await.unwrap(), Some(data.len() as u64));
        let out = dir.path().join("out");
        let _ = std::fs::remove_file(&out);
        t.fetch(path, 0, &out).await.unwrap();
        assert!(std::fs::read(&out).unwrap() == *data, "{path} differs");
    }
    assert!(t.put_bytes("x".into(), "../escape").await.is_err());
}
