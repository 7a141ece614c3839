//! Checkpoints (round trips and every failure mode), data sets, loaders and file readers.
use kiln_core::{DType, Tensor};
use kiln_nn::data::*;
use kiln_nn::serialize::*;
use kiln_nn::*;
use std::path::PathBuf;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-nn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn model(seed: u64) -> Sequential {
    let vs = VarStore::new(DType::F32, seed);
    Sequential::new()
        .add(Linear::new(&vs.pp(0), 4, 8).unwrap())
        .add(BatchNorm1d::new_1d(&vs.pp(1), 8).unwrap())
        .add(ReLU)
        .add(Linear::new(&vs.pp(3), 8, 3).unwrap())
}

#[test]
fn module_round_trip_and_atomic_write() {
    let d = tmpdir("roundtrip");
    let p = d.join("m.safetensors");
    let a = model(1);
    a.forward(&Tensor::ones([5, 4], DType::F32).unwrap()).unwrap(); // moves running stats
    save_module(&a, &p).unwrap();
    let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
    let b = model(2);
    load_module(&b, &p).unwrap();
    for ((na, ta), (nb, tb)) in state_dict(&a).iter().zip(state_dict(&b).iter()) {
        assert_eq!(na, nb);
        assert_eq!(ta.to_vec_f64().unwrap(), tb.to_vec_f64().unwrap(), "{na}");
    }
    a.eval();
    b.eval();
    let x = Tensor::ones([2, 4], DType::F32).unwrap();
    assert_eq!(
        a.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        b.forward(&x).unwrap().to_vec::<f32>().unwrap()
    );
}

