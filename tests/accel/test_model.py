"""The analytic model: SCALE-Sim's fold formulas, the DMA pipeline, the roofline it implies."""

from __future__ import annotations

import pytest
from hal_accel._model import dma_stall, gemm_cycles, gemm_estimate, vector_estimate
from hal_accel._presets import PRESETS

TPU, TPU_GDDR5 = PRESETS["tpu-v1"], PRESETS["tpu-v1-gddr5"]


@pytest.mark.parametrize(("dataflow", "cycles"), [("os", 10_175), ("ws", 11_199), ("is", 14_207)])
def test_scalesim_worked_example(dataflow: str, cycles: int) -> None:
    assert gemm_cycles(256, 128, 256, 32, 32, dataflow) == cycles  # type: ignore[arg-type]


def test_empty_gemm_takes_no_cycles() -> None:
    assert gemm_cycles(0, 128, 256, 32, 32, "ws") == 0


def test_unknown_dataflow_is_refused() -> None:
    with pytest.raises(ValueError, match="dataflow"):
        gemm_cycles(8, 8, 8, 4, 4, "xs")  # type: ignore[arg-type]


def test_dma_hidden_behind_compute_costs_only_the_prologue() -> None:
    assert dma_stall(folds=10, per_fold=100, dma_cycles=0) == 0
    assert dma_stall(folds=10, per_fold=100, dma_cycles=500) == 50  # one fold's share, then overlapped


def test_bandwidth_bound_pipeline_runs_at_dma_speed() -> None:
    # 10 folds of 100 compute cycles, 2000 cycles of traffic: 200 + 9 * (200 - 100) stall cycles
    assert dma_stall(folds=10, per_fold=100, dma_cycles=2000) == 1100


def test_estimate_compute_is_the_stall_free_formula() -> None:
    est = gemm_estimate(1024, 512, 768, TPU, in_itemsize=1, out_itemsize=4, reads_out=False)
    assert est.compute_cycles == gemm_cycles(1024, 512, 768, 256, 256, "ws")
    assert est.cycles == est.compute_cycles + est.stall_cycles
    assert est.macs == 1024 * 512 * 768
    assert est.dram_bytes == 1024 * 768 + 768 * 512 + 1024 * 512 * 4


def test_operand_that_does_not_fit_is_restreamed_per_sweep() -> None:
    fits = gemm_estimate(4096, 1024, 2048, TPU, in_itemsize=1, out_itemsize=4, reads_out=False)
    spills = gemm_estimate(4096, 1024, 4096, TPU, in_itemsize=1, out_itemsize=4, reads_out=False)
    assert fits.dram_bytes == 4096 * 2048 + 2048 * 1024 + 4096 * 1024 * 4
    assert spills.dram_bytes == 4096 * 4096 * (1024 // 256) + 4096 * 1024 + 4096 * 1024 * 4


def test_beta_reads_the_output() -> None:
    a = gemm_estimate(512, 512, 512, TPU, in_itemsize=4, out_itemsize=4, reads_out=False)
    b = gemm_estimate(512, 512, 512, TPU, in_itemsize=4, out_itemsize=4, reads_out=True)
    assert b.dram_bytes - a.dram_bytes == 512 * 512 * 4


def test_large_int8_gemm_reaches_90_percent_of_peak_when_fed() -> None:
    """The array itself reaches >= 90% of peak on a large int8 gemm (SCALE-Sim's stall-free
    figure); with GDDR5 (Jouppi et al. section 7) the memory keeps up and the whole chip does."""
    m = n = k = 16384
    fed = gemm_estimate(m, n, k, TPU_GDDR5, in_itemsize=1, out_itemsize=4, reads_out=False)
    achieved = 2 * fed.macs / fed.seconds(TPU_GDDR5)
    assert achieved / TPU_GDDR5.peak_ops >= 0.90
    ddr3 = gemm_estimate(m, n, k, TPU, in_itemsize=1, out_itemsize=4, reads_out=False)
    assert ddr3.macs / (TPU.rows * TPU.cols * ddr3.compute_cycles) >= 0.90


def test_ddr3_tpu_is_memory_bound_on_gemm_from_dram() -> None:
    """34 GB/s against 46 TMAC/s: the ridge point is ~1350 MACs per byte (Jouppi et al.,
    roofline), beyond any gemm whose operands and int32 result cross DRAM."""
    est = gemm_estimate(16384, 16384, 16384, TPU, in_itemsize=1, out_itemsize=4, reads_out=False)
    assert est.utilization < 0.5 and est.stall_cycles > est.compute_cycles


def test_vector_unit_does_one_element_per_column_per_cycle() -> None:
    est = vector_estimate(256 * 1000, 0, TPU)
    assert est.compute_cycles == 1000 and est.cycles == 1000 and est.utilization == 1.0
    bound = vector_estimate(1 << 20, 3 * 4 << 20, TPU)
    assert bound.dma_cycles > bound.compute_cycles and bound.utilization < 0.1
