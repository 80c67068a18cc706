"""Peak table and MFU, FLOPs of a sparse-prediction BERT counted by hand, measured and estimated energy."""
import types

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, ModernBertConfig, ModernBertForMaskedLM, \
    ModernBertForSequenceClassification

from course_lib import costs, hardware
from course_lib.errors import ConfigError
from course_lib.hardware import GPU_SPECS, GpuSpec

CUDA = torch.device("cuda")  # only a name here: every CUDA query the code makes is faked


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch):
    for name in (hardware.PEAK_ENV, hardware.WATTS_ENV, hardware.CPU_PEAK_ENV, costs.CARBON_ENV):
        monkeypatch.delenv(name, raising=False)


def fake_gpu(monkeypatch, name="NVIDIA H100 80GB HBM3", capability=(9, 0)):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: types.SimpleNamespace(uuid="1234"))


# --- the peak table -------------------------------------------------------------------------

def test_every_listed_name_gets_its_own_entry():
    for name, spec in GPU_SPECS.items():
        assert hardware.gpu_spec_for(name) == spec, name
    assert hardware.gpu_spec_for("  NVIDIA H100\tPCIe ") == GPU_SPECS["NVIDIA H100 PCIe"]


def test_names_that_contain_each_other_stay_apart():
    assert hardware.gpu_spec_for("NVIDIA L40S") != hardware.gpu_spec_for("NVIDIA L4")
    assert hardware.gpu_spec_for("NVIDIA L40") != hardware.gpu_spec_for("NVIDIA L4")
    assert hardware.gpu_spec_for("NVIDIA H100 PCIe") != hardware.gpu_spec_for("NVIDIA H100 80GB HBM3")
    assert hardware.gpu_spec_for("NVIDIA A10") != hardware.gpu_spec_for("NVIDIA A100-SXM4-80GB")


def test_unknown_gpus_have_no_figures():
    assert hardware.gpu_spec_for("NVIDIA H100") == hardware.UNKNOWN_GPU  # a fragment is not a name
    assert hardware.gpu_spec_for("Some Future GPU") == GpuSpec(None, None, None)


def test_tensor_cores_run_fp32_at_half_the_16_bit_rate_where_they_have_tf32():
    for name, spec in GPU_SPECS.items():
        if spec.half and not name.startswith("Tesla"):  # Volta and Turing have no TF32
            assert spec.fp32 == pytest.approx(spec.half / 2, rel=0.02), name


def test_environment_overrides_win(monkeypatch):
    monkeypatch.setenv(hardware.PEAK_ENV, "100")
    monkeypatch.setenv(hardware.WATTS_ENV, "250")
    assert hardware.gpu_spec_for("Some Future GPU") == (100e12, 100e12, 250.0)
    assert hardware.gpu_spec_sources("NVIDIA L4")["watts"] == (250.0, hardware.WATTS_ENV)
    monkeypatch.setenv(hardware.WATTS_ENV, "lots")
    with pytest.raises(ConfigError, match=hardware.WATTS_ENV):
        hardware.gpu_spec_for("NVIDIA L4")


def test_a_cpu_has_no_gpu_spec(monkeypatch):
    monkeypatch.setenv(hardware.PEAK_ENV, "100")
    assert hardware.gpu_spec(torch.device("cpu")) == hardware.UNKNOWN_GPU


def test_gpu_spec_of_a_device_uses_its_name(monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA L40S")
    assert hardware.gpu_spec(CUDA) == GPU_SPECS["NVIDIA L40S"]


def test_native_bf16_needs_ampere_or_newer(monkeypatch):
    assert not hardware.native_bf16(torch.device("cpu"))
    fake_gpu(monkeypatch, "Tesla T4", capability=(7, 5))
    assert not hardware.native_bf16(CUDA)
    fake_gpu(monkeypatch, "NVIDIA A100-SXM4-80GB", capability=(8, 0))
    assert hardware.native_bf16(CUDA)


def test_the_peak_follows_the_number_format(monkeypatch):
    fake_gpu(monkeypatch)
    assert hardware.peak_flops(CUDA, "bf16") == hardware.peak_flops(CUDA, "fp16") == 989e12
    assert hardware.peak_flops(CUDA, "fp32") == 494.5e12  # TF32 tensor cores, half the bf16 rate


def test_a_cpu_peak_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    measured = []
    monkeypatch.setattr(hardware, "measure_matmul_flops", lambda threads: measured.append(threads) or 1e11)
    assert hardware.peak_flops(torch.device("cpu"), "fp32") == 1e11
    assert hardware.cpu_peak_flops(torch.get_num_threads()) == 1e11
    assert measured == [torch.get_num_threads()] and (tmp_path / "cpu_peak.json").is_file()
    monkeypatch.setenv(hardware.CPU_PEAK_ENV, "20")
    assert hardware.peak_flops(torch.device("cpu"), "fp32") == 20e9


def test_measuring_the_cpu_leaves_the_random_draws_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    hardware.measure_matmul_flops(1, size=64, repeats=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name, value", [(hardware.CPU_PEAK_ENV, "fast"), (hardware.PEAK_ENV, "-3"),
                                         (costs.CARBON_ENV, "green")])