#[test]
fn checkpoint_errors_name_the_tensor_and_never_panic() {
    let d = tmpdir("errors");
    let p = d.join("m.safetensors");
    let a = model(1);
    save_module(&a, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let target = model(3);
    let before = state_dict(&target);
    let unchanged = |t: &Sequential| {
        for ((_, x), (_, y)) in before.iter().zip(state_dict(t).iter()) {
            assert_eq!(x.to_vec_f64().unwrap(), y.to_vec_f64().unwrap());
        }
    };

    // Truncated file.
    for cut in [0, 5, 8, 40, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(d.join("t.safetensors"), &bytes[..cut]).unwrap();
        let e = load_module(&target, d.join("t.safetensors")).unwrap_err().to_string();
        assert!(e.contains("t.safetensors") && e.contains("truncated or corrupt"), "cut {cut}: {e}");
    }
    // Corrupted header.
    let mut bad = bytes.clone();
    for b in &mut bad[8..40] {
        *b = b'#';
    }
    std::fs::write(d.join("c.safetensors"), &bad).unwrap();
    assert!(load_module(&target, d.join("c.safetensors")).is_err());
    // Missing file.
    let e = load_module(&target, d.join("nope.safetensors")).unwrap_err().to_string();
    assert!(e.contains("nope.safetensors"), "{e}");
    // Missing tensor.
    let mut sd = state_dict(&a);
    sd.retain(|(n, _)| n != "3.bias");
    save_safetensors(d.join("missing.safetensors"), &sd, None).unwrap();
    let e = load_module(&target, d.join("missing.safetensors")).unwrap_err().to_string();
    assert!(e.contains("`3.bias` is missing"), "{e}");
    // Shape mismatch.
    let mut sd = state_dict(&a);
    for (n, t) in sd.iter_mut() {
        if n == "0.weight" {
            *t = Tensor::zeros([8, 5], DType::F32).unwrap();
        }
    }
    save_safetensors(d.join("shape.safetensors"), &sd, None).unwrap();
    let e = load_module(&target, d.join("shape.safetensors")).unwrap_err().to_string();
    assert!(e.contains("`0.weight`") && e.contains("[8, 5]") && e.contains("[8, 4]"), "{e}");
    // Unexpected extra tensor (strict).
    let mut sd = state_dict(&a);
    sd.push(("9.weight".into(), Tensor::zeros([1], DType::F32).unwrap()));
    save_safetensors(d.join("extra.safetensors"), &sd, None).unwrap();
    let e = load_module(&target, d.join("extra.safetensors")).unwrap_err().to_string();
    assert!(e.contains("9.weight"), "{e}");
    unchanged(&target);
}

#[test]
fn optimizer_state_round_trip_resumes_identically() {
    let d = tmpdir("optim");
    let run = |steps: usize, resume: Option<&std::path::Path>| -> Vec<f32> {
        let vs = VarStore::new(DType::F32, 5);
        let lin = Linear::new(&vs, 3, 2).unwrap();
        let mut opt = Adam::new(lin.parameters(), 0.01).unwrap().amsgrad(true);
        let x = Tensor::from_slice(&[1f32, 2., 3., -1., 0.5, 2.], [2, 3]).unwrap();
        if let Some(p) = resume {
            load_module(&lin, p.join("m.safetensors")).unwrap();
            load_optimizer(&mut opt, p.join("o.safetensors")).unwrap();
        }
        for _ in 0..steps {
            let loss = lin.forward(&x).unwrap().square().unwrap().sum_all().unwrap();
            opt.backward_step(&loss).unwrap();
        }
        if resume.is_none() && steps == 3 {
            save_module(&lin, d.join("m.safetensors")).unwrap();
            save_optimizer(&opt, d.join("o.safetensors")).unwrap();
        }
        lin.weight.tensor().to_vec::<f32>().unwrap()
    };
    let straight = run(6, None);
    run(3, None);
    let resumed = run(3, Some(&d));
    assert_eq!(straight, resumed);
    // State for another parameter count is refused.
    let vs = VarStore::new(DType::F32, 5);
    let lin = Linear::with_bias(&vs, 3, 2, false).unwrap();
    let mut opt = Adam::new(lin.parameters(), 0.01).unwrap();
    let e = load_optimizer(&mut opt, d.join("o.safetensors")).unwrap_err().to_string();
    assert!(e.contains("2 parameters"), "{e}");
}

#[test]
fn varstore_save_load() {
    let d = tmpdir("vs");
    let a = VarStore::new(DType::F64, 1);
    Linear::new(&a.pp("enc"), 3, 2).unwrap();
    a.save(d.join("vs.safetensors")).unwrap();
    let b = VarStore::new(DType::F64, 2);
    let lb = Linear::new(&b.pp("enc"), 3, 2).unwrap();
    b.load(d.join("vs.safetensors")).unwrap();
    assert_eq!(
        lb.weight.tensor().to_vec::<f64>().unwrap(),
        a.named_vars()[0].1.tensor().to_vec::<f64>().unwrap()
    );
    assert_eq!(a.named_vars()[0].0, "enc.weight");
}

fn idx_bytes(ty: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, ty, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(payload);
    b
}

#[test]
fn idx_reader_good_truncated_and_corrupt() {
    let d = tmpdir("idx");
    // u8 images [2, 2, 3]
    let img: Vec<u8> = (0..12).collect();
    std::fs::write(d.join("img.idx"), idx_bytes(0x08, &[2, 2, 3], &img)).unwrap();
    let t = read_idx(d.join("img.idx")).unwrap();
    assert_eq!(t.dims(), &[2, 2, 3]);
    assert_eq!(t.dtype(), DType::U8);
    assert_eq!(t.to_vec::<u8>().unwrap(), img);
    // i32 and f32 big-endian
    let ints: Vec<u8> = [-5i32, 70000].iter().flat_map(|v| v.to_be_bytes()).collect();
    let t = parse_idx(&idx_bytes(0x0C, &[2], &ints), "mem").unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![-5, 70000]);
    let fl: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    assert_eq!(
        parse_idx(&idx_bytes(0x0D, &[2], &fl), "mem").unwrap().to_vec::<f32>().unwrap(),
        vec![1.5, -2.0]
    );
    // labels + gz, then the MNIST pair loader
    let lab = idx_bytes(0x08, &[2], &[3, 9]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &lab).unwrap();
    std::fs::write(d.join("lab.idx.gz"), gz.finish().unwrap()).unwrap();
    let ds = read_mnist(d.join("img.idx"), d.join("lab.idx.gz")).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.y.to_vec::<i64>().unwrap(), vec![3, 9]);
    assert!((ds.x.to_vec::<f32>().unwrap()[11] - 11.0 / 255.0).abs() < 1e-7);
    // Failures.
    let full = idx_bytes(0x08, &[2, 2, 3], &img);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (full[..full.len() - 1].to_vec(), "truncated"),
        (full[..6].to_vec(), "truncated header"),
        ([full.clone(), vec![1]].concat(), "trailing data"),
        (vec![0, 0], "too short"),
        (idx_bytes(0x07, &[1], &[0]), "unknown element type"),
        ([vec![1u8], full[1..].to_vec()].concat(), "bad magic"),
        (idx_bytes(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[]), "overflow"),
        (idx_bytes(0x08, &[60000, 28, 28], &[0; 100]), "truncated"),
    ];
    for (bytes, want) in cases {
        std::fs::write(d.join("bad.idx"), &bytes).unwrap();
        let e = read_idx(d.join("bad.idx")).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("bad.idx"), "want `{want}`: {e}");
    }
    std::fs::write(d.join("bad.gz"), [0x1f, 0x8b, 1, 2, 3]).unwrap();
    assert!(read_idx(d.join("bad.gz")).unwrap_err().to_string().contains("gzip"));
}

