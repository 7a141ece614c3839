//! Fuzzing of kiln-nn's readers: safetensors checkpoints, IDX (MNIST) files and numeric CSV.
//! Mutated and random inputs must load or be refused with an error naming the reader (or the
//! tensor op that refused the shape), never panic or abort. scripts/fuzz runs these with
//! `KILN_FUZZ_CASES=1000000`; the test suite runs a few thousand.

use kiln_core::{DType, Tensor};
use kiln_nn::data::{parse_csv, parse_idx};
use kiln_nn::serialize::{from_safetensors_bytes, to_safetensors_bytes};
use proptest::prelude::*;
use std::collections::HashMap;

/// Cases per fuzz property: `default` in the test suite, `KILN_FUZZ_CASES` in the long mode that
/// scripts/fuzz runs.
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("KILN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Overwrites, inserts or removes bytes at the given positions, then cuts the input short.
fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for &(at, b) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            match b % 3 {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ => {
                    bytes.remove(i);
                }
            }
        }
    }
    bytes.truncate(cut);
    bytes
}

/// Dimension sizes mixing small values, zero, and sizes near the overflow edges.
fn dim() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..5,
        1 => Just(u32::MAX as u64),
        1 => (1u64 << 31)..(1u64 << 33),
        1 => (1u64 << 60)..=u64::MAX,
    ]
}

/// A checkpoint with every dtype kiln writes, and metadata.
fn checkpoint() -> Vec<u8> {
    let t = |v: Tensor, name: &str| (name.to_string(), v);
    let tensors = vec![
        t(
            Tensor::from_vec(vec![1.5f32, -2.0, 0.25, 8.0, 0.0, -0.0], [2, 3]).unwrap(),
            "layer.weight",
        ),
        t(Tensor::from_vec(vec![1e-300f64, 7.0], [2]).unwrap(), "b"),
        t(Tensor::from_vec(vec![-5i64, 70000, 3], [3, 1]).unwrap(), "steps"),
        t(Tensor::from_vec(vec![0u8, 255], [1, 2]).unwrap(), "mask"),
        t(Tensor::zeros([0, 4], DType::F32).unwrap(), "empty"),
        t(
            Tensor::from_vec(vec![1.5f32, -2.0], [2]).unwrap().to_dtype(DType::F16).unwrap(),
            "half",
        ),
        t(
            Tensor::from_vec(vec![0.25f32], [1, 1]).unwrap().to_dtype(DType::BF16).unwrap(),
            "brain",
        ),
    ];
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    to_safetensors_bytes(&tensors, Some(meta)).unwrap()
}

/// A load result is fine when it is Ok or an error from the reader or a tensor constructor.
fn check_safetensors(bytes: &[u8]) -> Result<(), TestCaseError> {
    match from_safetensors_bytes(bytes, "m.safetensors") {
        Ok((tensors, _)) => {
            for (name, t) in tensors {
                // What loaded is a usable tensor of the size its shape says.
                let n = t.elem_count();
                prop_assert_eq!(t.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap().len(), n, "{}", name);
            }
        }
        Err(e) => {
            let m = e.to_string();
            prop_assert!(
                m.starts_with("load_safetensors: m.safetensors: ") || m.starts_with("from_vec: ") || m.starts_with("from_le_bytes: "),
                "{}",
                m
            );
        }
    }
    Ok(())
}

fn idx(ty: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, ty, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(payload);
    b
}

fn check_idx(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_idx(bytes, "m.idx") {
        Ok(t) => {
            // Header, sizes and values account for every byte.
            let esize = match bytes[2] {
                0x08 | 0x09 => 1,
                0x0B => 2,
                0x0C | 0x0D => 4,
                _ => 8,
            };
            prop_assert_eq!(4 + 4 * t.rank() + esize * t.elem_count(), bytes.len());
        }
        Err(e) => {
            let m = e.to_string();
            prop_assert!(m.starts_with("read_idx: m.idx: ") || m.starts_with("from_vec: "), "{}", m);
        }
    }
    Ok(())
}

const CSV: &str = "a,b,label\n1,2.5,0\n3,-4,1\n-0.5,1e3,2\n";