def test_a_malformed_variable_is_a_config_error(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        hardware.env_float(name) if name != costs.CARBON_ENV else costs.carbon_intensity()


# --- FLOPs ----------------------------------------------------------------------------------

H, V, I, LAYERS = 32, 100, 64, 2
BERT = dict(vocab_size=V, hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=I,
            max_position_embeddings=16, global_attn_every_n_layers=1, pad_token_id=0, bos_token_id=1,
            eos_token_id=2, cls_token_id=1, sep_token_id=2)


def tiny_bert(**overrides):
    torch.manual_seed(0)
    return ModernBertForMaskedLM(ModernBertConfig(**{**BERT, **overrides}))


def test_sparse_prediction_charges_the_output_layer_per_prediction_only():
    # by hand, from ModernBERT's layer shapes: fused qkv, GLU MLP (Wi is twice as wide), bias-free
    # norms, no attention norm in the first layer; the embedding lookup is not a matmul
    layer = 3 * H * H + H * H + 2 * I * H + I * H + H
    body = H + LAYERS * layer + (LAYERS - 1) * H + H  # embedding norm, layers, final norm
    output = H * H + H + V * H + V  # head dense + norm, decoder tied to the embeddings + its bias
    n_tokens, seq_len, n_predicted = 40, 16, 6
    expected = n_tokens * (6 * body + 12 * LAYERS * H * seq_len) + n_predicted * 6 * output

    model = tiny_bert(sparse_prediction=True)
    profile = costs.flops_profile(model)
    assert profile.batch(n_tokens, seq_len, n_predicted) == expected
    every_token = n_tokens * (6 * (body + output) + 12 * LAYERS * H * seq_len)  # the old, dense accounting
    assert every_token == profile.batch(n_tokens, seq_len, n_predicted=n_tokens) > expected


@pytest.mark.parametrize("make", [
    lambda: tiny_bert(sparse_prediction=False),
    lambda: ModernBertForSequenceClassification(ModernBertConfig(**BERT, sparse_prediction=True)),
    lambda: GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2, n_positions=32)),
], ids=["dense-bert", "bert-classifier", "gpt2"])
def test_other_models_pay_per_token(make):
    profile = costs.flops_profile(make())
    assert profile.per_prediction == 0 and profile.per_token > 0
    assert profile.batch(40, 16, n_sequences=4) == 40 * (profile.per_token + 16 * profile.attention) + \
        4 * profile.per_sequence
    assert profile.batch(40, 16, n_predicted=3, n_sequences=4) == profile.batch(40, 16, n_sequences=4)


# --- energy ---------------------------------------------------------------------------------

class FakeNVML:
    """pynvml's calls the meter makes, with a counter in millijoules that the test advances."""

    class NVMLError(Exception):
        pass

    def __init__(self, supported=True):
        self.millijoules, self.supported, self.uuid = 5_000_000, supported, None

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByUUID(self, uuid):
        self.uuid = uuid
        return "handle"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise self.NVMLError("Not Supported")
        return self.millijoules


