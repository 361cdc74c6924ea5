//! Element-wise ops: `act(x + bias)`, `act(y + x)` and `act(x)`. Each is a candle op whose CPU
//! kernel runs on rayon in chunks of [`PAR_CHUNK`] values (the slice arithmetic below, also
//! used by the fused separable convolution), with an in-place variant for fresh layer outputs
//! and a plain candle expression on other devices.

use candle_core::{
    CpuStorage, CustomOp2, D, Device, InplaceOp1, InplaceOp2, Layout, Result, Shape, Tensor, bail,
};
use rayon::prelude::*;

use super::{Act, PAR_CHUNK, cpu_f32, cpu_f32_mut};

// ------------------------------------------------------------------------- bias + activation

struct BiasAct(Act);

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s1, l1, "bias input")?;
        let bias = cpu_f32(s2, l2, "bias")?;
        let mut out = x.to_vec();
        par_bias_act(&mut out, bias, self.0);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act-inplace"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let bias = cpu_f32(s2, l2, "bias")?;
        par_bias_act(cpu_f32_mut(s1, l1, "bias-act")?, bias, self.0);
        Ok(())
    }
}

/// [`bias_act_in_place`] over chunks of about 64k values, in parallel.
fn par_bias_act(data: &mut [f32], bias: &[f32], act: Act) {
    if let Some(per_chunk) = PAR_CHUNK.checked_div(bias.len()) {
        let len = per_chunk.max(1) * bias.len();
        data.par_chunks_mut(len)
            .for_each(|chunk| bias_act_in_place(chunk, bias, act));
    }
}

with_avx512! {
    /// `v = act(v + bias)` over pixels of `bias.len()` channels.
    pub fn bias_act_in_place / bias_act_baseline<const FMA: bool>(data: &mut [f32], bias: &[f32], act: Act) {
        for px in data.chunks_exact_mut(bias.len()) {
            for (v, &b) in px.iter_mut().zip(bias) {
                *v += b;
            }
            act.apply_slice(px);
        }
    }
}

/// [`bias_act`] that overwrites `x` when it is a CPU tensor: only for tensors nobody else
/// holds (a fresh layer output). Saves an allocation the size of the activation, which on
/// large batches costs as much as the arithmetic (fresh pages must be faulted in and zeroed).
pub(crate) fn bias_act_owned(x: Tensor, bias: &Tensor, act: Act) -> Result<Tensor> {
    if matches!(x.device(), Device::Cpu) && x.is_contiguous() && bias.dims() == [x.dim(D::Minus1)?]
    {
        x.inplace_op2(bias, &BiasAct(act))?;
        return Ok(x);
    }
    bias_act(&x, bias, act)
}

/// `act(x + bias)` with `bias` of shape `[C]` broadcast over the last dimension.
pub fn bias_act(x: &Tensor, bias: &Tensor, act: Act) -> Result<Tensor> {
    let c = x.dim(D::Minus1)?;
    if bias.dims() != [c] {
        bail!("bias: shape {:?} does not match {c} channels", bias.dims());
    }
    if matches!(x.device(), Device::Cpu) {
        return x.contiguous()?.apply_op2_no_bwd(bias, &BiasAct(act));
    }
    act.apply_tensor(x.broadcast_add(bias)?)
}

// ------------------------------------------------------------------- residual add + activation

struct AddAct(Act);

impl InplaceOp2 for AddAct {
    fn name(&self) -> &'static str {
        "add-act-inplace"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let other = cpu_f32(s2, l2, "add operand")?;
        let data = cpu_f32_mut(s1, l1, "add-act")?;
        if data.len() != other.len() {
            bail!("add-act: {} values plus {}", data.len(), other.len());
        }
        data.par_chunks_mut(PAR_CHUNK)
            .zip(other.par_chunks(PAR_CHUNK))
            .for_each(|(d, o)| add_act_in_place(d, o, self.0));
        Ok(())
    }
}

