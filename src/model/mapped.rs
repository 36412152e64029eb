//! Quantized weights that stay in the memory-mapped GGUF file: a candle [`QuantizedType`]
//! whose blocks are a view of the mapping, so loading copies nothing onto the heap. The pages
//! are the page cache's (shared, clean, evictable under pressure); they become resident
//! when a forward first reads them.

use std::marker::PhantomData;
use std::sync::Arc;

use candle_core::quantized::k_quants::{self, BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QuantizedType};
use candle_core::{CpuStorage, Result};
use half::f16;

/// `n` blocks of `T` at byte `offset` of a read-only mapping.
pub struct Mapped<T> {
    map: Arc<memmap2::Mmap>,
    offset: usize,
    n: usize,
    _t: PhantomData<T>,
}

impl<T: GgmlType> Mapped<T> {
    /// None when the range is outside the mapping or not aligned for `T`.
    pub fn new(map: Arc<memmap2::Mmap>, offset: usize, n: usize) -> Option<Self> {
        let end = offset.checked_add(n.checked_mul(std::mem::size_of::<T>())?)?;
        let aligned = (map.as_ptr() as usize + offset).is_multiple_of(std::mem::align_of::<T>());
        (end <= map.len() && aligned).then_some(Self { map, offset, n, _t: PhantomData })
    }

    fn blocks(&self) -> &[T] {
        // SAFETY: `new` checked bounds and alignment; GGUF block types are plain old data
        // (#[repr(C)], every bit pattern valid); the mapping is read-only and lives in `self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.offset) as *const T, self.n) }
    }
}

impl<T: GgmlType + Send + Sync> QuantizedType for Mapped<T> {
    fn dtype(&self) -> GgmlDType {
        T::DTYPE
    }

    fn matmul_t(&self, mkn: (usize, usize, usize), lhs: &[f32], dst: &mut [f32]) -> Result<()> {
        if T::DTYPE == GgmlDType::Q8_0 && std::mem::size_of::<T>() == std::mem::size_of::<BlockQ8_0>() {
            // SAFETY: T is BlockQ8_0 (its dtype and size say so; GgmlType has one q8_0 block).
            let w = unsafe { std::slice::from_raw_parts(self.blocks().as_ptr() as *const BlockQ8_0, self.n) };
            return super::quant_cpu::q8_0_blocks_matmul(mkn, lhs, w, dst);
        }
        k_quants::matmul(mkn, lhs, self.blocks(), dst)
    }

    fn matmul_t_f16(&self, mkn: (usize, usize, usize), lhs: &[f16], dst: &mut [f16]) -> Result<()> {
        k_quants::matmul_f16(mkn, lhs, self.blocks(), dst)
    }

    fn embedding(&self, ids: &[u32], rows: usize, hidden: usize) -> Result<CpuStorage> {
        if !hidden.is_multiple_of(T::BLCK_SIZE) || self.n != rows * (hidden / T::BLCK_SIZE) {
            candle_core::bail!("mapped embedding: {} blocks do not form {rows} rows of {hidden}", self.n);
        }
        let rb = hidden / T::BLCK_SIZE;
        let mut out = vec![0f32; ids.len() * hidden];
        for (i, &id) in ids.iter().enumerate() {
            let r = id as usize;
            if r >= rows {
                candle_core::bail!("embedding id {r} is out of range for {rows} rows");
            }
            T::to_float(&self.blocks()[r * rb..(r + 1) * rb], &mut out[i * hidden..(i + 1) * hidden]);
        }
        Ok(CpuStorage::F32(out))
    }

    fn dequantize(&self, elem_count: usize) -> Result<CpuStorage> {
        let mut ys = vec![0f32; elem_count];
        T::to_float(self.blocks(), &mut ys);
        Ok(CpuStorage::F32(ys))
    }

    fn storage_size_in_bytes(&self) -> usize {
        self.n * std::mem::size_of::<T>()
    }

    fn as_ptr(&self) -> *const u8 {
        self.blocks().as_ptr() as *const u8
    }

    fn block_size(&self) -> usize {
        T::BLCK_SIZE
    }

    fn from_float(&mut self, _xs: &[f32]) {
        panic!("a memory-mapped GGUF weight is read-only");
    }

    fn from_float_imatrix(&mut self, _xs: &[f32], _w: &[f32], _n_per_row: usize) {
        panic!("a memory-mapped GGUF weight is read-only");
    }

    fn size(&self) -> usize {
        self.storage_size_in_bytes()
    }
}
