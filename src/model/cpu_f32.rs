//! Borrowing the f32 data of CPU tensors as plain slices, for the kernels that compute on
//! them directly (`f32_avx2` through `Linear`, the fused SwiGLU, the pooled experts), and
//! the output pointer those kernels share across candle's pool.

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

/// An f32 output buffer shared by the pool's workers of one kernel call, each writing
/// elements no other worker writes (the kernel's own split guarantees it).
pub(crate) struct DisjointOut(pub(crate) *mut f32);
// SAFETY: workers write disjoint elements; the buffer outlives the call that shares it.
unsafe impl Sync for DisjointOut {}

impl DisjointOut {
    /// Elements `start..start + len` of the buffer.
    ///
    /// # Safety
    /// They lie inside the buffer, and no other worker uses them while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        // SAFETY: in bounds and disjoint by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
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