with_avx512! {
    /// `v = act(v + o)` over pairs of values.
    pub fn add_act_in_place / add_act_baseline<const FMA: bool>(data: &mut [f32], other: &[f32], act: Act) {
        for (v, &o) in data.iter_mut().zip(other) {
            *v += o;
        }
        act.apply_slice(data);
    }
}

/// `act(y + x)`, overwriting `y` when it is a CPU tensor: only for a `y` nobody else holds (a
/// fresh layer output), like [`bias_act_owned`]. Runs on rayon rather than candle's own
/// element-wise thread pool, whose spinning workers would compete with the matmuls on a
/// small machine.
pub(crate) fn add_act_owned(y: Tensor, x: &Tensor, act: Act) -> Result<Tensor> {
    if y.dims() != x.dims() {
        bail!("add: shapes {:?} and {:?} differ", y.dims(), x.dims());
    }
    if matches!(y.device(), Device::Cpu) && y.is_contiguous() {
        y.inplace_op2(&x.contiguous()?, &AddAct(act))?;
        return Ok(y);
    }
    act.apply_tensor((y + x)?)
}

// ---------------------------------------------------------------------------- activation only

struct ActOnly(Act);

impl InplaceOp1 for ActOnly {
    fn name(&self) -> &'static str {
        "act-inplace"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        cpu_f32_mut(storage, layout, "act")?
            .par_chunks_mut(PAR_CHUNK)
            .for_each(|d| act_in_place(d, self.0));
        Ok(())
    }
}

with_avx512! {
    /// `v = act(v)` over every value.
    pub fn act_in_place / act_baseline<const FMA: bool>(data: &mut [f32], act: Act) {
        act.apply_slice(data);
    }
}

/// `act(x)` as a new tensor (on the CPU: a copy, then the activation in place).
pub(crate) fn act(x: &Tensor, act: Act) -> Result<Tensor> {
    if matches!(x.device(), Device::Cpu) {
        let y = x.contiguous()?.copy()?;
        y.inplace_op1(&ActOnly(act))?;
        return Ok(y);
    }
    act.apply_tensor(x.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_diff, seq, values};

    /// The CPU kernels give exactly the device-generic expressions used on CUDA.
    #[test]
    fn cpu_kernels_match_generic_paths() {
        let c = 88;
        let x = seq(&[2, 9, 8, c]);
        let bias = seq(&[c]);
        let fused = bias_act(&x, &bias, Act::Relu6).expect("fused");
        let generic = x
            .broadcast_add(&bias)
            .and_then(|t| t.clamp(0f32, 6f32))
            .expect("generic");
        assert_eq!(max_diff(&fused, &generic), 0.0);

        let x = seq(&[2, 15, 15, 40]);
        let y = seq(&[2, 15, 15, 40]).affine(-0.5, 0.25).expect("y");
        let generic = (&y + &x).and_then(|t| t.relu()).expect("generic");
        let fused = add_act_owned(y, &x, Act::Relu).expect("fused");
        assert_eq!(max_diff(&fused, &generic), 0.0);
        let relu = act(&x, Act::Relu).expect("act");
        assert_eq!(max_diff(&relu, &x.relu().expect("relu")), 0.0);
    }

    /// The baseline builds (what CPUs without AVX-512 run) give the values of the builds this
    /// CPU picks.
    #[test]
    fn baseline_builds_match_the_dispatched_ones() {
        let c = 88;
        let x = values(2 * 7 * 9 * c, 1);
        let filter = values(9 * c, 2);
        let bias = values(c, 3);
        let (mut fast, mut base) = (x.clone(), x.clone());
        add_act_in_place(&mut fast, &filter, Act::Relu);
        add_act_baseline::<false>(&mut base[..filter.len()], &filter, Act::Relu);
        assert_eq!(fast[..filter.len()], base[..filter.len()]);
        let (mut fast, mut base) = (x.clone(), x.clone());
        bias_act_in_place(&mut fast, &bias, Act::Relu6);
        bias_act_baseline::<false>(&mut base, &bias, Act::Relu6);
        assert_eq!(fast, base);
    }
}