def test_the_meter_reads_the_gpu_energy_counter(monkeypatch):
    fake_gpu(monkeypatch)
    nvml = FakeNVML()
    monkeypatch.setattr(costs, "_import_nvml", lambda: nvml)
    meter = costs.EnergyMeter(CUDA)
    assert nvml.uuid == "GPU-1234"
    assert meter.method == "measured: NVML energy counter of NVIDIA H100 80GB HBM3"
    nvml.millijoules += 1_800_000
    cost = costs.RunCost()
    cost.add(1000, 2e15, 4.0, CUDA, energy_joules=meter.joules(4.0), energy_method=meter.method,
             peak_flops=hardware.peak_flops(CUDA, "bf16"))
    assert cost.kwh == pytest.approx(1800 / 3.6e6)  # the counter's 1,800 J, not 700 W x 4 s
    assert cost.mfu == pytest.approx(2e15 / 4.0 / 989e12)
    assert "measured: NVML energy counter" in cost.summary()
    assert meter.joules(1.0) == 0.0  # nothing more was counted since


def test_without_a_counter_the_meter_estimates_board_power(monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA L4")
    monkeypatch.setattr(costs, "_import_nvml", lambda: FakeNVML(supported=False))
    meter = costs.EnergyMeter(CUDA)
    assert meter.method.startswith("estimated: board power 72 W of NVIDIA L4")
    assert meter.joules(10.0) == 720.0


def test_an_unlisted_gpu_is_estimated_and_says_so(monkeypatch):
    fake_gpu(monkeypatch, "Some Future GPU")
    monkeypatch.setattr(costs, "_import_nvml", lambda: None)
    watts, method = costs.power_estimate(CUDA)
    assert watts == costs.UNLISTED_GPU_WATTS and "assumed" in method and "Some Future GPU" in method


@pytest.mark.parametrize("threads, said", [(1, "1 CPU thread"), (2, "2 CPU threads")])
def test_on_cpu_energy_is_estimated_per_thread(monkeypatch, threads, said):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    meter = costs.EnergyMeter(torch.device("cpu"))
    assert meter.method == f"estimated: assumed 10 W x {said}"
    assert meter.joules(2.0) == pytest.approx(2.0 * threads * costs.CPU_WATTS_PER_THREAD)


def test_run_cost_round_trips_and_reads_old_checkpoints():
    cost = costs.RunCost()
    cost.add(100, 1e9, 2.0, torch.device("cpu"))
    assert cost.energy_method.startswith("estimated: ") and cost.mfu is None
    assert cost.energy_method in cost.summary()
    assert costs.RunCost.from_dict(cost.as_dict()) == cost
    old = {k: v for k, v in cost.as_dict().items() if k != "energy_method"}
    old["power_method"] = "assumed 10 W x 2 CPU threads"
    assert costs.RunCost.from_dict(old).energy_method == "estimated: assumed 10 W x 2 CPU threads"


def test_a_run_remembers_every_energy_method():
    cost = costs.RunCost()
    cost.add(100, 1e9, 2.0, torch.device("cpu"))
    cost.add(100, 1e9, 2.0, torch.device("cpu"))
    cost.add(100, 1e9, 2.0, torch.device("cpu"), energy_joules=5.0, energy_method="measured: a meter")
    estimate = costs.power_estimate(torch.device("cpu"))[1]
    assert cost.energy_method == f"{estimate}; then measured: a meter"


def test_mfu_counts_every_process_once():
    """8 processes, each doing 0.5 PFLOP in 1 s on its own H100: 50.6%, not 8 times that."""
    cost = costs.RunCost()
    cost.add(0, 8 * 0.5e15, 1.0, CUDA, energy_joules=0.0, energy_method="measured: a meter", peak_flops=989e12,
             processes=8)
    assert cost.mfu == pytest.approx(0.5e15 / 989e12) and cost.processes == 8


def test_mfu_of_a_run_resumed_on_other_hardware_weighs_each_stretch_by_its_time():
    cost = costs.RunCost()
    cost.add(0, 1e12, 1.0, torch.device("cpu"), peak_flops=2e12)  # 50% for 1 s
    cost.add(0, 1e12, 3.0, torch.device("cpu"), peak_flops=1e12)  # 33% for 3 s
    assert cost.mfu == pytest.approx(2e12 / 5e12)
    assert costs.RunCost.from_dict(cost.as_dict()) == cost


def test_energy_without_its_method_is_refused():
    with pytest.raises(ValueError, match="energy_method"):
        costs.RunCost().add(100, 1e9, 2.0, torch.device("cpu"), energy_joules=5.0)
