use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use std::time::Instant;
fn main() -> candle_core::Result<()> {
    let d = Device::Cpu;
    for &(n, k) in &[
        (1536usize, 576usize),
        (1536, 768),
        (576, 1536),
        (49152, 576),
        (49152, 768),
    ] {
        let w = Tensor::randn(0f32, 1.0, (n, k), &d)?;
        let q = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0)?)?;
        for m in [1usize, 64] {
            let x = Tensor::randn(0f32, 1.0, (1, m, k), &d)?;
            let _ = q.forward(&x)?;
            let iters = if m == 1 { 300 } else { 20 };
            let t = Instant::now();
            for _ in 0..iters {
                let _ = q.forward(&x)?;
            }
            let us = t.elapsed().as_secs_f64() * 1e6 / iters as f64;
            println!(
                "n={n} k={k} m={m}: {us:.1} us  ({:.2} GB/s weights)",
                (n * k) as f64 * 34.0 / 32.0 / us / 1e3
            );
        }
    }
    Ok(())
}