#[test]
fn csv_reader() {
    let t = parse_csv(b"a,b,label\n1,2.5,0\n3,-4,1\n", true, "mem").unwrap();
    assert_eq!(t.header, ["a", "b", "label"]);
    let (x, y) = t.split_labels(-1, DType::F32).unwrap();
    assert_eq!(x.to_vec::<f32>().unwrap(), vec![1.0, 2.5, 3.0, -4.0]);
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![0, 1]);
    let e = parse_csv(b"1,2\n3,x\n", false, "mem").unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("`x`"), "{e}");
    assert!(parse_csv(b"1,2\n3\n", false, "mem").is_err());
    assert!(t.split_labels(5, DType::F32).is_err());
}

#[test]
fn digits_split_matches_w4() {
    let (train, test) = digits_split(42).unwrap();
    assert_eq!((train.len(), test.len()), (1438, 359));
    assert_eq!(train.x.dims(), &[1438, 64]);
    let xs = train.x.to_vec::<f32>().unwrap();
    assert!(xs.iter().all(|&v| (0.0..=1.0).contains(&v)));
    // First row of the file is a 0 (label 0): find where it went and check the permutation.
    let mut perm: Vec<usize> = (0..1797).collect();
    kiln_core::Rng::new(42).shuffle(&mut perm);
    let table = read_csv(digits_path(), false).unwrap();
    let all = table.values.to_vec::<f64>().unwrap();
    let row = perm[0];
    for j in 0..64 {
        assert_eq!(xs[j] as f64, all[row * 65 + j] / 16.0);
    }
    assert_eq!(train.y.to_vec::<i64>().unwrap()[0] as f64, all[row * 65 + 64]);
}

