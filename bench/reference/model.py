"""A Llama-family decoder in plain PyTorch (no transformers), as modeling_llama.py computes it,
loading a Hugging Face directory (config.json + model.safetensors): the reference bireco's
benchmarks compare against (bench/reference/step.py). Works with torch 1.13 (Debian) and 2.x;
on 2.x attention goes through F.scaled_dot_product_attention, as transformers' "sdpa" does.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.utils.checkpoint
import torch.nn.functional as F

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def read_safetensors(path):
    """name -> tensor from one .safetensors file (the format: u64 header size, JSON header, data)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


def read_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(model_dir, name)))
    return weights


def rope_inv_freq(c):
    d = c["head_dim"]
    inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    s = c.get("rope_scaling") or {}
    kind = s.get("rope_type", s.get("type"))
    if kind == "linear":
        return inv / s["factor"]
    if kind != "llama3":
        return inv
    old = s["original_max_position_embeddings"]
    low_wavelen = old / s["low_freq_factor"]
    high_wavelen = old / s["high_freq_factor"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / s["factor"], inv)
    smooth = (old / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
    smoothed = (1 - smooth) * scaled / s["factor"] + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, smoothed, scaled)


class LoraLinear(nn.Module):
    """nn.Linear plus PEFT's LoRA: y = x W^T + dropout(x) A^T B^T * alpha / r."""

    def __init__(self, base, r, alpha, dropout):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(self.dropout(x))) * self.scaling


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, self.H, self.K, self.D = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        bias = c.get("attention_bias", c.get("model_type") == "qwen2")  # Qwen2: q/k/v biases
        self.q_proj = nn.Linear(C, self.H * self.D, bias=bias)
        self.k_proj = nn.Linear(C, self.K * self.D, bias=bias)
        self.v_proj = nn.Linear(C, self.K * self.D, bias=bias)
        self.o_proj = nn.Linear(self.H * self.D, C, bias=False)

    def forward(self, x, cos, sin, allowed):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.K, self.D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.K, self.D).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        g = self.H // self.K
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
        if hasattr(F, "scaled_dot_product_attention"):
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.D)
            scores = scores.masked_fill(~allowed, float("-inf"))
            out = torch.matmul(torch.softmax(scores.float(), -1).to(q.dtype), v)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.H * self.D))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, I = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(C, I, bias=False)
        self.up_proj = nn.Linear(C, I, bias=False)
        self.down_proj = nn.Linear(I, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = Mlp(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, allowed):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, allowed)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    """Llama base model + (tied or separate) LM head weight; forward from embeddings."""

    def __init__(self, c):
        super().__init__()
        c = dict(c)
        c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
        self.config = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.lm_head = None if c.get("tie_word_embeddings", False) else nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.register_buffer("inv_freq", rope_inv_freq(c), persistent=False)
        self.gradient_checkpointing = False

    @classmethod
    def from_pretrained(cls, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            m = cls(json.load(f))
        weights = {k[len("model."):] if k.startswith("model.") else k: v for k, v in read_weights(model_dir).items()}
        missing, unexpected = m.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not (k == "lm_head.weight" and m.lm_head is None)]
        if missing or unexpected:
            raise RuntimeError(f"{model_dir}: missing {missing}, unexpected {unexpected}")
        return m

    def head_weight(self):
        return self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def add_lora(self, r=16, alpha=32, dropout=0.05,
                 targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")):
        for p in self.parameters():
            p.requires_grad_(False)
        for layer in self.layers:
            for parent in (layer.self_attn, layer.mlp):
                for name in targets:
                    if hasattr(parent, name):
                        setattr(parent, name, LoraLinear(getattr(parent, name), r, alpha, dropout))

    def forward_embeds(self, x, mask, position_ids=None):
        """Final hidden states [B, T, C] (after the norm); causal attention over the mask's keys;
        positions = number of real tokens before (transformers' left-padding convention)."""
        B, T, _ = x.shape
        if position_ids is None:
            position_ids = (mask.long().cumsum(-1) - 1).clamp_min(0)
        freqs = position_ids.float().unsqueeze(-1) * self.inv_freq.float()
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        idx = torch.arange(T, device=x.device)
        causal = idx.view(1, T) <= idx.view(T, 1)
        allowed = (mask.bool().view(B, 1, 1, T) & causal) | torch.eye(T, dtype=torch.bool, device=x.device)
        checkpoint = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            if checkpoint:
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, allowed, use_reentrant=False)
            else:
                x = layer(x, cos, sin, allowed)
        return self.norm(x)