fn check_csv(bytes: &[u8], header: bool) -> Result<(), TestCaseError> {
    match parse_csv(bytes, header, "m.csv") {
        Ok(t) => {
            prop_assert_eq!(t.values.rank(), 2);
            prop_assert_eq!(t.values.dtype(), DType::F64);
            // Splitting off the last column never panics either.
            if let Err(e) = t.split_labels(-1, DType::F32) {
                prop_assert!(e.to_string().starts_with("CsvTable::split_labels: "), "{}", e);
            }
        }
        Err(e) => {
            let m = e.to_string();
            prop_assert!(m.starts_with("read_csv: m.csv: ") || m.starts_with("from_vec: "), "{}", m);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases(2000)))]

    #[test]
    fn mutated_safetensors_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0usize..1000) {
        let base = checkpoint();
        check_safetensors(&mutate(&base, &edits, cut))?;
    }

    #[test]
    fn random_safetensors_headers_never_panic(
        entries in prop::collection::vec((
            prop_oneof![Just("F32"), Just("F64"), Just("I64"), Just("I32"), Just("U8"), Just("BOOL"),
                        Just("F16"), Just("BF16"), Just("I8"), Just("U64"), Just("F8_E4M3"), Just("X")],
            prop::collection::vec(dim(), 0..5),
            (0u64..64, prop_oneof![4 => 0u64..96, 1 => any::<u64>()]),
        ), 0..4),
        meta in prop::option::of(prop_oneof![Just(r#"{"k":"v"}"#), Just(r#"{"k":1}"#), Just("[]"), Just("null")]),
        data_len in 0usize..128,
        header_pad in 0usize..3,
    ) {
        // A structured header (names, dtypes, shapes and offsets chosen at random, valid or not)
        // reaches the checks past JSON parsing that byte mutations rarely get to.
        let mut fields: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (dt, shape, (a, len)))| {
                let b = a.saturating_add(*len);
                format!(r#""t{i}":{{"dtype":"{dt}","shape":{shape:?},"data_offsets":[{a},{b}]}}"#)
            })
            .collect();
        if let Some(m) = meta {
            fields.push(format!(r#""__metadata__":{m}"#));
        }
        let mut header = format!("{{{}}}", fields.join(","));
        header.push_str(&" ".repeat(header_pad));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend((0..data_len).map(|i| (i * 37) as u8));
        check_safetensors(&bytes)?;
    }

    #[test]
    fn mutated_idx_never_panics(
        ty in prop_oneof![Just(0x08u8), Just(0x09), Just(0x0B), Just(0x0C), Just(0x0D), Just(0x0E)],
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in 0usize..80,
    ) {
        let esize = match ty { 0x08 | 0x09 => 1, 0x0B => 2, 0x0C | 0x0D => 4, _ => 8 };
        let payload: Vec<u8> = (0..2 * 3 * esize).map(|i| (i * 91 + 7) as u8).collect();
        check_idx(&mutate(&idx(ty, &[2, 3], &payload), &edits, cut))?;
    }

    #[test]
    fn random_idx_headers_never_panic(
        ty in any::<u8>(),
        dims in prop::collection::vec(dim().prop_map(|d| d as u32), 0..6),
        claimed_rank in prop::option::of(any::<u8>()),
        payload_len in prop_oneof![4 => 0usize..64, 1 => Just(0usize)],
    ) {
        // Random type codes, ranks that disagree with the sizes that follow, zero and huge sizes.
        let mut b = idx(ty, &dims, &vec![0x5a; payload_len]);
        if let Some(r) = claimed_rank {
            b[3] = r;
        }
        check_idx(&b)?;
    }

    #[test]
    fn mutated_nn_csv_never_panics(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0usize..80, header in any::<bool>()) {
        check_csv(&mutate(CSV.as_bytes(), &edits, cut), header)?;
    }

    #[test]
    fn random_csv_fields_never_panic(
        rows in prop::collection::vec(prop::collection::vec(prop_oneof![
            Just("1"), Just("-0"), Just("nan"), Just("inf"), Just("-inf"), Just("1e999"), Just("  2.5 "),
            Just(""), Just("x"), Just("\"3\""), Just("\"a,b\""), Just("9223372036854775808"), Just("\u{feff}1"),
        ], 0..5), 0..6),
        header in any::<bool>(),
    ) {
        let text: String = rows.iter().map(|r| r.join(",") + "\n").collect();
        check_csv(text.as_bytes(), header)?;
    }
}
