//! Plain-slice f32 CPU compute beside candle: borrowing tensors' data as slices, new
//! tensors filled through an output shared by candle's pool, and the one rule for when a
//! call goes to that pool (`for_ranges`, `serial`), for the kernels that compute on slices
//! directly (`f32_avx2`, attention's core, the pooled RMSNorm/SwiGLU, the pooled experts).

use candle_core::{CpuStorage, Device, Result, Storage, Tensor};

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

/// A new f32 CPU tensor of shape `dims`, each element written by `fill` (from the slices of
/// `inputs`, as [`with_slices`] gives them) through the output it shares with the pool's
/// workers; with what `fill` returned. None when an input is not contiguous f32 CPU data.
pub(crate) fn fill_new<R>(
    inputs: &[&Tensor],
    dims: &[usize],
    fill: impl FnOnce(&[&[f32]], &DisjointOut) -> R,
) -> Result<Option<(Tensor, R)>> {
    let mut out = vec![0f32; dims.iter().product()];
    let dst = DisjointOut(out.as_mut_ptr());
    match with_slices(inputs, |s| fill(s, &dst)) {
        Some(r) => Ok(Some((Tensor::from_vec(out, dims, &Device::Cpu)?, r))),
        None => Ok(None),
    }
}

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's pooled calls ([`for_ranges`]) kept on this thread. For work
/// that is already spread over threads (a MoE layer's experts): there a call into candle's
/// pool would only queue behind the other workers' calls.
pub(crate) fn serial<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|s| s.replace(true));
    let r = f();
    SERIAL.with(|s| s.set(before));
    r
}

/// Runs `f` over `items` consecutive ranges of work: on candle's pool when there is more
/// than one thread and `work` (any measure of the call's cost) reaches `pool_min`, else on
/// this thread — there the pool's wake-up costs more than it saves. Inside
/// [`serial`] always on this thread.
pub(crate) fn for_ranges(
    items: usize,
    work: usize,
    pool_min: usize,
    f: impl Fn(std::ops::Range<usize>) + Sync,
) {
    let pooled = candle_core::utils::get_num_threads() > 1 && !SERIAL.with(|s| s.get());
    if pooled && items > 1 && work >= pool_min {
        candle_core::utils::barrier_pool().execute_chunked(items, f);
    } else {
        f(0..items);
    }
}

/// An f32 output buffer shared by the pool's workers of one kernel call, each writing
/// elements no other worker writes (the kernel's own split guarantees it).
pub(crate) struct DisjointOut<T = f32>(pub(crate) *mut T);
// SAFETY: workers write disjoint elements; the buffer outlives the call that shares it.
unsafe impl<T: Send> Sync for DisjointOut<T> {}

impl<T> DisjointOut<T> {
    /// Elements `start..start + len` of the buffer.
    ///
    /// # Safety
    /// They lie inside the buffer, and no other worker uses them while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
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
