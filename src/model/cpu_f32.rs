//! Borrowing the f32 data of CPU tensors as plain slices, for the kernels that compute on
//! them directly (`f32_avx2` through `Linear`, the fused SwiGLU, the pooled experts).

use candle_core::{CpuStorage, Storage, Tensor};

/// Runs `f` on the data of `tensors`, each as one contiguous `&[f32]` in its layout's order,
/// while their storages are read-locked. None when any is not a contiguous f32 CPU tensor.
pub(crate) fn with_slices<R>(tensors: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> Option<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices: Vec<&[f32]> = Vec::with_capacity(guards.len());
    for (s, l) in &guards {
        match (&**s, l.contiguous_offsets()) {
            (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => slices.push(&v[a..b]),
            _ => return None,
        }
    }
    Some(f(&slices))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn gives_contiguous_f32_data_and_refuses_the_rest() {
        let t = Tensor::arange(0f32, 6.0, &Device::Cpu).unwrap().reshape((2, 3)).unwrap();
        let row = t.narrow(0, 1, 1).unwrap();
        let got = with_slices(&[&t, &row], |s| (s[0].to_vec(), s[1].to_vec())).unwrap();
        assert_eq!(got, (vec![0., 1., 2., 3., 4., 5.], vec![3., 4., 5.]));
        assert!(with_slices(&[&t.t().unwrap()], |_| ()).is_none());
        assert!(with_slices(&[&t.to_dtype(DType::F64).unwrap()], |_| ()).is_none());
    }
}