#[test]
fn dataloader_batches_shuffle_and_drop_last() {
    let x = Tensor::arange(0.0, 10.0, 1.0, DType::F64).unwrap().reshape([10, 1]).unwrap();
    let y = Tensor::arange(0.0, 10.0, 1.0, DType::F64).unwrap().to_dtype(DType::I64).unwrap();
    let ds = TensorDataset::new(x, y).unwrap();
    let mut dl = DataLoader::new(ds.clone(), 4);
    let b: Vec<Vec<i64>> = dl.iter().map(|b| b.unwrap().1.to_vec::<i64>().unwrap()).collect();
    assert_eq!(b, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    let mut dl = DataLoader::new(ds.clone(), 4).shuffle(true, 7).drop_last(true);
    assert_eq!(dl.num_batches(), 2);
    let e1: Vec<i64> = dl.iter().flat_map(|b| b.unwrap().1.to_vec::<i64>().unwrap()).collect();
    let e2: Vec<i64> = dl.iter().flat_map(|b| b.unwrap().1.to_vec::<i64>().unwrap()).collect();
    // Same order as the W4 recipe: one generator across epochs, each epoch shuffles 0..n afresh.
    let mut rng = kiln_core::Rng::new(7);
    let mut p1: Vec<i64> = (0..10).collect();
    rng.shuffle(&mut p1);
    let mut p2: Vec<i64> = (0..10).collect();
    rng.shuffle(&mut p2);
    assert_eq!(e1, p1[..8].to_vec());
    assert_eq!(e2, p2[..8].to_vec());
    // Inputs stay paired with targets.
    for b in DataLoader::new(ds.clone(), 3).shuffle(true, 1).iter() {
        let (x, y) = b.unwrap();
        assert_eq!(x.to_vec::<f64>().unwrap(), y.to_vec_f64().unwrap());
    }
    // Dropping the iterator early stops the background thread cleanly.
    let mut dl = DataLoader::new(ds.clone(), 1);
    let mut it = dl.iter();
    it.next().unwrap().unwrap();
    drop(it);
    // Generic Dataset path (stacking single samples).
    struct Squares;
    impl Dataset for Squares {
        fn len(&self) -> usize {
            5
        }
        fn get(&self, i: usize) -> kiln_nn::Result<Batch> {
            Ok((Tensor::from_slice(&[i as f32], [1])?, Tensor::scalar((i * i) as i64)))
        }
    }
    let got: Vec<Vec<i64>> = DataLoader::new(Squares, 2)
        .iter()
        .map(|b| b.unwrap().1.to_vec::<i64>().unwrap())
        .collect();
    assert_eq!(got, vec![vec![0, 1], vec![4, 9], vec![16]]);
    assert!(ds.get_batch(&[11]).unwrap_err().to_string().contains("index 11"));
}

/// A gzip "bomb" is refused after inflating only what the IDX header promises, not inflated
/// until memory runs out.
#[test]
fn idx_gzip_bombs_are_bounded_by_the_header() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("kiln-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Header: u8 data, 1 dim of 10 values; then 64 MiB of zeros (64 KiB compressed).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[0, 0, 0x08, 1, 0, 0, 0, 10]).unwrap();
    gz.write_all(&vec![0u8; 64 << 20]).unwrap();
    let path = dir.join("bomb.idx.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let err = read_idx(&path).unwrap_err().to_string();
    assert!(err.contains("inflates to more than 18 bytes"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Half-precision checkpoints: the bytes on disk are IEEE binary16 / bfloat16 bit patterns, read
/// and written without passing through another dtype.
#[test]
fn half_precision_safetensors_round_trip_bit_exact() {
    // Known encodings: 1, -2, 0.5, 65504 (f16 max) and 0.1 rounded to nearest.
    let f16_bits: [u16; 5] = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x2E66];
    let f16_vals = [1.0, -2.0, 0.5, 65504.0, 0.0999755859375];
    let bf16_bits: [u16; 5] = [0x3F80, 0xC000, 0x3F00, 0x4049, 0x3DCD];
    let bf16_vals = [1.0, -2.0, 0.5, 3.140625, 0.10009765625];
    let le = |b: &[u16]| b.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (hb, bb) = (le(&f16_bits), le(&bf16_bits));
    // A file written by the safetensors crate itself, not by kiln.
    let views = vec![
        (
            "h".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![5], &hb).unwrap(),
        ),
        (
            "b".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![1, 5], &bb).unwrap(),
        ),
    ];
    let bytes = safetensors::serialize(views, None).unwrap();
    let (loaded, _) = from_safetensors_bytes(&bytes, "half.safetensors").unwrap();
    let get = |n: &str| loaded.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let (h, b) = (get("h"), get("b"));
    assert_eq!((h.dtype(), h.dims().to_vec()), (DType::F16, vec![5]));
    assert_eq!((b.dtype(), b.dims().to_vec()), (DType::BF16, vec![1, 5]));
    assert_eq!(h.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap(), f16_vals);
    assert_eq!(b.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap(), bf16_vals);

    // Converting f32 values gives the same bits, and saving writes them unchanged.
    let from_f32 = |v: &[f64], d: DType| {
        Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), [v.len()])
            .unwrap()
            .to_dtype(d)
            .unwrap()
    };
    let h2 = from_f32(&[1.0, -2.0, 0.5, 65504.0, 0.1], DType::F16);
    let b2 = from_f32(&[1.0, -2.0, 0.5, 3.140625, 0.1], DType::BF16);
    let d = tmpdir("half");
    let p = d.join("half.safetensors");
    save_safetensors(&p, &[("h".to_string(), h2), ("b".to_string(), b2)], None).unwrap();
    let raw = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&raw).unwrap();
    let h = st.tensor("h").unwrap();
    assert_eq!((h.dtype(), h.data()), (safetensors::Dtype::F16, &hb[..]));
    let b = st.tensor("b").unwrap();
    assert_eq!((b.dtype(), b.data()), (safetensors::Dtype::BF16, &bb[..]));
}
